"""Reads for the web app: registry rows into plain records, and a device's last hour from
InfluxDB. The only module of ``hub.web`` that speaks SQL or InfluxQL."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Any, Final

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session, aliased, joinedload

from dcor_wire.topics import check_device_id
from hub.influx import InfluxClient, quote_string, rows
from hub.registry.db import Registry
from hub.registry.models import Device, IngestWorkerStats, MediaItem
from hub.web.fleet import CameraRecord, DeviceRecord, MediaRecord
from hub.web.stats import WorkerRecord

HEALTH_MEASUREMENT: Final = "health"
# Tags the ingest puts on health points; the per-point JSON leaves them out (the device
# document already says where it is).
_TAG_COLUMNS: Final = frozenset({"device", "kecamatan", "kelurahan"})
# An hour at a 1 s health interval; a guard against a misbehaving device, not a page size.
MAX_HEALTH_POINTS: Final = 3600


def _record(d: Device) -> DeviceRecord:
    site = d.site
    return DeviceRecord(
        id=d.id,
        site_id=d.site_id,
        site_name=site.name if site else "",
        kecamatan=site.kecamatan if site else "",
        kelurahan=site.kelurahan if site else "",
        hardware=d.hardware,
        profile=d.profile,
        status=d.status,
        presence=d.presence,
        presence_at=d.presence_at,
        last_seen_at=d.last_seen_at,
        last_health_at=d.last_health_at,
        last_health=dict(d.last_health) if isinstance(d.last_health, dict) else None,
        health_interval_s=d.health_interval_s,
        agent_version=d.agent_version,
        boot_id=d.boot_id,
        config_version=d.config_version,
        last_seq=d.last_seq,
    )


def _media(m: MediaItem) -> MediaRecord:
    return MediaRecord(id=m.id, device_id=m.device_id, camera=m.camera, kind=m.kind,
                       media_id=m.media_id, event_id=m.event_id, ts_ms=m.ts_ms, path=m.path,
                       size=m.size, created_at=m.created_at)


def _cameras(s: Session, device_id: str | None = None) -> dict[str, tuple[CameraRecord, ...]]:
    """Every camera with stored media, per device, with its newest snapshot: one query for
    the whole fleet (per (device, camera) the max snapshot ts, joined back to its row)."""
    m = MediaItem
    per_camera = (
        select(m.device_id, m.camera,
               func.max(case((m.kind == "snapshot", m.ts_ms))).label("snap_ts"))
        .where(m.complete.is_(True))
        .group_by(m.device_id, m.camera)
    )
    if device_id is not None:
        per_camera = per_camera.where(m.device_id == device_id)
    latest = per_camera.subquery()
    snap = aliased(MediaItem)
    query = (
        select(latest.c.device_id, latest.c.camera, snap)
        .outerjoin(snap, and_(snap.device_id == latest.c.device_id,
                              snap.camera == latest.c.camera, snap.kind == "snapshot",
                              snap.complete.is_(True), snap.ts_ms == latest.c.snap_ts))
        # Two snapshots of one camera with the same ts: the greater id wins, consistently.
        .order_by(latest.c.device_id, latest.c.camera, snap.id.desc())
    )
    found: dict[str, list[CameraRecord]] = defaultdict(list)
    for dev, camera, item in s.execute(query):
        cams = found[dev]
        if cams and cams[-1].camera == camera:
            continue
        cams.append(CameraRecord(camera, None if item is None else _media(item)))
    return {dev: tuple(cams) for dev, cams in found.items()}


def load_devices(registry: Registry) -> list[DeviceRecord]:
    """Every device with its cameras' newest snapshots (two queries, whatever the size)."""
    with registry.session() as s:
        found = s.scalars(select(Device).options(joinedload(Device.site))).all()
        cameras = _cameras(s)
        return [replace(_record(d), cameras=cameras.get(d.id, ())) for d in found]


def load_device(registry: Registry, device_id: str) -> DeviceRecord | None:
    with registry.session() as s:
        d = s.scalars(
            select(Device).options(joinedload(Device.site)).where(Device.id == device_id)
        ).first()
        if d is None:
            return None
        return replace(_record(d), cameras=_cameras(s, device_id).get(device_id, ()))


def device_exists(registry: Registry, device_id: str) -> bool:
    with registry.session() as s:
        return s.scalars(select(Device.id).where(Device.id == device_id)).first() is not None


def load_media(registry: Registry, item_id: str) -> MediaRecord | None:
    """A complete media item by its row id (``device:kind:media id``)."""
    with registry.session() as s:
        m = s.get(MediaItem, item_id)
        return None if m is None or not m.complete else _media(m)


def list_media(registry: Registry, device_id: str, *, kind: str | None = None,
               camera: str | None = None, limit: int = 50) -> list[MediaRecord]:
    """A device's complete media, newest (device ts) first."""
    query = select(MediaItem).where(MediaItem.device_id == device_id,
                                    MediaItem.complete.is_(True))
    if kind is not None:
        query = query.where(MediaItem.kind == kind)
    if camera is not None:
        query = query.where(MediaItem.camera == camera)
    query = query.order_by(MediaItem.ts_ms.desc(), MediaItem.id.desc()).limit(limit)
    with registry.session() as s:
        return [_media(m) for m in s.scalars(query).all()]


def load_worker_stats(registry: Registry) -> list[WorkerRecord]:
    with registry.session() as s:
        return [
            WorkerRecord(w.worker_id, dict(w.counters or {}), w.updated_at)
            for w in s.scalars(select(IngestWorkerStats)).all()
        ]


def registry_ok(registry: Registry) -> bool:
    """One cheap round trip; False if the database cannot be reached."""
    try:
        with registry.session() as s:
            s.scalars(select(IngestWorkerStats.worker_id).limit(1)).all()
    except Exception:  # any driver error means "not usable now" to a health check
        return False
    return True


def health_last_hour_query(device_id: str) -> str:
    """InfluxQL for one device's last hour of health, oldest first."""
    check_device_id(device_id)
    return (
        f'SELECT * FROM "{HEALTH_MEASUREMENT}" WHERE "device" = {quote_string(device_id)} '
        f"AND time > now() - 1h ORDER BY time ASC LIMIT {MAX_HEALTH_POINTS}"
    )


def health_last_hour(influx: InfluxClient, device_id: str) -> list[dict[str, Any]]:
    """Points as ``{"time": ms, field: value, ...}``; fields absent at a point are left out.

    Raises ``hub.influx.InfluxError`` when InfluxDB cannot answer.
    """
    points = []
    for row in rows(influx.query(health_last_hour_query(device_id), epoch="ms")):
        points.append({k: v for k, v in row.items() if v is not None and k not in _TAG_COLUMNS})
    return points
