"""Reads for the web app: registry rows into plain records, and a device's last hour from
InfluxDB. The only module of ``hub.web`` that speaks SQL or InfluxQL."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any, Final

from sqlalchemy import (
    CompoundSelect,
    Select,
    Subquery,
    Text,
    and_,
    case,
    cast,
    func,
    null,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import aliased

from dcor_wire.topics import check_device_id
from hub.influx import InfluxClient, quote_string, rows
from hub.registry.db import Registry
from hub.registry.models import Device, IngestWorkerStats, MediaItem, Site
from hub.web.fleet import (
    CameraRecord,
    DeviceBrief,
    DeviceRecord,
    MediaRecord,
    camera_reports,
)
from hub.web.stats import WorkerRecord

HEALTH_MEASUREMENT: Final = "health"
# Tags the ingest puts on health points; the per-point JSON leaves them out (the device
# document already says where it is).
_TAG_COLUMNS: Final = frozenset({"device", "kecamatan", "kelurahan"})
# An hour at a 1 s health interval; a guard against a misbehaving device, not a page size.
MAX_HEALTH_POINTS: Final = 3600


# The registry columns of a ``DeviceRecord``, read with a Core select: ORM objects (identity
# map, relationship loading) cost more than everything else on a page of thousands of rows.
_COLUMNS: Final = (Device.id, Device.site_id, Site.name, Site.kecamatan, Site.kelurahan,
                   Device.hardware, Device.profile, Device.status, Device.presence,
                   Device.presence_at, Device.last_seen_at, Device.last_health_at,
                   Device.health_interval_s, Device.agent_version, Device.boot_id,
                   Device.config_version, Device.last_seq)
# Ids per IN (...) list: well under any driver's limit on bound parameters.
_ID_CHUNK: Final = 500
# A snapshot's columns, in ``MediaRecord``'s order.
_SNAP_COLUMNS: Final = ("id", "device_id", "camera", "kind", "media_id", "event_id", "ts_ms",
                        "path", "size", "created_at")


def _select(*extra: Any) -> Select[*tuple[Any, ...]]:
    return (select(*_COLUMNS, *extra).select_from(Device)
            .outerjoin(Site, Site.id == Device.site_id))


def _record(row: Sequence[Any], health: Any = None,
            cameras: tuple[CameraRecord, ...] = ()) -> DeviceRecord:
    (dev, site_id, name, kec, kel, hardware, profile, status, presence, presence_at, seen,
     health_at, interval, agent, boot, config_version, seq) = row[:17]
    return DeviceRecord(
        id=dev, site_id=site_id, site_name=name or "", kecamatan=kec or "",
        kelurahan=kel or "", hardware=hardware, profile=profile, status=status,
        presence=presence, presence_at=presence_at, last_seen_at=seen,
        last_health_at=health_at, last_health=dict(health) if isinstance(health, dict) else None,
        health_interval_s=interval, agent_version=agent, boot_id=boot,
        config_version=config_version, last_seq=seq, cameras=cameras)


def _media(m: MediaItem) -> MediaRecord:
    return MediaRecord(id=m.id, device_id=m.device_id, camera=m.camera, kind=m.kind,
                       media_id=m.media_id, event_id=m.event_id, ts_ms=m.ts_ms, path=m.path,
                       size=m.size, created_at=m.created_at)


def _latest_snapshots(device_ids: Sequence[str] | None) -> Subquery:
    """Every camera with stored media (of ``device_ids``, or of the fleet) with its newest
    snapshot's row, if it has one: per (device, camera) the max snapshot ts, joined back to
    its row."""
    m = MediaItem
    per_camera = (
        select(m.device_id, m.camera,
               func.max(case((m.kind == "snapshot", m.ts_ms))).label("snap_ts"))
        .where(m.complete.is_(True))
        .group_by(m.device_id, m.camera)
    )
    if device_ids is not None:
        per_camera = per_camera.where(m.device_id.in_(device_ids))
    latest = per_camera.subquery()
    snap = aliased(MediaItem)
    return (
        select(latest.c.device_id, latest.c.camera.label("cam"),
               *(getattr(snap, c).label(f"snap_{c}") for c in _SNAP_COLUMNS))
        .outerjoin(snap, and_(snap.device_id == latest.c.device_id,
                              snap.camera == latest.c.camera, snap.kind == "snapshot",
                              snap.complete.is_(True), snap.ts_ms == latest.c.snap_ts))
        .subquery("cams")
    )


def _devices_and_cameras(device_ids: Sequence[str] | None) -> CompoundSelect:
    """One statement for devices (every one, or those of ``device_ids``) and their cameras:
    a row per device with its health (camera columns NULL), then a row per camera with media
    (device columns NULL but the id). Joining the two instead would make the database match
    every device against every camera."""
    cams = _latest_snapshots(device_ids)
    snap = [cams.c[f"snap_{c}"] for c in _SNAP_COLUMNS]
    # Typed NULLs: the first SELECT's column types decode both halves (a SQLite datetime is
    # text until its type parses it).
    devices = _select(Device.last_health, type_coerce(null(), cams.c.cam.type),
                      *(type_coerce(null(), c.type) for c in snap))
    if device_ids is not None:
        devices = devices.where(Device.id.in_(device_ids))
    cameras = select(cams.c.device_id, *(null() for _ in range(len(_COLUMNS))), cams.c.cam,
                     *snap)
    return union_all(devices, cameras)


def _records(rows: Iterable[Sequence[Any]]) -> list[DeviceRecord]:
    """Rows of ``_devices_and_cameras`` into records, by id; each camera once, with the
    snapshot of greater id where two have the same ts."""
    devices: dict[str, Sequence[Any]] = {}
    snaps: dict[str, dict[str, Sequence[Any]]] = defaultdict(dict)
    cam_at = len(_COLUMNS) + 1
    for r in rows:
        camera = r[cam_at]
        if camera is None:
            devices[r[0]] = r
            continue
        snap = r[cam_at + 1:]
        best = snaps[r[0]].get(camera)
        if best is None or (snap[0] is not None and snap[0] > best[0]):
            snaps[r[0]][camera] = snap
    out = []
    for dev in sorted(devices):  # Python's order: a database's collation may differ
        found = snaps.get(dev, {})
        cams = tuple(CameraRecord(cam, None if found[cam][0] is None
                                  else MediaRecord(*found[cam]))
                     for cam in sorted(found))
        row = devices[dev]
        out.append(_record(row, row[len(_COLUMNS)], cams))
    return out


def load_devices(registry: Registry, ids: Collection[str] | None = None
                 ) -> list[DeviceRecord]:
    """Devices (every one, or those of ``ids``) with health and their cameras' newest
    snapshots, sorted by id: one statement per chunk of ids, whatever the fleet's size."""
    wanted = None if ids is None else sorted(set(ids))
    if wanted == []:
        return []
    with registry.session() as s:
        conn = s.connection()
        if wanted is None:
            return _records(conn.execute(_devices_and_cameras(None)).all())
        return [rec for i in range(0, len(wanted), _ID_CHUNK)
                for rec in _records(
                    conn.execute(_devices_and_cameras(wanted[i:i + _ID_CHUNK])).all())]


def iter_index(registry: Registry) -> Iterator[DeviceBrief]:
    """Every device without its health blob and media: only the ``cameras`` part of the
    health is read (the database extracts it), for the cameras' own states. An iterator,
    a thousand rows at a time: nothing of a city's fleet lives longer than one step of the
    caller's pass over it (the session stays open until the end of that pass)."""
    cameras = cast(Device.last_health["cameras"], Text)  # as text: decoded only if needed
    query = (select(Device.id, Device.site_id, Site.name, Site.kecamatan, Site.kelurahan,
                    Device.status, Device.presence, Device.presence_at, Device.last_health_at,
                    Device.health_interval_s, cameras)
             .select_from(Device).outerjoin(Site, Site.id == Device.site_id))
    with registry.session() as s:
        for part in s.connection().execute(query).partitions(1000):
            for (dev, site_id, name, kec, kel, status, presence, presence_at, health_at,
                 interval, cams) in part:
                yield DeviceBrief(dev, site_id, name or "", kec or "", kel or "", status,
                                  presence, presence_at, health_at, interval,
                                  _camera_reports(cams))


def _camera_reports(raw: Any) -> tuple[tuple[str, str], ...]:
    """The states the cameras of a health payload report, its JSON decoded only when one
    reports a state: the wire leaves out the default (streaming), so most boxes' text has
    no "state" at all."""
    if not isinstance(raw, str) or '"state"' not in raw:
        return ()
    return camera_reports(json.loads(raw))


def load_ids(registry: Registry, *, kecamatan: str | None = None,
             kelurahan: str | None = None) -> list[str]:
    """The ids of the devices at a place (or of every device), in no particular order."""
    query = select(Device.id)
    if kecamatan is not None or kelurahan is not None:
        query = query.join(Site, Site.id == Device.site_id)
        if kecamatan is not None:
            query = query.where(Site.kecamatan == kecamatan)
        if kelurahan is not None:
            query = query.where(Site.kelurahan == kelurahan)
    with registry.session() as s:
        return list(s.connection().scalars(query).all())


def load_device(registry: Registry, device_id: str) -> DeviceRecord | None:
    found = load_devices(registry, [device_id])
    return found[0] if found else None


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
