"""Registry tables. Times are stored as UTC; the web layer shows them in WIB."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Site(Base):
    """A pole, an office or a puskesmas; placed in the kota -> kecamatan -> kelurahan tree."""

    __tablename__ = "sites"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    kecamatan: Mapped[str] = mapped_column(String(100), index=True)
    kelurahan: Mapped[str] = mapped_column(String(100), index=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)

    devices: Mapped[list[Device]] = relationship(back_populates="site")


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    hardware: Mapped[str] = mapped_column(String(64), default="")
    profile: Mapped[str] = mapped_column(String(64), default="")
    # enrolled | decommissioned
    status: Mapped[str] = mapped_column(String(20), default="enrolled")
    # Presence as the device last said it (retained state / last will): online | offline | unknown
    presence: Mapped[str] = mapped_column(String(20), default="unknown")
    presence_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_health_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    last_health: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    health_interval_s: Mapped[float] = mapped_column(Float, default=10.0)
    agent_version: Mapped[str] = mapped_column(String(64), default="")
    boot_id: Mapped[str] = mapped_column(String(64), default="")
    config_version: Mapped[int] = mapped_column(Integer, default=0)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    site: Mapped[Site] = relationship(back_populates="devices")


class IngestWorkerStats(Base):
    """Counters each ingest process writes periodically; the web app sums them."""

    __tablename__ = "ingest_worker_stats"

    worker_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    counters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MediaItem(Base):
    """A snapshot or an (assembled) clip on the hub's disk."""

    __tablename__ = "media"
    # The fleet page asks for the latest snapshot per (device, camera) on every refresh.
    __table_args__ = (Index("ix_media_latest", "device_id", "camera", "kind", "complete",
                            "ts_ms"),)

    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # device:kind:media id
    device_id: Mapped[str] = mapped_column(String(63), index=True)
    camera: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))  # snapshot | clip
    media_id: Mapped[str] = mapped_column(String(128))
    event_id: Mapped[str] = mapped_column(String(128), default="", index=True)
    ts_ms: Mapped[int] = mapped_column(Integer, index=True)
    path: Mapped[str] = mapped_column(String(400))
    size: Mapped[int] = mapped_column(Integer)
    complete: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
