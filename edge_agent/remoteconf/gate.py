"""The health gate of a configuration on trial (pure).

After a new configuration is applied the box watches itself: it keeps the configuration once
every check has passed *continuously* for ``settle_s``, and gives it back when that has not
happened by ``grace_s`` after the apply. The checks:

- uplink: connected to the broker;
- capture: every enabled camera has frames (``no_frames`` fails; a covered or frozen picture is
  the scene, not the configuration, and passes);
- detection: with a detector, every enabled camera has run at least one inference since the
  apply and is not ``detector_stalled``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

FAILING_CAMERA_STATES: Final = frozenset({"no_frames", "detector_stalled"})


@dataclass(frozen=True)
class Probe:
    """One look at the running stages."""

    uplink_connected: bool
    cameras: dict[str, str] = field(default_factory=dict)  # enabled camera -> health state
    inferences: dict[str, int] | None = None  # camera -> inferences so far; None: no detector


@dataclass(frozen=True)
class Verdict:
    state: Literal["pending", "healthy", "failed"]
    reason: str = ""


def problems(probe: Probe, baseline: Probe) -> list[str]:
    out = []
    if not probe.uplink_connected:
        out.append("uplink: not connected to the broker")
    for cam, state in sorted(probe.cameras.items()):
        if state in FAILING_CAMERA_STATES:
            kind = "capture" if state == "no_frames" else "detection"
            out.append(f"{kind}: camera {cam} {state}")
    if probe.inferences is not None:
        before = baseline.inferences or {}
        for cam in sorted(probe.cameras):
            if probe.inferences.get(cam, 0) <= before.get(cam, 0):
                out.append(f"detection: camera {cam} has run no inference")
    return out


class HealthGate:
    def __init__(self, started: float, grace_s: float, settle_s: float,
                 baseline: Probe) -> None:
        self.started = started
        self.grace_s = grace_s
        self.settle_s = min(settle_s, grace_s)
        self.baseline = baseline
        self._healthy_since: float | None = None
        self.last_problems: list[str] = []

    def observe(self, probe: Probe, now: float) -> Verdict:
        found = problems(probe, self.baseline)
        self.last_problems = found
        if found:
            self._healthy_since = None
        elif self._healthy_since is None:
            self._healthy_since = now
        if self._healthy_since is not None and now - self._healthy_since >= self.settle_s:
            return Verdict("healthy")
        if now - self.started >= self.grace_s:
            why = "; ".join(found) if found else "not healthy for long enough"
            return Verdict("failed", f"unhealthy {self.grace_s:g}s after apply: {why}")
        return Verdict("pending")
