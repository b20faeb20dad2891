"""What happens to one analysed frame, synchronously and in order: tamper checks, motion
gate, detector, tracker and counts, events, snapshots, detections per interval.

The pipeline runs it on its analysis thread; tests run it frame by frame on a file, which
makes replays deterministic. ``tick`` evaluates camera health when no frame arrives.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from edge_agent.telemetry import Priority, TelemetrySink
from edge_agent.vision.camera_health import EVENT_KIND, CameraHealthMonitor, HealthChange
from edge_agent.vision.config import CameraConfig, DetectorConfig, SnapshotClass
from edge_agent.vision.counting import SceneCounter, SceneEvent
from edge_agent.vision.detector import Detection
from edge_agent.vision.flow import Average, Frame
from edge_agent.vision.motion import InferenceScheduler, MotionGate, small_grey
from edge_agent.vision.snapshots import encode_snapshot, snapshot_meta
from edge_agent.vision.tamper import FrameInspector
from edge_agent.vision.tracker import Tracker

log = logging.getLogger(__name__)
_ID_PART_RE = re.compile(r"[^a-z0-9_-]+")


class Detector(Protocol):
    cfg: DetectorConfig
    inference_ms: Average

    def detect_split(self, image: Any) -> tuple[list[Detection], list[Detection]]: ...


def event_id(camera_id: str, kind: str, onset_ms: int, *parts: object) -> str:
    """Stable: the same condition (camera, kind, subject, onset) always gets the same id."""
    extra = [_ID_PART_RE.sub("_", str(p).lower()) for p in parts if p is not None]
    return ".".join([camera_id, kind, str(onset_ms), *extra])[:128]


class FrameAnalyzer:
    def __init__(self, camera: CameraConfig, sink: TelemetrySink,
                 detector: Detector | None = None, started: float | None = None,
                 wall: Callable[[], float] = time.time,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.camera = camera
        self.sink = sink
        self.detector = detector
        self._wall = wall
        dcfg = detector.cfg if detector is not None else None
        self.gate = MotionGate(camera.motion)
        self.scheduler = InferenceScheduler(dcfg.min_rate, dcfg.max_rate) if dcfg else None
        # Keep a track through the longest gap the motion gate may leave between inferences.
        max_age = max(1.5, 2.5 / dcfg.min_rate) if dcfg and dcfg.min_rate > 0 else 3.0
        self.tracker = Tracker(max_age=max_age)
        self.counter = SceneCounter(camera.zones, camera.lines)
        self.inspector = FrameInspector(camera.health.scene_change)
        self.health = CameraHealthMonitor(
            camera.health, dcfg.min_rate if dcfg else None,
            clock() if started is None else started)
        self.snapshot_scale = 1.0  # lowered by the uplink when over its byte budget
        self.last_frame: Frame | None = None
        self.last_detections: list[Detection] = []
        self._interval_start: int | None = None
        self._last_periodic: float | None = None
        self._open_events: dict[str, str] = {}  # fault -> id of its raised event
        self._lock = threading.Lock()  # events come from the analysis and watch threads
        self.frames = self.inferences = self.motion_frames = 0
        self.events = self.snapshots = self.snapshot_bytes = 0

    # --- per frame -----------------------------------------------------------------------

    def process(self, frame: Frame) -> None:
        self.last_frame = frame
        self.frames += 1
        grey = small_grey(frame.image, self.gate.width)  # shared by both cheap looks
        stats = self.inspector.inspect(frame.image, grey)
        for change in self.health.frame(frame.mono, stats):
            self.inspector.reset_scene(frame.image, grey)  # the new view is the reference
            self._health_event(change, frame.mono, frame.ts_ms)
        moving = self.gate.moving(frame.image, grey)
        self.motion_frames += moving
        if self.scheduler is not None and self.scheduler.due(frame.mono, moving):
            self._infer(frame)
        if self.detector is not None:
            self._maybe_flush(frame.ts_ms)
        self._maybe_periodic(frame)

    def _infer(self, frame: Frame) -> None:
        assert self.detector is not None and self.scheduler is not None
        strong, weak = self.detector.detect_split(frame.image)
        self.scheduler.ran(frame.mono)
        self.health.inference(frame.mono)
        self.inferences += 1
        tracks = self.tracker.update(strong, frame.mono, weak, frame.image)
        self.last_detections = strong
        for ev in self.counter.observe(strong, tracks, frame.mono):
            self._scene_event(ev, frame, strong)

    def tick(self, now: float, last_capture: float | None = None) -> None:
        """Evaluate camera health at monotonic ``now`` (the watchdog calls this)."""
        for change in self.health.evaluate(now, last_capture):
            self._health_event(change, now, int(self._wall() * 1000))

    # --- detections per interval ---------------------------------------------------------

    def _maybe_flush(self, ts_ms: int) -> None:
        if self._interval_start is None or ts_ms < self._interval_start:
            self._interval_start = ts_ms
        elif ts_ms - self._interval_start >= self.camera.interval * 1000:
            self.flush(ts_ms)

    def flush(self, end_ts: int | None = None) -> int | None:
        """Send the current interval's detections (if any inference ran); returns the seq."""
        start = self._interval_start
        if start is None or self.detector is None:
            return None
        end = end_ts if end_ts is not None else int(self._wall() * 1000)
        self._interval_start = end
        totals = self.counter.flush()
        if not totals["frames"]:
            return None
        fields = {"ts": start, "camera": self.camera.id, "interval_ms": max(1, end - start)}
        fields.update({k: v for k, v in totals.items() if v})
        return self.sink.put("detections", fields, Priority.DETECTIONS)

    # --- events and snapshots ------------------------------------------------------------

    def _scene_event(self, ev: SceneEvent, frame: Frame, dets: Sequence[Detection]) -> None:
        onset_ms = frame.ts_ms
        if ev.onset is not None:
            onset_ms -= round((frame.mono - ev.onset) * 1000)
        if ev.status == "cleared":
            eid = self._open_events.pop(f"crowd:{ev.zone}:{ev.label}", "")
        else:
            eid = event_id(self.camera.id, ev.kind, onset_ms, ev.zone, ev.label, ev.track)
            if ev.status == "raised":
                self._open_events[f"crowd:{ev.zone}:{ev.label}"] = eid
        fields: dict[str, Any] = {"zone": ev.zone, "label": ev.label}
        for key in ("count", "score", "track"):
            value = getattr(ev, key)
            if value is not None:
                fields[key] = round(value, 3) if key == "score" else value
        # The snapshot shows what the event is about: the crowd, or the one who entered.
        if ev.kind == "crowd":
            shown = [d for d in dets if d.label == ev.label]
        else:
            shown = [Detection(ev.label, ev.score or 0.0, ev.box)] if ev.box else []
        priority = Priority.DETECTIONS if ev.kind == "zone_enter" else Priority.ALARM
        self._emit(ev.kind, ev.status, eid or None, frame.ts_ms, onset_ms, fields, frame,
                   shown, priority)

    def _health_event(self, change: HealthChange, now: float, now_ms: int) -> None:
        onset_ms = now_ms - round((now - change.onset) * 1000)
        kind = EVENT_KIND.get(change.fault, change.fault)
        eid: str | None
        if change.change == "cleared":
            eid = self._open_events.pop(change.fault, None)
        else:
            eid = event_id(self.camera.id, kind, onset_ms)
            if change.change == "raised":
                self._open_events[change.fault] = eid
        frame = self.last_frame
        self._emit(kind, change.change, eid, now_ms, onset_ms, {}, frame, [], Priority.ALARM)

    def _emit(self, kind: str, status: str, eid: str | None, ts_ms: int, onset_ms: int,
              fields: dict[str, Any], frame: Frame | None, shown: Sequence[Detection],
              priority: Priority) -> None:
        if eid is None:
            eid = event_id(self.camera.id, kind, onset_ms)
        payload: dict[str, Any] = {"ts": ts_ms, "id": eid, "camera": self.camera.id,
                                   "kind": kind, "status": status, **fields}
        if status != "instant":
            payload["started_ts"] = onset_ms
        with self._lock:
            if status != "cleared":
                video = self.camera.video
                if video.enabled:
                    payload["clip_start_ts"] = max(0, onset_ms - round(video.pre_roll * 1000))
                    payload["clip_end_ts"] = onset_ms + round(video.post_roll * 1000)
                if frame is not None:
                    payload["snapshot"] = self._send_snapshot(
                        frame, self.camera.snapshots.event, "event", shown, eid)
            self.sink.put("events", payload, priority)
            self.events += 1

    def _send_snapshot(self, frame: Frame, spec: SnapshotClass, kind: str,
                       shown: Sequence[Detection], eid: str | None = None) -> str:
        snap = encode_snapshot(frame.image, spec, shown, self.snapshot_scale)
        meta = snapshot_meta(self.camera.id, frame.ts_ms, kind, snap, eid,
                             [d.label for d in shown] if spec.boxes else ())
        self.sink.put_snapshot(self.camera.id, snap.jpeg, meta)
        self.snapshots += 1
        self.snapshot_bytes += len(snap.jpeg)
        return meta["id"]

    def _maybe_periodic(self, frame: Frame) -> None:
        period = self.camera.snapshots.periodic_interval
        if period <= 0:
            return
        if self._last_periodic is None or frame.mono - self._last_periodic >= period:
            self._last_periodic = frame.mono
            spec = self.camera.snapshots.periodic
            with self._lock:
                self._send_snapshot(frame, spec, "periodic", self.last_detections)

    def snapshot_now(self) -> str | None:
        """An on-demand snapshot of the latest frame (``cmd/snapshot``); its id, or None."""
        frame = self.last_frame
        if frame is None:
            return None
        with self._lock:
            return self._send_snapshot(frame, self.camera.snapshots.on_demand, "on_demand",
                                       self.last_detections)
