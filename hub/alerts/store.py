"""Alert state in the registry: load it, evaluate, save it back; the notification outbox.

Alert state lives in the SQL registry, not in a process, so any hub worker can evaluate and
a restart picks up exactly where the last step ended. ``AlertStore.step`` runs load ->
evaluate -> save in one transaction that first takes the ``alert_locks`` row, so evaluators
on several workers take turns (SQLite and PostgreSQL alike). Writes are idempotent on their
own too: alerts are merged by their unique (subject, rule, occurrence) without ever moving
backwards, and events, notifications and deliveries are insert-if-absent by stable keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from hub.alerts import codec
from hub.alerts.engine import evaluate
from hub.alerts.model import (
    ACTIVE,
    Alert,
    AlertEvent,
    EngineState,
    Evaluation,
    Notification,
    Observation,
    Silence,
    Tracker,
)
from hub.alerts.observe import DeviceFacts
from hub.alerts.rules import RuleSet
from hub.alerts.tables import (
    AlertEventRow,
    AlertLockRow,
    AlertRow,
    AlertTrackerRow,
    DeliveryRow,
    NotificationRow,
    SilenceRow,
)
from hub.registry.db import Registry
from hub.registry.models import Base, Device, Site
from hub.state import device_state

ENGINE_LOCK = "engine"


def lock(session: Session, name: str, holder: str, now: datetime) -> None:
    """Take the named lock row for the rest of the transaction (created on first use)."""
    updated = session.execute(
        update(AlertLockRow).where(AlertLockRow.name == name).values(holder=holder, at=now)
    ).rowcount  # type: ignore[attr-defined]
    if updated:
        return
    try:
        with session.begin_nested():
            session.add(AlertLockRow(name=name, holder=holder, at=now))
    except IntegrityError:
        pass  # another worker created it first; the update below waits for its commit
    session.execute(
        update(AlertLockRow).where(AlertLockRow.name == name).values(holder=holder, at=now)
    )


def load_state(session: Session, now: datetime) -> EngineState:
    trackers = [codec.tracker_from_row(r) for r in session.scalars(select(AlertTrackerRow))]
    alerts = [codec.alert_from_row(r)
              for r in session.scalars(select(AlertRow).where(AlertRow.status.in_(ACTIVE)))]
    return EngineState(
        trackers={t.key: t for t in trackers},
        alerts={a.id: a for a in alerts},
        silences=tuple(active_silences(session, now)),
    )


def save(session: Session, result: Evaluation, now: datetime,
         channels: Sequence[str] = ()) -> list[Notification]:
    """Write one step's changes; returns the notifications that were new to the store."""
    for tracker in result.trackers:
        _save_tracker(session, tracker, now)
    for alert in result.alerts:
        _save_alert(session, alert, now)
    if result.removed:
        session.execute(delete(AlertRow).where(AlertRow.id.in_(result.removed),
                                               AlertRow.status == "pending"))
    for e in result.events:
        _insert_absent(session, AlertEventRow.key, e.key, AlertEventRow(
            key=e.key, alert_id=e.alert_id, kind=e.kind, at=e.at, actor=e.actor, note=e.note))
    fresh = []
    for n in result.notifications:
        row = NotificationRow(id=n.id, alert_id=n.alert_id, kind=n.kind, created_at=now,
                              body=codec.notification_body(n))
        if _insert_absent(session, NotificationRow.id, n.id, row):
            fresh.append(n)
            for channel in channels:
                session.add(DeliveryRow(notification_id=n.id, channel=channel, status="pending",
                                        next_at=now))
    session.flush()
    return fresh


def _save_tracker(session: Session, t: Tracker, now: datetime) -> None:
    row = session.scalar(select(AlertTrackerRow).where(
        AlertTrackerRow.subject == t.subject.key, AlertTrackerRow.rule == t.rule_id))
    if t.durable() is None:
        if row is not None and row.last_occurrence == 0:
            session.delete(row)
        return
    if row is None:
        row = AlertTrackerRow()
        codec.tracker_to_row(t, row, now)
        try:
            with session.begin_nested():
                session.add(row)
            return
        except IntegrityError:
            row = session.scalars(select(AlertTrackerRow).where(
                AlertTrackerRow.subject == t.subject.key, AlertTrackerRow.rule == t.rule_id)
            ).one()
    occurrence = max(row.last_occurrence, t.last_occurrence)
    codec.tracker_to_row(t, row, now)
    row.last_occurrence = occurrence


def _save_alert(session: Session, alert: Alert, now: datetime) -> None:
    row = session.get(AlertRow, alert.id)
    if row is None:
        row = AlertRow()
        codec.alert_to_row(alert, row, now)
        try:
            with session.begin_nested():
                session.add(row)
            return
        except IntegrityError:  # another worker wrote the same occurrence meanwhile
            row = session.get(AlertRow, alert.id, populate_existing=True)
            assert row is not None
    codec.alert_to_row(codec.merge_alerts(codec.alert_from_row(row), alert), row, now)


def _insert_absent(session: Session, column: InstrumentedAttribute[str], key: str,
                   row: Base) -> bool:
    """Add ``row`` unless one with this unique ``key`` exists (here or, racing, elsewhere)."""
    if session.scalar(select(column).where(column == key)) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(row)
        return True
    except IntegrityError:
        return False


# --- silences, reading -----------------------------------------------------------------------

def add_silence(session: Session, silence: Silence) -> None:
    if silence.ends_at <= silence.starts_at:
        raise ValueError("a silence must end after it starts")
    session.merge(SilenceRow(id=silence.id, matchers=[list(m) for m in silence.matchers],
                             reason=silence.reason, created_by=silence.created_by,
                             starts_at=silence.starts_at, ends_at=silence.ends_at))


def expire_silence(session: Session, silence_id: str, now: datetime) -> None:
    session.execute(update(SilenceRow).where(SilenceRow.id == silence_id,
                                             SilenceRow.ends_at > now).values(ends_at=now))


def active_silences(session: Session, now: datetime) -> list[Silence]:
    """Silences not yet over, including ones that start later (the engine checks times)."""
    rows = session.scalars(select(SilenceRow).where(SilenceRow.ends_at > now)
                           .order_by(SilenceRow.starts_at, SilenceRow.id))
    return [codec.silence_from_row(r) for r in rows]


def get_alert(session: Session, alert_id: str) -> Alert | None:
    row = session.get(AlertRow, alert_id)
    return codec.alert_from_row(row) if row is not None else None


def history(session: Session, alert_id: str) -> list[AlertEvent]:
    rows = session.scalars(select(AlertEventRow).where(AlertEventRow.alert_id == alert_id)
                           .order_by(AlertEventRow.at, AlertEventRow.id))
    return [codec.event_from_row(r) for r in rows]


def notifications_after(session: Session, seq: int, limit: int = 100
                        ) -> list[tuple[int, Notification]]:
    """Notifications stored after cursor ``seq``, oldest first: what a live view follows."""
    rows = session.scalars(select(NotificationRow).where(NotificationRow.seq > seq)
                           .order_by(NotificationRow.seq).limit(limit))
    return [(r.seq, codec.notification_from_body(r.body)) for r in rows]


def load_device_facts(session: Session, now: datetime) -> list[DeviceFacts]:
    """Every registered device with its place and state (``hub.state``), for ``observe``."""
    rows = session.execute(select(Device, Site).join(Site, Device.site_id == Site.id))
    return [
        DeviceFacts(
            device_id=dev.id, kecamatan=site.kecamatan, kelurahan=site.kelurahan,
            state=device_state(
                status=dev.status, presence=dev.presence, last_health_at=codec.utc(
                    dev.last_health_at), presence_at=codec.utc(dev.presence_at),
                health_interval_s=dev.health_interval_s, now=now),
            health=dev.last_health,
        )
        for dev, site in rows
    ]


# --- delivery outbox -------------------------------------------------------------------------

def claim_deliveries(session: Session, channel: str, worker: str, now: datetime,
                     lease_s: float = 60.0, limit: int = 50) -> list[Notification]:
    """Due deliveries of ``channel`` this worker now holds for ``lease_s`` (no one else gets
    them meanwhile); report each with ``mark_delivered`` or ``mark_failed``."""
    due = session.execute(
        select(DeliveryRow.id, DeliveryRow.notification_id)
        .where(DeliveryRow.channel == channel, DeliveryRow.status == "pending",
               DeliveryRow.next_at <= now)
        .order_by(DeliveryRow.next_at, DeliveryRow.id).limit(limit)).all()
    held = []
    for row_id, notification_id in due:
        taken = session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id == row_id, DeliveryRow.status == "pending",
                   (DeliveryRow.lease_until.is_(None)) | (DeliveryRow.lease_until <= now))
            .values(claimed_by=worker, lease_until=now + timedelta(seconds=lease_s))
        ).rowcount  # type: ignore[attr-defined]
        if taken:
            held.append(notification_id)
    if not held:
        return []
    rows = session.scalars(select(NotificationRow).where(NotificationRow.id.in_(held))
                           .order_by(NotificationRow.seq))
    return [codec.notification_from_body(r.body) for r in rows]


def mark_delivered(session: Session, notification_id: str, channel: str,
                   now: datetime) -> None:
    session.execute(update(DeliveryRow).where(
        DeliveryRow.notification_id == notification_id, DeliveryRow.channel == channel
    ).values(status="sent", delivered_at=now, lease_until=None,
             attempts=DeliveryRow.attempts + 1))


def mark_failed(session: Session, notification_id: str, channel: str, now: datetime,
                error: str, retry_at: datetime | None) -> None:
    """Count a failed delivery; retry at ``retry_at``, or give up when it is None."""
    values: dict[str, object] = {"attempts": DeliveryRow.attempts + 1, "last_error": error[:2000],
                                 "lease_until": None}
    if retry_at is None:
        values["status"] = "failed"
    else:
        values["next_at"] = retry_at
    session.execute(update(DeliveryRow).where(
        DeliveryRow.notification_id == notification_id, DeliveryRow.channel == channel
    ).values(**values))


# --- the whole step --------------------------------------------------------------------------

class AlertStore:
    """Alert state in a ``Registry``. Each method is one transaction."""

    def __init__(self, registry: Registry, worker: str = "hub") -> None:
        self.registry = registry
        self.worker = worker

    @contextmanager
    def _locked(self, now: datetime) -> Iterator[Session]:
        with self.registry.session() as session:
            lock(session, ENGINE_LOCK, self.worker, now)
            yield session

    def load(self, now: datetime) -> EngineState:
        with self.registry.session() as session:
            return load_state(session, now)

    def save(self, result: Evaluation, now: datetime, channels: Sequence[str] = ()
             ) -> list[Notification]:
        with self._locked(now) as session:
            return save(session, result, now, channels)

    def step(self, rules: RuleSet, observations: Sequence[Observation], now: datetime,
             channels: Sequence[str] = ()) -> tuple[Evaluation, list[Notification]]:
        """Load, evaluate and save under the engine lock; returns the step and what was new."""
        with self._locked(now) as session:
            result = evaluate(rules, load_state(session, now), observations, now)
            return result, save(session, result, now, channels)

    def act(self, action: Callable[[EngineState], Evaluation], now: datetime,
            channels: Sequence[str] = ()) -> Evaluation:
        """Apply an operator action from ``hub.alerts.actions`` (bound with functools.partial
        or a lambda) to the stored state and save it."""
        with self._locked(now) as session:
            result = action(load_state(session, now))
            save(session, result, now, channels)
            return result

    def add_silence(self, silence: Silence) -> None:
        with self.registry.session() as session:
            add_silence(session, silence)

    def expire_silence(self, silence_id: str, now: datetime) -> None:
        with self.registry.session() as session:
            expire_silence(session, silence_id, now)
