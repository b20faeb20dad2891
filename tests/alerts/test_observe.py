"""From device facts and detection samples to observations, and on into alerts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from hub.alerts.engine import AlertEngine
from hub.alerts.model import Notification, Observation, Subject
from hub.alerts.observe import DetectionWindows, DeviceFacts, observe_devices
from hub.alerts.rules import default_rules, default_rules_text, parse_rules
from tests.alerts.scenario import rules, t, zone

HEALTH: dict[str, Any] = {
    "v": 1, "ts": 1, "seq": 5, "uptime_s": 100.0, "temp_c": 85.5, "disk_pct": 40.0,
    "throttled_now": False, "clock_synced": False, "outbox_oldest_s": 0.0,
    "cameras": {"cam1": {"state": "frozen", "fps": 0.0}, "cam2": {"state": "streaming"}},
}


HEALTHY: dict[str, Any] = {
    "v": 1, "ts": 1, "seq": 5, "uptime_s": 100.0, "temp_c": 50.0, "disk_pct": 40.0,
    "clock_synced": True, "cameras": {"cam1": {"state": "streaming"}},
}


def facts(name: str, state: str, health: dict[str, Any] | None = HEALTH,
          kelurahan: str = "Beji Timur") -> DeviceFacts:
    return DeviceFacts(name, "Beji", kelurahan, state, health)


def by_rule(observations: list[Observation]) -> dict[tuple[str, str], tuple[bool, Any]]:
    return {(o.rule_id, o.subject.key): (o.active, o.detail or o.value) for o in observations}


def test_health_of_an_online_device() -> None:
    got = by_rule(observe_devices(default_rules().rules, [facts("dev-a", "online")], t(0)))
    assert got[("device-offline", "device:dev-a")] == (False, None)
    assert got[("device-stale", "device:dev-a")] == (False, None)
    assert got[("box-hot", "device:dev-a")] == (True, 85.5)
    assert got[("disk-full", "device:dev-a")] == (False, 40.0)
    assert got[("clock-unsynced", "device:dev-a")] == (True, 0.0)
    assert got[("box-throttled", "device:dev-a")] == (False, 0.0)
    assert ("box-undervoltage", "device:dev-a") not in got  # absent field: no reading
    assert got[("camera-tampered", "camera:dev-a/cam1")] == (True, "frozen")
    assert got[("camera-tampered", "camera:dev-a/cam2")] == (False, "streaming")
    assert got[("camera-down", "camera:dev-a/cam1")] == (False, "frozen")


@pytest.mark.parametrize(("state", "offline", "stale", "health_rules"), [
    ("offline", True, False, False),
    ("stale", False, True, False),
    ("unknown", None, None, False),
    ("decommissioned", False, False, True),
])
def test_device_states(state: str, offline: bool | None, stale: bool | None,
                       health_rules: bool) -> None:
    got = by_rule(observe_devices(default_rules().rules, [facts("dev-a", state)], t(0)))
    assert got.get(("device-offline", "device:dev-a"), (None,))[0] is offline
    assert got.get(("device-stale", "device:dev-a"), (None,))[0] is stale
    health = {k: v for k, v in got.items() if k[0] in ("box-hot", "camera-tampered")}
    if health_rules:  # decommissioned: everything clear, so open alerts resolve
        assert health and not any(active for active, _ in health.values())
    else:
        assert health == {}


def test_uplink_down_needs_every_device_of_the_kelurahan_offline() -> None:
    rs = default_rules()
    fleet = [facts("dev-a", "offline"), facts("dev-b", "offline"),
             facts("dev-c", "offline", kelurahan="Kukusan"), facts("dev-d", "online",
                                                                  kelurahan="Kukusan"),
             facts("dev-e", "offline", kelurahan="Tanah Baru"),
             facts("dev-f", "unknown", kelurahan="Tanah Baru")]
    got = by_rule([o for o in observe_devices(rs.rules, fleet, t(0))
                   if o.rule_id == "uplink-down"])
    assert got == {("uplink-down", "kelurahan:Beji/Beji Timur"): (True, 2.0),
                   ("uplink-down", "kelurahan:Beji/Kukusan"): (False, 1.0)}


@pytest.mark.parametrize(("uplink_rule", "expected"), [
    (True, ("firing", "uplink-down", "kelurahan:Beji/Beji Timur")),
    (False, ("firing", "device-offline", "kelurahan:Beji/Beji Timur")),  # the group
])
def test_cut_uplink_gives_one_alert_not_one_per_device_and_camera(
    uplink_rule: bool, expected: tuple[str, str, str]
) -> None:
    """Three agents of one kelurahan go offline (one by one, as keepalives expire)."""
    text = default_rules_text()
    if not uplink_rule:
        text = text.replace("kind: uplink_down\n", "kind: uplink_down\n    enabled: false\n")
    rs = parse_rules(text)
    engine = AlertEngine(rs)
    told: list[Notification] = []
    fleet = {n: facts(n, "online", HEALTHY) for n in ("dev-a", "dev-b", "dev-c")}
    fleet["dev-z"] = facts("dev-z", "online", HEALTHY, kelurahan="Kukusan")
    for second in range(0, 600, 5):
        for i, name in enumerate(("dev-a", "dev-b", "dev-c")):
            if second >= 10 + 15 * i:
                fleet[name] = facts(name, "offline", HEALTHY)
        told += engine.evaluate(observe_devices(rs.rules, fleet.values(), t(second)),
                                t(second)).notifications
    assert [(n.kind, n.rule_id, n.subject.key) for n in told] == [expected]


def test_detection_window_aggregates() -> None:
    windows = DetectionWindows(horizon_s=60)
    z1, z2 = zone("dev-a", "gate"), zone("dev-a", "road")
    for s in range(0, 30):
        windows.add(z1, {"person": 25 if s >= 10 else 2}, t(s))
        windows.add(z2, {"car": 12, "bus": 1, "person": 3}, t(s))
    got = by_rule(windows.observe(default_rules().rules, t(29)))
    assert got[("crowd", z1.key)] == (True, 25.0)  # mean of the last 10 s
    assert got[("crowd", z2.key)] == (False, 3.0)
    assert got[("traffic-jam", z2.key)] == (True, 13.0)  # min over the minute
    assert got[("traffic-jam", z1.key)] == (False, 0.0)
    later = by_rule(windows.observe(default_rules().rules, t(200)))
    assert later == {}  # pruned after horizon and the longest window
    with pytest.raises(ValueError, match="zone"):
        windows.add(Subject("device", "Beji", "Beji Timur", device="dev-a"), {}, t(0))


def test_quiet_zone_clears_its_alert() -> None:
    rs = rules()
    engine = AlertEngine(rs)
    windows = DetectionWindows()
    z = zone("dev-a", "road")
    told: list[str] = []
    for s in range(0, 300):
        if s < 100:
            windows.add(z, {"car": 4, "bus": 2}, t(s))
        now = t(s)
        told += [n.kind for n in engine.evaluate(windows.observe(rs.rules, now), now).notifications]
    assert told == ["firing", "resolved"]
    assert engine.state.alerts == {}
    assert (t(0) + timedelta(seconds=299)) == t(299)
