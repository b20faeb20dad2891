"""The map's geometry (pure): sites and kecamatan boundaries projected onto an SVG canvas,
without any tile server.

Longitude and latitude are projected equirectangularly with the longitude scaled by the
cosine of the middle latitude: over a city (Depok is ~15 km across) that is within a
fraction of a percent of a true map. Uploaded boundaries are GeoJSON (RFC 7946) Polygons or
MultiPolygons; a ring is thinned to ``MAX_RING_POINTS`` so a detailed survey file still
draws fast on the wall.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

Point = tuple[float, float]  # (lon, lat)
Ring = list[Point]

MAX_UPLOAD_BYTES: Final = 5 * 1024 * 1024
MAX_RING_POINTS: Final = 400
MAX_TOTAL_POINTS: Final = 60_000
MAX_AREAS: Final = 200
# Where the name of a kecamatan is found in common GeoJSON files (BIG's Indonesian
# administrative data uses WADMKC for kecamatan).
NAME_KEYS: Final = ("name", "NAME", "nama", "NAMA", "kecamatan", "KECAMATAN", "WADMKC",
                    "NAMOBJ")
WIDTH: Final = 1000.0
PAD: Final = 40.0


class GeoJSONError(ValueError):
    """The upload is not usable; the message says what to fix."""


@dataclass(frozen=True)
class Area:
    name: str
    rings: tuple[Ring, ...]


@dataclass(frozen=True)
class Projection:
    min_lon: float
    max_lat: float
    scale: float  # px per degree of latitude
    kx: float  # cos(mid latitude)
    width: float
    height: float

    def xy(self, p: Point) -> tuple[float, float]:
        lon, lat = p
        return (round(PAD + (lon - self.min_lon) * self.kx * self.scale, 1),
                round(PAD + (self.max_lat - lat) * self.scale, 1))


def fit(points: Iterable[Point], width: float = WIDTH) -> Projection | None:
    """A projection that puts every point inside ``width`` (height follows the shape);
    None without points."""
    pts = list(points)
    if not pts:
        return None
    lons = [p[0] for p in pts]
    lats = [p[1] for p in pts]
    min_lon, max_lon, min_lat, max_lat = min(lons), max(lons), min(lats), max(lats)
    kx = math.cos(math.radians((min_lat + max_lat) / 2))
    span_x = max((max_lon - min_lon) * kx, 1e-4)  # one site alone: a ~10 m wide view
    span_y = max(max_lat - min_lat, 1e-4)
    inner = width - 2 * PAD
    # Tall shapes are capped at a square canvas so the map stays on one screen.
    scale = min(inner / span_x, inner / span_y)
    height = span_y * scale + 2 * PAD
    return Projection(min_lon, max_lat, scale, kx, width, round(height, 1))


def convex_hull(points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Andrew's monotone chain; counter-clockwise, without repeating the first point."""
    pts = sorted(set(points))
    if len(pts) <= 2:
        return pts

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple[float, float]] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def outline(xy: Sequence[tuple[float, float]], margin: float = 22.0) -> str:
    """An SVG path around the sites: their hull pushed ``margin`` px away from its centre
    (a rounded box for one or two sites)."""
    hull = convex_hull(xy)
    if len(hull) < 3:
        xs = [p[0] for p in xy] or [0.0]
        ys = [p[1] for p in xy] or [0.0]
        x0, y0, x1, y1 = min(xs) - margin, min(ys) - margin, max(xs) + margin, max(ys) + margin
        return f"M{x0:.1f},{y0:.1f}H{x1:.1f}V{y1:.1f}H{x0:.1f}Z"
    cx = sum(p[0] for p in hull) / len(hull)
    cy = sum(p[1] for p in hull) / len(hull)
    grown = []
    for x, y in hull:
        d = math.hypot(x - cx, y - cy) or 1.0
        grown.append((x + (x - cx) / d * margin, y + (y - cy) / d * margin))
    return "M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in grown) + "Z"


def ring_path(ring: Ring, proj: Projection) -> str:
    pts = [proj.xy(p) for p in ring]
    return "M" + "L".join(f"{x},{y}" for x, y in pts) + "Z"


def label_point(area: Area, proj: Projection) -> tuple[float, float]:
    """Where the name goes: the middle of the largest ring's points."""
    ring = max(area.rings, key=len)
    xy = [proj.xy(p) for p in ring]
    return (round(sum(p[0] for p in xy) / len(xy), 1),
            round(sum(p[1] for p in xy) / len(xy), 1))


# --- GeoJSON --------------------------------------------------------------------------------

def _point(raw: Any) -> Point:
    if (not isinstance(raw, list) or len(raw) < 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw[:2])):
        raise GeoJSONError("a position must be [longitude, latitude]")
    lon, lat = float(raw[0]), float(raw[1])
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180
            and -90 <= lat <= 90):
        raise GeoJSONError(f"position {raw[:2]} is outside longitude/latitude range "
                           "(GeoJSON is [longitude, latitude] in WGS 84)")
    return (round(lon, 6), round(lat, 6))


def thin(ring: Ring, limit: int = MAX_RING_POINTS) -> Ring:
    """Every n-th point so at most ``limit`` remain (first and last kept)."""
    if len(ring) <= limit:
        return ring
    step = math.ceil(len(ring) / (limit - 1))
    return [*ring[::step][: limit - 1], ring[-1]]


def _rings(geometry: Any) -> list[Ring]:
    if not isinstance(geometry, dict):
        raise GeoJSONError("every feature needs a geometry")
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    polygons = {"Polygon": [coords], "MultiPolygon": coords}.get(str(kind))
    if polygons is None or not isinstance(polygons, list):
        raise GeoJSONError(f"geometry type {kind!r}: only Polygon and MultiPolygon are drawn")
    out = []
    for poly in polygons:
        if not isinstance(poly, list) or not poly or not isinstance(poly[0], list):
            raise GeoJSONError("a polygon needs at least its outer ring")
        outer = [_point(p) for p in poly[0]]  # holes are not drawn on an overview
        if len(outer) < 4:
            raise GeoJSONError("a ring needs at least 4 positions")
        out.append(thin(outer))
    return out


def _name(props: Any, index: int) -> str:
    if isinstance(props, dict):
        for key in NAME_KEYS:
            value = props.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()[:100]
    return f"#{index + 1}"


def parse_boundaries(data: bytes) -> list[Area]:
    """Areas of a GeoJSON FeatureCollection, Feature or bare geometry."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise GeoJSONError(f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GeoJSONError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise GeoJSONError("a GeoJSON document is a JSON object")
    if doc.get("type") == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list):
            raise GeoJSONError("a FeatureCollection needs a 'features' list")
    elif doc.get("type") == "Feature":
        features = [doc]
    else:
        features = [{"type": "Feature", "geometry": doc, "properties": {}}]
    if not features:
        raise GeoJSONError("the file has no features")
    if len(features) > MAX_AREAS:
        raise GeoJSONError(f"at most {MAX_AREAS} areas")
    areas = []
    for i, f in enumerate(features):
        if not isinstance(f, dict):
            raise GeoJSONError(f"feature {i + 1} is not an object")
        try:
            areas.append(Area(_name(f.get("properties"), i), tuple(_rings(f.get("geometry")))))
        except GeoJSONError as exc:
            raise GeoJSONError(f"feature {i + 1}: {exc}") from exc
    if sum(len(r) for a in areas for r in a.rings) > MAX_TOTAL_POINTS:
        raise GeoJSONError(f"more than {MAX_TOTAL_POINTS} positions after thinning")
    return areas


def areas_json(areas: Iterable[Area]) -> list[dict[str, Any]]:
    return [{"name": a.name, "rings": [[list(p) for p in r] for r in a.rings]} for a in areas]


def areas_from_json(raw: Any) -> list[Area]:
    """What ``areas_json`` stored (trusted: it was validated on upload)."""
    return [Area(str(a["name"]), tuple([(float(p[0]), float(p[1])) for p in r]
                                        for r in a["rings"])) for a in raw or []]
