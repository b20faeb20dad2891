"""Publishing desired documents: retained, QoS 1, with the hub's own broker settings.

A document counts as published only when the broker acknowledged it (PUBACK with a success
reason code); the engine marks the row then, and publishes again whatever is not marked, so a
broker outage delays a push and never loses it.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from dcor_wire import topics
from hub.settings import HubSettings

log = logging.getLogger("dcor.hub.rollout.mqtt")


class DesiredPublisher:
    def __init__(self, settings: HubSettings, client_id: str | None = None) -> None:
        self.settings = settings
        self.client_id = client_id or f"{settings.mqtt_client_id}-rollout"
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self._acked: dict[int, bool] = {}
        self._client = self._new_client()

    def _new_client(self) -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                        protocol=mqtt.MQTTv5)
        s = self.settings
        if s.mqtt_username:
            c.username_pw_set(s.mqtt_username, s.mqtt_password_value() or None)
        if s.mqtt_tls_ca_file is not None:
            c.tls_set(ca_certs=str(s.mqtt_tls_ca_file), cert_reqs=ssl.CERT_REQUIRED,
                      tls_version=ssl.PROTOCOL_TLS_CLIENT)
        c.max_inflight_messages_set(200)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(1, 10)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        return c

    def start(self) -> None:
        self._client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port,
                                   keepalive=self.settings.mqtt_keepalive_s)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the rollout publisher: %s", reason)
            return
        self._connected.set()
        log.info("rollout publisher connected to %s:%s", self.settings.mqtt_host,
                 self.settings.mqtt_port)

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connected.clear()
        log.warning("rollout publisher disconnected: %s", reason)

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        with self._lock:
            self._acked[mid] = not reason.is_failure

    def publish(self, docs: Sequence[tuple[str, bytes]], timeout: float = 10.0) -> list[bool]:
        """Publish (device id, envelope) pairs retained; True for each one the broker took."""
        if not self._connected.is_set():
            return [False] * len(docs)
        mids: list[int | None] = []
        for device_id, body in docs:
            info = self._client.publish(topics.device_topic(device_id, topics.CONFIG_DESIRED),
                                        body, qos=1, retain=True)
            mids.append(info.mid if info.rc == mqtt.MQTT_ERR_SUCCESS else None)
        deadline = time.monotonic() + timeout
        pending = {m for m in mids if m is not None}
        while pending and time.monotonic() < deadline and self._connected.is_set():
            with self._lock:
                pending -= set(self._acked)
            if pending:
                time.sleep(0.01)
        with self._lock:
            result = [m is not None and self._acked.pop(m, False) for m in mids]
        return result
