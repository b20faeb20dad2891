"""The hub's MQTT connection: persistent session, manual ack, own reconnect schedule.

Each (re)connection gets a new client object and a new generation number. A message's mid is
only meaningful on the connection that delivered it, so acks carry the generation and an ack
for an older generation is skipped: the broker redelivers that message on the new session, and
storing it again lands on the same InfluxDB point.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, cast

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from dcor_wire import topics
from dcor_wire.backoff import Backoff
from hub.ingest.bufsock import BufferedSocket
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
        self._acks: list[tuple[int, int]] = []
        self._publishes: list[tuple[str, bytes, int, bool]] = []
        # Other threads wake the network loop out of select() through this pair (made by
        # start, closed by stop).
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None

    @property
    def generation(self) -> int:
        return self._gen

    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def start(self) -> None:
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread = threading.Thread(target=self._loop, name="dcor.ingest.mqtt", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Leave the loop, which sends DISCONNECT on its way out (the session stays)."""
        self._stop.set()
        self._wake()
        if self._thread:
            self._thread.join(5)
        if self._thread is None or not self._thread.is_alive():
            for s in (self._wake_r, self._wake_w):
                if s is not None:
                    s.close()

    def ack(self, gen: int, mid: int) -> None:
        self.ack_batch([(gen, mid)])

    def ack_batch(self, acks: Iterable[tuple[int, int]]) -> None:
        """PUBACK these (generation, mid) pairs; pairs of an older connection are skipped
        (the broker delivers those messages again on the new one)."""
        with self._lock:
            self._acks.extend(acks)
        self._wake()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        """Queue a message for the network thread; False when not connected now."""
        if not self._connected.is_set():
            return False
        with self._lock:
            self._publishes.append((topic, payload, qos, retain))
        self._wake()
        return True

    def _wake(self) -> None:
        if self._wake_w is None:
            return
        with contextlib.suppress(OSError):  # full (a wake-up is pending anyway) or closed
            self._wake_w.send(b"x")

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
            sock = client.socket()
            if sock is None:
                continue
            buffered = BufferedSocket(cast(socket.socket, sock))
            client._sock = buffered  # see hub.ingest.bufsock: paho reads and writes through it
            try:
                self._run(client, buffered)
                if self._stop.is_set():
                    # The acks of the last batches, then DISCONNECT (the session stays).
                    self._send_queued(client)
                    with contextlib.suppress(OSError, ValueError):
                        client.disconnect()
                        client.loop_write()
                        buffered.flush()
            finally:
                self._connected.clear()
                with self._lock:
                    self._acks.clear()  # mids of this connection mean nothing on the next
                    self._publishes.clear()
            if self._stop.is_set():
                return

    def _run(self, client: mqtt.Client, sock: BufferedSocket) -> None:
        """One connection's loop: reads in large chunks, writes once per turn, and runs
        every paho call in this thread (acks and publishes from others are queued)."""
        next_misc = 0.0
        while not self._stop.is_set():
            self._send_queued(client)
            if client.want_write() and client.loop_write() != mqtt.MQTT_ERR_SUCCESS:
                return
            wake_r = self._wake_r
            assert wake_r is not None  # made by start()
            try:
                sock.flush()
                timeout = 0.0 if sock.pending() else 0.2
                readable, _, _ = select.select(
                    [sock.raw, wake_r], [sock.raw] if sock.wants_flush() else [], [], timeout)
            except (OSError, ValueError):
                return
            if wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    wake_r.recv(4096)
            if (sock.raw in readable or sock.pending()) and not self._read_all(client, sock):
                return
            if time.monotonic() >= next_misc:
                next_misc = time.monotonic() + 0.5
                if client.loop_misc() != mqtt.MQTT_ERR_SUCCESS:
                    return

    @staticmethod
    def _read_all(client: mqtt.Client, sock: BufferedSocket) -> bool:
        """Every packet already read from the kernel (at least one read attempt)."""
        while True:
            if client.loop_read() != mqtt.MQTT_ERR_SUCCESS:
                return False
            if not sock.pending():
                return True

    def _send_queued(self, client: mqtt.Client) -> None:
        with self._lock:
            acks, self._acks = self._acks, []
            pubs, self._publishes = self._publishes, []
            gen = self._gen
        if not self._connected.is_set():
            return
        for ack_gen, mid in acks:
            if ack_gen == gen:
                client.ack(mid, 1)
        for topic, payload, qos, retain in pubs:
            client.publish(topic, payload, qos=qos, retain=retain)

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
