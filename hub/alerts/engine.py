"""Alert evaluation: pure. Observations + state + rules + ``now`` -> new state + notifications.

One step, in order: fold observations into trackers; advance every (subject, rule) through
its lifecycle (``lifecycle``); resolve alerts whose rule is gone; form and close kelurahan
groups; work out suppression (group, inhibition, silence; ``noise``); then notify and
escalate. Which notifications an alert has had is part of its state, so evaluating the same
inputs twice, or after a restart from saved state, sends nothing twice.

Notifications: ``firing`` (or ``flapping`` for a flapping alert) once when the alert is active
and not suppressed (groupable alerts wait ``group.wait`` for their group first); one
``escalated`` per escalation step reached while firing and unacknowledged, counted from the
first notification; ``resolved`` once, for alerts whose firing was told, even if now silenced.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from hub.alerts import actions
from hub.alerts.lifecycle import apply_observations, resolve, step
from hub.alerts.model import (
    Alert,
    AlertEvent,
    EngineState,
    Evaluation,
    Notification,
    Observation,
    Silence,
    Tracker,
    notification_for,
)
from hub.alerts.noise import group_alerts, suppress
from hub.alerts.rules import SEVERITY_RANK, SUBJECT_KIND, Rule, RuleSet


def evaluate(
    rules: RuleSet, state: EngineState, observations: Iterable[Observation], now: datetime
) -> Evaluation:
    by_id = rules.by_id
    events: list[AlertEvent] = []
    trackers = apply_observations(state.trackers, observations, by_id)
    work: dict[tuple[str, str], Alert] = {a.key: a for a in state.alerts.values()}
    removed: set[str] = set()
    for key in sorted(trackers):
        tr = trackers[key]
        rule = by_id.get(tr.rule_id)
        if rule is None or SUBJECT_KIND[rule.kind] != tr.subject.kind:
            continue  # a disabled rule, or a group's tracker (``noise`` drives those)
        if key not in work and tr.condition is not True and not tr.transitions \
                and not tr.flapping:
            continue  # the common case of a healthy subject: nothing can happen
        tr, alert, dropped = step(tr, work.get(key), rule, rules.flap_policy(rule), now, events)
        trackers[key] = tr
        if alert is None:
            work.pop(key, None)
        else:
            work[key] = alert
        if dropped:
            removed.add(dropped)
    for key, alert in list(work.items()):
        if alert.rule_id in by_id:
            continue
        if alert.status == "pending":
            removed.add(alert.id)
            del work[key]
        else:
            work[key] = resolve(alert, now, events, note="rule removed or disabled")
    group_alerts(work, trackers, by_id, removed, now, events)
    reasons = suppress(work.values(), by_id, state.silences, now)
    notes: list[Notification] = []
    for key in sorted(work):
        alert = work[key]
        if alert.active:
            alert = replace(alert, suppressed_by=reasons.get(alert.id, ""))
        work[key] = _notify(alert, by_id.get(alert.rule_id), now, notes, events)
    return _result(state, trackers, work.values(), removed, notes, events)


def _notify(
    alert: Alert, rule: Rule | None, now: datetime, notes: list[Notification],
    events: list[AlertEvent],
) -> Alert:
    kind = rule.kind if rule else "unknown"
    told = alert.notified
    if alert.status == "resolved":
        if told & {"firing", "flapping"} and "resolved" not in told:
            notes.append(notification_for(alert, "resolved", kind, now))
            alert = replace(alert, notified=told | {"resolved"})
        return alert
    if alert.status != "firing" or alert.suppressed_by or rule is None:
        return alert  # pending; or acknowledged: someone is on it, even if never told
    if _waiting_for_group(alert, rule, now):
        return alert
    first = alert.notified_at is None
    if alert.flapping and "flapping" not in told:
        notes.append(notification_for(alert, "flapping", kind, now))
        alert = replace(alert, notified=told | {"flapping"})
    elif not alert.flapping and not told & {"firing", "flapping"}:
        notes.append(notification_for(alert, "firing", kind, now))
        alert = replace(alert, notified=told | {"firing"})
    if first and alert.notified:
        alert = replace(alert, notified_at=now)
    return _escalate(alert, rule, now, notes, events)


def _waiting_for_group(alert: Alert, rule: Rule, now: datetime) -> bool:
    """A groupable alert holds its first notification ``group.wait`` for its group to form."""
    if rule.group is None or alert.notified or alert.fired_at is None:
        return False
    if SUBJECT_KIND[rule.kind] != alert.subject.kind:
        return False  # the group alert itself
    return (now - alert.fired_at).total_seconds() < rule.group.wait


def _escalate(
    alert: Alert, rule: Rule, now: datetime, notes: list[Notification],
    events: list[AlertEvent],
) -> Alert:
    if alert.status != "firing" or alert.notified_at is None:
        return alert  # acknowledged alerts stop escalating; unnotified ones never started
    waited = (now - alert.notified_at).total_seconds()
    while alert.escalation_level < len(rule.escalation):
        stage = rule.escalation[alert.escalation_level]
        if waited < stage.after:
            break
        severity = alert.severity
        if stage.severity and SEVERITY_RANK[stage.severity] > SEVERITY_RANK[severity]:
            severity = stage.severity
        desks = alert.desks
        if stage.desk and stage.desk not in desks:
            desks = (*desks, stage.desk)
        level = alert.escalation_level + 1
        alert = replace(alert, severity=severity, desks=desks, escalation_level=level)
        events.append(AlertEvent(f"{alert.id}:escalated:{level}", alert.id, "escalated", now))
        notes.append(notification_for(alert, "escalated", rule.kind, now, step=level))
    return alert


def _result(
    state: EngineState,
    trackers: dict[tuple[str, str], Tracker],
    alerts: Iterable[Alert],
    removed: set[str],
    notes: list[Notification],
    events: list[AlertEvent],
) -> Evaluation:
    alerts = list(alerts)
    changed = tuple(a for a in alerts if state.alerts.get(a.id) != a)
    changed_trackers = tuple(
        t for k, t in trackers.items() if _durable(state.trackers.get(k)) != t.durable()
    )
    new_state = EngineState(
        trackers={k: t for k, t in trackers.items() if not t.idle},  # idle == never seen
        alerts={a.id: a for a in alerts if a.active},
        silences=state.silences,
    )
    return Evaluation(new_state, tuple(notes), tuple(events), changed, tuple(sorted(removed)),
                      changed_trackers)


def _durable(tracker: Tracker | None) -> tuple[object, ...] | None:
    return tracker.durable() if tracker is not None else None


class AlertEngine:
    """Holds rules and state between steps; every method is a pure function underneath."""

    def __init__(self, rules: RuleSet, state: EngineState | None = None) -> None:
        self.rules = rules
        self.state = state or EngineState()

    def evaluate(self, observations: Iterable[Observation], now: datetime) -> Evaluation:
        result = evaluate(self.rules, self.state, observations, now)
        self.state = result.state
        return result

    def acknowledge(self, alert_id: str, who: str, note: str, now: datetime) -> Evaluation:
        return self._keep(actions.acknowledge(self.state, alert_id, who, note, now))

    def assign(self, alert_id: str, who: str, assignee: str, now: datetime) -> Evaluation:
        return self._keep(actions.assign(self.state, alert_id, who, assignee, now))

    def add_note(self, alert_id: str, who: str, note: str, now: datetime) -> Evaluation:
        return self._keep(actions.add_note(self.state, alert_id, who, note, now))

    def resolve(self, alert_id: str, who: str, note: str, now: datetime) -> Evaluation:
        return self._keep(actions.resolve_alert(self.rules, self.state, alert_id, who, note,
                                                now))

    def set_silences(self, silences: Sequence[Silence]) -> None:
        self.state = replace(self.state, silences=tuple(silences))

    def _keep(self, result: Evaluation) -> Evaluation:
        self.state = result.state
        return result
