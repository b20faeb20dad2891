"""Registry operations of enrollment that run on the hub (create site and device records)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from dcor_wire.topics import check_device_id
from hub.registry.db import Registry
from hub.registry.models import Device, Site


class EnrollError(ValueError):
    """The enrollment request is invalid or conflicts with the registry."""


@dataclass(frozen=True)
class SiteSpec:
    id: str
    kecamatan: str
    kelurahan: str
    name: str = ""
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class DeviceSpec:
    device_id: str
    site: SiteSpec
    profile: str
    hardware: str = ""


def register_device(registry: Registry, device_id: str, site: SiteSpec, profile: str,
                    hardware: str = "") -> None:
    """Create (or update the site of) a site and an enrolled device record."""
    register_devices(registry, [DeviceSpec(device_id, site, profile, hardware)])


def register_devices(registry: Registry, specs: Sequence[DeviceSpec]) -> None:
    """``register_device`` for many boxes in one transaction (hundreds in a fraction of a
    second, where one commit each would wait for the disk hundreds of times). All are
    checked before anything is written."""
    for spec in specs:
        check_device_id(spec.device_id)
        if not spec.site.kecamatan or not spec.site.kelurahan:
            raise EnrollError("a site needs its kecamatan and kelurahan")
    with registry.session() as s:
        for spec in specs:
            _upsert(s, spec)


def _upsert(s: Session, spec: DeviceSpec) -> None:
    site = spec.site
    row = s.get(Site, site.id)
    if row is None:
        row = Site(id=site.id)
        s.add(row)
    row.name = site.name or row.name or site.id
    row.kecamatan, row.kelurahan = site.kecamatan, site.kelurahan
    if site.lat is not None:
        row.lat, row.lon = site.lat, site.lon
    dev = s.get(Device, spec.device_id)
    if dev is None:
        dev = Device(id=spec.device_id, created_at=datetime.now(UTC))
        s.add(dev)
    dev.site_id = site.id
    dev.profile = spec.profile
    dev.hardware = spec.hardware
    dev.status = "enrolled"
