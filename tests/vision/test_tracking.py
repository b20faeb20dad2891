"""Geometry, tracker and counts: pure, table-driven, no model."""

from __future__ import annotations

import pytest

from edge_agent.vision.config import LineConfig, ZoneConfig
from edge_agent.vision.counting import SceneCounter
from edge_agent.vision.detector import Detection
from edge_agent.vision.geometry import crossing, inside, iou, overlap_small, side
from edge_agent.vision.tracker import Tracker


def person(x: float, y: float = 0.5, w: float = 0.05, h: float = 0.15,
           score: float = 0.8, label: str = "person") -> Detection:
    """A box whose foot point is (x, y)."""
    return Detection(label, score, (x - w / 2, y - h, x + w / 2, y))


@pytest.mark.parametrize(("a", "b", "want"), [
    ((0, 0, 1, 1), (0, 0, 1, 1), 1.0),
    ((0, 0, 1, 1), (1, 1, 2, 2), 0.0),
    ((0, 0, 2, 1), (1, 0, 3, 1), 1 / 3),
])
def test_iou(a, b, want) -> None:
    assert iou(a, b) == pytest.approx(want)


def test_overlap_small_is_one_for_a_box_inside_another() -> None:
    assert overlap_small((0, 0, 1, 1), (0.2, 0.2, 0.4, 0.4)) == pytest.approx(1.0)


@pytest.mark.parametrize(("p", "want"), [
    ((0.5, 0.5), True), ((0.05, 0.5), False), ((0.5, 0.95), False), ((0.3, 0.3), True),
    ((0.85, 0.85), False),  # in the cut-off corner
])
def test_inside_polygon(p, want) -> None:
    corner_cut = [(0.1, 0.1), (0.9, 0.1), (0.9, 0.6), (0.6, 0.9), (0.1, 0.9)]
    assert inside(p, corner_cut) is want


@pytest.mark.parametrize(("p0", "p1", "want"), [
    ((0.4, 0.5), (0.6, 0.5), -1),  # left to right across a downward line: onto its left
    ((0.6, 0.5), (0.4, 0.5), 1),
    ((0.4, 0.5), (0.45, 0.5), 0),  # does not reach it
    ((0.4, 0.95), (0.6, 0.95), 0),  # passes below its end
    ((0.5, 0.5), (0.6, 0.5), 0),  # starts on it
])
def test_crossing_a_segment(p0, p1, want) -> None:
    a, b = (0.5, 0.2), (0.5, 0.8)
    assert crossing(p0, p1, a, b) == want


def test_side_margin_treats_a_band_as_on_the_line() -> None:
    a, b = (0.5, 0.0), (0.5, 1.0)
    assert side((0.505, 0.5), a, b, margin=0.01) == 0
    assert side((0.52, 0.5), a, b, margin=0.01) != 0


def test_tracker_keeps_one_id_for_a_walker_and_another_for_a_second() -> None:
    tr = Tracker()
    ids = set()
    for i in range(20):
        confirmed = tr.update([person(0.1 + 0.02 * i), person(0.9 - 0.02 * i, y=0.8)], i * 0.1)
        ids |= {t.id for t in confirmed}
    assert len(ids) == 2


def test_tracker_bridges_a_missed_detection_and_a_low_score() -> None:
    tr = Tracker(max_age=1.0)
    seen = set()
    dets: list[Detection]
    weak: list[Detection]
    for i in range(15):
        x = 0.1 + 0.02 * i
        if i in (5, 6):
            dets, weak = [], []  # missed twice
        elif i in (9, 10):
            dets, weak = [], [person(x, score=0.35)]  # under threshold: only keeps it alive
        else:
            dets, weak = [person(x)], []
        seen |= {t.id for t in tr.update(dets, i * 0.1, weak)}
    assert len(seen) == 1


def test_tracker_ignores_a_duplicate_box_over_two_neighbours() -> None:
    tr = Tracker()
    for i in range(5):
        a, b = person(0.40 + 0.01 * i), person(0.46 + 0.01 * i)
        merged = Detection("person", 0.6, (a.box[0], a.box[1], b.box[2], b.box[3]))
        dets = [a, b, merged] if i >= 2 else [a, b]
        tr.update(dets, i * 0.1)
    assert len(tr.tracks) == 2


def test_tracker_does_not_match_across_classes() -> None:
    tr = Tracker()
    tr.update([person(0.5)], 0.0)
    tr.update([person(0.5, label="bicycle")], 0.1)
    assert sorted(t.label for t in tr.tracks) == ["bicycle", "person"]


def _walk(counter: SceneCounter, xs: list[float], y: float = 0.5) -> None:
    tr = Tracker()
    for i, x in enumerate(xs):
        dets = [person(x, y)]
        counter.observe(dets, tr.update(dets, i * 0.1), i * 0.1)


LINE = LineConfig(id="gate", points=((0.5, 0.2), (0.5, 0.8)))


def test_a_walker_crossing_counts_once_even_when_jittering_on_the_line() -> None:
    counter = SceneCounter(lines=[LINE])
    jitter = [0.495, 0.505, 0.498, 0.503, 0.499, 0.506]
    _walk(counter, [0.3, 0.35, 0.4, 0.45, *jitter, 0.55, 0.6, 0.65])
    totals = counter.flush()
    assert totals["crossings"] == {"gate": {"person": {"right": 0, "left": 1}}}


def test_out_and_back_counts_once_each_way() -> None:
    counter = SceneCounter(lines=[LINE])
    _walk(counter, [0.3, 0.4, 0.45, 0.55, 0.6, 0.7, 0.6, 0.55, 0.45, 0.4])
    assert counter.flush()["crossings"]["gate"]["person"] == {"right": 1, "left": 1}


def test_passing_beside_the_segment_does_not_count() -> None:
    counter = SceneCounter(lines=[LINE])
    _walk(counter, [0.3, 0.4, 0.5, 0.6, 0.7], y=0.95)
    assert counter.flush()["crossings"] == {}


def test_zone_enter_and_crowd_events() -> None:
    zone = ZoneConfig(id="door", points=[(0.6, 0.0), (1.0, 0.0), (1.0, 1.0), (0.6, 1.0)],
                      crowd_threshold=3, crowd_hold=0.5, enter_cooldown=0)
    counter = SceneCounter(zones=[zone])
    tr = Tracker()
    events = []
    for i in range(12):  # three people walk into the zone together, then two leave
        xs = [0.5 + 0.02 * i, 0.52 + 0.02 * i, 0.54 + 0.02 * i] if i < 8 else [0.7]
        dets = [person(x, y=0.3 + 0.2 * k) for k, x in enumerate(xs)]
        events += counter.observe(dets, tr.update(dets, i * 0.25), i * 0.25)
    kinds = [(e.kind, e.status) for e in events]
    assert kinds.count(("zone_enter", "instant")) == 3
    assert ("crowd", "raised") in kinds and ("crowd", "cleared") in kinds
    raised = next(e for e in events if e.status == "raised")
    assert raised.count == 3 and raised.zone == "door"
    totals = counter.flush()
    assert totals["zones"]["door"]["person"] == 3
    assert totals["counts"]["person"] == 3 and totals["frames"] == 12
