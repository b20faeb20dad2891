"""A small language for alert scenarios, and a runner that can restart the hub at any step.

A scenario is a list of steps at times (seconds after T0): observations to feed, an operator
action or a silence to add, and the notifications expected from that step in short form
``"<kind> <rule> <subject key>"`` (escalations as ``"escalated:<n> ..."``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hub.alerts.engine import AlertEngine
from hub.alerts.model import Notification, Observation, Silence, Subject
from hub.alerts.rules import RuleSet, parse_rules
from hub.alerts.store import AlertStore
from hub.registry.db import open_registry

T0 = datetime(2025, 1, 6, 1, 0, tzinfo=UTC)

RULES_YAML = """
version: 1
desks:
  - {id: ops, name_id: Operasi, name_en: Operations}
  - {id: dishub, name_id: Dinas Perhubungan, name_en: Transportation}
  - {id: lead, name_id: Kepala Ruang, name_en: Room lead}
defaults:
  flap: {transitions: 4, window: 10m}
rules:
  - id: uplink
    kind: uplink_down
    for: 30s
    clear: 30s
    severity: critical
    desk: ops
    inhibit: kelurahan
  - id: offline
    kind: device_offline
    for: 1m
    clear: 30s
    desk: ops
    inhibit: device
    group: {min_members: 2}
    escalation:
      - {after: 5m, severity: critical}
      - {after: 10m, desk: lead}
  - id: cam
    kind: camera_state
    states: [down, frozen]
    for: 30s
    clear: 30s
    desk: ops
  - id: hot
    kind: metric
    field: temp_c
    threshold: 80
    for: 1m
    clear: 1m
    desk: ops
    labels: {area: hardware}
  - id: jam
    kind: detection
    classes: [car, bus]
    min_count: 5
    window: 30s
    aggregate: min
    for: 30s
    clear: 30s
    desk: dishub
    group: {min_members: 2, wait: 20s}
"""


def rules() -> RuleSet:
    return parse_rules(RULES_YAML, "test-rules")


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def dev(name: str, kelurahan: str = "Beji Timur") -> Subject:
    return Subject("device", "Beji", kelurahan, device=name)


def cam(device: str, camera: str = "cam1", kelurahan: str = "Beji Timur") -> Subject:
    return Subject("camera", "Beji", kelurahan, device=device, camera=camera)


def kel(kelurahan: str = "Beji Timur") -> Subject:
    return Subject("kelurahan", "Beji", kelurahan)


def zone(device: str, name: str, kelurahan: str = "Beji Timur") -> Subject:
    return Subject("zone", "Beji", kelurahan, device=device, camera="cam1", zone=name)


def short(n: Notification) -> str:
    kind = f"escalated:{n.step}" if n.kind == "escalated" else n.kind
    return f"{kind} {n.rule_id} {n.subject.key}"


@dataclass
class Step:
    at: float
    obs: list[tuple[Subject, str, bool]] = field(default_factory=list)
    expect: list[str] = field(default_factory=list)
    ack: tuple[Subject, str] | None = None  # (subject, rule) of the alert to acknowledge
    silence: Silence | None = None


def find_alert(engine: AlertEngine, subject: Subject, rule: str) -> str:
    for alert in engine.state.alerts.values():
        if alert.key == (subject.key, rule):
            return alert.id
    raise AssertionError(f"no active alert for {subject.key} / {rule}")


class Runner:
    """Runs steps through an engine, saving every step to a real SQLite registry.

    ``restart_at``: before that step, the engine is thrown away and a new one loads the
    stored state, as a restarted hub would.
    """

    def __init__(self, db: Path, rule_set: RuleSet | None = None) -> None:
        self.rules = rule_set or rules()
        self.registry = open_registry(f"sqlite:///{db}")
        self.store = AlertStore(self.registry)
        self.engine = AlertEngine(self.rules)

    def close(self) -> None:
        self.registry.close()

    def run(self, steps: list[Step], restart_at: int | None = None) -> list[list[str]]:
        out = []
        for i, step in enumerate(steps):
            now = t(step.at)
            if i == restart_at:
                self.engine = AlertEngine(self.rules, self.store.load(now))
            out.append(self.step(step, now))
        return out

    def step(self, step: Step, now: datetime) -> list[str]:
        got: list[Notification] = []
        if step.silence is not None:
            self.store.add_silence(step.silence)
            self.engine.set_silences([*self.engine.state.silences, step.silence])
        if step.ack is not None:
            alert = find_alert(self.engine, *step.ack)
            result = self.engine.acknowledge(alert, "operator-1", "on it", now)
            self.store.save(result, now)
        obs = [Observation(s, rule, active, now) for s, rule, active in step.obs]
        result = self.engine.evaluate(obs, now)
        fresh = self.store.save(result, now, channels=("webhook:test",))
        assert [n.id for n in fresh] == [n.id for n in result.notifications], "duplicate"
        got += result.notifications
        again = self.engine.evaluate(obs, now)  # the same inputs once more: nothing new
        assert again.notifications == () and again.alerts == (), "evaluation not idempotent"
        return sorted(short(n) for n in got)

    def rows(self) -> list[tuple[str, str, int, str, tuple[str, ...]]]:
        from sqlalchemy import select

        from hub.alerts.tables import AlertRow

        with self.registry.session() as s:
            return sorted((r.subject, r.rule, r.occurrence, r.status, tuple(sorted(r.notified)))
                          for r in s.scalars(select(AlertRow)))

    def outbox(self) -> list[str]:
        from sqlalchemy import select

        from hub.alerts.tables import NotificationRow

        with self.registry.session() as s:
            return list(s.scalars(select(NotificationRow.id).order_by(NotificationRow.seq)))
