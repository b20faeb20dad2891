"""Queues, rates, motion gate, tamper signals and the camera-health state machine (pure)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.vision.camera_health import CameraHealthMonitor
from edge_agent.vision.config import CameraHealthConfig, MotionConfig
from edge_agent.vision.debounce import Debounce
from edge_agent.vision.flow import DropQueue, RateMeter
from edge_agent.vision.motion import InferenceScheduler, MotionGate
from edge_agent.vision.tamper import FrameInspector, FrameStats


def test_drop_queue_drops_the_oldest_and_counts() -> None:
    q: DropQueue[int] = DropQueue(2)
    assert q.put(1) and q.put(2)
    assert not q.put(3)
    assert q.dropped == 1 and len(q) == 2
    assert [q.get(0), q.get(0), q.get(0)] == [2, 3, None]


def test_rate_meter_over_a_window() -> None:
    m = RateMeter(window=2.0, clock=lambda: 0.0)
    for i in range(21):
        m.tick(i * 0.1)
    assert m.rate(2.0) == pytest.approx(10.0)
    assert m.rate(10.0) == 0.0 and m.total == 21


def _scene(shift: int = 0) -> np.ndarray:
    img = np.full((240, 320, 3), 120, np.uint8)
    img[100:160, 40 + shift:80 + shift] = 30  # a dark "person"
    return img


def test_motion_gate_sees_movement_not_stillness() -> None:
    for method in ("diff", "mog2"):
        gate = MotionGate(MotionConfig(method=method))
        for _ in range(10):
            gate.moving(_scene())
        assert not gate.moving(_scene()), method
        assert gate.moving(_scene(shift=60)), method


@pytest.mark.parametrize(("gaps_and_motion", "want"), [
    ([(0.0, False)], [True]),  # the first frame always looks
    ([(0.0, True), (0.05, True), (0.2, True)], [True, False, True]),  # max rate 5/s
    ([(0.0, False), (0.5, False), (1.0, False), (1.2, False)], [True, False, True, False]),
])
def test_inference_scheduler(gaps_and_motion, want) -> None:
    s = InferenceScheduler(min_rate=1.0, max_rate=5.0)
    got = []
    for now, motion in gaps_and_motion:
        due = s.due(now, motion)
        if due:
            s.ran(now)
        got.append(due)
    assert got == want


def test_debounce_raises_after_hold_and_clears_after_recover() -> None:
    d = Debounce(on_after=2.0, off_after=1.0)
    assert d.update(True, 0.0) is None
    assert d.update(False, 1.0) is None  # a short blip never raises
    assert [d.update(True, t) for t in (1.5, 3.0, 3.5)] == [None, None, "raised"]
    assert d.update(False, 4.0) is None
    assert d.update(True, 4.5) is None  # back before recovery: stays raised
    assert d.update(False, 5.0) is None and d.update(False, 6.0) == "cleared"
    assert d.raised_at == 1.5


def _stats(std: float = 40.0, repeated: bool = False, scene: float = 0.0) -> FrameStats:
    return FrameStats(std, repeated, scene)


def _run(mon: CameraHealthMonitor, until: float, stats: FrameStats | None,
         t: float, step: float = 0.1) -> tuple[float, list]:
    changes = []
    while t < until:
        if stats is not None:
            changes += mon.frame(t, stats)
        changes += mon.evaluate(t)
        t += step
    return t, changes


CFG = CameraHealthConfig(down=1.0, frozen=1.0, covered=1.0, stalled=1.0, recover=0.5,
                         scene_change_hold=0.5)


@pytest.mark.parametrize(("stats", "fault"), [
    (_stats(repeated=True), "frozen"),
    (_stats(std=0.0, repeated=True), "covered"),  # black frames: covered wins over frozen
    (None, "no_frames"),
])
def test_faults_raise_within_the_window_and_clear_on_recovery(stats, fault) -> None:
    mon = CameraHealthMonitor(CFG, None, started=0.0)
    t, changes = _run(mon, 2.0, _stats(), 0.0)
    assert changes == [] and mon.state == "streaming"
    t_fault = t
    t, changes = _run(mon, t + 2.0, stats, t)
    raised = [c for c in changes if c.change == "raised"]
    assert [c.fault for c in raised][:1] == [fault]
    assert mon.state == fault
    assert raised[0].onset <= t_fault + 0.2
    t, changes = _run(mon, t + 1.5, _stats(), t)
    assert (fault, "cleared") in [(c.fault, c.change) for c in changes]
    assert mon.state == "streaming"


def test_a_short_capture_restart_does_not_flap() -> None:
    mon = CameraHealthMonitor(CFG, None, started=0.0)
    t, _ = _run(mon, 1.0, _stats(), 0.0)
    t, changes = _run(mon, t + 0.7, None, t)  # 0.7 s without frames, window is 1 s
    t, more = _run(mon, t + 2.0, _stats(), t)
    assert changes + more == []


def test_detector_stall_needs_frames_and_a_minimum_rate() -> None:
    mon = CameraHealthMonitor(CFG, min_inference_rate=2.0, started=0.0)
    t, changes = _run(mon, 3.0, _stats(), 0.0)  # frames but no inference at all
    assert ("detector_stalled", "raised") in [(c.fault, c.change) for c in changes]
    for _ in range(20):
        mon.inference(t)
        t, changes = _run(mon, t + 0.1, _stats(), t)
    assert mon.state == "streaming"
    assert CameraHealthMonitor(CFG, None, 0.0).evaluate(0.5) == []


def test_scene_change_is_an_instant_event_after_its_hold() -> None:
    mon = CameraHealthMonitor(CFG, None, started=0.0)
    _, changes = _run(mon, 1.0, _stats(scene=0.9), 0.0)
    assert [(c.fault, c.change) for c in changes] == [("scene_change", "instant")]


def test_frame_inspector_signals() -> None:
    rng = np.random.default_rng(1)
    insp = FrameInspector(scene_change=0.5)
    live = [np.clip(_scene().astype(int) + rng.integers(-3, 4, (240, 320, 1)), 0, 255)
            .astype(np.uint8) for _ in range(3)]
    first = insp.inspect(live[0])
    assert not insp.inspect(live[1]).repeated
    assert insp.inspect(live[1]).repeated
    assert first.std > 10
    assert insp.inspect(np.zeros_like(live[0])).std == 0.0
    moved = np.full_like(live[0], 230)  # the camera now looks at a white wall
    assert insp.inspect(moved).scene_diff > 0.5
    insp.reset_scene(moved)
    assert insp.inspect(moved).scene_diff == 0.0
