"""MQTT 5 uplink: presence, the send window over the outbox, and the hub's end-to-end ack.

Two named threads:
- ``dcor.mqtt`` owns the connection: it connects, runs the network loop and, when the link
  drops, waits a capped, jittered backoff (monotonic clock) and connects again with a fresh
  client object, so nothing half-sent by an old connection is replayed behind our back. The
  agent's first uplink after process start first waits ``first_connect_delay`` (boxes that
  boot together must not connect together).
- ``dcor.uplink`` moves outbox rows into the window. A PUBACK with a success reason code only
  frees a window slot; the row stays in the outbox until the hub's ``ack`` names its seq.
  Rows the hub has not acknowledged after ``ack_timeout`` are sent again.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from dcor_wire import payloads, topics
from dcor_wire.backoff import Backoff
from edge_agent.config import AgentConfig
from edge_agent.mqtt_tls import MqttClient, tls_context
from edge_agent.outbox import Outbox, Row
from edge_agent.pacing import LinkPacer

log = logging.getLogger("dcor.agent.uplink")

NO_MATCHING_SUBSCRIBERS = 0x10  # MQTT 5 PUBACK reason code: accepted, but nobody listens
NO_SUBSCRIBER_RETRY_S = 2.0
# The window the first retry after a lost connection is drawn from (the backoff ceiling at or
# above it, capped by reconnect_max: 30 s by default). With a 16 s window, 50 boxes on a
# flapping link put more than 20 % of the fleet into one second in about 5 % of 3-minute runs
# (measured 22 % once); with 30 s, about 0.5 %.
RECONNECT_SPREAD_S = 24.0
# After a reconnect into a kept session, older rows wait this long (plus two round trips) for
# the acks the broker queued for us while we were away.
ACK_GRACE_S = 1.5
HELLO_WAIT_S = 10.0
FIRST_ACK_GRACE_S = 0.5
SILENT_HUB_FACTOR = 8.0


@dataclass
class UplinkStats:
    connects: int = 0
    reconnects: int = 0
    published: int = 0
    puback_failures: int = 0
    no_subscribers: int = 0
    acked_rows: int = 0
    resent: int = 0
    last_error: str = ""


@dataclass
class _Window:
    """Send bookkeeping for the current connection (reset on every new connection)."""

    by_mid: dict[int, int] = field(default_factory=dict)  # mid -> seq, waiting for PUBACK
    sizes: dict[int, tuple[int, float]] = field(default_factory=dict)  # mid -> bytes, sent at
    inflight_bytes: int = 0
    awaiting: dict[int, float] = field(default_factory=dict)  # seq -> mono time PUBACKed
    retry_soon: set[int] = field(default_factory=set)  # the broker did not deliver these
    floors: dict[int, int] = field(default_factory=dict)  # class -> highest seq handed out
    early_pubacks: dict[int, Any] = field(default_factory=dict)  # mid -> reason
    connected_at_ms: int = 0
    # With the session kept, the broker first hands over the acks queued while we were away:
    # rows sent before this connection wait for them instead of going out twice.
    backlog_after: float = 0.0  # monotonic
    # The hub answers a box's "online" with its recent acks: the backlog waits for that first
    # ack (plus a short grace), no longer than HELLO_WAIT_S, so rows the hub stored before a
    # broker crash or a restart are not sent twice.
    min_hold_until: float = 0.0
    first_ack_seen: bool = False


def first_connect_delay(cfg: AgentConfig, rand: Callable[[], float] = random.random) -> float:
    """Seconds the first connection after process start waits: uniform(0,
    ``mqtt.first_connect_spread``).

    When a kelurahan's power comes back every box boots in the same second; without this they
    would all connect in it too (the reconnect backoff only spreads connections that were
    lost). Spread over N seconds, about 1/N of them connect in any one second.
    """
    return rand() * cfg.mqtt.first_connect_spread


class Uplink:
    def __init__(self, cfg: AgentConfig, outbox: Outbox,
                 state_payload: Callable[[bool], bytes],
                 on_command: Callable[[str, mqtt.MQTTMessage], None] | None = None,
                 on_config: Callable[[bytes], None] | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 client_id: str | None = None, start_delay: float = 0.0) -> None:
        """``start_delay``: seconds before the first connection (the agent passes
        ``first_connect_delay`` at process start only; an uplink rebuilt for new broker
        settings connects at once, within the configuration trial's grace period)."""
        self.cfg = cfg
        self.start_delay = max(0.0, start_delay)
        self.client_id = client_id or cfg.device_id
        # Built now: a bad CA file fails the start, and TLS can never be silently skipped.
        self._tls = tls_context(cfg.mqtt.tls) if cfg.mqtt.tls is not None else None
        self.outbox = outbox
        self._state_payload = state_payload
        self._on_command = on_command
        self._on_config = on_config
        self._mono = monotonic
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._lock = threading.RLock()
        self._client: mqtt.Client | None = None
        self._connected = False
        self._win = _Window()
        self._backoff = Backoff(cfg.mqtt.reconnect_min, cfg.mqtt.reconnect_max)
        self._tokens = 0.0
        self._pacer = LinkPacer()  # outlives connections: it describes the link
        self._last_hub_ack = float("-inf")  # monotonic time of the hub's latest ack
        self._hub_back_at = float("-inf")  # when acks resumed after the latest silence
        self._next_requeue_scan = 0.0
        self._tokens_at = monotonic()
        self.stats = UplinkStats()
        self._threads: list[threading.Thread] = []
        self._state_topic = topics.device_topic(cfg.device_id, topics.STATE)
        self._ack_topic = topics.device_topic(cfg.device_id, topics.ACK)
        self._desired_topic = topics.device_topic(cfg.device_id, topics.CONFIG_DESIRED)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        for name, target in (("dcor.mqtt", self._connection_loop),
                             ("dcor.uplink", self._send_loop)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        """Say offline (retained), then disconnect; the last will is for unclean exits."""
        client = self._client
        if client is not None and self._connected:
            try:
                info = client.publish(self._state_topic, self._state_payload(False), qos=1,
                                      retain=True)
                deadline = self._mono() + 2.0
                while not info.is_published() and self._mono() < deadline:
                    time.sleep(0.02)
            except (RuntimeError, ValueError):
                pass
        self._stop.set()
        self.wake()
        for t in self._threads:
            t.join(timeout)
        if client is not None:
            client.disconnect()

    def publish_now(self, topic: str, payload: bytes,
                    properties: Properties | None = None) -> bool:
        """Send outside the outbox (command replies): QoS 1, lost if the link is down."""
        client = self._client
        if client is None or not self._connected:
            return False
        info = client.publish(topic, payload, qos=1, properties=properties)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def publish_state(self) -> bool:
        """Presence again (retained), e.g. after a configuration change altered what it
        says (config version, health interval); the next connect sends it anyway."""
        client = self._client
        if client is None or not self._connected:
            return False
        info = client.publish(self._state_topic, self._state_payload(True), qos=1, retain=True)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def wake(self) -> None:
        with self._wake:
            self._wake.notify_all()

    @property
    def connected(self) -> bool:
        return self._connected

    # --- connection -----------------------------------------------------------------------

    def _new_client(self) -> mqtt.Client:
        c = MqttClient(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                       protocol=mqtt.MQTTv5)
        if self._tls is not None:
            c.tls_set_context(self._tls)
        c.max_inflight_messages_set(self.cfg.outbox.window)
        username = self.cfg.mqtt.username or (self.cfg.device_id if
                                              self.cfg.mqtt.password_file else "")
        if username:
            c.username_pw_set(username, self.cfg.password() or None)
        c.will_set(self._state_topic, self._state_payload(False), qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        return c

    def _connection_loop(self) -> None:
        if self.start_delay > 0:
            log.info("first connection in %.1f s (spreading boxes that boot together)",
                     self.start_delay)
            if self._stop.wait(self.start_delay):
                return
        first = True
        while not self._stop.is_set():
            if not first:
                delay = self._backoff.next_delay()
                if self._stop.wait(delay):
                    return
            first = False
            connects_before = self.stats.connects
            client = self._new_client()
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = int(self.cfg.mqtt.session_expiry)
            try:
                client.connect(self.cfg.mqtt.host, self.cfg.mqtt.port,
                               keepalive=self.cfg.mqtt.keepalive_s, clean_start=False,
                               properties=props)
            except OSError as exc:
                self.stats.last_error = f"connect: {exc}"
                continue
            self._client = client
            while not self._stop.is_set():
                rc = client.loop(timeout=0.2)
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    break
            self._mark_disconnected()
            if self.stats.connects > connects_before:
                self._spread_next_retry()
            if self._stop.is_set():
                return
            with contextlib.suppress(OSError, ValueError):
                client.disconnect()

    def _spread_next_retry(self) -> None:
        """A lost connection is retried after uniform(0, >= RECONNECT_SPREAD_S), not the
        schedule's first half second: when the broker restarts, the whole fleet loses it at
        once, and must not come back in the same second."""
        b = self._backoff
        b.reset()
        while b.ceiling() < min(RECONNECT_SPREAD_S, b.cap):
            b.attempt += 1

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any,
                    reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self.stats.last_error = f"broker refused: {reason}"
            log.warning("broker refused the connection: %s", reason)
            client.disconnect()
            return
        for f in topics.agent_subscriptions(self.cfg.device_id):
            client.subscribe(f, qos=1)
        client.publish(self._state_topic, self._state_payload(True), qos=1, retain=True)
        hold = ACK_GRACE_S + 2 * self._pacer.min_rtt() if getattr(
            flags, "session_present", False) else 0.0
        now = self._mono()
        with self._lock:
            self._win = _Window(connected_at_ms=int(time.time() * 1000),
                                backlog_after=now + max(hold, HELLO_WAIT_S),
                                min_hold_until=now + hold)
            self._connected = True
        if self.stats.connects:
            self.stats.reconnects += 1
        self.stats.connects += 1
        self._backoff.reset()
        log.info("connected to %s:%s", self.cfg.mqtt.host, self.cfg.mqtt.port)
        self.wake()

    def _on_disconnect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _p: Any) -> None:
        self.stats.last_error = f"disconnected: {reason}"
        self._mark_disconnected()

    def _mark_disconnected(self) -> None:
        with self._lock:
            was = self._connected
            self._connected = False
            self._win = _Window()
        if was:
            log.info("disconnected from broker")

    # --- receiving ------------------------------------------------------------------------

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            if msg.topic == self._ack_topic:
                self._handle_ack(bytes(msg.payload))
            elif msg.topic == self._desired_topic and self._on_config:
                self._on_config(bytes(msg.payload))
            elif self._on_command:
                parsed = topics.parse_topic(msg.topic)
                if parsed.kind == topics.CMD and parsed.sub:
                    self._on_command(parsed.sub, msg)
        except Exception:  # one bad message must not stop the network loop
            log.exception("failed to handle message on %s", msg.topic)

    def _handle_ack(self, data: bytes) -> None:
        try:
            ack = payloads.decode(payloads.Ack, data)
        except (ValueError, TypeError) as exc:
            log.warning("ignoring invalid ack: %s", exc)
            return
        ranges = [*ack.ranges, *ack.rejected]
        now = self._mono()
        if now - self._last_hub_ack > self.cfg.outbox.ack_timeout / 2:
            self._hub_back_at = now  # the hub speaks again after a silence
        self._last_hub_ack = now
        self.stats.acked_rows += self.outbox.ack(ranges)
        with self._lock:
            win = self._win
            if not win.first_ack_seen:
                win.first_ack_seen = True
                win.backlog_after = min(win.backlog_after,
                                        max(win.min_hold_until, now + FIRST_ACK_GRACE_S))
            for lo, hi in ranges:
                if hi - lo < len(self._win.awaiting):
                    for s in range(lo, hi + 1):
                        self._win.awaiting.pop(s, None)
                else:
                    for s in [s for s in self._win.awaiting if lo <= s <= hi]:
                        del self._win.awaiting[s]
        self.wake()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        with self._lock:
            seq = self._win.by_mid.pop(mid, None)
            if seq is None:
                # PUBACK raced ahead of the bookkeeping in _publish: it settles it there.
                self._win.early_pubacks[mid] = reason
                return
            self._settle_size(mid)
            self._record_puback(seq, reason)
        self.wake()

    def _settle_size(self, mid: int) -> None:
        size = self._win.sizes.pop(mid, None)
        if size is not None:
            now = self._mono()
            self._win.inflight_bytes -= size[0]
            self._pacer.on_ack(size[0], now - size[1], now)

    def _record_puback(self, seq: int, reason: Any) -> None:
        now = self._mono()
        if reason.value == NO_MATCHING_SUBSCRIBERS:
            # The broker took it but nobody (no hub) was subscribed: it is gone. Retry soon
            # instead of waiting out the whole ack timeout.
            self.stats.no_subscribers += 1
            now -= max(0.0, self.cfg.outbox.ack_timeout - NO_SUBSCRIBER_RETRY_S)
            self._win.retry_soon.add(seq)
        elif reason.is_failure:
            # A failed PUBACK (quota, ACL, size) is retried like a missing hub ack.
            self.stats.puback_failures += 1
            self.stats.last_error = f"PUBACK {reason} for seq {seq}"
            self._win.retry_soon.add(seq)
        self._win.awaiting[seq] = now

    # --- sending --------------------------------------------------------------------------

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            sent = 0
            if self._connected:
                self._requeue_expired()
                sent = self._fill_window()
            if sent == 0:
                with self._wake:
                    self._wake.wait(0.1)

    def _requeue_expired(self) -> None:
        """Send again what the broker took but the hub never confirmed, once that looks lost.

        A row PUBACKed more than ``ack_timeout`` ago is resent only if the hub is
        acknowledging and has been for at least half that time since the row went out (or
        since it came back from a silence): it is alive and past our row, so the row or its
        ack was lost. Or if the broker said it did not deliver it. While the hub is silent
        (stopped, restarting) the rows wait in its persistent session, and right after it
        comes back it is still working through them: resending then would only make
        duplicates. ``SILENT_HUB_FACTOR`` x ``ack_timeout`` is the backstop for a row the
        broker dropped while the hub stayed silent.
        """
        now = self._mono()
        if now < self._next_requeue_scan:
            return
        self._next_requeue_scan = now + 1.0  # resends are coarse; scanning is O(awaiting)
        timeout = self.cfg.outbox.ack_timeout
        live = now - self._last_hub_ack < timeout / 2
        back_at = self._hub_back_at
        with self._lock:
            win = self._win
            expired = [s for s, t in win.awaiting.items() if now - t > timeout and (
                s in win.retry_soon or (live and now - max(t, back_at) > timeout / 2)
                or now - t > SILENT_HUB_FACTOR * timeout)]
            if not expired:
                return
            for s in expired:
                del win.awaiting[s]
                win.retry_soon.discard(s)
            # Step each class's floor back so the expired rows are fetched again.
            lowest = min(expired)
            for cls, floor in list(self._win.floors.items()):
                self._win.floors[cls] = min(floor, lowest - 1)
            self.stats.resent += len(expired)

    def _fill_window(self) -> int:
        client = self._client
        with self._lock:
            room = self.cfg.outbox.window - len(self._win.by_mid)
            if room <= 0 or client is None:
                return 0
            # On a slow link, what is in flight is what a new alarm waits behind.
            byte_room = self._pacer.budget(self._mono()) - self._win.inflight_bytes
            if byte_room <= 0 and self._win.by_mid:
                return 0
            floors = dict(self._win.floors)
            # Only what lies above a class floor can be fetched again: with the hub silent,
            # ``awaiting`` grows by thousands and must not pad every query.
            low = min(floors.values(), default=0)
            skip = {s for s in self._win.by_mid.values() if s > low}
            skip.update(s for s in self._win.awaiting if s > low)
            connected_at = self._win.connected_at_ms
            backlog_after = self._win.backlog_after
        rows = self.outbox.fetch(room, skip, floors)
        sent = 0
        for row in rows:
            size = _wire_size(row)
            if sent and size > byte_room:
                break
            if row.created_ms < connected_at and (
                    self._mono() < backlog_after or not self._take_backlog_token()):
                break
            if not self._publish(client, row):
                break
            byte_room -= size
            sent += 1
        return sent

    def _publish(self, client: mqtt.Client, row: Row) -> bool:
        props = None
        if row.props:
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = list(row.props.items())
        if not self._connected:
            return False
        # Never hold self._lock across paho calls: paho fires on_publish while holding its
        # own message lock, and on_publish takes ours (lock-order deadlock otherwise).
        info = client.publish(row.topic, row.payload, qos=1, properties=props)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        with self._lock:
            early = self._win.early_pubacks.pop(info.mid, None)
            size = _wire_size(row)
            if early is None:
                self._win.by_mid[info.mid] = row.seq
                self._win.sizes[info.mid] = (size, self._mono())
                self._win.inflight_bytes += size
            else:
                self._pacer.on_ack(size, 0.0, self._mono())
                self._record_puback(row.seq, early)
            floor = self._win.floors.get(row.priority, 0)
            self._win.floors[row.priority] = max(floor, row.seq)
        self.stats.published += 1
        return True

    def _take_backlog_token(self) -> bool:
        now = self._mono()
        rate = self.cfg.outbox.backlog_rate
        self._tokens = min(rate, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


def _wire_size(row: Row) -> int:
    """Roughly what the PUBLISH costs on the link (header, topic, payload, properties)."""
    props = sum(len(k) + len(v) + 5 for k, v in row.props.items()) if row.props else 0
    return len(row.payload) + len(row.topic) + props + 8
