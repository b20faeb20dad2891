"""Test doubles and registry helpers for the evaluator: a fleet written straight into the
registry, and an InfluxDB stand-in that answers the zone-count query from a point list."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hub.influx import InfluxError
from hub.registry.db import Registry
from hub.registry.models import Device, Site


def add_device(registry: Registry, device_id: str, kelurahan: str, now: datetime, *,
               kecamatan: str = "Beji", presence: str = "online",
               health: dict[str, Any] | None = None, interval_s: float = 10.0) -> None:
    site_id = f"site-{kecamatan}-{kelurahan}".lower().replace(" ", "-")
    with registry.session() as s:
        if s.get(Site, site_id) is None:
            s.add(Site(id=site_id, kecamatan=kecamatan, kelurahan=kelurahan))
        s.add(Device(id=device_id, site_id=site_id, created_at=now, presence=presence,
                     presence_at=now, last_health_at=now, health_interval_s=interval_s,
                     last_health=health or {"uptime_s": 100.0, "temp_c": 50.0}))


def update_device(registry: Registry, device_id: str, **columns: Any) -> None:
    with registry.session() as s:
        dev = s.get(Device, device_id)
        assert dev is not None
        for key, value in columns.items():
            setattr(dev, key, value)


@dataclass
class FakeInflux:
    """Answers ``SELECT "count" FROM "zone_counts" WHERE time > Nms AND (...)`` queries."""

    points: list[tuple[datetime, dict[str, str], float]] = field(default_factory=list)
    fail: bool = False
    queries: list[str] = field(default_factory=list)

    def add(self, at: datetime, count: float, *, device: str = "cam-1", camera: str = "cam1",
            zone: str = "gate", cls: str = "car", kelurahan: str = "Beji Timur") -> None:
        tags = {"device": device, "camera": camera, "zone": zone, "class": cls,
                "kecamatan": "Beji", "kelurahan": kelurahan}
        self.points.append((at, tags, count))

    def query(self, q: str, *, epoch: str = "ms") -> list[dict[str, Any]]:
        self.queries.append(q)
        if self.fail:
            raise InfluxError("InfluxDB unreachable at http://127.0.0.1:1")
        since_ms = int(re.search(r"time > (\d+)ms", q).group(1))  # type: ignore[union-attr]
        classes = set(re.findall(r"\"class\" = '([^']+)'", q))
        series: dict[tuple[tuple[str, str], ...], list[list[Any]]] = defaultdict(list)
        for at, tags, count in sorted(self.points, key=lambda p: p[0]):
            ms = int(at.timestamp() * 1000)
            if ms > since_ms and tags["class"] in classes:
                series[tuple(sorted(tags.items()))].append([ms, count])
        return [{"name": "zone_counts", "tags": dict(k), "columns": ["time", "count"],
                 "values": v} for k, v in series.items()]


def seconds(at: datetime, s: float) -> datetime:
    return at + timedelta(seconds=s)
