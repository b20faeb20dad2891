"""The agent's TLS context for the broker: certificate and host name always checked.

Built once when the uplink is made, so a missing or bad CA file stops the agent at start
instead of leaving it to retry (or, worse, to connect without TLS).
"""

from __future__ import annotations

import ssl

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
