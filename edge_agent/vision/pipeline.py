"""One camera's pipeline: source -> motion gate -> detector -> tracker/counts -> telemetry,
snapshots and the video ring, on named threads sharing one stop event.

Threads (started consumers first, stopped in reverse order):
- ``dcor.video:<cam>``    H.264 into the segment ring (when video is on and a data dir given)
- ``dcor.analyze:<cam>``  ``FrameAnalyzer.process`` on each frame
- ``dcor.watch:<cam>``    camera health every 0.25 s, even when frames or the detector stop
- ``dcor.capture:<cam>``  the source, reconnects and pacing
Queues between them are bounded and drop the oldest frame, so a slow stage costs frames,
counted, never a stalled capture.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.telemetry import TelemetrySink
from edge_agent.vision.analyzer import Detector, FrameAnalyzer
from edge_agent.vision.capture import CaptureWorker
from edge_agent.vision.config import CameraConfig
from edge_agent.vision.flow import DropQueue, Frame
from edge_agent.vision.sources import FrameSource, make_source
from edge_agent.vision.video import SegmentRing

log = logging.getLogger(__name__)
WATCH_PERIOD = 0.25
_POLL = 0.2  # how long a consumer waits for a frame before checking the stop event


class CameraPipeline:
    def __init__(self, camera: CameraConfig, sink: TelemetrySink,
                 detector: Detector | None = None, data_dir: Path | None = None,
                 source: FrameSource | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        """``detector`` may be shared by several cameras; ``data_dir`` holds the video ring
        (``<data_dir>/ring/<camera id>``), no recording without it."""
        self.camera = camera
        self.detector = detector
        self._clock = clock
        self._stop = threading.Event()
        self.source = source if source is not None else make_source(camera)
        self._analysis_q: DropQueue[Frame] = DropQueue(camera.queue_size)
        outputs = [self._analysis_q]
        self.ring: SegmentRing | None = None
        self._video_q: DropQueue[Frame] | None = None
        if camera.video.enabled and data_dir is not None:
            fps = getattr(camera, "fps", None) or self.source.pace_fps or 10.0
            self.ring = SegmentRing(Path(data_dir) / "ring" / camera.id, camera.video, fps)
            # The encoder is bursty (a keyframe costs several frames' time): more slack.
            self._video_q = DropQueue(max(camera.queue_size, 16))
            outputs.append(self._video_q)
        self.capture = CaptureWorker(camera.id, self.source, outputs, self._stop,
                                     camera.reconnect_min, camera.reconnect_max,
                                     clock=clock, wall=wall)
        self.analyzer = FrameAnalyzer(camera, sink, detector, started=clock(), wall=wall,
                                      clock=clock)
        self._threads: list[threading.Thread] = []

    @property
    def ring_dir(self) -> Path | None:
        """Where ``cut_clip`` finds this camera's segments."""
        return self.ring.directory if self.ring is not None else None

    def start(self) -> None:
        if self._threads:
            raise RuntimeError(f"pipeline {self.camera.id} already started")
        cam = self.camera.id
        if not self.camera.enabled:
            log.info("camera %s: disabled in the configuration, not started", cam)
            return
        if self.ring is not None:
            self._spawn(f"dcor.video:{cam}", self._video_loop)
        self._spawn(f"dcor.analyze:{cam}", self._analysis_loop)
        self._spawn(f"dcor.watch:{cam}", self._watch_loop)
        self.capture.start()
        log.info("camera %s: started (%s)", cam, self.source.name)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every stage, newest first; the open segment is closed and the partial
        detections interval is sent."""
        self._stop.set()
        deadline = self._clock() + timeout
        self.capture.join(max(0.0, deadline - self._clock()))
        for t in reversed(self._threads):
            t.join(max(0.0, deadline - self._clock()))
            if t.is_alive():
                log.warning("thread %s did not stop within %.1fs", t.name, timeout)
        self._threads.clear()
        try:
            self.analyzer.flush()
        except ValueError:
            log.exception("camera %s: last detections rejected", self.camera.id)

    def health(self) -> dict[str, Any]:
        """Fields of ``dcor_wire.payloads.CameraHealth`` for the health payload."""
        state = self.analyzer.health.state if self.camera.enabled else "disabled"
        out: dict[str, Any] = {
            "state": state,
            "fps": round(self.capture.meter.rate(), 2),
            "dropped": self.capture.dropped,
            "reconnects": self.capture.reconnects,
        }
        if self.detector is not None and self.detector.inference_ms.value is not None:
            out["inference_ms"] = round(self.detector.inference_ms.value, 2)
        return out

    def stats(self) -> dict[str, Any]:
        """Counters of every stage, for logs, ``/metrics`` and the on-site check."""
        a = self.analyzer
        return {
            "frames": self.capture.meter.total, "failures": self.capture.failures,
            "last_error": self.capture.last_error, "finished": self.capture.finished,
            "analysed": a.frames, "motion_frames": a.motion_frames, "inferences": a.inferences,
            "events": a.events, "snapshots": a.snapshots, "snapshot_bytes": a.snapshot_bytes,
            "analysis_dropped": self._analysis_q.dropped,
            "video_dropped": self._video_q.dropped if self._video_q else 0,
            "video_frames": self.ring.frames if self.ring else 0,
            "encoder": self.ring.encoder if self.ring else "",
        }

    def snapshot_now(self) -> str | None:
        return self.analyzer.snapshot_now()

    def set_snapshot_scale(self, scale: float) -> None:
        """0.1..1: shrink snapshots (size and bytes) when the uplink is over budget."""
        self.analyzer.snapshot_scale = min(1.0, max(0.1, scale))

    # --- threads -------------------------------------------------------------------------

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _analysis_loop(self) -> None:
        while not self._stop.is_set():
            frame = self._analysis_q.get(_POLL)
            if frame is None:
                continue
            try:
                self.analyzer.process(frame)
            except Exception:  # one bad frame (or a refused payload) must not end analysis
                log.exception("camera %s: analysis failed", self.camera.id)

    def _watch_loop(self) -> None:
        while not self._stop.wait(WATCH_PERIOD):
            try:
                self.analyzer.tick(self._clock(), self.capture.last_frame_mono)
            except Exception:
                log.exception("camera %s: health evaluation failed", self.camera.id)

    def _video_loop(self) -> None:
        assert self.ring is not None and self._video_q is not None
        try:
            while not self._stop.is_set():
                frame = self._video_q.get(_POLL)
                if frame is not None:
                    try:
                        self.ring.write(frame)
                    except Exception:
                        log.exception("camera %s: recording failed", self.camera.id)
                        self._stop.wait(1.0)
        finally:
            self.ring.close()
