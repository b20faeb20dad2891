"""What ingest needs from the registry: the enrolled devices and their place, and updates of
presence and latest health, batched into one transaction per write batch."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import delete, select

from dcor_wire import payloads
from hub.ingest.validate import SiteTags
from hub.registry.db import Registry
from hub.registry.models import Device, IngestWorkerStats, MediaItem, Site
from hub.rollout.reports import record_reports

REFRESH_S = 5.0
RACE_WINDOW_S = 5.0


@dataclass(frozen=True)
class MediaRecord:
    device_id: str
    camera: str
    kind: str
    media_id: str
    event_id: str
    ts_ms: int
    path: str
    size: int


@dataclass
class DeviceUpdate:
    presence: str | None = None
    state: payloads.State | None = None
    health: payloads.Health | None = None
    last_seq: int = 0
    seen: bool = False
    clock_offset_s: float | None = None  # set when the hub quarantined its points
    config_report: payloads.ConfigReported | None = None  # newest in the batch

    def take(self, payload: object) -> None:
        """Keep ``payload`` if it is presence, or newer than the health or configuration
        report held (messages of one device can arrive out of order)."""
        if isinstance(payload, payloads.State):
            self.state = payload
        elif isinstance(payload, payloads.Health):
            if self.health is None or payload.ts >= self.health.ts:
                self.health = payload
        elif isinstance(payload, payloads.ConfigReported) and (
                self.config_report is None
                or (payload.ts, payload.seq) > (self.config_report.ts, self.config_report.seq)):
            self.config_report = payload

    def urgent(self) -> bool:
        """Presence, a configuration report or a clock flag: the room should see it now."""
        return (self.state is not None or self.config_report is not None
                or self.clock_offset_s is not None)

    def fold(self, later: DeviceUpdate) -> None:
        """Add the update of a later batch to this one."""
        self.seen = self.seen or later.seen
        self.last_seq = max(self.last_seq, later.last_seq)
        if later.presence is not None:
            self.presence = later.presence
        if later.state is not None:
            self.state = later.state
        if later.clock_offset_s is not None:
            self.clock_offset_s = later.clock_offset_s
        if later.health is not None:
            self.take(later.health)
        if later.config_report is not None:
            self.take(later.config_report)


@dataclass
class HeldUpdates:
    """Device updates of several batches, folded per device until they are written."""

    _by_device: dict[str, DeviceUpdate] = field(default_factory=dict)

    def merge(self, updates: dict[str, DeviceUpdate]) -> None:
        for dev, up in updates.items():
            held = self._by_device.get(dev)
            if held is None:
                self._by_device[dev] = up
            else:
                held.fold(up)

    def take(self) -> dict[str, DeviceUpdate]:
        out, self._by_device = self._by_device, {}
        return out

    def __len__(self) -> int:
        return len(self._by_device)


@dataclass
class DeviceDirectory:
    """A cache of enrolled devices, refreshed every few seconds and on a miss."""

    registry: Registry
    _sites: dict[str, SiteTags] = field(default_factory=dict)
    _loaded_at: float = -1e9
    # The shortest health interval of the fleet: how stale the registry's view may get.
    min_health_interval_s: float = 10.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def site_of(self, device_id: str) -> SiteTags | None:
        hit = self._sites.get(device_id)
        if hit is None and time.monotonic() - self._loaded_at > 1.0:
            self.refresh()
            hit = self._sites.get(device_id)
        elif time.monotonic() - self._loaded_at > REFRESH_S:
            self.refresh()
        return hit

    def note_health_interval(self, interval_s: float) -> None:
        """A box announced its health interval (before the registry has it)."""
        if 0 < interval_s < self.min_health_interval_s:
            self.min_health_interval_s = interval_s

    def refresh(self) -> None:
        with self._lock:
            self._loaded_at = time.monotonic()
            with self.registry.session() as s:
                rows = s.execute(
                    select(Device.id, Site.kecamatan, Site.kelurahan, Device.health_interval_s)
                    .join(Site, Device.site_id == Site.id)
                    .where(Device.status != "decommissioned")
                ).all()
            self._sites = {r[0]: SiteTags(r[1], r[2]) for r in rows}
            self.min_health_interval_s = min((r[3] for r in rows if r[3]), default=10.0)

    def apply(self, updates: dict[str, DeviceUpdate]) -> None:
        if not updates:
            return
        now = datetime.now(UTC)
        with self.registry.session() as s:
            # Several ingest workers update the same rows: on PostgreSQL the rows are locked
            # (in id order, so two workers cannot deadlock) while read and written back.
            devices = {d.id: d for d in s.scalars(
                select(Device).where(Device.id.in_(list(updates)))
                .order_by(Device.id).with_for_update())}
            for dev_id, up in updates.items():
                d = devices.get(dev_id)
                if d is None:
                    continue
                if up.seen:
                    d.last_seen_at = now
                if up.state is not None:
                    d.presence = "online" if up.state.online else "offline"
                    d.presence_at = now
                    if up.state.online:
                        d.agent_version = up.state.agent_version
                        d.boot_id = up.state.boot_id
                        d.config_version = up.state.config_version
                        d.health_interval_s = up.state.health_interval_s
                if up.health is not None and not _newer_stored(d, up.health, now):
                    d.last_health = _health_dict(up.health)
                    d.last_health_at = now
                if up.clock_offset_s is not None:
                    # A health flag, cleared by the next health the hub stores normally.
                    d.last_health = {**(d.last_health or {}), "clock_suspect": True,
                                     "clock_offset_s": round(up.clock_offset_s)}
                if up.last_seq > (d.last_seq or 0):
                    d.last_seq = up.last_seq
            reports = {dev: up.config_report for dev, up in updates.items()
                       if up.config_report is not None and dev in devices}
            if reports:
                record_reports(s, reports)

    def record_media(self, records: list[MediaRecord]) -> None:
        if not records:
            return
        now = datetime.now(UTC)
        with self.registry.session() as s:
            for r in records:
                key = f"{r.device_id}:{r.kind}:{r.media_id}"
                s.merge(MediaItem(id=key, device_id=r.device_id, camera=r.camera, kind=r.kind,
                                  media_id=r.media_id, event_id=r.event_id, ts_ms=r.ts_ms,
                                  path=r.path, size=r.size, complete=True, created_at=now))

    def forget_media(self, paths: list[str]) -> None:
        if not paths:
            return
        with self.registry.session() as s:
            s.execute(delete(MediaItem).where(MediaItem.path.in_(paths)))

    def load_stats(self, worker_id: str) -> dict[str, Any]:
        with self.registry.session() as s:
            row = s.get(IngestWorkerStats, worker_id)
            return dict(row.counters or {}) if row is not None else {}

    def save_stats(self, worker_id: str, counters: dict[str, Any]) -> None:
        with self.registry.session() as s:
            row = s.get(IngestWorkerStats, worker_id)
            if row is None:
                row = IngestWorkerStats(worker_id=worker_id)
                s.add(row)
            row.counters = counters
            row.updated_at = datetime.now(UTC)


def _newer_stored(d: Device, health: payloads.Health, now: datetime) -> bool:
    """Another worker stored a newer health of this device a moment ago (workers race).

    Only a recent one counts: a box whose clock was set back must not stay stuck on the
    health it reported from the future."""
    stored_ts = (d.last_health or {}).get("ts")
    at = d.last_health_at
    if not isinstance(stored_ts, int) or at is None or stored_ts <= health.ts:
        return False
    if at.tzinfo is None:  # SQLite hands back naive datetimes (stored as UTC)
        at = at.replace(tzinfo=UTC)
    return (now - at).total_seconds() < RACE_WINDOW_S


def _health_dict(h: payloads.Health) -> dict[str, Any]:
    d: dict[str, Any] = msgspec.to_builtins(h)
    d.pop("v", None)
    return d
