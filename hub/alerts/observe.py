"""Turn what the hub knows into observations for the engine. Pure, no I/O.

``observe_devices`` reads device facts (state from ``hub.state.device_state`` plus the last
health payload as the registry stores it); ``DetectionWindows`` keeps recent per-zone counts
in memory and judges detection rules over their windows.

Health-based rules (metric, flag, camera_state) are only observed for devices that are online:
the last health of a stale or offline box is old news, and the device rules speak for it.
Decommissioned devices are observed as clear so their alerts resolve; devices never heard
from (state unknown) are not observed at all.
"""

from __future__ import annotations

import operator
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any, Final

from hub.alerts.model import Observation, Subject
from hub.alerts.rules import (
    CameraStateRule,
    DetectionRule,
    DeviceOfflineRule,
    DeviceStaleRule,
    FlagRule,
    MetricRule,
    Rule,
    UplinkDownRule,
)

_OPS: Final[dict[str, Callable[[float, float], bool]]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    device_id: str
    kecamatan: str
    kelurahan: str
    state: str  # online | stale | offline | unknown | decommissioned
    health: Mapping[str, Any] | None = None  # last Health payload, as stored in the registry

    @property
    def subject(self) -> Subject:
        return Subject("device", self.kecamatan, self.kelurahan, device=self.device_id)


def observe_devices(
    rules: Iterable[Rule], devices: Iterable[DeviceFacts], now: datetime
) -> list[Observation]:
    devices = list(devices)
    out: list[Observation] = []
    for rule in rules:
        if isinstance(rule, UplinkDownRule):
            out += _uplinks(rule, devices, now)
            continue
        for dev in devices:
            if dev.state == "unknown":
                continue
            if isinstance(rule, DeviceOfflineRule | DeviceStaleRule):
                wanted = "offline" if isinstance(rule, DeviceOfflineRule) else "stale"
                out.append(Observation(dev.subject, rule.id, dev.state == wanted, now))
            elif dev.state == "decommissioned":
                out += _all_clear(rule, dev, now)
            elif dev.state == "online" and dev.health is not None:
                out += _from_health(rule, dev, dev.health, now)
    return out


def _uplinks(rule: UplinkDownRule, devices: list[DeviceFacts], now: datetime) -> list[Observation]:
    places: dict[tuple[str, str], list[str]] = defaultdict(list)
    for dev in devices:
        if dev.state not in ("unknown", "decommissioned"):
            places[(dev.kecamatan, dev.kelurahan)].append(dev.state)
    out = []
    for (kecamatan, kelurahan), states in sorted(places.items()):
        if len(states) < rule.min_devices:
            continue
        down = sum(s == "offline" for s in states)
        out.append(Observation(Subject("kelurahan", kecamatan, kelurahan), rule.id,
                               down == len(states), now, value=float(down)))
    return out


def _all_clear(rule: Rule, dev: DeviceFacts, now: datetime) -> list[Observation]:
    if isinstance(rule, MetricRule | FlagRule):
        return [Observation(dev.subject, rule.id, False, now)]
    if isinstance(rule, CameraStateRule):
        return [Observation(_camera(dev, cam), rule.id, False, now)
                for cam in _cameras(dev.health) if fnmatchcase(cam, rule.cameras)]
    return []


def _from_health(rule: Rule, dev: DeviceFacts, health: Mapping[str, Any],
                 now: datetime) -> list[Observation]:
    if isinstance(rule, MetricRule):
        value = health.get(rule.field)
        if not isinstance(value, int | float) or isinstance(value, bool):
            return []
        active = _OPS[rule.op](float(value), rule.threshold)
        return [Observation(dev.subject, rule.id, active, now, value=float(value))]
    if isinstance(rule, FlagRule):
        flag = health.get(rule.field)
        if not isinstance(flag, bool):
            return []
        return [Observation(dev.subject, rule.id, flag == rule.equals, now, value=float(flag))]
    if isinstance(rule, CameraStateRule):
        out = []
        for cam, info in _cameras(health).items():
            if not fnmatchcase(cam, rule.cameras):
                continue
            state = str(info.get("state", "streaming")) if isinstance(info, Mapping) else ""
            out.append(Observation(_camera(dev, cam), rule.id, state in rule.states, now,
                                   detail=state))
        return out
    return []


def _cameras(health: Mapping[str, Any] | None) -> dict[str, Any]:
    cameras = (health or {}).get("cameras")
    return dict(cameras) if isinstance(cameras, Mapping) else {}


def _camera(dev: DeviceFacts, camera: str) -> Subject:
    return Subject("camera", dev.kecamatan, dev.kelurahan, device=dev.device_id, camera=camera)


class DetectionWindows:
    """Recent per-interval detection counts per zone, to judge detection rules over windows.

    ``add`` one sample per (zone, interval) with counts per class; ``observe`` sums each
    rule's classes per sample and aggregates the samples within the rule's window. A zone with
    no sample in the window counts as empty (so its alert can clear). Samples older than both
    ``horizon_s`` and the longest rule window are dropped.
    """

    def __init__(self, horizon_s: float = 600.0) -> None:
        self.horizon = timedelta(seconds=horizon_s)
        self._samples: dict[Subject, deque[tuple[datetime, dict[str, float]]]] = {}

    def add(self, zone: Subject, counts: Mapping[str, float], at: datetime) -> None:
        if zone.kind != "zone":
            raise ValueError(f"detection samples belong to a zone subject, not {zone.kind}")
        samples = self._samples.setdefault(zone, deque())
        samples.append((at, {k: float(v) for k, v in counts.items()}))

    def observe(self, rules: Iterable[Rule], now: datetime) -> list[Observation]:
        detection = [r for r in rules if isinstance(r, DetectionRule)]
        longest = max((r.window for r in detection), default=0.0)
        self._prune(now - max(self.horizon, timedelta(seconds=longest)))
        out = []
        for rule in detection:
            since = now - timedelta(seconds=rule.window)
            for zone, samples in sorted(self._samples.items(), key=lambda kv: kv[0].key):
                if not (fnmatchcase(zone.zone, rule.zones)
                        and fnmatchcase(zone.camera, rule.cameras)):
                    continue
                values = [sum(c.get(k, 0.0) for k in rule.classes)
                          for at, c in samples if since < at <= now]
                value = _aggregate(rule.aggregate, values)
                out.append(Observation(zone, rule.id, value >= rule.min_count, now, value=value))
        return out

    def _prune(self, horizon: datetime) -> None:
        for zone in list(self._samples):
            samples = self._samples[zone]
            while samples and samples[0][0] <= horizon:
                samples.popleft()
            if not samples:
                del self._samples[zone]


def _aggregate(how: str, values: list[float]) -> float:
    if not values:
        return 0.0
    if how == "min":
        return min(values)
    if how == "max":
        return max(values)
    return sum(values) / len(values)
