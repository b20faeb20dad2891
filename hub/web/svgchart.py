"""Line charts as SVG geometry (pure): the device page draws them inline, with no chart
library and no script. Times are placed on the x axis over the whole range (so an hour
without data shows as a gap), values on a y axis from 0 (or below, for cold boxes) to a
rounded maximum; a gap longer than two buckets breaks the line."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hub.web.timefmt import wib

Points = list[tuple[int, float]]

WIDTH = 640.0
HEIGHT = 180.0
LEFT, RIGHT, TOP, BOTTOM = 52.0, 10.0, 10.0, 24.0


@dataclass(frozen=True)
class Line:
    name: str
    d: str  # SVG path data
    last: float | None


@dataclass
class Chart:
    width: float = WIDTH
    height: float = HEIGHT
    lines: list[Line] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    plot: tuple[float, float, float, float] = (LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM)

    @property
    def empty(self) -> bool:
        return not any(line.d for line in self.lines)


def nice_max(value: float) -> float:
    """The next 1, 2, 2.5 or 5 times a power of ten at or above ``value`` (> 0)."""
    if value <= 0:
        return 1.0
    exp = math.floor(math.log10(value))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        top = m * 10 ** exp
        if top >= value * (1 - 1e-9):
            return top
    return 10.0 ** (exp + 1)


def _time_label(ms: int, span_s: float) -> str:
    t = datetime.fromtimestamp(ms / 1000, UTC).astimezone(wib())
    return t.strftime("%d/%m") if span_s > 2 * 86400 else t.strftime("%H:%M")


def line_chart(series: Mapping[str, Points], start_ms: int, end_ms: int, bucket_s: int,
               fmt: Callable[[float], str], *, y_floor: float = 0.0) -> Chart:
    chart = Chart()
    x0, y0, x1, y1 = chart.plot
    values = [v for pts in series.values() for _t, v in pts]
    lo = min([y_floor, *values]) if values else y_floor
    lo = -nice_max(-lo) if lo < 0 else lo
    hi = nice_max(max(values)) if values and max(values) > lo else lo + 1.0
    span_ms = max(end_ms - start_ms, 1)

    def x(ms: int) -> float:
        return round(x0 + (ms - start_ms) / span_ms * (x1 - x0), 1)

    def y(v: float) -> float:
        return round(y1 - (v - lo) / (hi - lo) * (y1 - y0), 1)

    for name, pts in series.items():
        parts: list[str] = []
        prev: int | None = None
        for ms, v in sorted(pts):
            if ms < start_ms - bucket_s * 1000:
                continue
            joined = prev is not None and ms - prev <= 2 * bucket_s * 1000
            # "h0" after a move: a lone point still shows as a dot (round line caps).
            parts.append(f"L{x(ms)},{y(v)}" if joined else f"M{x(ms)},{y(v)}h0")
            prev = ms
        chart.lines.append(Line(name, "".join(parts), pts[-1][1] if pts else None))
    chart.y_ticks = [(y(lo + (hi - lo) * i / 4), fmt(lo + (hi - lo) * i / 4))
                     for i in range(5)]
    span_s = span_ms / 1000
    chart.x_ticks = [(x(start_ms + span_ms * i // 4), _time_label(start_ms + span_ms * i // 4,
                                                                     span_s))
                     for i in range(5)]
    return chart
