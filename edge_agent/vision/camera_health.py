"""Camera health: raw per-frame signals -> debounced faults -> one state and its events.

States, worst first: ``no_frames``, ``covered``, ``frozen``, ``detector_stalled``, else
``streaming``. Each fault is raised once its condition has held for its window (``down``,
``covered``, ``frozen``, ``stalled``) and cleared once it has been gone for ``recover``.
``frame``/``inference`` are fed by the analysis thread, ``evaluate`` by a watchdog that keeps
running when frames (or the detector) stop; a lock makes the two safe together.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final

from edge_agent.vision.config import CameraHealthConfig
from edge_agent.vision.debounce import Debounce
from edge_agent.vision.tamper import FrameStats

FAULTS: Final = ("no_frames", "covered", "frozen", "detector_stalled")  # worst first
EVENT_KIND: Final = {
    "no_frames": "camera_down",
    "covered": "covered",
    "frozen": "frozen",
    "detector_stalled": "detector_stalled",
}


@dataclass(frozen=True, slots=True)
class HealthChange:
    fault: str  # one of FAULTS, or "scene_change"
    change: str  # "raised" | "cleared" | "instant"
    onset: float  # monotonic time the condition began


class CameraHealthMonitor:
    def __init__(self, cfg: CameraHealthConfig, min_inference_rate: float | None,
                 started: float) -> None:
        """``min_inference_rate`` None: no detector, so it cannot stall."""
        self.cfg = cfg
        self._started = started
        self._min_rate = min_inference_rate
        self._lock = threading.Lock()
        self._deb = {
            "no_frames": Debounce(cfg.down, cfg.recover),
            "covered": Debounce(cfg.covered, cfg.recover),
            "frozen": Debounce(cfg.frozen, cfg.recover),
            "detector_stalled": Debounce(cfg.stalled, cfg.recover),
        }
        self._last_frame: float | None = None
        self._prev_frame: float | None = None
        self._covered_since: float | None = None
        self._frozen_since: float | None = None
        self._scene_since: float | None = None
        self._last_inference: float | None = None

    @property
    def state(self) -> str:
        with self._lock:
            for fault in FAULTS:
                if self._deb[fault].active:
                    return fault
            return "streaming" if self._last_frame is not None else "no_frames"

    def active(self, fault: str) -> bool:
        with self._lock:
            return self._deb[fault].active

    def frame(self, now: float, stats: FrameStats) -> list[HealthChange]:
        """Record one analysed frame; returns a scene change when the view has moved."""
        with self._lock:
            self._prev_frame, self._last_frame = self._last_frame, now
            covered = stats.std < self.cfg.covered_std
            if not covered:
                self._covered_since = None
            elif self._covered_since is None:
                self._covered_since = now
            # A featureless image repeats trivially: that is a covered lens, not a freeze.
            if not stats.repeated or covered:
                self._frozen_since = None
            elif self._frozen_since is None:
                # Frozen since the first of the identical frames, not the second.
                self._frozen_since = now if self._prev_frame is None else self._prev_frame
            if stats.scene_diff < self.cfg.scene_change or covered:
                self._scene_since = None
            else:
                if self._scene_since is None:
                    self._scene_since = now
                if now - self._scene_since >= self.cfg.scene_change_hold:
                    onset, self._scene_since = self._scene_since, None
                    return [HealthChange("scene_change", "instant", onset)]
            return []

    def inference(self, now: float) -> None:
        with self._lock:
            self._last_inference = now

    def evaluate(self, now: float, last_capture: float | None = None) -> list[HealthChange]:
        """Debounced transitions as of ``now`` (monotonic). ``last_capture`` is when the
        source last delivered a frame; without it, the last analysed frame counts (a busy
        analysis thread must not make a live camera look down)."""
        with self._lock:
            last = last_capture if last_capture is not None else self._last_frame
            ref = last if last is not None else self._started
            gap = min(1.0, self.cfg.down / 2)
            stale = now - ref > gap
            present = {
                "no_frames": (stale, ref),
                "covered": (not stale and self._covered_since is not None,
                            self._covered_since),
                "frozen": (not stale and self._frozen_since is not None, self._frozen_since),
                "detector_stalled": self._stalled(now, stale),
            }
            changes = []
            for fault in FAULTS:
                is_present, onset = present[fault]
                deb = self._deb[fault]
                change = deb.update(is_present, now, onset if is_present else None)
                if change:
                    onset_at = deb.raised_at if deb.raised_at is not None else now
                    changes.append(HealthChange(fault, change, onset_at))
            return changes

    def _stalled(self, now: float, stale: bool) -> tuple[bool, float | None]:
        if self._min_rate is None or self._min_rate <= 0 or stale:
            return False, None
        last = self._last_inference if self._last_inference is not None else self._started
        # Overdue once the slowest allowed inference gap (plus a little slack) has passed.
        due = last + 1.0 / self._min_rate + 0.5
        return now > due, due
