"""Rollout waves and their verdicts (pure, table-tested in ``tests/config/test_waves.py``).

A rollout splits its targets into waves: first ``canary`` devices, then up to each
cumulative percentage of all targets (``[25, 100]``: a quarter, then the rest). The order is
a hash of (rollout id, device id): stable for one rollout, different canaries for the next,
spread over kelurahan instead of following the registry's order.

Each pushed device ends ``ok`` (applied, then ``bake_s`` without a health regression) or
``failed`` (rejected, rolled back, no report within ``report_timeout_s``, offline or
regressed after the bake). The rollout aborts as soon as failures pass a threshold (also
while paused), pushes the next wave once every device of the current one has settled, and
completes after the last.

Wall-clock seconds on purpose: the rollout's times are stored in the registry and outlive
the process that pushed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

DeviceState = Literal["planned", "pushed", "unchanged", "skipped", "reverted"]


class WaveSpecError(ValueError):
    """Waves that cannot be planned (the message says why)."""


@dataclass(frozen=True)
class Thresholds:
    max_failure_pct: float = 10.0  # of the devices pushed so far
    max_failures: int | None = None  # absolute; None: only the percentage counts
    report_timeout_s: float = 300.0
    bake_s: float = 60.0
    health_check: bool = True  # compare health after the bake with the one before the push
    fps_drop_pct: float = 50.0
    inference_rise_pct: float = 100.0
    inference_min_rise_ms: float = 5.0
    min_fps: float = 1.0  # cameras slower than this before the push are not compared


def plan_waves(devices: Sequence[str], canary: int, percentages: Sequence[float],
               salt: str = "") -> list[list[str]]:
    if canary < 0:
        raise WaveSpecError("the canary count cannot be negative")
    pcts = list(percentages)
    if not pcts or pcts[-1] != 100:
        raise WaveSpecError("percentages must end with 100 (the whole target set)")
    if any(not 0 < p <= 100 for p in pcts) or any(b <= a for a, b in pairwise(pcts)):
        raise WaveSpecError("percentages must rise strictly within 0 < p <= 100")
    order = sorted(set(devices), key=lambda d: hashlib.sha256(f"{salt}:{d}".encode())
                   .hexdigest())
    n = len(order)
    waves: list[list[str]] = []
    done = min(canary, n)
    if done:
        waves.append(order[:done])
    for p in pcts:
        upto = min(n, math.ceil(n * p / 100.0 - 1e-9))
        if upto > done:
            waves.append(order[done:upto])
            done = upto
    return waves


# --- one device ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Report:
    status: str  # applied | rejected | rolled_back
    version: int  # in force after the event
    desired_version: int  # the document the report is about
    reason: str = ""
    error: str = ""
    at: float = 0.0  # when the hub stored it


@dataclass(frozen=True)
class DeviceFacts:
    state: DeviceState
    new_version: int = 0
    pushed_at: float | None = None
    report: Report | None = None
    online: bool = True
    baseline: Mapping[str, Any] | None = None  # last health before the push
    health: Mapping[str, Any] | None = None  # last health now
    health_at: float | None = None


@dataclass(frozen=True)
class Outcome:
    kind: Literal["waiting", "ok", "failed", "skipped"]
    reason: str = ""


def device_outcome(f: DeviceFacts, th: Thresholds, now: float) -> Outcome:
    if f.state == "unchanged":
        return Outcome("ok", "already had this configuration")
    if f.state == "skipped":
        return Outcome("skipped", "offline when its wave started")
    if f.state == "planned":
        return Outcome("waiting", "not pushed yet")
    if f.state == "reverted":
        return Outcome("failed", "reverted")
    r = f.report
    pushed_at = f.pushed_at if f.pushed_at is not None else now
    if r is not None and r.desired_version == f.new_version:
        if r.status == "rejected":
            return Outcome("failed", f"rejected: {r.reason}: {r.error}".rstrip(": "))
        if r.status == "rolled_back":
            return Outcome("failed", f"rolled back: {r.error or r.reason}")
        if r.status == "applied" and r.version == f.new_version:
            return _baked(f, th, now, r.at)
    if now - pushed_at >= th.report_timeout_s:
        where = "" if f.online else " (offline)"
        return Outcome("failed", f"no report within {th.report_timeout_s:g}s{where}")
    return Outcome("waiting", "waiting for the report")


def _baked(f: DeviceFacts, th: Thresholds, now: float, applied_at: float) -> Outcome:
    if now - applied_at < th.bake_s:
        return Outcome("waiting", "applied; baking")
    if not f.online:
        return Outcome("failed", "offline after applying")
    if not th.health_check:
        return Outcome("ok")
    if f.health_at is None or f.health_at < applied_at:
        if now - applied_at >= th.bake_s + th.report_timeout_s:
            return Outcome("failed", "no health since applying")
        return Outcome("waiting", "applied; waiting for health")
    found = regressions(f.baseline, f.health, th)
    return Outcome("failed", "health regression: " + "; ".join(found)) if found else \
        Outcome("ok")


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def regressions(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
                th: Thresholds) -> list[str]:
    """Cameras that slowed down or whose inference got slower; cameras the new configuration
    removed are not compared."""
    if not before or not after:
        return []
    out = []
    cams_before = before.get("cameras") or {}
    cams_after = after.get("cameras") or {}
    for cam in sorted(set(cams_before) & set(cams_after)):
        b, a = cams_before[cam] or {}, cams_after[cam] or {}
        fb, fa = _num(b.get("fps")), _num(a.get("fps")) or 0.0
        if fb is not None and fb >= th.min_fps and fa < fb * (1 - th.fps_drop_pct / 100):
            out.append(f"camera {cam} fps {fb:.1f} -> {fa:.1f}")
        ib, ia = _num(b.get("inference_ms")), _num(a.get("inference_ms"))
        if ib is not None and ia is not None and ia > ib * (1 + th.inference_rise_pct / 100) \
                and ia - ib >= th.inference_min_rise_ms:
            out.append(f"camera {cam} inference {ib:.0f} ms -> {ia:.0f} ms")
    return out


# --- the rollout --------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    action: Literal["wait", "push", "abort", "complete"]
    wave: int = -1
    reason: str = ""


def over_threshold(failed: int, pushed: int, th: Thresholds) -> bool:
    if failed == 0:
        return False
    if th.max_failures is not None and failed > th.max_failures:
        return True
    return failed * 100.0 > th.max_failure_pct * max(1, pushed)


def decide(status: str, wave: int, waves: Sequence[Sequence[Outcome]],
           th: Thresholds) -> Decision:
    """What the rollout does next. ``wave`` is the newest wave pushed (-1: none yet)."""
    if status not in ("running", "paused"):
        return Decision("wait")
    started = [o for w in waves[: wave + 1] for o in w if o.kind != "skipped"]
    failed = [o for o in started if o.kind == "failed"]
    if over_threshold(len(failed), len(started), th):
        reasons = sorted({o.reason for o in failed})
        return Decision("abort", wave, f"{len(failed)} of {len(started)} devices failed: "
                                       + "; ".join(reasons[:3]))
    if status == "paused":
        return Decision("wait")
    if wave >= 0 and any(o.kind == "waiting" for o in waves[wave]):
        return Decision("wait")
    if wave + 1 < len(waves):
        return Decision("push", wave + 1)
    return Decision("complete", wave)
