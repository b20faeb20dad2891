"""Engine values <-> table rows, and the monotone merge that makes alert writes idempotent.

SQLite hands ``DateTime(timezone=True)`` back without a zone; every time read here is taken
as UTC, so a round trip through either database gives back an equal value.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

from hub.alerts.model import (
    STATUS_RANK,
    Alert,
    AlertEvent,
    Notification,
    Silence,
    Status,
    Subject,
    SubjectKind,
    Tracker,
)
from hub.alerts.rules import SEVERITY_RANK
from hub.alerts.tables import AlertEventRow, AlertRow, AlertTrackerRow, SilenceRow


def utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def subject_dict(s: Subject) -> dict[str, str]:
    return {"kind": s.kind, "kecamatan": s.kecamatan, "kelurahan": s.kelurahan,
            "device": s.device, "camera": s.camera, "zone": s.zone}


def subject_from(d: dict[str, Any]) -> Subject:
    return Subject(cast(SubjectKind, d["kind"]), d["kecamatan"], d["kelurahan"],
                   d.get("device", ""), d.get("camera", ""), d.get("zone", ""))


# --- trackers ------------------------------------------------------------------------------

def tracker_to_row(t: Tracker, row: AlertTrackerRow, now: datetime) -> None:
    row.subject, row.rule = t.subject.key, t.rule_id
    row.subject_info = subject_dict(t.subject)
    row.condition, row.condition_since = t.condition, t.condition_since
    row.transitions = [x.isoformat() for x in t.transitions]
    row.flapping, row.last_occurrence = t.flapping, t.last_occurrence
    row.last_resolved_at, row.updated_at = t.last_resolved_at, now


def tracker_from_row(row: AlertTrackerRow) -> Tracker:
    return Tracker(
        subject=subject_from(row.subject_info), rule_id=row.rule, condition=row.condition,
        condition_since=utc(row.condition_since),
        transitions=tuple(_utc(datetime.fromisoformat(x)) for x in row.transitions),
        flapping=row.flapping, last_occurrence=row.last_occurrence,
        last_resolved_at=utc(row.last_resolved_at),
    )


# --- alerts --------------------------------------------------------------------------------

def alert_to_row(a: Alert, row: AlertRow, now: datetime) -> None:
    s = a.subject
    row.id, row.subject, row.rule, row.occurrence = a.id, s.key, a.rule_id, a.occurrence
    row.subject_kind, row.kecamatan, row.kelurahan = s.kind, s.kecamatan, s.kelurahan
    row.device, row.camera, row.zone = s.device, s.camera, s.zone
    row.status, row.severity = a.status, a.severity
    row.desk, row.desks = a.desks[0], "," + ",".join(a.desks) + ","
    row.since, row.fired_at, row.notified_at = a.since, a.fired_at, a.notified_at
    row.acked_at, row.acked_by, row.ack_note = a.acked_at, a.acked_by, a.ack_note
    row.assigned_to, row.resolved_at, row.clear_since = a.assigned_to, a.resolved_at, a.clear_since
    row.value, row.detail, row.flapping = a.value, a.detail, a.flapping
    row.escalation_level, row.suppressed_by = a.escalation_level, a.suppressed_by
    row.group_id, row.members, row.previous_id = a.group_id, list(a.members), a.previous_id
    row.notified, row.updated_at = sorted(a.notified), now


def alert_from_row(row: AlertRow) -> Alert:
    subject = Subject(cast(SubjectKind, row.subject_kind), row.kecamatan, row.kelurahan,
                      row.device, row.camera, row.zone)
    return Alert(
        subject=subject, rule_id=row.rule, occurrence=row.occurrence,
        status=cast(Status, row.status), severity=row.severity,
        desks=tuple(d for d in row.desks.split(",") if d), since=_utc(row.since),
        fired_at=utc(row.fired_at), notified_at=utc(row.notified_at),
        acked_at=utc(row.acked_at), acked_by=row.acked_by, ack_note=row.ack_note,
        assigned_to=row.assigned_to, resolved_at=utc(row.resolved_at),
        clear_since=utc(row.clear_since), value=row.value, detail=row.detail,
        flapping=row.flapping, escalation_level=row.escalation_level,
        suppressed_by=row.suppressed_by, group_id=row.group_id, members=tuple(row.members),
        previous_id=row.previous_id, notified=frozenset(row.notified),
    )


def merge_alerts(stored: Alert, new: Alert) -> Alert:
    """Combine two writers' views of one alert so neither step is undone.

    The lifecycle only moves forward (pending < firing < acknowledged < resolved), so the
    further status wins with its own timestamps; notifications sent, escalation level and
    severity only grow; everything else is the newer writer's.
    """
    ahead, behind = (stored, new) if STATUS_RANK[stored.status] > STATUS_RANK[new.status] else (
        new, stored)
    desks = tuple(dict.fromkeys((*new.desks, *stored.desks)))
    severity = max(stored.severity, new.severity, key=lambda s: SEVERITY_RANK.get(s, 0))
    notified_at = min((t for t in (stored.notified_at, new.notified_at) if t), default=None)
    return replace(
        new,
        status=ahead.status,
        fired_at=ahead.fired_at or behind.fired_at,
        acked_at=ahead.acked_at or behind.acked_at,
        acked_by=ahead.acked_by or behind.acked_by,
        ack_note=ahead.ack_note or behind.ack_note,
        resolved_at=ahead.resolved_at,
        notified=stored.notified | new.notified,
        notified_at=notified_at,
        escalation_level=max(stored.escalation_level, new.escalation_level),
        severity=severity,
        desks=desks,
        members=tuple(sorted(set(stored.members) | set(new.members))),
        suppressed_by="" if ahead.status == "resolved" else new.suppressed_by,
    )


# --- events, silences, notifications --------------------------------------------------------

def event_from_row(row: AlertEventRow) -> AlertEvent:
    return AlertEvent(row.key, row.alert_id, row.kind, _utc(row.at), row.actor, row.note)


def silence_from_row(row: SilenceRow) -> Silence:
    return Silence(row.id, tuple((str(k), str(v)) for k, v in row.matchers), row.reason,
                   row.created_by, _utc(row.starts_at), _utc(row.ends_at))


def notification_body(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id, "kind": n.kind, "alert_id": n.alert_id, "rule_id": n.rule_id,
        "rule_kind": n.rule_kind, "subject": subject_dict(n.subject), "severity": n.severity,
        "desks": list(n.desks), "at": n.at.isoformat(), "since": n.since.isoformat(),
        "value": n.value, "detail": n.detail, "members": n.members, "step": n.step,
    }


def notification_from_body(d: dict[str, Any]) -> Notification:
    return Notification(
        id=d["id"], kind=d["kind"], alert_id=d["alert_id"], rule_id=d["rule_id"],
        rule_kind=d["rule_kind"], subject=subject_from(d["subject"]), severity=d["severity"],
        desks=tuple(d["desks"]), at=_utc(datetime.fromisoformat(d["at"])),
        since=_utc(datetime.fromisoformat(d["since"])), value=d["value"], detail=d["detail"],
        members=d["members"], step=d["step"],
    )
