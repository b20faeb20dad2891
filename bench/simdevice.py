"""One simulated box: the real ``Outbox``, the real payloads, one paho client driven by the
fleet's shared loop (``bench.fleet``), and the agent's end-to-end ack rules.

What it keeps from ``edge_agent``: every message is put in the box's own SQLite outbox
(seq assigned there) before it is sent; a row is deleted only when the hub's ``ack`` names
its seq (stored or rejected); rows not acknowledged within ``ack_timeout`` are sent again;
presence is a retained ``state`` with a last will. Given the hub's public key it takes
pushed configurations the way a box does as far as the hub can see: the signature, the
device and the version checked by the agent's own ``check_message``, then a
``config/reported`` (applied, or rejected with the agent's reason) as an alarm-class row,
so a rollout over simulated boxes completes (or aborts) instead of waiting on them. What it
leaves out: video, applying the settings themselves (nothing here reads them), and the
uplink's priority pacing (a simulated box sends oldest first within its window).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.synth import SyntheticBox
from dcor_wire import payloads, topics
from edge_agent.outbox import Outbox, OutboxFull
from edge_agent.remoteconf.document import Rejection, check_message
from edge_agent.telemetry import Priority

AGENT_VERSION = "sim-0.1"


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    health_interval_s: float = 10.0
    detections_interval_s: float = 10.0
    cameras: int = 1
    window: int = 64
    ack_timeout_s: float = 30.0
    keepalive_s: int = 30
    outbox_max_bytes: int = 4 * 1024 * 1024
    fsync: bool = False
    hub_key: Ed25519PublicKey | None = None  # None: pushed configurations are ignored


@dataclass
class SimStats:
    produced: int = 0
    published: int = 0
    acked_rows: int = 0
    resent: int = 0
    dropped: int = 0
    connects: int = 0


@dataclass
class SimDevice:
    device_id: str
    outbox_path: Path
    cfg: SimConfig
    stats: SimStats = field(default_factory=SimStats)
    client: mqtt.Client | None = None
    connected: bool = False
    _sent: dict[int, float] = field(default_factory=dict)  # seq -> when sent (monotonic)
    _dirty: bool = True  # rows may be waiting to be sent (new, acked room, expired)
    _box: SyntheticBox = field(init=False)
    _outbox: Outbox = field(init=False)
    _boot_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    _boot_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    config: tuple[int, str] = (0, "")  # (version, digest) in force
    _config_seen: tuple[int, str] = (0, "")  # the last one refused

    def __post_init__(self) -> None:
        self._box = SyntheticBox(self.device_id, cameras=tuple(
            f"cam{i + 1}" for i in range(self.cfg.cameras)))
        self._outbox = Outbox(self.outbox_path, self.cfg.outbox_max_bytes)
        if not self.cfg.fsync:
            # A simulated box need not survive a power cut; the code path (WAL, one
            # transaction per row, seq allocation) stays the real one.
            self._outbox._db.execute("PRAGMA synchronous=OFF")
        self._ack_topic = topics.device_topic(self.device_id, topics.ACK)
        self._desired_topic = topics.device_topic(self.device_id, topics.CONFIG_DESIRED)
        self._state_topic = topics.device_topic(self.device_id, topics.STATE)

    # --- producing ------------------------------------------------------------------------

    def produce_health(self) -> None:
        fields = self._box.health_fields(
            int(time.time() * 1000), outbox_depth=self._outbox.depth,
            outbox_bytes=self._outbox.size_bytes, reconnects=max(0, self.stats.connects - 1))
        self._put(topics.HEALTH, fields, payloads.Health, Priority.HEALTH)

    def produce_detections(self, interval_ms: int) -> None:
        now = int(time.time() * 1000)
        for cam in self._box.cameras:
            fields = self._box.detections_fields(cam, now - interval_ms, interval_ms)
            self._put(topics.DETECTIONS, fields, payloads.Detections, Priority.DETECTIONS)

    def _put(self, kind: str, fields: dict[str, Any], model: type[msgspec.Struct],
             priority: Priority) -> None:
        def build(seq: int) -> bytes:
            return payloads.encode(msgspec.convert({**fields, "seq": seq}, model))

        try:
            self._outbox.put(topics.device_topic(self.device_id, kind), build, priority)
            self.stats.produced += 1
            self._dirty = True
        except OutboxFull:
            self.stats.dropped += 1

    # --- the connection -------------------------------------------------------------------

    def new_client(self) -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.device_id,
                        protocol=mqtt.MQTTv5)
        c.max_inflight_messages_set(self.cfg.window)
        c.will_set(self._state_topic, self._state(False), qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        self.client = c
        return c

    def connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        return props

    def _state(self, online: bool) -> bytes:
        return payloads.encode(payloads.State(
            ts=int(time.time() * 1000), seq=max(1, self._outbox.last_seq()), online=online,
            agent_version=AGENT_VERSION, boot_id=self._boot_id, boot_ts=self._boot_ms,
            profile="sim", config_version=self.config[0],
            health_interval_s=self.cfg.health_interval_s))

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            client.disconnect()
            return
        for f in topics.agent_subscriptions(self.device_id):
            client.subscribe(f, qos=1)
        client.publish(self._state_topic, self._state(True), qos=1, retain=True)
        self._sent.clear()  # whatever was in flight is sent again on this connection
        self._dirty = True
        self.connected = True
        self.stats.connects += 1

    def _on_disconnect(self, *_a: Any) -> None:
        self.connected = False

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self._desired_topic:
            self.take_desired(bytes(msg.payload))
            return
        if msg.topic != self._ack_topic:
            return  # commands: not simulated
        try:
            ack = payloads.decode(payloads.Ack, bytes(msg.payload))
        except (ValueError, TypeError):
            return
        ranges = [*ack.ranges, *ack.rejected]
        self.stats.acked_rows += self._outbox.ack(ranges)
        for lo, hi in ranges:
            for s in [s for s in self._sent if lo <= s <= hi]:
                del self._sent[s]
        self._dirty = True

    def take_desired(self, data: bytes) -> None:
        """A ``config/desired`` message: report it applied or rejected, as a box would."""
        if self.cfg.hub_key is None:
            return
        try:
            got = check_message(data, device_id=self.device_id, public_key=self.cfg.hub_key,
                                current=self.config, seen=self._config_seen)
        except Rejection as rej:
            if rej.signed and rej.version > self._config_seen[0]:
                self._config_seen = (rej.version, rej.digest)
            self._report("rejected", (rej.version, rej.digest), rej.rollout,
                         reason=rej.reason, error=rej.detail)
            return
        if got is None:  # the retained copy again, on a reconnect
            return
        doc = got.doc
        self.config = (doc.version, doc.digest)
        self._report("applied", self.config, doc.rollout)
        if self.client is not None and self.connected:  # the room sees the new version
            self.client.publish(self._state_topic, self._state(True), qos=1, retain=True)

    def _report(self, status: str, desired: tuple[int, str], rollout: str, *,
                reason: str = "", error: str = "") -> None:
        self._put(topics.CONFIG_REPORTED, {
            "ts": int(time.time() * 1000), "status": status, "version": self.config[0],
            "digest": self.config[1], "desired_version": desired[0],
            "desired_digest": desired[1], "reason": reason[:128], "error": error[:1024],
            "rollout": rollout[:128]}, payloads.ConfigReported, Priority.ALARM)

    def expire(self, now: float) -> None:
        """Rows the hub has not acknowledged in time are sent again."""
        expired = [s for s, t in self._sent.items() if now - t > self.cfg.ack_timeout_s]
        for s in expired:
            del self._sent[s]
        if expired:
            self.stats.resent += len(expired)
            self._dirty = True

    def pump(self, now: float) -> int:
        """Send what the window allows; returns messages published."""
        client = self.client
        if not self._dirty or client is None or not self.connected:
            return 0
        room = self.cfg.window - len(self._sent)
        if room <= 0:
            return 0
        rows = self._outbox.fetch(room, set(self._sent))
        self._dirty = len(rows) == room  # a full window: there may be more
        for row in rows:
            info = client.publish(row.topic, row.payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                self._dirty = True
                break
            self._sent[row.seq] = now
            self.stats.published += 1
        return len(rows)

    def say_offline(self) -> None:
        if self.client is not None and self.connected:
            self.client.publish(self._state_topic, self._state(False), qos=1, retain=True)

    def outbox_depth(self) -> int:
        return self._outbox.depth

    def last_seq(self) -> int:
        return self._outbox.last_seq()

    def close(self) -> None:
        self._outbox.close()
