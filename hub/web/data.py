"""Reads for the web app: registry rows into plain records, and a device's last hour from
InfluxDB. The only module of ``hub.web`` that speaks SQL or InfluxQL."""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from dcor_wire.topics import check_device_id
from hub.influx import InfluxClient, quote_string, rows
from hub.registry.db import Registry
from hub.registry.models import Device, IngestWorkerStats
from hub.web.fleet import DeviceRecord
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


def load_devices(registry: Registry) -> list[DeviceRecord]:
    with registry.session() as s:
        found = s.scalars(select(Device).options(joinedload(Device.site))).all()
        return [_record(d) for d in found]


def load_device(registry: Registry, device_id: str) -> DeviceRecord | None:
    with registry.session() as s:
        d = s.scalars(
            select(Device).options(joinedload(Device.site)).where(Device.id == device_id)
        ).first()
        return None if d is None else _record(d)


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
