"""Value types of the alert engine. Immutable; times are timezone-aware UTC datetimes.

An alert is keyed by (subject, rule) and numbered by occurrence: occurrence ``n + 1`` starts
when the condition comes back after occurrence ``n`` resolved, and links to it. Its id is a
digest of that triple, so every hub worker derives the same id for the same alert.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

SubjectKind = Literal["kelurahan", "device", "camera", "zone"]
Status = Literal["pending", "firing", "acknowledged", "resolved"]
ACTIVE: Final = ("pending", "firing", "acknowledged")
STATUS_RANK: Final[dict[str, int]] = {"pending": 0, "firing": 1, "acknowledged": 2, "resolved": 3}
NotificationKind = Literal["firing", "flapping", "escalated", "resolved"]


@dataclass(frozen=True, slots=True)
class Subject:
    """What an alert is about, with its place in kecamatan -> kelurahan -> device -> camera."""

    kind: SubjectKind
    kecamatan: str
    kelurahan: str
    device: str = ""
    camera: str = ""
    zone: str = ""

    @property
    def key(self) -> str:
        if self.kind == "kelurahan":
            return f"kelurahan:{self.kecamatan}/{self.kelurahan}"
        if self.kind == "device":
            return f"device:{self.device}"
        if self.kind == "camera":
            return f"camera:{self.device}/{self.camera}"
        return f"zone:{self.device}/{self.camera}/{self.zone}"

    def labels(self) -> dict[str, str]:
        return {
            "subject": self.key, "kind": self.kind, "kecamatan": self.kecamatan,
            "kelurahan": self.kelurahan, "device": self.device, "camera": self.camera,
            "zone": self.zone,
        }


@dataclass(frozen=True, slots=True)
class Observation:
    """One reading of a rule's condition for one subject at time ``at``."""

    subject: Subject
    rule_id: str
    active: bool
    at: datetime
    value: float | None = None
    detail: str = ""  # e.g. the camera state that matched


@dataclass(frozen=True, slots=True)
class Tracker:
    """Per (subject, rule) memory between alerts: last condition, flap history, numbering."""

    subject: Subject
    rule_id: str
    condition: bool | None = None
    condition_since: datetime | None = None
    last_at: datetime | None = None
    value: float | None = None
    detail: str = ""
    transitions: tuple[datetime, ...] = ()
    flapping: bool = False
    last_occurrence: int = 0  # occurrences that fired; a pending alert is last + 1
    last_resolved_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.subject.key, self.rule_id)

    @property
    def idle(self) -> bool:
        """Nothing to remember: behaves exactly like a key never observed."""
        return (self.condition is not True and not self.transitions and not self.flapping
                and self.last_occurrence == 0 and self.last_resolved_at is None)

    def durable(self) -> tuple[object, ...] | None:
        """The part worth storing (None when idle). ``last_at``, ``value`` and ``detail``
        change with every reading and are left out so a steady fleet writes nothing."""
        if self.idle:
            return None
        return (self.subject, self.condition, self.condition_since, self.transitions,
                self.flapping, self.last_occurrence, self.last_resolved_at)


def alert_id(subject_key: str, rule_id: str, occurrence: int) -> str:
    raw = f"{subject_key}\x1f{rule_id}\x1f{occurrence}".encode()
    return hashlib.sha256(raw).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Alert:
    subject: Subject
    rule_id: str
    occurrence: int
    status: Status
    severity: str
    desks: tuple[str, ...]
    since: datetime  # condition true since (pending start)
    fired_at: datetime | None = None
    notified_at: datetime | None = None  # first notification; escalation counts from here
    acked_at: datetime | None = None
    acked_by: str = ""
    ack_note: str = ""
    assigned_to: str = ""
    resolved_at: datetime | None = None
    clear_since: datetime | None = None
    value: float | None = None
    detail: str = ""
    flapping: bool = False
    escalation_level: int = 0
    suppressed_by: str = ""  # "silence:<id>", "inhibited:<alert id>", "group:<alert id>"
    group_id: str = ""  # the kelurahan group alert this one belongs to
    members: tuple[str, ...] = ()  # for a group alert: member alert ids
    previous_id: str = ""  # the previous occurrence of (subject, rule)
    notified: frozenset[str] = field(default_factory=frozenset)  # notification kinds sent

    @property
    def id(self) -> str:
        return alert_id(self.subject.key, self.rule_id, self.occurrence)

    @property
    def key(self) -> tuple[str, str]:
        return (self.subject.key, self.rule_id)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


@dataclass(frozen=True, slots=True)
class Silence:
    """Mutes notifications of alerts whose labels match every matcher (fnmatch globs)."""

    id: str
    matchers: tuple[tuple[str, str], ...]
    reason: str
    created_by: str
    starts_at: datetime
    ends_at: datetime

    def active_at(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One line of an alert's history. ``key`` makes a repeated write of it a no-op."""

    key: str
    alert_id: str
    kind: str
    at: datetime
    actor: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class Notification:
    """Something to tell the desks. ``id`` is stable, so a repeat is recognised and dropped."""

    id: str
    kind: NotificationKind
    alert_id: str
    rule_id: str
    rule_kind: str
    subject: Subject
    severity: str
    desks: tuple[str, ...]
    at: datetime
    since: datetime
    value: float | None = None
    detail: str = ""
    members: int = 0  # a group alert: how many alerts it stands for
    step: int = 0  # escalation step, 1-based


@dataclass(frozen=True)
class EngineState:
    """Trackers by (subject key, rule id); only active alerts (by id); silences."""

    trackers: dict[tuple[str, str], Tracker] = field(default_factory=dict)
    alerts: dict[str, Alert] = field(default_factory=dict)
    silences: tuple[Silence, ...] = ()


@dataclass(frozen=True)
class Evaluation:
    """Result of one step: the new state and what changed, for the store and the senders."""

    state: EngineState
    notifications: tuple[Notification, ...] = ()
    events: tuple[AlertEvent, ...] = ()
    alerts: tuple[Alert, ...] = ()  # every alert whose record changed, resolved ones too
    removed: tuple[str, ...] = ()  # pending alerts whose condition cleared before firing
    trackers: tuple[Tracker, ...] = ()  # trackers whose ``durable()`` part changed


def notification_for(
    alert: Alert, kind: NotificationKind, rule_kind: str, now: datetime, step: int = 0
) -> Notification:
    suffix = f"{kind}:{step}" if kind == "escalated" else kind
    return Notification(
        id=f"{alert.id}:{suffix}", kind=kind, alert_id=alert.id, rule_id=alert.rule_id,
        rule_kind=rule_kind, subject=alert.subject, severity=alert.severity, desks=alert.desks,
        at=now, since=alert.since, value=alert.value, detail=alert.detail,
        members=len(alert.members), step=step,
    )
