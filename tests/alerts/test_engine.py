"""Engine details the scenario table does not show: links, fields, operator actions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hub.alerts.actions import AlertActionError
from hub.alerts.engine import AlertEngine
from hub.alerts.model import Evaluation, Observation, Silence, Subject, alert_id
from hub.alerts.rules import RuleSet, parse_rules
from tests.alerts.scenario import RULES_YAML, cam, dev, find_alert, kel, rules, t

A, B = dev("dev-a"), dev("dev-b")


def feed(engine: AlertEngine, at: float, *obs: tuple[Subject, str, bool]) -> Evaluation:
    return engine.evaluate([Observation(s, r, v, t(at)) for s, r, v in obs], t(at))


def test_reoccurrence_links_to_the_previous_alert() -> None:
    engine = AlertEngine(rules())
    feed(engine, 0, (A, "hot", True))
    first = feed(engine, 60).alerts[0]
    feed(engine, 100, (A, "hot", False))
    resolved = feed(engine, 160).alerts[0]
    assert resolved.id == first.id and resolved.status == "resolved"
    feed(engine, 300, (A, "hot", True))
    second = feed(engine, 360).alerts[0]
    assert second.occurrence == 2 and second.previous_id == first.id
    assert second.id == alert_id("device:dev-a", "hot", 2) != first.id
    assert second.since == t(300)


def test_escalation_raises_severity_then_adds_a_desk() -> None:
    engine = AlertEngine(rules())
    feed(engine, 0, (A, "offline", True))
    fired = feed(engine, 60).notifications[0]
    assert (fired.severity, fired.desks) == ("warning", ("ops",))
    first = feed(engine, 360).notifications[0]
    assert (first.kind, first.step, first.severity, first.desks) == (
        "escalated", 1, "critical", ("ops",))
    second = feed(engine, 660).notifications[0]
    assert (second.step, second.severity, second.desks) == (2, "critical", ("ops", "lead"))
    assert feed(engine, 2000).notifications == ()


def test_escalation_counts_from_the_first_notification_not_from_firing() -> None:
    engine = AlertEngine(rules())
    silence = replace_silence(0, 400)
    engine.set_silences([silence])
    feed(engine, 0, (A, "offline", True))
    assert feed(engine, 60).notifications == ()  # firing, but silenced
    assert [n.kind for n in feed(engine, 400).notifications] == ["firing"]
    assert feed(engine, 699).notifications == ()
    assert [n.kind for n in feed(engine, 700).notifications] == ["escalated"]


def replace_silence(start: float, end: float) -> Silence:
    return Silence("s", (("device", "dev-a"),), "work on the pole", "tech", t(start), t(end))


def test_group_ack_cascades_to_members_and_stops_escalation() -> None:
    engine = AlertEngine(rules())
    feed(engine, 0, (A, "offline", True), (B, "offline", True))
    result = feed(engine, 60)
    (note,) = result.notifications
    assert note.subject == kel() and note.members == 2
    group = find_alert(engine, kel(), "offline")
    assert engine.state.alerts[group].members == tuple(sorted(
        [alert_id("device:dev-a", "offline", 1), alert_id("device:dev-b", "offline", 1)]))
    acked = engine.acknowledge(group, "budi", "kabel putus", t(90))
    assert {a.status for a in acked.alerts} == {"acknowledged"} and len(acked.alerts) == 3
    assert engine.acknowledge(group, "budi", "again", t(95)).alerts == ()  # double click
    assert feed(engine, 1000).notifications == ()
    members = [a for a in engine.state.alerts.values() if a.subject.kind == "device"]
    assert all(m.ack_note == "kabel putus" and m.acked_by == "budi" for m in members)
    assert sorted(e.note for e in acked.events) == [
        "kabel putus", f"via group {group}: kabel putus", f"via group {group}: kabel putus"]


def test_actions_assign_note_and_manual_resolve() -> None:
    engine = AlertEngine(rules())
    feed(engine, 0, (A, "hot", True))
    with pytest.raises(AlertActionError, match="pending"):
        engine.acknowledge(find_alert(engine, A, "hot"), "x", "", t(1))
    feed(engine, 60)
    aid = find_alert(engine, A, "hot")
    assigned = engine.assign(aid, "lead", "teknisi-3", t(61))
    assert assigned.alerts[0].assigned_to == "teknisi-3"
    assert assigned.events[0].kind == "assigned"
    assert engine.add_note(aid, "lead", "sudah ditelepon", t(62)).events[0].note == (
        "sudah ditelepon")
    done = engine.resolve(aid, "lead", "fan replaced", t(70))
    assert [n.kind for n in done.notifications] == ["resolved"]
    assert aid not in engine.state.alerts
    with pytest.raises(AlertActionError, match="not active"):
        engine.acknowledge(aid, "x", "", t(71))
    # Still hot: a new occurrence counts its for-duration from the manual resolve.
    assert feed(engine, 100, (A, "hot", True)).notifications == ()
    assert [n.kind for n in feed(engine, 130).notifications] == ["firing"]


def test_removed_rule_resolves_its_alerts() -> None:
    engine = AlertEngine(rules())
    feed(engine, 0, (A, "hot", True), (cam("dev-b"), "cam", True))
    feed(engine, 60)
    without_hot = parse_rules(RULES_YAML.replace("  - id: hot\n",
                                                 "  - id: hot\n    enabled: false\n"))
    engine.rules = without_hot
    result = feed(engine, 61)
    assert [n.kind for n in result.notifications] == ["resolved"]
    assert {a.rule_id for a in engine.state.alerts.values()} == {"cam"}


def test_stale_observations_are_ignored_and_a_steady_fleet_writes_nothing() -> None:
    engine = AlertEngine(rules())
    feed(engine, 0, (A, "hot", True))
    late = engine.evaluate([Observation(A, "hot", False, t(-5))], t(1))
    assert engine.state.trackers[(A.key, "hot")].condition is True and late.trackers == ()
    healthy = [Observation(dev(f"d{i:03d}"), "hot", False, t(0)) for i in range(100)]
    first = engine.evaluate(healthy, t(2))
    assert first.trackers == () and first.alerts == ()  # never true: nothing to store
    steady = engine.evaluate([replace(o, at=t(10)) for o in healthy], t(10))
    assert steady.trackers == () and steady.alerts == ()


def test_unknown_rules_and_wrong_subjects_are_ignored() -> None:
    engine = AlertEngine(rules())
    assert feed(engine, 0, (A, "no-such-rule", True), (A, "cam", True)).trackers == ()
    assert engine.state.trackers == {}


def test_flap_detection_can_be_disabled_per_rule() -> None:
    text = RULES_YAML.replace("    labels: {area: hardware}\n",
                              "    labels: {area: hardware}\n    flap: {enabled: false}\n")
    engine = AlertEngine(parse_rules(text))
    kinds = []
    for i in range(6):
        for at, obs in ((0, [(A, "hot", True)]), (65, []), (70, [(A, "hot", False)]), (135, [])):
            kinds += [n.kind for n in feed(engine, i * 140 + at, *obs).notifications]
    assert kinds == ["firing", "resolved"] * 6


def test_inhibition_needs_the_same_place() -> None:
    elsewhere = dev("dev-x", kelurahan="Kukusan")
    engine = AlertEngine(rules())
    feed(engine, 0, (kel(), "uplink", True), (elsewhere, "offline", True), (A, "offline", True))
    result = feed(engine, 60)
    assert sorted(n.subject.key for n in result.notifications) == ["device:dev-x", kel().key]
    suppressed = engine.state.alerts[find_alert(engine, A, "offline")].suppressed_by
    assert suppressed == f"inhibited:{find_alert(engine, kel(), 'uplink')}"


def test_rule_set_is_reusable_across_engines() -> None:
    rs: RuleSet = rules()
    assert rs.by_id is rs.by_id  # cached
    assert AlertEngine(rs).rules is rs


def test_an_alert_acknowledged_while_silenced_is_not_announced_later() -> None:
    engine = AlertEngine(rules())
    engine.set_silences([replace_silence(0, 100)])
    feed(engine, 0, (A, "hot", True))
    assert feed(engine, 60).notifications == ()
    engine.acknowledge(find_alert(engine, A, "hot"), "budi", "seen on the wall", t(70))
    assert feed(engine, 100).notifications == ()
    feed(engine, 200, (A, "hot", False))
    assert feed(engine, 260).notifications == ()  # resolved; nobody was told it fired
    assert engine.state.alerts == {}
