"""A throwaway Mosquitto broker on a free 127.0.0.1 port (see ``hub.localservices``)."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Sequence
from pathlib import Path

from hub.localservices.process import ServiceProcess, free_port


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


class MosquittoProcess(ServiceProcess):
    """A ``mosquitto`` broker listening on ``127.0.0.1:<port>`` only."""

    name = "mosquitto"
    binary_name = "mosquitto"

    def __init__(self, port: int | None = None, *, data_dir: str | os.PathLike[str] | None = None,
                 allow_anonymous: bool = True, persistence: bool = False,
                 extra_config: Sequence[str] = (), binary: str | None = None,
                 startup_timeout: float = 10.0, die_with_parent: bool = True) -> None:
        super().__init__(data_dir=data_dir, binary=binary, startup_timeout=startup_timeout,
                         die_with_parent=die_with_parent, fixed_port=port is not None)
        self.port = port if port is not None else free_port()
        self.allow_anonymous = allow_anonymous
        self.persistence = persistence
        self.extra_config = list(extra_config)

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
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to `mosquitto`, who can't use our files
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.data_dir}/"]
        return "\n".join([*lines, *self.extra_config]) + "\n"

    def _pick_ports(self) -> None:
        self.port = free_port()

    def _command(self, binary: str) -> list[str]:
        self.config_path.write_text(self.config_text())
        return [binary, "-c", str(self.config_path)]

    def _is_ready(self) -> bool:
        return mqtt_connack(self.port)


