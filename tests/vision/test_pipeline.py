"""The threaded pipeline end to end: real threads, real clocks, injected faults."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from dcor_wire.payloads import CameraHealth
from edge_agent.vision.config import (
    DetectorConfig,
    OpenCVCameraConfig,
    SyntheticCameraConfig,
)
from edge_agent.vision.detector import Detection, LiteRTDetector
from edge_agent.vision.flow import Average
from edge_agent.vision.pipeline import CameraPipeline
from edge_agent.vision.synthetic import SyntheticSource
from tests.vision.conftest import MemorySink

WINDOW = 1.0  # every fault window in these tests; each must show within 2 x WINDOW


def wait_for(cond: Callable[[], Any], timeout: float) -> Any:
    """Poll ``cond`` until it is truthy; return it, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout}s")


def synthetic(**extra: Any) -> SyntheticCameraConfig:
    doc = {"type": "synthetic", "id": "syn1", "width": 320, "height": 240, "fps": 20,
           "reconnect_min": "100ms", "reconnect_max": "300ms",
           "health": {"down": WINDOW, "frozen": WINDOW, "covered": WINDOW,
                      "stalled": WINDOW, "recover": "300ms"},
           "snapshots": {"periodic_interval": 0}}
    doc.update(extra)
    return SyntheticCameraConfig.model_validate(doc)


@pytest.fixture
def running() -> Iterator[list[CameraPipeline]]:
    started: list[CameraPipeline] = []
    yield started
    for p in started:
        p.stop()


def _event_after(sink: MemorySink, kind: str, status: str, since: int) -> Any:
    return next((e for e in sink.events(kind)[since:] if e.status == status), None)


@pytest.mark.parametrize(("fault", "kind", "state"), [
    ("stopped", "camera_down", "no_frames"),
    ("frozen", "frozen", "frozen"),
    ("black", "covered", "covered"),
])
def test_fault_raises_event_and_state_then_recovery_clears(
        fault: str, kind: str, state: str, sink: MemorySink,
        running: list[CameraPipeline]) -> None:
    cam = synthetic()
    source = SyntheticSource(cam)
    pipe = CameraPipeline(cam, sink, source=source)
    running.append(pipe)
    pipe.start()
    wait_for(lambda: pipe.analyzer.frames > 10, 2.0)
    assert pipe.health()["state"] == "streaming"
    source.inject(fault)  # type: ignore[arg-type]
    t0 = time.monotonic()
    raised = wait_for(lambda: _event_after(sink, kind, "raised", 0), 2 * WINDOW)
    assert time.monotonic() - t0 <= 2 * WINDOW
    assert pipe.health()["state"] == state
    assert raised.snapshot, "a fault event shows the last picture"
    source.inject("none")
    cleared = wait_for(lambda: _event_after(sink, kind, "cleared", 0), 2 * WINDOW + 1.0)
    assert cleared.id == raised.id
    wait_for(lambda: pipe.health()["state"] == "streaming", 1.0)
    if fault == "stopped":
        assert pipe.health()["reconnects"] >= 1
    others = {e.kind for e in sink.events()} - {kind}
    assert not others, f"only {kind} expected, also got {others}"


class StuckDetector:
    """A detector that hangs until released, as a wedged accelerator would."""

    def __init__(self) -> None:
        self.cfg = DetectorConfig(min_rate=2.0, max_rate=5.0)
        self.inference_ms = Average()
        self.release = threading.Event()
        self.calls = 0

    def detect_split(self, image: Any) -> tuple[list[Detection], list[Detection]]:
        self.calls += 1
        if self.calls > 3:
            self.release.wait(10)
        self.inference_ms.add(5.0)
        return [], []


def test_a_stuck_detector_is_reported(sink: MemorySink, running: list[CameraPipeline]) -> None:
    det = StuckDetector()
    cam = synthetic()
    pipe = CameraPipeline(cam, sink, detector=det, source=SyntheticSource(cam))
    running.append(pipe)
    pipe.start()
    wait_for(lambda: det.calls > 3, 3.0)
    wait_for(lambda: _event_after(sink, "detector_stalled", "raised", 0), 2 * WINDOW + 1.0)
    assert pipe.health()["state"] == "detector_stalled"
    assert pipe.health()["dropped"] > 0  # frames pile up behind it and are dropped
    det.release.set()
    wait_for(lambda: _event_after(sink, "detector_stalled", "cleared", 0), 3.0)
    assert not sink.events("camera_down")


def test_threads_are_named_and_stop_fast(sink: MemorySink, tmp_path: Path) -> None:
    cam = synthetic()
    pipe = CameraPipeline(cam, sink, source=SyntheticSource(cam), data_dir=tmp_path)
    before = {t.name for t in threading.enumerate()}  # other tests' threads may live on
    pipe.start()
    names = {t.name for t in threading.enumerate()} - before
    assert {"dcor.capture:syn1", "dcor.analyze:syn1", "dcor.watch:syn1",
            "dcor.video:syn1"} <= names
    wait_for(lambda: pipe.stats()["video_frames"] > 5, 3.0)
    t0 = time.monotonic()
    pipe.stop()
    assert time.monotonic() - t0 < 1.0
    assert not {t.name for t in threading.enumerate()} & names
    health = msgspec.convert(pipe.health(), CameraHealth)
    assert health.fps > 5
    assert pipe.ring_dir is not None and list(pipe.ring_dir.glob("*.ts"))


def test_replaying_the_video_file_publishes_people(
        assets: Path, detector: LiteRTDetector, sink: MemorySink,
        running: list[CameraPipeline]) -> None:
    cam = OpenCVCameraConfig.model_validate({
        "type": "opencv", "id": "vtest", "file": str(assets / "video" / "vtest_first250.avi"),
        "loop": True, "interval": "1s", "snapshots": {"periodic_interval": "1s"}})
    pipe = CameraPipeline(cam, sink, detector=detector)
    running.append(pipe)
    pipe.start()
    reports = wait_for(lambda: sink.of("detections")[:2] if len(sink.of("detections")) >= 2
                       else None, 5.0)
    assert all(r.counts.get("person", 0) > 0 for r in reports)
    assert 8 <= pipe.health()["fps"] <= 12  # paced at the file's 10 fps
    assert pipe.health()["inference_ms"] > 0
    assert any(m["kind"] == "periodic" for _, _, m in sink.snapshots)
    assert pipe.snapshot_now() is not None
    assert sink.snapshots[-1][2]["kind"] == "on_demand"


def test_a_disabled_camera_does_not_start(sink: MemorySink) -> None:
    cam = synthetic(enabled=False)
    pipe = CameraPipeline(cam, sink, source=SyntheticSource(cam))
    pipe.start()
    assert not [t for t in threading.enumerate() if t.name.endswith(":syn1")]
    assert pipe.health()["state"] == "disabled"
    pipe.stop()
