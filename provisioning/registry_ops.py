"""Registry operations of enrollment that run on the hub (create site and device records)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

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


def register_device(registry: Registry, device_id: str, site: SiteSpec, profile: str,
                    hardware: str = "") -> None:
    """Create (or update the site of) a site and an enrolled device record."""
    check_device_id(device_id)
    if not site.kecamatan or not site.kelurahan:
        raise EnrollError("a site needs its kecamatan and kelurahan")
    with registry.session() as s:
        row = s.get(Site, site.id)
        if row is None:
            row = Site(id=site.id)
            s.add(row)
        row.name = site.name or row.name or site.id
        row.kecamatan, row.kelurahan = site.kecamatan, site.kelurahan
        if site.lat is not None:
            row.lat, row.lon = site.lat, site.lon
        dev = s.get(Device, device_id)
        if dev is None:
            dev = Device(id=device_id, created_at=datetime.now(UTC))
            s.add(dev)
        dev.site_id = site.id
        dev.profile = profile
        dev.hardware = hardware
        dev.status = "enrolled"
