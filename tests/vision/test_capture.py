"""Sources and the capture loop: files, loops, reconnects with backoff, pacing, counters."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge_agent.vision.capture import CaptureWorker
from edge_agent.vision.config import (
    OpenCVCameraConfig,
    Picamera2CameraConfig,
    SyntheticCameraConfig,
)
from edge_agent.vision.errors import SourceError, SourceFinished
from edge_agent.vision.flow import DropQueue, Frame
from edge_agent.vision.sources import (
    OpenCVSource,
    Picamera2Source,
    expand_env,
    make_source,
    redact,
)
from edge_agent.vision.synthetic import SyntheticSource


def _file_cam(path: Path, **kw: object) -> OpenCVCameraConfig:
    return OpenCVCameraConfig.model_validate({"type": "opencv", "id": "f", "file": str(path),
                                              **kw})


def test_a_file_ends_or_loops(assets: Path) -> None:
    clip = assets / "video" / "traffic_frames.mp4"  # 20 frames
    once = OpenCVSource(_file_cam(clip))
    once.open()
    assert once.pace_fps == pytest.approx(30.0)
    frames = [once.read() for _ in range(20)]
    assert frames[0].shape == (540, 960, 3)
    with pytest.raises(SourceFinished):
        once.read()
    looped = OpenCVSource(_file_cam(clip, loop=True, pace=False))
    looped.open()
    assert looped.pace_fps is None
    assert len([looped.read() for _ in range(45)]) == 45
    looped.close()


def test_a_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        OpenCVSource(_file_cam(tmp_path / "none.mp4")).open()


def test_urls_take_secrets_from_the_environment_and_hide_them() -> None:
    url = "rtsp://admin:${CAM_PW}@10.1.2.3:554/Streaming/Channels/102"
    assert expand_env(url, {"CAM_PW": "s3cret"}).startswith("rtsp://admin:s3cret@")
    with pytest.raises(SourceError, match="CAM_PW"):
        expand_env(url, {})
    assert redact("rtsp://admin:s3cret@10.1.2.3/x") == "rtsp://***@10.1.2.3/x"
    cam = OpenCVCameraConfig.model_validate({"type": "opencv", "id": "r", "url": url})
    assert "CAM_PW" not in make_source(cam).name and "admin" not in make_source(cam).name


def test_picamera2_is_imported_only_when_opened() -> None:
    src = make_source(Picamera2CameraConfig(type="picamera2", id="pi"))
    assert isinstance(src, Picamera2Source)
    try:
        import picamera2  # noqa: F401
    except ImportError:
        with pytest.raises(SourceError, match="python3-picamera2"):
            src.open()
    else:  # pragma: no cover - only on a Raspberry Pi
        pytest.skip("picamera2 is installed here")


class FlakySource:
    """Opens on the third try, delivers 5 frames, breaks, then works again."""

    name = "flaky"
    pace_fps: float | None = 50.0

    def __init__(self) -> None:
        self.opens = 0
        self.reads = 0

    def open(self) -> None:
        self.opens += 1
        if self.opens < 3:
            raise SourceError("connection refused")

    def read(self) -> np.ndarray:
        self.reads += 1
        if self.reads == 6:
            raise SourceError("stream reset")
        return np.zeros((8, 8, 3), np.uint8)

    def close(self) -> None:
        pass


def test_capture_reconnects_with_backoff_and_counts() -> None:
    stop = threading.Event()
    q: DropQueue[Frame] = DropQueue(3)
    src = FlakySource()
    delays: list[float] = []
    worker = CaptureWorker("cam1", src, [q], stop, reconnect_min=0.05, reconnect_max=0.1,
                           rand=lambda: 1.0)
    real_wait = stop.wait

    def recording_wait(timeout: float | None = None) -> bool:
        delays.append(timeout or 0.0)
        return real_wait(timeout)

    stop.wait = recording_wait  # type: ignore[method-assign]
    worker.start()
    deadline = time.monotonic() + 3
    while worker.meter.total < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    worker.join(1.0)
    assert worker.meter.total >= 20
    assert worker.failures == 3 and worker.reconnects == 1
    assert "stream reset" in worker.last_error
    assert [d for d in delays if d >= 0.05][:2] == [0.05, 0.1]  # doubling, capped
    assert worker.dropped == q.dropped > 0  # nobody consumed: the queue dropped, not blocked
    kept = [f.index for f in (q.get(0), q.get(0), q.get(0)) if f is not None]
    total = worker.meter.total
    assert kept == [total - 3, total - 2, total - 1]  # the newest frames survive


def test_capture_paces_at_the_source_rate() -> None:
    cam = SyntheticCameraConfig(type="synthetic", id="s", width=64, height=64, fps=25)
    stop = threading.Event()
    q: DropQueue[Frame] = DropQueue(100)
    worker = CaptureWorker("s", SyntheticSource(cam), [q], stop)
    worker.start()
    time.sleep(1.0)
    rate = worker.meter.rate()
    stop.set()
    worker.join(1.0)
    assert 20 <= rate <= 30
    frames = [q.get(0) for _ in range(len(q))]
    ts = [f.ts_ms for f in frames if f]
    assert ts == sorted(ts) and len(ts) >= 20
