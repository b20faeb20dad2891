"""The alert evaluator's own MQTT connection, for publishing notifications to other systems.

A message counts as sent only when the broker acknowledged it (MQTT 5 PUBACK) with a success
reason code; "no matching subscribers" is a success here (nobody listens right now, the
broker took it). The connection is the hub's (host, port, user from the settings) under its
own client id with a clean session: it subscribes to nothing, so there is nothing to keep.

Reconnect: capped, jittered backoff on a monotonic clock (``dcor_wire.backoff``: 0.5 s
doubling to 10 s), sleeping in short slices so ``stop`` is quick.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from dcor_wire.backoff import Backoff
from hub.alerts.notify import MqttMessage
from hub.settings import HubSettings

log = logging.getLogger("dcor.hub.alerts.mqtt")

_NO_MATCHING_SUBSCRIBERS = 16


class AlertPublisher:
    def __init__(self, settings: HubSettings, client_id: str) -> None:
        self.settings = settings
        self.client_id = client_id
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._client: mqtt.Client | None = None
        self._acks: dict[int, int] = {}  # mid -> PUBACK reason code value
        self._cond = threading.Condition()
        self._backoff = Backoff(0.5, 10.0)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="dcor.alerts.mqtt",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        client = self._client
        if client is not None:
            with contextlib.suppress(OSError, ValueError):
                client.disconnect()

    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def publish(self, msg: MqttMessage, timeout_s: float = 5.0) -> tuple[bool, str]:
        """Publish and wait for the broker's acknowledgement: (ok, error)."""
        client = self._client
        if client is None or not self._connected.is_set():
            return False, "not connected to the broker"
        info = client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False, f"publish refused locally: {mqtt.error_string(info.rc)}"
        if msg.qos == 0:
            return True, ""
        with self._cond:
            got = self._cond.wait_for(lambda: info.mid in self._acks or self._stop.is_set(),
                                      timeout=timeout_s)
            code = self._acks.pop(info.mid, None)
        if not got or code is None:
            return False, f"no PUBACK within {timeout_s:g} s"
        if code >= 0x80:
            return False, f"broker refused the message (reason code {code})"
        return True, ""

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        value = getattr(reason, "value", 0)
        with self._cond:
            self._acks[mid] = int(value) if value != _NO_MATCHING_SUBSCRIBERS else 0
            if len(self._acks) > 10_000:  # acks nobody waits for any more (timed out)
                self._acks.clear()
            self._cond.notify_all()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the alert publisher: %s", reason)
            client.disconnect()
            return
        self._backoff.reset()
        self._connected.set()
        log.info("alert publisher connected to %s:%s", self.settings.mqtt_host,
                 self.settings.mqtt_port)

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if self._connected.is_set():
            log.warning("alert publisher disconnected: %s", reason)
        self._connected.clear()

    def _new_client(self) -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                        protocol=mqtt.MQTTv5)
        s = self.settings
        if s.mqtt_username:
            c.username_pw_set(s.mqtt_username, s.mqtt_password.get_secret_value() or None)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        return c

    def _loop(self) -> None:
        first = True
        while not self._stop.is_set():
            if not first and self._stop.wait(self._backoff.next_delay()):
                return
            first = False
            client = self._new_client()
            self._client = client
            try:
                client.connect(self.settings.mqtt_host, self.settings.mqtt_port,
                               keepalive=self.settings.mqtt_keepalive_s, clean_start=True)
            except OSError as exc:
                log.warning("broker %s:%s unreachable for alerts: %s", self.settings.mqtt_host,
                            self.settings.mqtt_port, exc)
                continue
            while not self._stop.is_set():
                if client.loop(timeout=0.2) != mqtt.MQTT_ERR_SUCCESS:
                    break
            self._connected.clear()
            with self._cond:
                self._cond.notify_all()
