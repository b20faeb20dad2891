"""Counts per interval, line crossings and zone events from one camera's detections and tracks.

Pure: the pipeline feeds each inference's detections and confirmed tracks with a monotonic
time, and takes the interval's totals with ``flush``. Counts per class are the peak number
seen at once in the interval (what a "how many people are there" question wants); ``tracks``
is how many distinct objects passed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edge_agent.vision.config import LineConfig, ZoneConfig
from edge_agent.vision.debounce import Debounce
from edge_agent.vision.detector import Detection
from edge_agent.vision.geometry import crossing, foot, inside, side
from edge_agent.vision.tracker import Track


@dataclass(frozen=True, slots=True)
class SceneEvent:
    kind: str  # "zone_enter" | "crowd"
    status: str  # "instant" | "raised" | "cleared"
    zone: str
    label: str
    count: int | None = None
    score: float | None = None
    track: int | None = None
    box: tuple[float, float, float, float] | None = None
    onset: float | None = None  # monotonic time the condition began (crowds)


def _wants(classes: list[str] | None, label: str) -> bool:
    return classes is None or label in classes


class SceneCounter:
    def __init__(self, zones: Sequence[ZoneConfig] = (),
                 lines: Sequence[LineConfig] = (), margin: float = 0.01) -> None:
        self.zones = list(zones)
        self.margin = margin  # normalised distance from a line that is still "on" it
        self.lines = list(lines)
        self._crowd: dict[tuple[str, str], Debounce] = {}
        self._last_enter: dict[tuple[str, str], float] = {}
        self.total_crossings: Counter[str] = Counter()  # per line, since start
        self._reset()

    def _reset(self) -> None:
        self.frames = 0
        self._counts: Counter[str] = Counter()
        self._zone_counts: dict[str, Counter[str]] = defaultdict(Counter)
        self._tracks: dict[str, set[int]] = defaultdict(set)
        self._crossings: dict[str, dict[str, dict[str, int]]] = defaultdict(
            lambda: defaultdict(lambda: {"right": 0, "left": 0}))
        self._max_score: dict[str, float] = {}

    def observe(self, detections: Sequence[Detection], tracks: Sequence[Track],
                now: float) -> list[SceneEvent]:
        """One inference's results at monotonic time ``now``; returns the events it causes."""
        self.frames += 1
        for label, n in Counter(d.label for d in detections).items():
            self._counts[label] = max(self._counts[label], n)
        for d in detections:
            self._max_score[d.label] = max(self._max_score.get(d.label, 0.0), d.score)
        events: list[SceneEvent] = []
        for zone in self.zones:
            here = Counter(d.label for d in detections
                           if _wants(zone.classes, d.label) and inside(foot(d.box), zone.points))
            for label, n in here.items():
                self._zone_counts[zone.id][label] = max(self._zone_counts[zone.id][label], n)
            events += self._crowd_events(zone, here, now)
        for t in tracks:
            self._tracks[t.label].add(t.id)
            self._count_lines(t)
            events += self._enter_events(t, now)
        return events

    def _count_lines(self, t: Track) -> None:
        p1 = t.anchor
        for line in self.lines:
            if not _wants(line.classes, t.label):
                continue
            a, b = line.points
            # Points in a thin band around the line are neither side: box jitter of an
            # object standing on the line must not count as crossings.
            if side(p1, a, b, self.margin) == 0:
                continue
            ref = t.line_ref.get(line.id)
            t.line_ref[line.id] = p1
            direction = crossing(ref, p1, a, b) if ref is not None else 0
            key = "right" if direction > 0 else "left"
            # Once per direction per track: out-and-back is two crossings, jitter is not
            # more, and a track that swapped onto a neighbour still counts its crossing.
            if direction and f"{line.id}:{key}" not in t.counted:
                t.counted.add(f"{line.id}:{key}")
                self._crossings[line.id][t.label][key] += 1
                self.total_crossings[line.id] += 1

    def _enter_events(self, t: Track, now: float) -> list[SceneEvent]:
        events = []
        t.zones = {z.id for z in self.zones
                   if _wants(z.classes, t.label) and inside(t.anchor, z.points)}
        for zone in self.zones:
            if zone.id not in t.zones or zone.id in t.entered:
                continue
            t.entered.add(zone.id)
            key = (zone.id, t.label)
            last = self._last_enter.get(key)
            if zone.enter_events and (last is None or now - last >= zone.enter_cooldown):
                self._last_enter[key] = now
                events.append(SceneEvent("zone_enter", "instant", zone.id, t.label,
                                         score=t.score, track=t.id, box=t.box))
        return events

    def _crowd_events(self, zone: ZoneConfig, here: Counter[str],
                      now: float) -> list[SceneEvent]:
        if zone.crowd_threshold is None:
            return []
        events = []
        labels = set(here) | {lb for (z, lb) in self._crowd if z == zone.id}
        for label in sorted(labels):
            deb = self._crowd.get((zone.id, label))
            if deb is None:
                deb = self._crowd[(zone.id, label)] = Debounce(zone.crowd_hold, zone.crowd_hold)
            change = deb.update(here[label] >= zone.crowd_threshold, now)
            if change:
                events.append(SceneEvent("crowd", change, zone.id, label, count=here[label],
                                         onset=deb.raised_at))
        return events

    def flush(self) -> dict[str, Any]:
        """The interval's totals as ``Detections`` payload fields; starts a new interval."""
        out: dict[str, Any] = {
            "frames": self.frames,
            "counts": dict(self._counts),
            "zones": {z: dict(c) for z, c in self._zone_counts.items() if c},
            "tracks": {label: len(ids) for label, ids in self._tracks.items()},
            "crossings": {ln: {lb: dict(v) for lb, v in per.items()}
                          for ln, per in self._crossings.items()},
            "max_score": {k: round(v, 3) for k, v in self._max_score.items()},
        }
        self._reset()
        return out
