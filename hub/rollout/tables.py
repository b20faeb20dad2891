"""Configuration tables, on the registry's declarative ``Base`` (``Registry.create_schema``
creates them). Times are UTC.

- ``config_overrides``: every edit of an override layer is a new row (history with author);
  the newest row of a (scope, key) is the layer in force, ``data = null`` removes it.
- ``config_desired``: every document the hub signed, per device and version (the newest is
  the one retained on ``config/desired``); ``published_at`` is set once the broker took it.
- ``config_reported``: per device, the newest ``config/reported`` the ingest stored.
- ``config_models``: the model catalogue (name x hardware variant -> file, sha256, size).
- ``config_rollouts`` / ``config_rollout_devices``: a rollout, and each target's wave and
  progress, with what it had before (to go back).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.registry.models import Base

_TS = DateTime(timezone=True)


class ConfigOverrideRow(Base):
    __tablename__ = "config_overrides"
    __table_args__ = (Index("ix_config_override_scope", "scope", "key", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(16))  # kecamatan | kelurahan | site | device
    key: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    author: Mapped[str] = mapped_column(String(80))
    note: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(_TS)


class DesiredConfigRow(Base):
    __tablename__ = "config_desired"
    __table_args__ = (UniqueConstraint("device_id", "version", name="uq_config_desired"),
                      Index("ix_config_desired_unpublished", "published_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(63), index=True)
    version: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(80))
    envelope: Mapped[str] = mapped_column(Text)  # the exact bytes published (UTF-8 JSON)
    kind: Mapped[str] = mapped_column(String(16), default="push")  # push | revert
    rollout_id: Mapped[str] = mapped_column(String(40), default="", index=True)
    author: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(_TS)
    published_at: Mapped[datetime | None] = mapped_column(_TS, nullable=True)


class ConfigReportRow(Base):
    __tablename__ = "config_reported"

    device_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    digest: Mapped[str] = mapped_column(String(80), default="")
    desired_version: Mapped[int] = mapped_column(BigInteger, default=0)
    desired_digest: Mapped[str] = mapped_column(String(80), default="")
    reason: Mapped[str] = mapped_column(String(128), default="")
    error: Mapped[str] = mapped_column(String(1024), default="")
    rollout_id: Mapped[str] = mapped_column(String(128), default="")
    device_ts_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    received_at: Mapped[datetime] = mapped_column(_TS)


class ModelRow(Base):
    __tablename__ = "config_models"
    __table_args__ = (UniqueConstraint("name", "hardware", name="uq_config_model"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    hardware: Mapped[str] = mapped_column(String(64), default="")  # "" = every hardware
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(String(200), default="")
    author: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(_TS)


class RolloutRow(Base):
    __tablename__ = "config_rollouts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # running | paused | completed | aborted
    status: Mapped[str] = mapped_column(String(16), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    waves: Mapped[int] = mapped_column(Integer)
    wave: Mapped[int] = mapped_column(Integer, default=-1)  # newest wave pushed
    reason: Mapped[str] = mapped_column(String(500), default="")
    auto_aborted: Mapped[bool] = mapped_column(Boolean, default=False)
    author: Mapped[str] = mapped_column(String(80))
    note: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(_TS)
    updated_at: Mapped[datetime] = mapped_column(_TS)
    finished_at: Mapped[datetime | None] = mapped_column(_TS, nullable=True)


class RolloutDeviceRow(Base):
    __tablename__ = "config_rollout_devices"
    __table_args__ = (Index("ix_config_rollout_device", "device_id", "rollout_id"),)

    rollout_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    wave: Mapped[int] = mapped_column(Integer)
    # planned | pushed | unchanged | skipped | reverted
    state: Mapped[str] = mapped_column(String(16), default="planned")
    planned: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"config", "models", "digest"}
    prev_version: Mapped[int] = mapped_column(BigInteger, default=0)
    prev_digest: Mapped[str] = mapped_column(String(80), default="")
    new_version: Mapped[int] = mapped_column(BigInteger, default=0)
    pushed_at: Mapped[datetime | None] = mapped_column(_TS, nullable=True)
    baseline: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    outcome: Mapped[str] = mapped_column(String(16), default="")  # ok | failed
    outcome_reason: Mapped[str] = mapped_column(String(500), default="")
    settled_at: Mapped[datetime | None] = mapped_column(_TS, nullable=True)
