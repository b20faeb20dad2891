"""The hub's MQTT connection: persistent session, manual ack, own reconnect schedule.

It speaks MQTT 5 itself (``hub.ingest.mqttwire``) over one socket owned by one thread: every
read of the socket is split into packets in one pass and handed over as one list, and the
PUBACKs of a stored batch leave in one write. (A general client library costs more per
message than validating and storing it.)

Each (re)connection gets a new generation number. A message's packet id is only meaningful on
the connection that delivered it, so acks carry the generation and an ack for an older one is
skipped: the broker redelivers that message on the new session, and storing it again lands on
the same InfluxDB point.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from dcor_wire import topics
from dcor_wire.backoff import Backoff
from hub.ingest import mqttwire
from hub.ingest.mqttwire import Message, Packet, ProtocolError
from hub.settings import HubSettings

log = logging.getLogger("dcor.hub.mqtt")

# How many unacknowledged QoS 1 messages the broker may push at us (MQTT 5 Receive Maximum).
# Acks wait for the InfluxDB write, so this must cover a few batches.
RECEIVE_MAXIMUM = 20_000
SESSION_EXPIRY_S = 7 * 24 * 3600
CONNECT_TIMEOUT_S = 10.0
READ_SIZE = 256 * 1024
SUBSCRIBE_PACKET_ID = 1

OnMessages = Callable[[int, list[Message]], None]


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


class ConnectRefused(ConnectionError):
    """The broker answered CONNECT with a failure reason code."""


@dataclass
class _Connection:
    """One connection's socket and protocol state (owned by the network thread)."""

    sock: socket.socket
    keepalive_s: float
    send_quota: int  # the broker's Receive Maximum for our QoS 1 publishes
    rest: bytes = b""  # the start of a packet not yet complete
    out: bytearray = field(default_factory=bytearray)
    inflight: set[int] = field(default_factory=set)
    held: deque[tuple[str, bytes, bool]] = field(default_factory=deque)
    next_id: int = SUBSCRIBE_PACKET_ID
    last_in: float = field(default_factory=time.monotonic)
    last_out: float = field(default_factory=time.monotonic)
    ping_at: float | None = None

    def new_packet_id(self) -> int:
        while True:
            self.next_id = self.next_id % 65_535 + 1
            if self.next_id not in self.inflight and self.next_id != SUBSCRIBE_PACKET_ID:
                return self.next_id

    def tls_pending(self) -> int:
        return self.sock.pending() if isinstance(self.sock, ssl.SSLSocket) else 0


class HubMqtt:
    def __init__(self, settings: HubSettings, subscriptions: list[str],
                 on_messages: OnMessages, client_id: str) -> None:
        self.settings = settings
        self.subscriptions = subscriptions
        self._on_messages = on_messages
        self.client_id = client_id
        self._stop = threading.Event()
        self._gen = 0
        self._connected = threading.Event()
        self._backoff = Backoff(0.5, 5.0)
        self._thread: threading.Thread | None = None
        self._conn: _Connection | None = None  # the current connection, for live_generation
        self.reconnects = 0
        self._lock = threading.Lock()
        self._acks: list[tuple[int, int]] = []
        self._publishes: list[tuple[str, bytes, bool]] = []
        # Other threads wake the network loop out of select() through this pair (made by
        # start, closed by stop).
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None

    @property
    def generation(self) -> int:
        return self._gen

    def live_generation(self) -> int:
        """The generation whose acks can still reach the broker, or 0 when none can: not
        connected, or silent for longer than the broker waits (see ``_run``; after a freeze
        of the whole process the writer may wake before the network thread notices)."""
        conn = self._conn
        if conn is None or not self._connected.is_set() or \
                time.monotonic() - conn.last_out > conn.keepalive_s * 1.5:
            return 0
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
        """PUBACK these (generation, packet id) pairs; pairs of an older connection are
        skipped (the broker delivers those messages again on the new one), and id 0 (a QoS 0
        message) needs none."""
        with self._lock:
            self._acks.extend(acks)
        self._wake()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        """Queue a QoS 1 message for the network thread; False when not connected now."""
        if not self._connected.is_set():
            return False
        with self._lock:
            self._publishes.append((topic, payload, retain))
        self._wake()
        return True

    def _wake(self) -> None:
        if self._wake_w is None:
            return
        with contextlib.suppress(OSError):  # full (a wake-up is pending anyway) or closed
            self._wake_w.send(b"x")

    # --- connection lifecycle -------------------------------------------------------------

    def _loop(self) -> None:
        first = True
        while not self._stop.is_set():
            if not first and self._stop.wait(self._backoff.next_delay()):
                return
            first = False
            with self._lock:
                self._gen += 1
            try:
                conn, early = self._open()
            except (OSError, ProtocolError) as exc:
                log.warning("broker %s:%s: %s", self.settings.mqtt_host,
                            self.settings.mqtt_port, exc)
                continue
            # The connection first, then the flag: whoever waits on the flag reads _conn.
            self._conn = conn
            self._connected.set()
            try:
                self._run(conn, early)
                if self._stop.is_set():
                    # The acks of the last batches, then DISCONNECT (the session stays).
                    self._send_queued(conn)
                    conn.out += mqttwire.DISCONNECT
                    with contextlib.suppress(OSError):
                        conn.sock.settimeout(2.0)
                        conn.sock.sendall(conn.out)
            finally:
                self._connected.clear()
                self._conn = None
                with self._lock:
                    self._acks.clear()  # ids of this connection mean nothing on the next
                    self._publishes.clear()
                with contextlib.suppress(OSError):
                    conn.sock.close()

    def _open(self) -> tuple[_Connection, list[Message | Packet]]:
        """Connect, CONNECT, CONNACK (blocking, bounded), SUBSCRIBE queued. Also returns the
        packets that came in the same reads as the CONNACK: a persistent session's queued
        messages follow it at once."""
        s = self.settings
        raw = socket.create_connection((s.mqtt_host, s.mqtt_port), timeout=CONNECT_TIMEOUT_S)
        sock: socket.socket = raw
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if s.mqtt_tls_ca_file is not None:
                # Certificate and host name checked; a TLS failure never falls back to
                # plaintext.
                ctx = ssl.create_default_context(cafile=str(s.mqtt_tls_ca_file))
                sock = ctx.wrap_socket(raw, server_hostname=s.mqtt_host)
            sock.sendall(mqttwire.connect(
                self.client_id, s.mqtt_keepalive_s, clean_start=False,
                session_expiry_s=SESSION_EXPIRY_S, receive_maximum=RECEIVE_MAXIMUM,
                username=s.mqtt_username or None, password=s.mqtt_password_value() or None))
            buf = b""
            deadline = time.monotonic() + CONNECT_TIMEOUT_S
            while True:
                sock.settimeout(max(0.1, deadline - time.monotonic()))
                chunk = sock.recv(READ_SIZE)
                if not chunk:
                    raise ConnectionError("broker closed the connection before CONNACK")
                buf += chunk
                packets, pos = mqttwire.split(buf)
                if packets:
                    break
            first = packets[0]
            if not isinstance(first, Packet):
                raise ProtocolError("PUBLISH before CONNACK")
            ack = mqttwire.connack(first)
            if ack.reason >= 0x80:
                raise ConnectRefused(f"broker refused the hub: reason 0x{ack.reason:02x} "
                                     f"{ack.properties.get(mqttwire.REASON_STRING, '')}")
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        keepalive = ack.properties.get(mqttwire.SERVER_KEEP_ALIVE, s.mqtt_keepalive_s)
        quota = ack.properties.get(mqttwire.RECEIVE_MAXIMUM, 65_535)
        conn = _Connection(sock, float(keepalive) if isinstance(keepalive, int) else 30.0,
                           quota if isinstance(quota, int) else 65_535, rest=buf[pos:])
        conn.out += mqttwire.subscribe(SUBSCRIBE_PACKET_ID, self.subscriptions, qos=1)
        if self.reconnects or self._gen > 1:
            self.reconnects += 1
        self._backoff.reset()
        log.info("hub connected to broker (generation %d, session %s)", self._gen,
                 "resumed" if ack.session_present else "new")
        return conn, packets[1:]

    def _run(self, conn: _Connection, early: list[Message | Packet]) -> None:
        """One connection's loop: read everything there is, hand it over, write once per
        turn (acks and publishes from other threads are queued)."""
        wake_r = self._wake_r
        assert wake_r is not None  # made by start()
        if early and not self._handle(conn, early):
            return
        next_misc = 0.0
        try:
            while not self._stop.is_set():
                # Checked before any write too: a write after a freeze would make the
                # connection look alive again.
                if self._dropped_by_broker(conn):
                    return
                self._send_queued(conn)
                self._flush(conn)
                readable, _, _ = select.select(
                    [conn.sock, wake_r], [conn.sock] if conn.out else [], [],
                    0.0 if conn.tls_pending() else 0.2)
                if wake_r in readable:
                    with contextlib.suppress(BlockingIOError):
                        wake_r.recv(4096)
                if self._dropped_by_broker(conn):
                    return
                now = time.monotonic()
                if (conn.sock in readable or conn.tls_pending()) and not self._read(conn):
                    return
                if now >= next_misc:
                    next_misc = now + 0.5
                    if not self._keepalive(conn, now):
                        return
        except (OSError, ProtocolError) as exc:
            log.warning("hub lost the broker: %s", exc)

    @staticmethod
    def _dropped_by_broker(conn: _Connection) -> bool:
        """Silent for 1.5 x keepalive (this process was stopped, or the broker takes
        nothing): the broker has dropped this connection (MQTT 5, 3.1.2.10). What it still
        holds for us comes again on the session, so reading it here would only store every
        in-flight message twice."""
        silent = time.monotonic() - conn.last_out
        if silent <= conn.keepalive_s * 1.5:
            return False
        log.warning("the hub sent nothing for %.0f s: leaving this connection unread, the "
                    "session redelivers", silent)
        return True

    def _read(self, conn: _Connection) -> bool:
        """Everything the socket has now; False when the connection is over."""
        while True:
            try:
                chunk = conn.sock.recv(READ_SIZE)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return True
            if not chunk:
                log.warning("broker closed the hub's connection")
                return False
            conn.last_in = time.monotonic()
            conn.ping_at = None
            data = conn.rest + chunk if conn.rest else chunk
            packets, pos = mqttwire.split(data)
            conn.rest = data[pos:]
            if packets and not self._handle(conn, packets):
                return False
            if len(chunk) < READ_SIZE and not conn.tls_pending():
                return True

    def _handle(self, conn: _Connection, packets: list[Message | Packet]) -> bool:
        messages = [p for p in packets if type(p) is Message]
        if messages:
            try:
                self._on_messages(self._gen, messages)
            except Exception:  # never let one batch stop the network loop
                log.exception("ingest handler failed on %d messages", len(messages))
        if len(messages) == len(packets):
            return True
        for p in packets:
            if not isinstance(p, Packet):
                continue
            if p.kind == mqttwire.PUBACK:
                conn.inflight.discard(mqttwire.packet_id(p))
                if mqttwire.ack_reason(p) >= 0x80:
                    log.warning("broker refused an ack publish: reason 0x%02x",
                                mqttwire.ack_reason(p))
            elif p.kind == mqttwire.SUBACK:
                codes = mqttwire.reason_codes(p)
                for f, code in zip(self.subscriptions, codes, strict=False):
                    if code >= 0x80:
                        log.error("broker refused the subscription %s: reason 0x%02x",
                                  f, code)
            elif p.kind == mqttwire.DISCONNECT_T:
                code, text = mqttwire.disconnect_reason(p)
                log.warning("broker disconnected the hub: reason 0x%02x %s", code, text)
                return False
            elif p.kind != mqttwire.PINGRESP:
                log.warning("unexpected MQTT packet type %d from the broker", p.kind)
        return True

    def _keepalive(self, conn: _Connection, now: float) -> bool:
        """PINGREQ when the link has been quiet; over when the broker does not answer."""
        if conn.ping_at is not None:
            if now - conn.ping_at > conn.keepalive_s:
                log.warning("broker did not answer a ping in %.0f s", conn.keepalive_s)
                return False
        elif now - conn.last_out >= conn.keepalive_s * 0.75 or \
                now - conn.last_in >= conn.keepalive_s:
            conn.out += mqttwire.PINGREQ
            conn.ping_at = now
        return True

    def _send_queued(self, conn: _Connection) -> None:
        with self._lock:
            acks, self._acks = self._acks, []
            pubs, self._publishes = self._publishes, []
            gen = self._gen
        if acks:
            puback = mqttwire.puback
            conn.out += b"".join([puback(mid) for g, mid in acks if g == gen and mid])
        conn.held.extend(pubs)
        while conn.held and len(conn.inflight) < conn.send_quota:
            topic, payload, retain = conn.held.popleft()
            pid = conn.new_packet_id()
            conn.inflight.add(pid)
            conn.out += mqttwire.publish(topic, payload, pid, retain)

    def _flush(self, conn: _Connection) -> None:
        """Write what the kernel takes now; the rest waits for the socket to be writable."""
        while conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return
            del conn.out[:sent]
            conn.last_out = time.monotonic()
