"""Alert tables, on the registry's declarative ``Base`` so ``Registry.create_schema()`` makes
them (this module must be imported first; ``hub.alerts.store`` does). Times are UTC.

Uniqueness is what keeps several hub workers from duplicating anything: an alert is unique by
(subject, rule, occurrence) and its id is a digest of that triple; history events by ``key``;
notifications by ``id``; deliveries by (notification, channel).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.registry.models import Base

_TS = DateTime(timezone=True)


class AlertTrackerRow(Base):
    """Per (subject, rule) memory: condition, flap history, occurrence count. Idle keys have
    no row."""

    __tablename__ = "alert_trackers"
    __table_args__ = (UniqueConstraint("subject", "rule", name="uq_alert_tracker"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(300))
    rule: Mapped[str] = mapped_column(String(64))
    subject_info: Mapped[dict[str, Any]] = mapped_column(JSON)
    condition: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    condition_since: Mapped[datetime | None] = mapped_column(_TS, nullable=True)
    transitions: Mapped[list[str]] = mapped_column(JSON, default=list)
    flapping: Mapped[bool] = mapped_column(Boolean, default=False)
    last_occurrence: Mapped[int] = mapped_column(Integer, default=0)
    last_resolved_at: Mapped[datetime | None] = mapped_column(_TS, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(_TS)


class AlertRow(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("subject", "rule", "occurrence", name="uq_alert_occurrence"),
    )

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    subject: Mapped[str] = mapped_column(String(300))
    rule: Mapped[str] = mapped_column(String(64), index=True)
    occurrence: Mapped[int] = mapped_column(Integer)
    subject_kind: Mapped[str] = mapped_column(String(16))
    kecamatan: Mapped[str] = mapped_column(String(100), index=True)
    kelurahan: Mapped[str] = mapped_column(String(100), index=True)
    device: Mapped[str] = mapped_column(String(63), index=True, default="")
    camera: Mapped[str] = mapped_column(String(32), default="")
    zone: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), index=True)
    severity: Mapped[str] = mapped_column(String(16), index=True)
    desk: Mapped[str] = mapped_column(String(32), index=True)  # the rule's own desk
    # Every desk routed to, as ",a,b," so a desk filter is one LIKE '%,desk,%'.
    desks: Mapped[str] = mapped_column(String(400))
    since: Mapped[datetime] = mapped_column(_TS)
    fired_at: Mapped[datetime | None] = mapped_column(_TS, nullable=True, index=True)
    notified_at: Mapped[datetime | None] = mapped_column(_TS, nullable=True)
    acked_at: Mapped[datetime | None] = mapped_column(_TS, nullable=True)
    acked_by: Mapped[str] = mapped_column(String(100), default="")
    ack_note: Mapped[str] = mapped_column(Text, default="")
    assigned_to: Mapped[str] = mapped_column(String(100), default="")
    resolved_at: Mapped[datetime | None] = mapped_column(_TS, nullable=True)
    clear_since: Mapped[datetime | None] = mapped_column(_TS, nullable=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    detail: Mapped[str] = mapped_column(String(128), default="")
    flapping: Mapped[bool] = mapped_column(Boolean, default=False)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    suppressed_by: Mapped[str] = mapped_column(String(64), default="")
    group_id: Mapped[str] = mapped_column(String(24), index=True, default="")
    members: Mapped[list[str]] = mapped_column(JSON, default=list)
    previous_id: Mapped[str] = mapped_column(String(24), default="")
    notified: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(_TS)


class AlertEventRow(Base):
    """An alert's history: fired, grouped, escalated, acknowledged, assigned, noted, resolved."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    alert_id: Mapped[str] = mapped_column(String(24), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(_TS)
    actor: Mapped[str] = mapped_column(String(100), default="")
    note: Mapped[str] = mapped_column(Text, default="")


class SilenceRow(Base):
    __tablename__ = "alert_silences"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    matchers: Mapped[list[list[str]]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(100))
    starts_at: Mapped[datetime] = mapped_column(_TS)
    ends_at: Mapped[datetime] = mapped_column(_TS, index=True)


class NotificationRow(Base):
    """Every notification once, in order; ``seq`` is the cursor live readers (SSE) follow."""

    __tablename__ = "alert_notifications"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(80), unique=True)
    alert_id: Mapped[str] = mapped_column(String(24), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(_TS)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class DeliveryRow(Base):
    """Outbox: one row per notification and channel (``webhook:<name>``, ``mqtt``, ...)."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (UniqueConstraint("notification_id", "channel", name="uq_delivery"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notification_id: Mapped[str] = mapped_column(String(80))
    channel: Mapped[str] = mapped_column(String(80), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(_TS, index=True)
    claimed_by: Mapped[str] = mapped_column(String(100), default="")
    lease_until: Mapped[datetime | None] = mapped_column(_TS, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    delivered_at: Mapped[datetime | None] = mapped_column(_TS, nullable=True)


class AlertLockRow(Base):
    """One row per lock name; updating it first in a transaction serialises evaluators."""

    __tablename__ = "alert_locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100), default="")
    at: Mapped[datetime] = mapped_column(_TS)
