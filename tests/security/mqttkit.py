"""A small synchronous MQTT 5 test client that records every reason code."""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hub.localservices import wait_until


class Probe:
    def __init__(self, port: int, username: str | None, password: str | None, *,
                 ca: Path | None = None, client_id: str | None = None) -> None:
        self.connack: Any = None
        self.disconnected: Any = None
        self.disconnected_at: float | None = None
        self.pubacks: dict[int, Any] = {}
        self.subacks: dict[int, list[Any]] = {}
        self.messages: list[mqtt.MQTTMessage] = []
        self._connected = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2,
                        client_id=client_id or f"probe-{uuid.uuid4().hex[:8]}",
                        protocol=mqtt.MQTTv5)
        if username is not None:
            c.username_pw_set(username, password)
        if ca is not None:
            c.tls_set(ca_certs=str(ca), cert_reqs=ssl.CERT_REQUIRED,
                      tls_version=ssl.PROTOCOL_TLS_CLIENT)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = lambda _c, _u, mid, reason, _p: self.pubacks.__setitem__(mid, reason)
        c.on_subscribe = lambda _c, _u, mid, reasons, _p: self.subacks.__setitem__(
            mid, list(reasons))
        c.on_message = lambda _c, _u, msg: self.messages.append(msg)
        self.client = c
        c.connect("127.0.0.1", port, keepalive=10)
        c.loop_start()
        self._connected.wait(5)

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connack = reason
        self._connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.disconnected = reason
        self.disconnected_at = time.monotonic()

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def publish(self, topic: str, payload: bytes = b"{}", retain: bool = False) -> int:
        """The PUBACK reason code's value."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        wait_until(lambda: info.mid in self.pubacks, 5, message=f"PUBACK for {topic}")
        return int(self.pubacks[info.mid].value)

    def subscribe(self, topic_filter: str) -> int:
        """The SUBACK reason code's value."""
        _rc, mid = self.client.subscribe(topic_filter, qos=1)
        wait_until(lambda: mid in self.subacks, 5, message=f"SUBACK for {topic_filter}")
        return int(self.subacks[mid][0].value)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
