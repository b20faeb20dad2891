"""A throwaway Mosquitto broker on a free 127.0.0.1 port (see ``hub.localservices``)."""

from __future__ import annotations

import contextlib
import glob
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hub.localservices.process import (
    APT_HINT,
    ServiceNotInstalledError,
    ServiceProcess,
    free_port,
)


def mqtt_connack(port: int, timeout: float = 0.5, host: str = "127.0.0.1") -> bool:
    """True when a broker answers an MQTT 3.1.1 CONNECT with a CONNACK (any return code)."""
    client_id = b"dcor-ready-probe"
    var_header = b"\x00\x04MQTT\x04\x02\x00\x0a"  # protocol name, level 4, clean, keepalive
    payload = len(client_id).to_bytes(2, "big") + client_id
    body = var_header + payload
    packet = b"\x10" + bytes([len(body)]) + body
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(packet)
            reply = s.recv(4)
            with contextlib.suppress(OSError):
                s.sendall(b"\xe0\x00")  # DISCONNECT, so the broker logs a clean close
    except OSError:
        return False
    return len(reply) >= 2 and reply[0] == 0x20


DYNSEC_PLUGIN_GLOB = "/usr/lib/*/mosquitto_dynamic_security.so"


def find_dynsec_plugin() -> str:
    """Path of Mosquitto's dynamic-security plugin (Debian's ``mosquitto`` package)."""
    found = sorted(glob.glob(DYNSEC_PLUGIN_GLOB))
    if not found:
        raise ServiceNotInstalledError(
            f"no dynamic-security plugin at {DYNSEC_PLUGIN_GLOB}; install: {APT_HINT}")
    return found[0]


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class TlsListener:
    """A second listener speaking TLS (the devices' one). ``cafile`` asks clients for a
    certificate signed by it; without it clients authenticate by password only."""

    certfile: Path
    keyfile: Path
    cafile: Path | None = None
    port: int | None = None  # None: a free port is picked


class MosquittoProcess(ServiceProcess):
    """A ``mosquitto`` broker listening on ``127.0.0.1:<port>`` only.

    ``dynsec_file``: load the dynamic-security plugin with this JSON file (anonymous clients
    are then refused on every listener). ``tls``: add a TLS listener on ``tls_port``.
    """

    name = "mosquitto"
    binary_name = "mosquitto"

    def __init__(self, port: int | None = None, *, data_dir: str | os.PathLike[str] | None = None,
                 allow_anonymous: bool = True, persistence: bool = False,
                 extra_config: Sequence[str] = (), binary: str | None = None,
                 startup_timeout: float = 10.0, die_with_parent: bool = True,
                 dynsec_file: str | os.PathLike[str] | None = None,
                 tls: TlsListener | None = None) -> None:
        super().__init__(data_dir=data_dir, binary=binary, startup_timeout=startup_timeout,
                         die_with_parent=die_with_parent, fixed_port=port is not None)
        self.port = port if port is not None else free_port()
        self.allow_anonymous = allow_anonymous and dynsec_file is None
        self.persistence = persistence
        self.extra_config = list(extra_config)
        self.dynsec_file = Path(dynsec_file) if dynsec_file is not None else None
        self.tls = tls
        self.tls_port = (tls.port or free_port()) if tls is not None else 0

    @property
    def config_path(self) -> Path:
        return self.data_dir / "mosquitto.conf"

    def config_text(self) -> str:
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
        ]
        if self.dynsec_file is not None:
            lines[1:1] = ["per_listener_settings false",
                          f"plugin {find_dynsec_plugin()}",
                          f"plugin_opt_config_file {self.dynsec_file}"]
        if self.tls is not None:
            lines += [f"listener {self.tls_port} 127.0.0.1",
                      f"certfile {self.tls.certfile}", f"keyfile {self.tls.keyfile}",
                      "tls_version tlsv1.2"]
            if self.tls.cafile is not None:
                lines += [f"cafile {self.tls.cafile}", "require_certificate true"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to `mosquitto`, who can't use our files
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.data_dir}/"]
        return "\n".join([*lines, *self.extra_config]) + "\n"

    def _pick_ports(self) -> None:
        self.port = free_port()
        if self.tls is not None and self.tls.port is None:
            self.tls_port = free_port()

    def _command(self, binary: str) -> list[str]:
        self.config_path.write_text(self.config_text())
        return [binary, "-c", str(self.config_path)]

    def _is_ready(self) -> bool:
        return mqtt_connack(self.port) and (self.tls is None or port_open(self.tls_port))


