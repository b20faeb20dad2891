"""InfluxQL for a device's history (pure): the ranges a page offers, downsampled with
``GROUP BY time`` so a week of 10 s health is ~170 points, not 60,000.

Measurements and tags as ``hub.ingest.points`` writes them: ``health`` (device,
kecamatan, kelurahan), ``camera_health`` (+ camera), ``object_counts`` (+ camera, class),
``events`` (+ camera, kind).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from dcor_wire.topics import check_device_id
from hub.influx import quote_string


@dataclass(frozen=True)
class Range:
    key: str
    seconds: int
    bucket: str  # InfluxQL duration of one GROUP BY time bucket
    bucket_s: int


RANGES: Final = {
    "1h": Range("1h", 3600, "1m", 60),
    "24h": Range("24h", 86400, "15m", 900),
    "7d": Range("7d", 7 * 86400, "1h", 3600),
}
DEFAULT_RANGE: Final = "1h"
# (measurement, field, aggregate): the outbox's worst moment matters, the rest on average.
HEALTH_FIELDS: Final = (("cpu_pct", "mean"), ("temp_c", "mean"), ("outbox_depth", "max"))
CAMERA_FIELDS: Final = (("fps", "mean"), ("inference_ms", "mean"))
EVENT_LIMIT: Final = 50

Points = list[tuple[int, float]]


def parse_range(value: str | None) -> Range:
    return RANGES.get(value or "", RANGES[DEFAULT_RANGE])


def _where(device_id: str, r: Range) -> str:
    check_device_id(device_id)
    return f'"device" = {quote_string(device_id)} AND time > now() - {r.seconds}s'


def _select(fields: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f'{agg}("{f}") AS "{f}"' for f, agg in fields)


def health_query(device_id: str, r: Range) -> str:
    return (f'SELECT {_select(HEALTH_FIELDS)} FROM "health" WHERE {_where(device_id, r)} '
            f"GROUP BY time({r.bucket}) fill(none)")


def camera_query(device_id: str, r: Range) -> str:
    return (f'SELECT {_select(CAMERA_FIELDS)} FROM "camera_health" '
            f'WHERE {_where(device_id, r)} GROUP BY time({r.bucket}), "camera" fill(none)')


def counts_query(device_id: str, r: Range) -> str:
    return (f'SELECT sum("count") AS "count", max("count") AS "peak" FROM "object_counts" '
            f'WHERE {_where(device_id, r)} GROUP BY "camera", "class"')


def events_query(device_id: str, r: Range, limit: int = EVENT_LIMIT) -> str:
    return (f'SELECT * FROM "events" WHERE {_where(device_id, r)} '
            f"ORDER BY time DESC LIMIT {int(limit)}")


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def split_health(series: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Points]]:
    """``health`` result -> field -> {"": points} (one line per chart)."""
    out: dict[str, dict[str, Points]] = {f: {"": []} for f, _a in HEALTH_FIELDS}
    for s in series:
        cols = list(s.get("columns", []))
        for values in s.get("values", []):
            row = dict(zip(cols, values, strict=False))
            for f, _a in HEALTH_FIELDS:
                v = _num(row.get(f))
                if v is not None:
                    out[f][""].append((int(row["time"]), v))
    return out


def split_cameras(series: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Points]]:
    """``camera_health`` result -> field -> camera -> points (one line per camera)."""
    out: dict[str, dict[str, Points]] = {f: {} for f, _a in CAMERA_FIELDS}
    for s in series:
        cam = str((s.get("tags") or {}).get("camera", ""))
        cols = list(s.get("columns", []))
        for values in s.get("values", []):
            row = dict(zip(cols, values, strict=False))
            for f, _a in CAMERA_FIELDS:
                v = _num(row.get(f))
                if v is not None:
                    out[f].setdefault(cam, []).append((int(row["time"]), v))
    return {f: dict(sorted(per.items())) for f, per in out.items()}


def count_rows(series: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``object_counts`` totals per camera and class, most counted first."""
    out = []
    for s in series:
        tags = s.get("tags") or {}
        cols = list(s.get("columns", []))
        for values in s.get("values", []):
            row = dict(zip(cols, values, strict=False))
            out.append({"camera": tags.get("camera", ""), "class": tags.get("class", ""),
                        "count": int(_num(row.get("count")) or 0),
                        "peak": int(_num(row.get("peak")) or 0)})
    return sorted(out, key=lambda r: (-r["count"], r["camera"], r["class"]))
