"""The agent's TLS context for the broker: certificate and host name always checked.

Built once when the uplink is made, so a missing or bad CA file stops the agent at start
instead of leaving it to retry (or, worse, to connect without TLS).
"""

from __future__ import annotations

import socket
import ssl

import paho.mqtt.client as mqtt

from edge_agent.config import MqttTlsConfig


class TlsConfigError(ValueError):
    """A TLS file is missing or unusable; the message names it."""


def tls_context(cfg: MqttTlsConfig) -> ssl.SSLContext:
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cfg.ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"cannot use CA file {cfg.ca_file}: {exc}") from exc
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    if cfg.cert_file is not None and cfg.key_file is not None:
        try:
            ctx.load_cert_chain(str(cfg.cert_file), str(cfg.key_file))
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(f"cannot use client certificate {cfg.cert_file}: {exc}") from exc
    return ctx


class MqttClient(mqtt.Client):
    """paho's client, closing the socket when the TLS handshake fails.

    paho 2.x leaves the half-open TLS socket behind when ``do_handshake`` raises (a refused
    certificate), leaking one descriptor per retry; a box that retries for days would run
    out. Our context checks the host name itself (``check_hostname``), so this is paho's
    wrap minus the leak.
    """

    def _ssl_wrap_socket(self, tcp_sock: socket.socket) -> ssl.SSLSocket:
        ctx = self._ssl_context
        if ctx is None or not ctx.check_hostname:
            return super()._ssl_wrap_socket(tcp_sock)
        ssl_sock = ctx.wrap_socket(tcp_sock, server_hostname=self._host,
                                   do_handshake_on_connect=False)
        try:
            ssl_sock.settimeout(self._connect_timeout)
            ssl_sock.do_handshake()
        except BaseException:
            ssl_sock.close()
            raise
        return ssl_sock
