"""Pure plane geometry on normalised coordinates: boxes, polygons, segment crossings."""

from __future__ import annotations

from collections.abc import Sequence

Box = tuple[float, float, float, float]  # x1, y1, x2, y2
Pt = tuple[float, float]


def iou(a: Box, b: Box) -> float:
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def overlap_small(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area: 1.0 when one box lies inside the other."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / small if small > 0 else 0.0


def foot(box: Box) -> Pt:
    """Bottom centre: where a person or vehicle touches the ground, which zones and lines
    drawn on the road are about."""
    return ((box[0] + box[2]) / 2.0, box[3])


def centre(box: Box) -> Pt:
    return ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)


def diagonal(box: Box) -> float:
    return float(((box[2] - box[0]) ** 2 + (box[3] - box[1]) ** 2) ** 0.5)


def shift(box: Box, dx: float, dy: float) -> Box:
    return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


def inside(p: Pt, polygon: Sequence[Pt]) -> bool:
    """Even-odd ray casting; points on an edge may fall either way."""
    x, y = p
    hit = False
    n = len(polygon)
    for i in range(n):
        x1, y1 = polygon[i]
        x2, y2 = polygon[(i + 1) % n]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            hit = not hit
    return hit


def _cross(o: Pt, a: Pt, b: Pt) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def side(p: Pt, a: Pt, b: Pt, margin: float = 0.0) -> int:
    """Which side of a->b ``p`` is on, as drawn on the image (y grows downwards):
    +1 to the right of a->b, -1 to the left, 0 on it or within ``margin`` of it."""
    c = _cross(a, b, p)
    length = ((b[0] - a[0]) ** 2 + (b[1] - a[1]) ** 2) ** 0.5
    if length > 0 and abs(c) / length <= margin:
        return 0
    return (c > 0) - (c < 0)


def crossing(p0: Pt, p1: Pt, a: Pt, b: Pt) -> int:
    """Direction in which the move p0 -> p1 crosses segment a-b: +1 onto its right side,
    -1 onto its left side (see ``side``), 0 when it does not cross. A move that starts or
    ends exactly on the line does not cross: callers keep the last point strictly on one
    side as ``p0``."""
    s0, s1 = side(p0, a, b), side(p1, a, b)
    if s0 == 0 or s1 == 0 or s0 == s1:
        return 0
    if side(a, p0, p1) * side(b, p0, p1) > 0:
        return 0  # the move passes beside the segment, beyond one of its ends
    return s1
