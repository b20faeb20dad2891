"""Reads for the device page: its history from InfluxDB (``hub.web.series``), the media of
its events, its desired and reported configuration (``hub.rollout`` tables) and its audit
trail. Each part fails on its own: InfluxDB down still shows the registry's parts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import or_, select

from hub.influx import InfluxClient, rows
from hub.registry.db import Registry
from hub.registry.models import MediaItem
from hub.rollout.tables import ConfigReportRow, DesiredConfigRow
from hub.security.audit import AuditRecord
from hub.security.models import AuditEntry
from hub.web import series as q
from hub.web.fleet import MediaRecord

AUDIT_LIMIT: Final = 50


@dataclass
class History:
    health: dict[str, dict[str, q.Points]] = field(default_factory=dict)
    cameras: dict[str, dict[str, q.Points]] = field(default_factory=dict)
    counts: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


def history(influx: InfluxClient, device_id: str, r: q.Range) -> History:
    """Raises ``hub.influx.InfluxError`` (or ValueError on a body that is not JSON)."""
    h = History()
    h.health = q.split_health(influx.query(q.health_query(device_id, r), epoch="ms"))
    h.cameras = q.split_cameras(influx.query(q.camera_query(device_id, r), epoch="ms"))
    h.counts = q.count_rows(influx.query(q.counts_query(device_id, r), epoch="ms"))
    h.events = [{k: v for k, v in row.items() if v is not None}
                for row in rows(influx.query(q.events_query(device_id, r), epoch="ms"))]
    return h


def event_media(registry: Registry, device_id: str, event_ids: list[str]
                ) -> dict[str, list[MediaRecord]]:
    """Snapshots and clips taken for these events, per event id."""
    wanted = [e for e in event_ids if e]
    if not wanted:
        return {}
    out: dict[str, list[MediaRecord]] = {}
    with registry.session() as s:
        found = s.scalars(select(MediaItem).where(
            MediaItem.device_id == device_id, MediaItem.complete.is_(True),
            MediaItem.event_id.in_(wanted)).order_by(MediaItem.kind.desc(), MediaItem.ts_ms))
        for m in found:
            out.setdefault(m.event_id, []).append(MediaRecord(
                id=m.id, device_id=m.device_id, camera=m.camera, kind=m.kind,
                media_id=m.media_id, event_id=m.event_id, ts_ms=m.ts_ms, path=m.path,
                size=m.size, created_at=m.created_at))
    return out


def _config_of(envelope: str) -> str:
    """The configuration inside a signed envelope, pretty-printed (or "" if unreadable)."""
    try:
        doc = json.loads(envelope).get("doc", {})
        return json.dumps(doc.get("config", {}), indent=2, ensure_ascii=False, sort_keys=True)
    except (ValueError, AttributeError):
        return ""


def config_state(registry: Registry, device_id: str) -> dict[str, Any]:
    """The newest desired document and the newest report of this device (issue 6's tables)."""
    with registry.session() as s:
        desired = s.scalars(select(DesiredConfigRow).where(
            DesiredConfigRow.device_id == device_id)
            .order_by(DesiredConfigRow.version.desc()).limit(1)).first()
        reported = s.get(ConfigReportRow, device_id)
        out: dict[str, Any] = {"desired": None, "reported": None}
        if desired is not None:
            out["desired"] = {
                "version": desired.version, "digest": desired.digest, "kind": desired.kind,
                "rollout": desired.rollout_id, "author": desired.author,
                "created_at": desired.created_at, "published_at": desired.published_at,
                "config": _config_of(desired.envelope)}
        if reported is not None:
            out["reported"] = {
                "status": reported.status, "version": reported.version,
                "digest": reported.digest, "desired_version": reported.desired_version,
                "reason": reported.reason, "error": reported.error,
                "received_at": reported.received_at}
        out["in_sync"] = bool(desired is not None and reported is not None
                              and reported.digest == desired.digest)
        return out


def audit_trail(registry: Registry, device_id: str, limit: int = AUDIT_LIMIT
                ) -> list[AuditRecord]:
    """Entries whose target is this device: its enrollment, pushes, revocation, views of its
    media (``<device>:snapshot:...``), actions on its routes (``<device>/...``). Device ids
    hold no LIKE wildcards (``[a-z0-9-]``)."""
    with registry.session() as s:
        found = s.scalars(select(AuditEntry).where(or_(
            AuditEntry.target == device_id, AuditEntry.target.like(f"{device_id}:%"),
            AuditEntry.target.like(f"{device_id}/%"))).order_by(AuditEntry.id.desc())
            .limit(limit))
        return [AuditRecord(ts=a.ts, actor=a.actor, role=a.role, action=a.action,
                            target=a.target, source=a.source, result=a.result,
                            detail=dict(a.detail or {})) for a in found]
