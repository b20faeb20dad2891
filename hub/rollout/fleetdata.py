"""What configuration push reads from the registry: devices and their place, override
layers, the model catalogue, each device's state and health, reports."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.registry.models import Device, Site
from hub.rollout.render import CatalogModel, DeviceInfo
from hub.rollout.tables import ConfigOverrideRow, ConfigReportRow, ModelRow
from hub.state import device_state


def aware(t: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is UTC."""
    return t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t


def device_infos(s: Session, ids: Iterable[str] | None = None) -> dict[str, DeviceInfo]:
    stmt = (select(Device.id, Device.profile, Device.hardware, Site.id, Site.kecamatan,
                   Site.kelurahan).join(Site, Device.site_id == Site.id)
            .where(Device.status != "decommissioned"))
    wanted = list(ids) if ids is not None else None
    out: dict[str, DeviceInfo] = {}
    if wanted is None:
        rows = list(s.execute(stmt))
    else:
        rows = []
        for i in range(0, len(wanted), 500):
            rows += list(s.execute(stmt.where(Device.id.in_(wanted[i: i + 500]))))
    for dev, profile, hardware, site, kec, kel in rows:
        out[dev] = DeviceInfo(dev, profile or "", hardware or "", site, kec, kel)
    return out


def current_layers(s: Session) -> dict[tuple[str, str], dict[str, Any]]:
    """The override in force per (scope, key): the newest edit, unless it removed it."""
    latest: dict[tuple[str, str], dict[str, Any] | None] = {}
    for row in s.scalars(select(ConfigOverrideRow).order_by(ConfigOverrideRow.id)):
        latest[(row.scope, row.key)] = row.data
    return {k: v for k, v in latest.items() if v}


def catalog(s: Session) -> list[CatalogModel]:
    return [CatalogModel(m.name, m.hardware, m.sha256, m.size)
            for m in s.scalars(select(ModelRow).order_by(ModelRow.id))]


@dataclass(frozen=True)
class Live:
    """A device's state and newest health, as the rollout judges it."""

    state: str
    health: dict[str, Any] | None
    health_at: datetime | None

    @property
    def online(self) -> bool:
        return self.state == "online"


def live_status(s: Session, ids: Iterable[str], now: datetime) -> dict[str, Live]:
    wanted = list(ids)
    out: dict[str, Live] = {}
    for i in range(0, len(wanted), 500):
        for d in s.scalars(select(Device).where(Device.id.in_(wanted[i: i + 500]))):
            state = device_state(status=d.status, presence=d.presence,
                                 last_health_at=aware(d.last_health_at),
                                 presence_at=aware(d.presence_at),
                                 health_interval_s=d.health_interval_s or 10.0, now=now)
            out[d.id] = Live(state, d.last_health, aware(d.last_health_at))
    return out


def reports(s: Session, ids: Iterable[str] | None = None) -> dict[str, ConfigReportRow]:
    stmt = select(ConfigReportRow)
    if ids is None:
        return {r.device_id: r for r in s.scalars(stmt)}
    wanted = list(ids)
    out: dict[str, ConfigReportRow] = {}
    for i in range(0, len(wanted), 500):
        out.update({r.device_id: r for r in s.scalars(
            stmt.where(ConfigReportRow.device_id.in_(wanted[i: i + 500])))})
    return out
