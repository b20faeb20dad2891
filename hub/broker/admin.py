"""The hub's admin client of the dynamic-security plugin (``$CONTROL/dynamic-security/v1``).

Each call connects, sends one batch of commands, waits for their answers (matched by
correlation data) and disconnects: enrollments are rare, and a short-lived connection has no
state to go stale. Several web workers may call at once; each uses its own client id.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hub.broker import acl

RESPONSE_TOPIC = f"{acl.CONTROL_TOPIC}/response"


class DynsecError(RuntimeError):
    """The broker refused a command, or could not be asked; ``error`` holds its words."""

    def __init__(self, message: str, *, command: str = "", error: str = "") -> None:
        super().__init__(message)
        self.command = command
        self.error = error


@dataclass(frozen=True)
class BrokerEndpoint:
    """How the hub reaches the broker as its admin client."""

    host: str
    port: int
    username: str
    password: str
    ca_file: Path | None = None  # TLS when set (hostname checked against the certificate)

    def __repr__(self) -> str:  # never print the password
        return f"BrokerEndpoint({self.host}:{self.port}, user {self.username!r})"


class DynsecAdmin:
    def __init__(self, endpoint: BrokerEndpoint, timeout: float = 5.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._mono = monotonic

    # --- device operations ----------------------------------------------------------------

    def create_device(self, device_id: str, password: str) -> None:
        """Client + role of a new box; fails (``DynsecError``) if the client exists."""
        self.execute(acl.create_device_commands(device_id, password))

    def set_device_password(self, device_id: str, password: str) -> None:
        """New credentials for a replaced box; the old box's connection is dropped."""
        self.execute([
            {"command": "setClientPassword", "username": device_id, "password": password},
            # Disabling kicks any live connection made with the old password.
            {"command": "disableClient", "username": device_id},
            {"command": "enableClient", "username": device_id},
        ])

    def delete_device(self, device_id: str) -> None:
        """Revoke: the broker disconnects the client now and refuses it afterwards."""
        self.execute(acl.delete_device_commands(device_id),
                     tolerate=("Client not found", "Role not found"))

    def get_client(self, username: str) -> dict[str, Any] | None:
        answers = self.execute([{"command": "getClient", "username": username}],
                               tolerate=("Client not found",))
        data = answers[0].get("data") or {}
        client: dict[str, Any] | None = data.get("client")
        return client

    # --- transport ------------------------------------------------------------------------

    def execute(self, commands: Sequence[dict[str, Any]],
                tolerate: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Send ``commands`` in one message; return the answers in order.

        Raises ``DynsecError`` on the first answer carrying an error not in ``tolerate``.
        """
        nonce = secrets.token_hex(6)
        tagged = [{**c, "correlationData": f"{nonce}-{i}"} for i, c in enumerate(commands)]
        answers: dict[str, dict[str, Any]] = {}
        done = threading.Event()
        subscribed = threading.Event()
        connected: list[Any] = []

        def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            connected.append(reason)
            if reason.is_failure:
                done.set()
                return
            client.subscribe(RESPONSE_TOPIC, qos=1)

        def on_subscribe(_c: Any, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
            if any(r.is_failure for r in reasons):
                connected.append("subscription refused")
                done.set()
                return
            subscribed.set()

        def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
            try:
                body = json.loads(msg.payload)
            except ValueError:
                return
            for r in body.get("responses", []):
                if str(r.get("correlationData", "")).startswith(nonce + "-"):
                    answers[r["correlationData"]] = r
            if len(answers) == len(tagged):
                done.set()

        client = mqtt.Client(CallbackAPIVersion.VERSION2,
                             client_id=f"dcor-hub-admin-{nonce}", protocol=mqtt.MQTTv5)
        client.username_pw_set(self.endpoint.username, self.endpoint.password)
        if self.endpoint.ca_file is not None:
            client.tls_set(ca_certs=str(self.endpoint.ca_file),
                           cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        try:
            client.connect(self.endpoint.host, self.endpoint.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            raise DynsecError(f"broker {self.endpoint.host}:{self.endpoint.port} "
                              f"unreachable: {exc}") from exc
        client.loop_start()
        try:
            deadline = self._mono() + self.timeout
            if not self._wait(subscribed, done, deadline):
                why = connected[0] if connected else "no answer"
                raise DynsecError(f"broker admin login failed: {why}")
            client.publish(acl.CONTROL_TOPIC, json.dumps({"commands": tagged}), qos=1)
            if not done.wait(max(0.0, deadline - self._mono())):
                raise DynsecError(f"the broker did not answer {len(tagged)} dynamic-security "
                                  f"command(s) within {self.timeout:.0f}s")
        finally:
            client.disconnect()
            client.loop_stop()
        ordered = [answers[c["correlationData"]] for c in tagged]
        for cmd, answer in zip(tagged, ordered, strict=True):
            error = answer.get("error")
            if error and error not in tolerate:
                raise DynsecError(f"broker refused {cmd['command']}: {error}",
                                  command=cmd["command"], error=str(error))
        return ordered

    def _wait(self, ok: threading.Event, failed: threading.Event, deadline: float) -> bool:
        while self._mono() < deadline:
            if ok.wait(0.02):
                return True
            if failed.is_set():
                return False
        return ok.is_set()
