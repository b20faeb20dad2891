"""Rollout waves, device verdicts, rollout decisions and health regressions (pure, tables)."""

from __future__ import annotations

import pytest

from hub.rollout.render import DeviceInfo
from hub.rollout.spec import RolloutSpec, Targets, WaveSpec, plan_by_class
from hub.rollout.waves import (
    DeviceFacts,
    Outcome,
    Report,
    Thresholds,
    WaveSpecError,
    decide,
    device_outcome,
    plan_waves,
    regressions,
)

DEVS = [f"d{i:02d}" for i in range(50)]


@pytest.mark.parametrize(("n", "canary", "pcts", "sizes"), [
    (50, 5, [50, 100], [5, 20, 25]),  # the three waves
    (50, 0, [100], [50]),
    (50, 1, [10, 30, 100], [1, 4, 10, 35]),
    (3, 5, [100], [3]),  # more canaries than devices
    (1, 1, [50, 100], [1]),  # empty waves are dropped
    (10, 2, [10, 100], [2, 8]),  # 10 % is already covered by the canaries
    (1000, 10, [5, 25, 100], [10, 40, 200, 750]),
    (0, 3, [100], []),
])
def test_wave_sizes(n: int, canary: int, pcts: list[float], sizes: list[int]) -> None:
    waves = plan_waves(DEVS[:n] if n <= 50 else [f"x{i}" for i in range(n)], canary, pcts)
    assert [len(w) for w in waves] == sizes
    flat = [d for w in waves for d in w]
    assert len(flat) == len(set(flat)) == n  # every target once


def test_waves_are_stable_per_salt_and_differ_between_rollouts() -> None:
    a = plan_waves(DEVS, 3, [100], salt="r1")
    assert a == plan_waves(list(reversed(DEVS)), 3, [100], salt="r1")
    assert a[0] != plan_waves(DEVS, 3, [100], salt="r2")[0]


@pytest.mark.parametrize(("canary", "pcts", "msg"), [
    (1, [50], "end with 100"),
    (1, [], "end with 100"),
    (1, [50, 40, 100], "rise strictly"),
    (1, [0, 100], "rise strictly"),
    (-1, [100], "negative"),
])
def test_bad_wave_specs(canary: int, pcts: list[float], msg: str) -> None:
    with pytest.raises(WaveSpecError, match=msg):
        plan_waves(DEVS, canary, pcts)


def test_each_hardware_class_gets_its_own_canaries() -> None:
    devs = [DeviceInfo(f"pi-{i}", "p", "rpi4", "s", "k", "l") for i in range(10)] + \
           [DeviceInfo(f"jet-{i}", "p", "jetson", "s", "k", "l") for i in range(4)]
    waves = plan_by_class(devs, WaveSpec(canary=1, percentages=[50, 100]), "r")
    assert [len(w) for w in waves] == [2, 4 + 1, 5 + 2]
    assert sorted(d.split("-")[0] for d in waves[0]) == ["jet", "pi"]


@pytest.mark.parametrize(("targets", "expected"), [
    ({"devices": ["a1"]}, ["a1"]),
    ({"kelurahan": ["Mekarsari"]}, ["a1", "a2"]),
    ({"kecamatan": ["Beji"]}, ["b1", "b2"]),
    ({"hardware": ["rpi4"]}, ["a1", "b1"]),
    ({"kecamatan": ["Beji"], "hardware": ["rpi4"]}, ["b1"]),
    ({"all": True}, ["a1", "a2", "b1", "b2"]),
])
def test_target_selection(targets: dict, expected: list[str]) -> None:
    devs = [DeviceInfo("a1", "p", "rpi4", "s1", "Cimanggis", "Mekarsari"),
            DeviceInfo("a2", "p", "x86", "s2", "Cimanggis", "Mekarsari"),
            DeviceInfo("b1", "p", "rpi4", "s3", "Beji", "Kemiri Muka"),
            DeviceInfo("b2", "p", "x86", "s4", "Beji", "Kemiri Muka")]
    assert Targets.model_validate(targets).select(devs) == expected


def test_a_spec_without_targets_is_refused() -> None:
    with pytest.raises(ValueError, match="pick targets"):
        RolloutSpec.model_validate({"targets": {}})


TH = Thresholds(report_timeout_s=30, bake_s=10)
NOW = 1000.0
BASE = {"cameras": {"c1": {"fps": 10.0, "inference_ms": 40.0}}}


def rep(status: str, version: int = 7, desired: int = 7, at: float = 900.0, **kw) -> Report:
    return Report(status, version, desired, at=at, **kw)


@pytest.mark.parametrize(("facts", "kind", "reason"), [
    (DeviceFacts("planned"), "waiting", "not pushed"),
    (DeviceFacts("unchanged"), "ok", "already"),
    (DeviceFacts("skipped"), "skipped", "offline"),
    (DeviceFacts("pushed", 7, pushed_at=990.0), "waiting", "report"),
    (DeviceFacts("pushed", 7, pushed_at=960.0), "failed", "no report within 30s"),
    (DeviceFacts("pushed", 7, pushed_at=960.0, online=False), "failed", "(offline)"),
    (DeviceFacts("pushed", 7, pushed_at=980.0,
                 report=rep("rejected", 6, reason="invalid", error="x")),
     "failed", "rejected: invalid: x"),
    (DeviceFacts("pushed", 7, pushed_at=980.0, report=rep("rolled_back", 6, error="cam1")),
     "failed", "rolled back: cam1"),
    # A report about an older document does not count for this push.
    (DeviceFacts("pushed", 7, pushed_at=990.0, report=rep("rolled_back", 5, desired=6)),
     "waiting", "report"),
    (DeviceFacts("pushed", 7, pushed_at=980.0, report=rep("applied", at=995.0)),
     "waiting", "baking"),
    (DeviceFacts("pushed", 7, pushed_at=980.0, report=rep("applied"), online=False),
     "failed", "offline after"),
    (DeviceFacts("pushed", 7, pushed_at=980.0, report=rep("applied"), baseline=BASE,
                 health=BASE, health_at=950.0), "ok", ""),
    (DeviceFacts("pushed", 7, pushed_at=970.0, report=rep("applied", at=975.0),
                 baseline=BASE, health=BASE, health_at=899.0), "waiting", "waiting for health"),
    (DeviceFacts("pushed", 7, pushed_at=880.0, report=rep("applied"), baseline=BASE,
                 health=BASE, health_at=899.0), "failed", "no health since"),
    (DeviceFacts("pushed", 7, pushed_at=980.0, report=rep("applied", at=950.0),
                 baseline=BASE, health={"cameras": {"c1": {"fps": 2.0}}}, health_at=990.0),
     "failed", "c1 fps 10.0 -> 2.0"),
])
def test_device_outcomes(facts: DeviceFacts, kind: str, reason: str) -> None:
    out = device_outcome(facts, TH, NOW)
    assert out.kind == kind and reason in out.reason, out


@pytest.mark.parametrize(("before", "after", "found"), [
    (BASE, BASE, []),
    (BASE, {"cameras": {"c1": {"fps": 6.0, "inference_ms": 41.0}}}, []),
    (BASE, {"cameras": {"c1": {"fps": 4.0}}}, ["camera c1 fps 10.0 -> 4.0"]),
    (BASE, {"cameras": {"c1": {"fps": 10.0, "inference_ms": 95.0}}},
     ["camera c1 inference 40 ms -> 95 ms"]),
    (BASE, {"cameras": {}}, []),  # the camera was removed on purpose
    ({"cameras": {"c1": {"fps": 0.5}}}, {"cameras": {"c1": {"fps": 0.0}}}, []),  # too slow
    ({"cameras": {"c1": {"inference_ms": 2.0}}}, {"cameras": {"c1": {"inference_ms": 5.0}}},
     []),  # +3 ms is noise
    (None, BASE, []),
])
def test_regressions(before, after, found: list[str]) -> None:
    assert regressions(before, after, Thresholds()) == found


OK, WAIT, FAIL, SKIP = Outcome("ok"), Outcome("waiting"), Outcome("failed", "boom"), \
    Outcome("skipped")


@pytest.mark.parametrize(("status", "wave", "waves", "action", "which"), [
    ("running", -1, [[WAIT], [WAIT, WAIT]], "push", 0),
    ("running", 0, [[WAIT], [WAIT, WAIT]], "wait", -1),
    ("running", 0, [[OK], [WAIT, WAIT]], "push", 1),
    ("running", 1, [[OK], [OK, OK]], "complete", 1),
    ("running", 0, [[FAIL], [WAIT, WAIT]], "abort", 0),
    ("paused", 0, [[OK], [WAIT, WAIT]], "wait", -1),
    ("paused", 0, [[FAIL], [WAIT, WAIT]], "abort", 0),  # safety holds while paused
    ("running", 0, [[SKIP, OK], [WAIT]], "push", 1),  # skipped devices do not block
    ("running", 1, [[OK] * 5, [OK] * 94 + [FAIL]], "complete", 1),  # 1 % failed: under 10 %
    ("running", 1, [[OK] * 5, [FAIL] * 11 + [WAIT] * 84], "abort", 1),
    ("completed", 1, [[OK], [OK]], "wait", -1),
])
def test_decisions(status: str, wave: int, waves, action: str, which: int) -> None:
    d = decide(status, wave, waves, Thresholds())
    assert d.action == action
    if action == "push":
        assert d.wave == which
    if action == "abort":
        assert "failed" in d.reason and "boom" in d.reason


def test_an_absolute_failure_cap() -> None:
    waves = [[OK] * 99 + [FAIL] * 2]
    assert decide("running", 0, waves, Thresholds(max_failures=1)).action == "abort"
    assert decide("running", 0, waves, Thresholds()).action == "complete"
