"""The evaluator's tick against a real SQLite registry: device facts, zone counts, rule
reloads, several evaluators, and its run loop."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from hub.alerts.codec import notification_from_body
from hub.alerts.evaluator import AlertEvaluator
from hub.alerts.rulefile import RuleFile
from hub.alerts.tables import AlertRow, DeliveryRow, NotificationRow
from hub.registry.db import Registry, open_registry
from tests.alerts.fakes import FakeInflux, add_device, update_device
from tests.alerts.scenario import RULES_YAML, short, t

KEL = "Kemiri Muka"


class Clock:
    def __init__(self) -> None:
        self.at = t(0)

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = open_registry(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    yield reg
    reg.close()


@pytest.fixture
def rules_path(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES_YAML)
    return path


def evaluator(registry: Registry, rules_path: Path, clock: Clock, influx: FakeInflux | None = None,
              name: str = "e1", **kw: object) -> AlertEvaluator:
    return AlertEvaluator(registry, RuleFile(rules_path), influx=influx, worker_id=name,
                          now=clock, **kw)  # type: ignore[arg-type]


def run(ev: AlertEvaluator, clock: Clock, *times: float) -> None:
    for at in times:
        clock.at = t(at)
        ev.tick()


def told(registry: Registry) -> list[str]:
    with registry.session() as s:
        return [short(notification_from_body(r.body))
                for r in s.scalars(select(NotificationRow).order_by(NotificationRow.seq))]


def test_a_kelurahan_cut_off_gives_one_grouped_alert(registry: Registry, rules_path: Path) -> None:
    for i in range(3):
        health = {"uptime_s": 5.0, "cameras": {"cam1": {"state": "down" if i == 0 else
                                                        "streaming"}}}
        add_device(registry, f"kmk-{i}", KEL, t(0), health=health, interval_s=1000)
    add_device(registry, "btm-0", "Beji Timur", t(0), interval_s=1000)
    clock = Clock()
    # Two evaluators, as two hub processes would run: they take turns on the registry.
    e1, e2 = (evaluator(registry, rules_path, clock, name=n) for n in ("e1", "e2"))
    run(e1, clock, 0)
    for i in range(3):
        update_device(registry, f"kmk-{i}", presence="offline", presence_at=t(5))
    for at in (5, 20, 36, 50, 66, 80, 100):
        run(e1, clock, at)
        run(e2, clock, at + 0.5)
    assert told(registry) == [f"firing uplink kelurahan:Beji/{KEL}"]
    with registry.session() as s:
        alerts = {(r.rule, r.device or r.kelurahan, r.camera): (r.status, r.suppressed_by[:5])
                  for r in s.scalars(select(AlertRow))}
    # Every device and camera alert exists, but the uplink alert speaks for them.
    assert alerts[("uplink", KEL, "")] == ("firing", "")
    assert {k: v for k, v in alerts.items() if k[0] != "uplink"} == {
        ("offline", "kmk-0", ""): ("firing", "group"),  # the group stands for them
        ("offline", "kmk-1", ""): ("firing", "group"),
        ("offline", "kmk-2", ""): ("firing", "group"),
        ("offline", KEL, ""): ("firing", "inhib"),  # the device-offline group
        ("cam", "kmk-0", "cam1"): ("firing", "inhib"),
    }


def test_detection_rule_from_zone_counts(registry: Registry, rules_path: Path) -> None:
    influx = FakeInflux()
    clock = Clock()
    ev = evaluator(registry, rules_path, clock, influx)
    for at in range(0, 125, 5):
        influx.add(t(at), 6)  # six cars in the gate zone all along
        run(ev, clock, at + 1)
    assert told(registry) == ["firing jam zone:cam-1/cam1/gate"]
    # InfluxDB away: no readings at all, so the alert neither clears nor flaps.
    influx.fail = True
    for at in range(125, 220, 5):
        run(ev, clock, at)
    assert told(registry) == ["firing jam zone:cam-1/cam1/gate"]
    assert ev.counters.influx_errors == 19
    influx.fail = False  # back, and no car since: the zone is empty, the jam resolves
    for at in range(220, 300, 5):
        run(ev, clock, at)
    assert told(registry) == ["firing jam zone:cam-1/cam1/gate",
                              "resolved jam zone:cam-1/cam1/gate"]
    # Reads overlap by late_s only, not the whole history each time.
    assert "time > " in influx.queries[-1]


def test_rules_reload_between_ticks(registry: Registry, rules_path: Path) -> None:
    add_device(registry, "box-1", KEL, t(0), health={"uptime_s": 1.0, "temp_c": 85.0},
               interval_s=1000)
    clock = Clock()
    ev = evaluator(registry, rules_path, clock)
    run(ev, clock, 0, 61)
    assert told(registry) == ["firing hot device:box-1"]
    rules_path.write_text(RULES_YAML.replace("threshold: 80", "threshold: 90"))
    os.utime(rules_path, (1, 1))  # a different mtime for sure
    run(ev, clock, 70, 135)
    assert told(registry)[-1] == "resolved hot device:box-1"
    rules_path.write_text("rules: [")  # broken: the last good rules stay
    run(ev, clock, 140)
    assert ev.rule_file.stats.errors == 1 and "hot" in ev.rules().by_id


def test_run_loop_ticks_and_delivers_until_stopped(registry: Registry, rules_path: Path) -> None:
    from hub.alerts.delivery import WebhookChannel
    from hub.alerts.notify import WebhookConfig
    from tests.alerts.receiver import SECRET, WebhookReceiver

    receiver = WebhookReceiver().start()
    try:
        add_device(registry, "box-1", KEL, t(0), health={"uptime_s": 1.0, "temp_c": 85.0},
                   interval_s=1000)
        clock = Clock()
        hook = WebhookChannel(WebhookConfig(name="r", url=receiver.url, secret_env="X"), SECRET)
        ev = evaluator(registry, rules_path, clock, channels=[hook], interval_s=0.05)
        run(ev, clock, 0)
        clock.at = t(61)  # the loop's ticks now fire the alert
        stop = threading.Event()
        loop = threading.Thread(target=ev.run, args=(stop,))
        loop.start()
        try:
            from hub.localservices import wait_until

            wait_until(receiver.accepted, timeout=10, message="webhook delivered")
        finally:
            stop.set()
            loop.join(10)
        assert not loop.is_alive()
        assert ev.counters.ticks >= 1 and ev.counters.notifications == 1
        with registry.session() as s:
            assert [r.status for r in s.scalars(select(DeliveryRow))] == ["sent"]
    finally:
        receiver.close()
