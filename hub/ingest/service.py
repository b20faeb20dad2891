"""The ingest process: MQTT in, InfluxDB (or the spool) out, acks back.

Flow of one message:
  broker --PUBLISH--> validate (network thread) --> pending queue
  writer thread: batch --> InfluxDB /write --(fails)--> spool (fsync)
                 then PUBACK to the broker (manual ack), ``ack`` to each device, registry.
A message is acknowledged to the broker only after its points are in InfluxDB or the spool,
so a crash at any point before that makes the broker deliver it again.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from dcor_wire import payloads, topics
from dcor_wire.backoff import Backoff
from dcor_wire.media import SnapshotMeta
from hub.influx import InfluxClient, InfluxError
from hub.ingest.dedup import DuplicateCounter
from hub.ingest.devices import DeviceDirectory, DeviceUpdate, HeldUpdates, MediaRecord
from hub.ingest.mqttlink import HubMqtt, ingest_subscriptions
from hub.ingest.mqttwire import Message
from hub.ingest.recentacks import RecentAcks
from hub.ingest.seenjournal import SeenJournal
from hub.ingest.spool import Spool
from hub.ingest.stats import IngestStats, LogLimiter
from hub.ingest.validate import Accepted, Media, Rejected, Validator
from hub.media.store import MediaStore
from hub.registry.db import Registry
from hub.settings import HubSettings

log = logging.getLogger("dcor.hub.ingest")

MEDIA_PRUNE_EVERY_S = 300.0
# After a failed InfluxDB write, batches go straight to the spool for at least this long,
# growing (jittered, doubling) up to the cap while it keeps failing.
INFLUX_RETRY_MIN_S = 1.0
INFLUX_RETRY_MAX_S = 10.0
# Last seen and latest health reach the registry at most this often (see _apply_registry).
REGISTRY_EVERY_S = 1.0


@dataclass(slots=True)
class Item:
    gen: int
    mid: int
    result: Accepted | Rejected


class IngestService:
    def __init__(self, settings: HubSettings, registry: Registry, influx: InfluxClient,
                 worker_id: str | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.influx = influx
        # Stable by default: the spool folder and the saved counters are keyed by it, so a
        # worker restarted after a crash must find them again (a pid would orphan the spool:
        # batches acked to the devices but never replayed). Several workers on one host pass
        # distinct --worker-id.
        self.worker_id = worker_id or socket.gethostname()
        self.stats = IngestStats()
        self.devices = DeviceDirectory(registry)
        self.validator = Validator(self.devices.site_of)
        self.spool = Spool(settings.data_dir / "spool" / self.worker_id)
        self.media = MediaStore(settings.data_dir / "media", settings.media_max_bytes,
                                settings.media_max_age_s)
        self._log_limit = LogLimiter(60.0)
        # Lists of items: one per read of the broker connection, not one put per message.
        self._pending: queue.Queue[list[Item]] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._influx_ok_after = 0.0  # monotonic: skip straight to the spool until then
        self._influx_backoff = Backoff(INFLUX_RETRY_MIN_S, INFLUX_RETRY_MAX_S)
        self._spooling = self.spool.depth() > 0  # batches of an earlier run wait there
        self.dups = DuplicateCounter()
        self.seen = SeenJournal(settings.data_dir / "seen" / self.worker_id)
        self._ack_seq = 0
        self._recent_acks = RecentAcks()
        self._db_ready = False
        self._held_updates = HeldUpdates()
        self._registry_due = 0.0
        share = settings.mqtt_share_group or None
        client_id = settings.mqtt_client_id
        self.mqtt = HubMqtt(settings, ingest_subscriptions(share), self._on_messages,
                            client_id)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.devices.refresh()
        try:
            self.seen.load(self.dups)
        except OSError:  # duplicates are a count: never refuse to start over them
            log.exception("could not read what this worker stored before")
        try:
            self.stats.restore(self.devices.load_stats(self.worker_id))
        except Exception:  # counters are a view: never refuse to start over them
            log.exception("could not restore this worker's saved counters")
        self.mqtt.start()
        for name, target in (("dcor.ingest.writer", self._writer_loop),
                             ("dcor.ingest.replay", self._replay_loop),
                             ("dcor.ingest.stats", self._stats_loop)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Stop taking messages, flush what is pending, then disconnect."""
        self._stop.set()
        for t in self._threads:
            t.join(15)
        self.mqtt.stop()
        self._save_stats()
        self.seen.close()

    # --- receiving (network thread) -------------------------------------------------------

    def _on_messages(self, gen: int, messages: list[Message]) -> None:
        check = self.validator.check
        items = [Item(gen, m.packet_id,
                      check(m.topic, m.payload,
                            dict(m.user_properties) if m.user_properties else None))
                 for m in messages]
        self.stats.inc("received", len(items))
        self._pending.put(items)

    # --- writing --------------------------------------------------------------------------

    def _take_batch(self) -> list[Item]:
        try:
            batch = self._pending.get(timeout=0.2)
        except queue.Empty:
            return []
        points = _n_lines(batch)
        deadline = time.monotonic() + self.settings.batch_max_delay_s
        while points < self.settings.batch_max_points:
            left = deadline - time.monotonic()
            try:
                more = self._pending.get(timeout=left) if left > 0 else self._pending.get_nowait()
            except queue.Empty:
                break
            batch += more
            points += _n_lines(more)
        return batch

    def _writer_loop(self) -> None:
        while not (self._stop.is_set() and self._pending.empty()):
            batch = self._take_batch()
            if batch:
                try:
                    self._handle_batch(batch)
                except Exception:
                    # Nothing was acknowledged: the broker will deliver these again.
                    log.exception("batch of %d failed; left unacknowledged", len(batch))
                    time.sleep(1.0)
            else:
                self._apply_registry()
        self._apply_registry(force=True)

    def _handle_batch(self, batch: list[Item]) -> None:
        gen = self.mqtt.live_generation()
        if any(i.gen != gen and i.mid for i in batch):
            # Unacknowledged messages of a connection that is gone come again: from the
            # broker on the persistent session, or, if the broker lost it, from the boxes
            # (nothing was acked to them either). Storing them now would count them twice.
            live = [i for i in batch if i.gen == gen or not i.mid]
            self.stats.inc("stale_skipped", len(batch) - len(live))
            batch = live
            if not batch:
                return
        accepted = [i.result for i in batch if isinstance(i.result, Accepted)]
        media = [r for r in accepted if isinstance(r.payload, Media)]
        if media:
            self._save_media(media)
        lines = [ln for r in accepted for ln in r.lines]
        if lines:
            self._store("\n".join(lines).encode())
        stored: dict[str, set[int]] = defaultdict(set)
        rejected: dict[str, set[int]] = defaultdict(set)
        updates: dict[str, DeviceUpdate] = defaultdict(DeviceUpdate)
        came_back: set[str] = set()
        n_stored = n_dups = 0
        is_duplicate = self.dups.is_duplicate
        for item in batch:
            r = item.result
            if type(r) is not Accepted:
                assert isinstance(r, Rejected)
                self._count_rejection(r)
                if r.device_id and r.seq is not None and r.reason != "unknown_device":
                    rejected[r.device_id].add(r.seq)
                continue
            n_stored += 1
            up = updates[r.device_id]
            up.seen = True
            if r.seq is not None:
                stored[r.device_id].add(r.seq)
                if r.seq > up.last_seq:
                    up.last_seq = r.seq
                if is_duplicate(r.device_id, r.seq):
                    n_dups += 1
            if r.quarantine:
                self.stats.quarantine(r.quarantine)
                device_ts = int(getattr(r.payload, "ts", 0))
                up.clock_offset_s = (device_ts - time.time() * 1000) / 1000.0
            up.take(r.payload)
            if isinstance(r.payload, payloads.State) and r.payload.online:
                came_back.add(r.device_id)
                self.devices.note_health_interval(r.payload.health_interval_s)
        self.stats.inc("stored", n_stored)
        if n_dups:
            self.stats.inc("duplicates", n_dups)
        # Before the acks: what the broker or a device sends again after a crash from here
        # on is recognised by the next run.
        self.seen.record(stored, self.dups)
        self.mqtt.ack_batch([(item.gen, item.mid) for item in batch])
        self._send_device_acks(stored, rejected)
        self._repeat_acks_to(came_back)
        self._held_updates.merge(updates)
        self._apply_registry(force=any(up.urgent() for up in updates.values()))

    def _apply_registry(self, force: bool = False) -> None:
        """Write the held device updates: at once for presence, configuration reports and
        clock flags (the room watches those), otherwise at most every
        ``REGISTRY_EVERY_S`` (last seen and latest health are a view, and one transaction
        per write batch was the largest cost of a busy worker), and never later than the
        fleet's shortest health interval (the room would see a box as late)."""
        now = time.monotonic()
        if not self._held_updates or not (force or now >= self._registry_due):
            return
        updates = self._held_updates.take()
        self._registry_due = now + min(REGISTRY_EVERY_S, self.devices.min_health_interval_s)
        try:
            self.devices.apply(updates)
        except Exception:  # the registry is a view: its failure must not lose telemetry
            log.exception("registry update failed")

    def _save_media(self, items: list[Accepted]) -> None:
        """Files first (fsynced), then their index rows; both before any ack."""
        records = []
        for r in items:
            m = r.payload
            assert isinstance(m, Media)
            if isinstance(m.meta, SnapshotMeta):
                path = self.media.save_snapshot(r.device_id, m.camera, m.meta, m.data)
                records.append(MediaRecord(r.device_id, m.camera, "snapshot", m.meta.id,
                                           m.meta.event, m.meta.ts, self.media.relative(path),
                                           len(m.data)))
                self.stats.inc("snapshots")
            else:
                progress = self.media.save_clip_chunk(r.device_id, m.meta, m.data)
                self.stats.inc("clip_chunks")
                if progress.complete:
                    records.append(MediaRecord(r.device_id, m.camera, "clip", m.meta.clip, "",
                                               m.meta.ts, self.media.relative(progress.path),
                                               progress.total))
        self.devices.record_media(records)

    def _store(self, body: bytes) -> None:
        """InfluxDB, or the spool: returns only when the body is durable somewhere.

        While the spool holds batches, new ones join it (the replay loop drains it in order
        and is the only one to probe InfluxDB), so a hanging server costs this thread one
        timeout, not one per batch."""
        if not self._spooling and time.monotonic() >= self._influx_ok_after:
            try:
                self._ensure_db()
                self.influx.write(body)
                self.stats.inc("points_written", body.count(b"\n") + 1)
                self._influx_backoff.reset()
                return
            except InfluxError as exc:
                if not exc.retryable:
                    self._write_bisect(body, exc)
                    return
                self._hold_influx(exc)
                if self._log_limit.allow("influx-down"):
                    log.warning("InfluxDB write failed, spooling: %s", exc)
        self.spool.put(body)
        self._spooling = True
        self.stats.inc("spooled_batches")

    def _hold_influx(self, exc: InfluxError) -> None:
        """Spool without trying InfluxDB for a while: what it asked for (Retry-After), else a
        growing, jittered pause, so a hanging server does not stall every batch for a full
        timeout. The replay loop keeps probing it."""
        delay = self._influx_backoff.next_delay() + INFLUX_RETRY_MIN_S
        if exc.retry_after_s is not None:
            delay = min(6 * INFLUX_RETRY_MAX_S, max(exc.retry_after_s, 0.0))
        self._influx_ok_after = time.monotonic() + delay

    def _write_bisect(self, body: bytes, exc: InfluxError) -> None:
        """A batch InfluxDB refuses as such (400, 413): split it to find the bad lines."""
        lines = body.split(b"\n")
        if len(lines) == 1:
            self.stats.inc("influx_refused_lines")
            log.error("InfluxDB refused a point (%s): %.200s", exc, body)
            return
        mid = len(lines) // 2
        for half in (b"\n".join(lines[:mid]), b"\n".join(lines[mid:])):
            try:
                self.influx.write(half)
                self.stats.inc("points_written", half.count(b"\n") + 1)
            except InfluxError as inner:
                if inner.retryable:
                    self.spool.put(half)
                else:
                    self._write_bisect(half, inner)

    def _ensure_db(self) -> None:
        if not self._db_ready:
            self.influx.ensure_database()
            self._db_ready = True

    def _send_device_acks(self, stored: dict[str, set[int]],
                          rejected: dict[str, set[int]]) -> None:
        now = time.monotonic()
        for dev, seqs in stored.items():
            self._recent_acks.add(dev, seqs, now)
        self._publish_acks(stored, rejected)

    def _repeat_acks_to(self, devices: set[str]) -> None:
        """A box that (re)connected may have missed acks sent while it was away (or lost
        with a crashed broker): say its last minute's acks again before it resends."""
        if not devices:
            return
        recent = self._recent_acks.recent(time.monotonic())
        # Every box that came back gets an ack, empty if nothing is recent: it is also the
        # hub's hello, which lets the box send its backlog without waiting any longer.
        self._publish_acks({d: recent.get(d, set()) for d in devices}, {})
        self.stats.inc("acks_repeated", len(devices))

    def _publish_acks(self, stored: dict[str, set[int]],
                      rejected: dict[str, set[int]]) -> None:
        now_ms = int(time.time() * 1000)
        for dev in set(stored) | set(rejected):
            self._ack_seq += 1
            ack = payloads.Ack(ts=now_ms, seq=self._ack_seq,
                               ranges=payloads.to_ranges(stored.get(dev, set())),
                               rejected=payloads.to_ranges(rejected.get(dev, set())))
            self.mqtt.publish(topics.device_topic(dev, topics.ACK), payloads.encode(ack))

    def _count_rejection(self, r: Rejected) -> None:
        self.stats.reject(r.reason)
        key = f"{r.device_id or '?'}:{r.reason}"
        if self._log_limit.allow(key):
            log.warning("refused message from %s: %s (%s)", r.device_id or "?", r.reason,
                        r.detail[:200], extra={"device": r.device_id or None,
                                               "reason": r.reason})

    # --- spool replay ---------------------------------------------------------------------

    def _replay_loop(self) -> None:
        while not self._stop.wait(0.5):
            while not self._stop.is_set():
                head = self.spool.oldest()
                if head is None:
                    self._spooling = False
                    break
                path, body = head
                if time.monotonic() < self._influx_ok_after:
                    break  # InfluxDB asked for a pause, or just failed a live batch
                try:
                    self._ensure_db()
                    self.influx.write(body)
                except InfluxError as exc:
                    if exc.retryable:
                        self._hold_influx(exc)
                        break
                    self.spool.remove(path)
                    self._write_bisect(body, exc)
                    continue
                self.spool.remove(path)
                self.stats.inc("replayed_batches")
                self._influx_ok_after = 0.0
                self._influx_backoff.reset()

    # --- stats ----------------------------------------------------------------------------

    def _stats_loop(self) -> None:
        last_prune = -MEDIA_PRUNE_EVERY_S
        while not self._stop.wait(self.settings.stats_interval_s):
            self._save_stats()
            if time.monotonic() - last_prune >= MEDIA_PRUNE_EVERY_S:
                last_prune = time.monotonic()
                self._prune_media()

    def _prune_media(self) -> None:
        try:
            removed = self.media.prune()
            self.devices.forget_media([self.media.relative(p) for p in removed])
        except Exception:
            log.exception("media retention pass failed")

    def counters(self) -> dict[str, Any]:
        snap = self.stats.snapshot()
        snap["spool_depth"] = self.spool.depth()
        with self._pending.mutex:  # lists of items: count the messages in them
            snap["pending"] = sum(len(items) for items in self._pending.queue)
        snap["mqtt_connected"] = self.mqtt.connected()
        snap["mqtt_reconnects"] = self.mqtt.reconnects
        return snap

    def _save_stats(self) -> None:
        try:
            self.devices.save_stats(self.worker_id, self.counters())
        except Exception:
            log.exception("could not save ingest stats")


def _n_lines(items: list[Item]) -> int:
    return sum(len(i.result.lines) for i in items if isinstance(i.result, Accepted))
