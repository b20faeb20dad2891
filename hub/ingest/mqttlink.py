"""The hub's MQTT connection: persistent session, manual ack, own reconnect schedule.

Each (re)connection gets a new client object and a new generation number. A message's mid is
only meaningful on the connection that delivered it, so acks carry the generation and an ack
for an older generation is skipped: the broker redelivers that message on the new session, and
storing it again lands on the same InfluxDB point.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from dcor_wire import topics
from dcor_wire.backoff import Backoff
from hub.settings import HubSettings

log = logging.getLogger("dcor.hub.mqtt")

# How many unacknowledged QoS 1 messages the broker may push at us (MQTT 5 Receive Maximum).
# Acks wait for the InfluxDB write, so this must cover a few batches.
RECEIVE_MAXIMUM = 20_000
SESSION_EXPIRY_S = 7 * 24 * 3600


def worker_client_id(base: str, worker_id: str) -> str:
    """The persistent-session client id of one ingest worker: ``<base>-<worker id>``.

    Workers on one shared subscription must not share a client id: the broker would throw
    one off whenever the other connects, and their queued messages would mix.
    """
    return f"{base}-{worker_id}" if worker_id else base


def ingest_subscriptions(share_group: str | None) -> list[str]:
    """What an ingest worker subscribes to.

    With a share group, telemetry is split between the workers, but presence (``state``) is
    not shared: it must be applied in the order the broker saw it, and a shared group may
    hand two state messages of one device to different workers. Every worker takes every
    state message, in order, and the registry ends on the newest; shared subscriptions also
    get no retained messages on brokers that follow MQTT 5 to the letter (EMQX), so only a
    plain subscription sees each device's last presence after a restart.
    """
    if not share_group:
        return topics.hub_subscriptions(None)
    state = f"{topics.ROOT}/+/{topics.STATE}"
    shared = [f for f in topics.hub_subscriptions(share_group) if not f.endswith(state)]
    return [state, *shared]


class HubMqtt:
    def __init__(self, settings: HubSettings, subscriptions: list[str],
                 on_message: Callable[[int, mqtt.MQTTMessage], None],
                 client_id: str) -> None:
        self.settings = settings
        self.subscriptions = subscriptions
        self._on_message_cb = on_message
        self.client_id = client_id
        self._stop = threading.Event()
        self._client: mqtt.Client | None = None
        self._gen = 0
        self._connected = threading.Event()
        self._backoff = Backoff(0.5, 5.0)
        self._thread: threading.Thread | None = None
        self.reconnects = 0
        self._lock = threading.Lock()

    @property
    def generation(self) -> int:
        return self._gen

    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="dcor.ingest.mqtt", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        if self._client is not None:
            with contextlib.suppress(OSError, ValueError):
                self._client.disconnect()

    def ack(self, gen: int, mid: int) -> None:
        with self._lock:
            if gen != self._gen or self._client is None or not self._connected.is_set():
                return
            self._client.ack(mid, 1)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        with self._lock:
            client = self._client
            if client is None or not self._connected.is_set():
                return False
            info = client.publish(topic, payload, qos=qos, retain=retain)
            return info.rc == mqtt.MQTT_ERR_SUCCESS

    def _new_client(self) -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                        protocol=mqtt.MQTTv5, manual_ack=True)
        c.max_inflight_messages_set(1000)
        s = self.settings
        if s.mqtt_username:
            c.username_pw_set(s.mqtt_username, s.mqtt_password_value() or None)
        if s.mqtt_tls_ca_file is not None:
            # Certificate and host name checked; a TLS failure never falls back to plaintext.
            c.tls_set(ca_certs=str(s.mqtt_tls_ca_file), cert_reqs=ssl.CERT_REQUIRED,
                      tls_version=ssl.PROTOCOL_TLS_CLIENT)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        gen = self._gen

        def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
            try:
                self._on_message_cb(gen, msg)
            except Exception:  # never let one message stop the network loop
                log.exception("ingest handler failed on %s", msg.topic)

        c.on_message = on_message
        return c

    def _loop(self) -> None:
        first = True
        while not self._stop.is_set():
            if not first and self._stop.wait(self._backoff.next_delay()):
                return
            first = False
            with self._lock:
                self._gen += 1
                client = self._new_client()
                self._client = client
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            props.ReceiveMaximum = RECEIVE_MAXIMUM
            try:
                client.connect(self.settings.mqtt_host, self.settings.mqtt_port,
                               keepalive=self.settings.mqtt_keepalive_s, clean_start=False,
                               properties=props)
            except OSError as exc:
                log.warning("broker %s:%s unreachable: %s", self.settings.mqtt_host,
                            self.settings.mqtt_port, exc)
                continue
            while not self._stop.is_set():
                if client.loop(timeout=0.2) != mqtt.MQTT_ERR_SUCCESS:
                    break
            self._connected.clear()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the hub: %s", reason)
            client.disconnect()
            return
        for f in self.subscriptions:
            client.subscribe(f, qos=1)
        if self.reconnects or self._gen > 1:
            self.reconnects += 1
        self._backoff.reset()
        self._connected.set()
        log.info("hub connected to broker (generation %d)", self._gen)

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connected.clear()
        log.warning("hub disconnected from broker: %s", reason)
