"""A small IoU tracker with a centroid fallback, so one object keeps one id across frames.

Matching per frame, same class only: first greedily by IoU between each track's box
(moved by its last velocity, which helps when the motion gate spaces inferences out) and each
detection; what is left, greedily by centre distance relative to the track's size. A track
unseen for ``max_age`` seconds is dropped. Pure: no clock of its own, times are passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from edge_agent.vision.detector import Detection
from edge_agent.vision.flow import Image
from edge_agent.vision.geometry import (
    Box,
    Pt,
    centre,
    diagonal,
    foot,
    iou,
    overlap_small,
    shift,
)


@dataclass(slots=True)
class Track:
    id: int
    label: str
    box: Box
    score: float
    first_seen: float
    last_seen: float
    hits: int = 1
    velocity: Pt = (0.0, 0.0)  # of the box, normalised units per second
    # Per line id: the last foot point seen strictly on one side (see counting.py).
    line_ref: dict[str, Pt] = field(default_factory=dict)
    counted: set[str] = field(default_factory=set)  # lines this track was counted on
    zones: set[str] = field(default_factory=set)  # zones the foot point is in now
    entered: set[str] = field(default_factory=set)  # zones already reported as entered
    look: np.ndarray | None = None  # colour histogram, a running mean

    @property
    def anchor(self) -> Pt:
        return foot(self.box)


def appearance(image: Image, box: Box) -> np.ndarray:
    """A hue/saturation histogram of the box's middle: cheap, and enough to tell a red
    jacket from a black coat when two people walk side by side."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    # The middle of the box: less background, and the torso carries most of the colour.
    bw, bh = x2 - x1, y2 - y1
    cx1, cx2 = int((x1 + bw * 0.25) * w), int((x2 - bw * 0.25) * w)
    cy1, cy2 = int((y1 + bh * 0.15) * h), int((y2 - bh * 0.3) * h)
    patch = image[max(0, cy1):max(cy1 + 1, cy2), max(0, cx1):max(cx1 + 1, cx2)]
    hsv = cv2.cvtColor(patch, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [6, 3, 3], [0, 180, 0, 256, 0, 256])
    hist = hist.ravel()
    total = float(hist.sum())
    return hist / total if total > 0 else hist


def similarity(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Histogram intersection, 0 (nothing alike) to 1; 1 when either is unknown."""
    if a is None or b is None:
        return 1.0
    return float(np.minimum(a, b).sum())


class _Cand:
    """A detection waiting to be matched, with its colour when the frame is known."""

    __slots__ = ("det", "look")

    def __init__(self, det: Detection, image: Image | None) -> None:
        self.det = det
        self.look = appearance(image, det.box) if image is not None else None


class Tracker:
    def __init__(self, iou_min: float = 0.2, max_distance: float = 0.5,
                 max_age: float = 1.5, min_hits: int = 2,
                 duplicate_overlap: float = 0.6, predict: bool = True,
                 min_similarity: float = 0.3) -> None:
        self.iou_min = iou_min
        self.max_distance = max_distance  # in track diagonals
        self.max_age = max_age
        self.min_hits = min_hits
        self.duplicate_overlap = duplicate_overlap
        self.predict = predict
        self.min_similarity = min_similarity
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, detections: Sequence[Detection], now: float,
               weak: Sequence[Detection] = (), image: Image | None = None) -> list[Track]:
        """Match ``detections`` seen at ``now``; return the confirmed tracks seen now.

        ``weak`` are detections under the score threshold: they may keep an existing track
        alive through a dip in score (as ByteTrack does) but never start one. With the
        frame as ``image``, colour keeps neighbours from swapping ids.
        """
        self.tracks = [t for t in self.tracks if now - t.last_seen <= self.max_age]
        predicted = {t.id: self._predict(t, now) for t in self.tracks}
        left = {t.id: t for t in self.tracks}
        strong = {j: _Cand(d, image) for j, d in enumerate(detections)}
        self._assign(self._iou_pairs(left, strong, predicted), left, strong, now)
        weak_left = {j: _Cand(d, image) for j, d in enumerate(weak)}
        self._assign(self._iou_pairs(left, weak_left, predicted), left, weak_left, now)
        self._assign(self._distance_pairs(left, strong, predicted), left, strong, now)
        matched = [t.box for t in self.tracks if t.last_seen == now]
        for c in strong.values():
            d = c.det
            # SSD often adds a third box over two people walking side by side: a leftover
            # that mostly covers a box matched this frame is that, not a newcomer.
            if any(overlap_small(d.box, box) >= self.duplicate_overlap for box in matched):
                continue
            self.tracks.append(Track(self._next_id, d.label, d.box, d.score, now, now,
                                     look=c.look))
            self._next_id += 1
        return [t for t in self.tracks if t.last_seen == now and t.hits >= self.min_hits]

    def _iou_pairs(self, tracks: dict[int, Track], cands: dict[int, _Cand],
                   predicted: dict[int, Box]) -> list[tuple[float, int, int]]:
        pairs = []
        for t in tracks.values():
            for j, c in cands.items():
                if c.det.label != t.label:
                    continue
                overlap = iou(predicted[t.id], c.det.box)
                if overlap < self.iou_min:
                    continue
                sim = similarity(t.look, c.look)
                if sim >= self.min_similarity:
                    pairs.append((-overlap * (0.5 + 0.5 * sim), t.id, j))
        return sorted(pairs)

    def _distance_pairs(self, tracks: dict[int, Track], cands: dict[int, _Cand],
                        predicted: dict[int, Box]) -> list[tuple[float, int, int]]:
        pairs = []
        for t in tracks.values():
            size = max(diagonal(t.box), 1e-6)
            pc = centre(predicted[t.id])
            for j, c in cands.items():
                if c.det.label != t.label:
                    continue
                dc = centre(c.det.box)
                dist = ((pc[0] - dc[0]) ** 2 + (pc[1] - dc[1]) ** 2) ** 0.5 / size
                if dist > self.max_distance:
                    continue
                sim = similarity(t.look, c.look)
                if sim >= self.min_similarity:
                    pairs.append((dist / (0.5 + 0.5 * sim), t.id, j))
        return sorted(pairs)

    def _assign(self, pairs: list[tuple[float, int, int]], tracks: dict[int, Track],
                cands: dict[int, _Cand], now: float) -> None:
        """Greedy, best pair first; matched tracks and candidates leave their dicts."""
        for _, tid, j in pairs:
            if tid in tracks and j in cands:
                t, c = tracks.pop(tid), cands.pop(j)
                d = c.det
                if c.look is not None:
                    t.look = c.look if t.look is None else 0.8 * t.look + 0.2 * c.look
                dt = now - t.last_seen
                if dt > 0:
                    (ox, oy), (nx, ny) = centre(t.box), centre(d.box)
                    v = ((nx - ox) / dt, (ny - oy) / dt)
                    # Smooth: one jittery box must not fling the prediction away.
                    t.velocity = (0.5 * t.velocity[0] + 0.5 * v[0],
                                  0.5 * t.velocity[1] + 0.5 * v[1])
                t.box, t.score, t.last_seen = d.box, d.score, now
                t.hits += 1

    def _predict(self, t: Track, now: float) -> Box:
        if not self.predict:
            return t.box
        dt = now - t.last_seen
        return shift(t.box, t.velocity[0] * dt, t.velocity[1] * dt)
