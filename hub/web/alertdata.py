"""What the alert console reads: filtered alert lists, one alert with its history, members and
camera media, and the JSON shape of an alert. Reads only; actions go through ``AlertStore``."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import desc, func, or_, select
from werkzeug.datastructures import MultiDict

from hub.alerts import codec
from hub.alerts.model import ACTIVE, Alert, AlertEvent, notification_for
from hub.alerts.rules import DESK_ID_PATTERN, SEVERITY_RANK, RuleSet
from hub.alerts.store import history
from hub.alerts.tables import AlertRow
from hub.alerts.texts import LANGS, title, where
from hub.registry.db import Registry
from hub.registry.models import MediaItem, Site
from hub.web.queryargs import QueryError, limit_of, single
from hub.web.timefmt import time_json

# "open": what needs someone (firing or acknowledged); "active" adds pending.
STATES: Final = ("open", "active", "pending", "firing", "acknowledged", "resolved", "all")
SEVERITIES: Final = tuple(SEVERITY_RANK)
DEFAULT_LIMIT: Final = 200
MAX_LIMIT: Final = 1000
MEDIA_MARGIN_S: Final = 60.0  # media this long before the alert began is still its context
MEDIA_LIMIT: Final = 12
_ALERT_ID: Final = re.compile(r"[0-9a-f]{24}")


@dataclass(frozen=True)
class AlertFilter:
    desk: str | None = None
    severity: str | None = None
    kecamatan: str | None = None
    state: str = "open"
    suppressed: bool = False  # include alerts a group, an inhibition or a silence stands for
    limit: int = DEFAULT_LIMIT

    def query_args(self) -> dict[str, str]:
        """Back to URL parameters (only what differs from the defaults)."""
        out = {k: v for k, v in (("desk", self.desk), ("severity", self.severity),
                                 ("kecamatan", self.kecamatan)) if v}
        if self.state != "open":
            out["state"] = self.state
        if self.suppressed:
            out["suppressed"] = "1"
        return out


def _one(args: MultiDict[str, str], key: str) -> str | None:
    return single(args, key).strip() or None


def parse_filter(args: MultiDict[str, str], desks: Mapping[str, object]) -> AlertFilter:
    desk = _one(args, "desk")
    if desk is not None and (not re.fullmatch(DESK_ID_PATTERN, desk) or desk not in desks):
        raise QueryError(f"unknown desk {desk!r}; known: {', '.join(sorted(desks))}")
    severity = _one(args, "severity")
    if severity is not None and severity not in SEVERITIES:
        raise QueryError(f"severity must be one of {', '.join(SEVERITIES)}")
    kecamatan = _one(args, "kecamatan")
    if kecamatan is not None and len(kecamatan) > 100:
        raise QueryError("kecamatan is at most 100 characters")
    state = _one(args, "state") or "open"
    if state not in STATES:
        raise QueryError(f"state must be one of {', '.join(STATES)}")
    suppressed = _one(args, "suppressed") or "0"
    if suppressed not in ("0", "1"):
        raise QueryError("suppressed must be 0 or 1")
    limit = limit_of(_one(args, "limit"), DEFAULT_LIMIT, MAX_LIMIT)
    return AlertFilter(desk, severity, kecamatan, state, suppressed == "1", limit)


def _statuses(state: str) -> tuple[str, ...] | None:
    return {"open": ("firing", "acknowledged"), "active": ACTIVE, "all": None}.get(
        state, (state,))


def list_alerts(registry: Registry, f: AlertFilter) -> list[Alert]:
    """Newest first by when they began, then ordered for the desk: firing before acknowledged
    before pending before resolved, the most severe first."""
    q = select(AlertRow)
    statuses = _statuses(f.state)
    if statuses is not None:
        q = q.where(AlertRow.status.in_(statuses))
    if f.desk:
        escaped = f.desk.replace("_", r"\_")
        q = q.where(AlertRow.desks.like(f"%,{escaped},%", escape="\\"))
    if f.severity:
        q = q.where(AlertRow.severity == f.severity)
    if f.kecamatan:
        q = q.where(AlertRow.kecamatan == f.kecamatan)
    if not f.suppressed:
        q = q.where(or_(AlertRow.suppressed_by == "", AlertRow.status == "resolved"))
    q = q.order_by(desc(AlertRow.since), AlertRow.id).limit(f.limit)
    with registry.session() as s:
        alerts = [codec.alert_from_row(r) for r in s.scalars(q)]
    order = {"firing": 0, "acknowledged": 1, "pending": 2, "resolved": 3}
    return sorted(alerts, key=lambda a: (order.get(a.status, 4),
                                         -SEVERITY_RANK.get(a.severity, 0)))


def kecamatan_names(registry: Registry) -> list[str]:
    with registry.session() as s:
        return sorted(n for n in s.scalars(select(Site.kecamatan).distinct()) if n)


def is_alert_id(value: str) -> bool:
    return bool(_ALERT_ID.fullmatch(value))


def load_alert(registry: Registry, alert_id: str) -> Alert | None:
    if not is_alert_id(alert_id):
        return None
    with registry.session() as s:
        row = s.get(AlertRow, alert_id)
        return codec.alert_from_row(row) if row is not None else None


@dataclass(frozen=True)
class AlertDetail:
    alert: Alert
    history: list[AlertEvent]
    members: list[Alert]
    media: list[MediaItem]


def load_detail(registry: Registry, alert_id: str, now: datetime) -> AlertDetail | None:
    alert = load_alert(registry, alert_id)
    if alert is None:
        return None
    with registry.session() as s:
        events = history(s, alert_id)
        members = [codec.alert_from_row(r) for r in s.scalars(
            select(AlertRow).where(AlertRow.id.in_(list(alert.members))))] if (
            alert.members) else []
        media = _media(s, alert, now)
    return AlertDetail(alert, events, sorted(members, key=lambda a: a.subject.key), media)


def _media(s: Any, alert: Alert, now: datetime) -> list[MediaItem]:
    """Snapshots and clips of the alert's device (and camera) while it lasted; ones taken
    for an event (crowd, camera down) first."""
    subject = alert.subject
    if not subject.device:
        return []
    start = alert.since - timedelta(seconds=MEDIA_MARGIN_S)
    end = (alert.resolved_at or now) + timedelta(seconds=MEDIA_MARGIN_S)
    q = select(MediaItem).where(MediaItem.device_id == subject.device,
                                MediaItem.ts_ms >= int(start.timestamp() * 1000),
                                MediaItem.ts_ms <= int(end.timestamp() * 1000))
    if subject.camera:
        q = q.where(MediaItem.camera == subject.camera)
    q = q.order_by(desc(func.length(MediaItem.event_id) > 0), desc(MediaItem.ts_ms))
    return list(s.scalars(q.limit(MEDIA_LIMIT)))


# --- JSON ------------------------------------------------------------------------------------

def texts_of(alert: Alert, rules: RuleSet, now: datetime) -> dict[str, dict[str, str]]:
    """Title and place in both languages, from the same catalog as the notifications."""
    rule = rules.by_id.get(alert.rule_id)
    n = notification_for(alert, "firing", rule.kind if rule else "unknown", now)
    return {"title": {lang: title(n, rule, lang) for lang in LANGS},
            "where": {lang: where(n, lang) for lang in LANGS}}


def alert_json(alert: Alert, rules: RuleSet, now: datetime) -> dict[str, Any]:
    s = alert.subject
    rule = rules.by_id.get(alert.rule_id)
    return {
        "id": alert.id, "rule": alert.rule_id, "rule_kind": rule.kind if rule else None,
        "occurrence": alert.occurrence, "status": alert.status, "severity": alert.severity,
        "desks": list(alert.desks), **texts_of(alert, rules, now),
        "subject": {**codec.subject_dict(s), "key": s.key},
        "since": time_json(alert.since), "fired_at": time_json(alert.fired_at),
        "acked_at": time_json(alert.acked_at), "acked_by": alert.acked_by,
        "ack_note": alert.ack_note, "assigned_to": alert.assigned_to,
        "resolved_at": time_json(alert.resolved_at), "value": alert.value,
        "detail": alert.detail, "flapping": alert.flapping,
        "escalation_level": alert.escalation_level, "suppressed_by": alert.suppressed_by,
        "group_id": alert.group_id, "members": list(alert.members),
        "previous_id": alert.previous_id,
    }


def event_json(e: AlertEvent) -> dict[str, Any]:
    return {"kind": e.kind, "at": time_json(e.at), "actor": e.actor, "note": e.note}


def media_json(m: MediaItem, url: Callable[[str], str | None]) -> dict[str, Any]:
    return {"id": m.id, "kind": m.kind, "camera": m.camera, "event_id": m.event_id,
            "ts": time_json(datetime.fromtimestamp(m.ts_ms / 1000, UTC)),
            "url": url(m.id)}


def detail_json(d: AlertDetail, rules: RuleSet, now: datetime,
                url: Callable[[str], str | None]) -> dict[str, Any]:
    return {
        **alert_json(d.alert, rules, now),
        "history": [event_json(e) for e in d.history],
        "member_alerts": [alert_json(m, rules, now) for m in d.members],
        "media": [media_json(m, url) for m in d.media],
    }
