"""Device facts observed when they change: the steady part of a fleet costs nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from hub.alerts.facts import FleetObserver, load_facts, load_health
from hub.alerts.rules import parse_rules
from hub.registry.db import Registry, open_registry
from tests.alerts.fakes import add_device, update_device
from tests.alerts.scenario import RULES_YAML, rules, t


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = open_registry(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    yield reg
    reg.close()


def observe(registry: Registry, fleet: FleetObserver, at: float,
            rule_set: object = None) -> dict[tuple[str, str], bool]:
    with registry.session() as s:
        rows = load_facts(s, t(at))
        got = fleet.observe(rule_set or RULES, rows, t(at),  # type: ignore[arg-type]
                            lambda ids: load_health(s, ids))
    return {(o.subject.key, o.rule_id): o.active for o in got}


RULES = rules()


def test_only_changed_devices_are_observed_one_by_one(registry: Registry) -> None:
    for i in range(3):
        add_device(registry, f"dev-{i}", "Beji Timur", t(0),
                   health={"uptime_s": 1.0, "temp_c": 50.0, "cameras": {"cam1": {}}})
    fleet = FleetObserver(full_every_s=60)
    first = observe(registry, fleet, 1)
    assert fleet.last_changed == 3
    assert first[("device:dev-0", "hot")] is False and first[("camera:dev-0/cam1", "cam")] is False
    assert first[("kelurahan:Beji/Beji Timur", "uplink")] is False
    # Nothing reported: only the kelurahan rule (it judges devices together) is observed.
    assert observe(registry, fleet, 2) == {("kelurahan:Beji/Beji Timur", "uplink"): False}
    assert fleet.last_changed == 0
    update_device(registry, "dev-1", last_health_at=t(3),
                  last_health={"uptime_s": 4.0, "temp_c": 85.0})
    third = observe(registry, fleet, 3)
    assert fleet.last_changed == 1 and third[("device:dev-1", "hot")] is True
    assert {k[0] for k in third} == {"device:dev-1", "kelurahan:Beji/Beji Timur"}
    # A state that moves with time is a change too: silent for 32 s of 10 s intervals.
    later = observe(registry, fleet, 32)
    assert fleet.last_changed == 2 and later[("device:dev-0", "offline")] is False
    assert ("device:dev-1", "offline") not in later
    # New rules, and every minute anyway: all devices again.
    observe(registry, fleet, 37, parse_rules(RULES_YAML, "again"))
    assert fleet.last_changed == 3
    observe(registry, fleet, 38, parse_rules(RULES_YAML, "again"))
    assert fleet.last_changed == 3  # another RuleSet object: a reload
    fleet2 = FleetObserver(full_every_s=60)
    observe(registry, fleet2, 40)
    observe(registry, fleet2, 41)
    assert fleet2.last_changed == 0
    observe(registry, fleet2, 40 + timedelta(minutes=1).total_seconds())
    assert fleet2.last_changed == 3
