"""What operators do to alerts: acknowledge, assign, note, resolve by hand. Pure.

Each action returns an ``Evaluation`` like a step does, so the store saves both the same way.
Repeating an action that already took effect (a double click, a retried request) is a no-op.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from hub.alerts.lifecycle import resolve
from hub.alerts.model import (
    Alert,
    AlertEvent,
    EngineState,
    Evaluation,
    Notification,
    notification_for,
)
from hub.alerts.rules import RuleSet


class AlertActionError(ValueError):
    """The action does not fit the alert (unknown, not firing yet, already resolved)."""


def _get(state: EngineState, alert_id: str) -> Alert:
    alert = state.alerts.get(alert_id)
    if alert is None:
        raise AlertActionError(f"alert {alert_id} is not active (unknown or already resolved)")
    return alert


def _with(state: EngineState, alerts: list[Alert], events: list[AlertEvent],
          notes: tuple[Notification, ...] = ()) -> Evaluation:
    table = dict(state.alerts)
    for alert in alerts:
        if alert.active:
            table[alert.id] = alert
        else:
            table.pop(alert.id, None)
    return Evaluation(replace(state, alerts=table), notes, tuple(events), tuple(alerts))


def acknowledge(state: EngineState, alert_id: str, who: str, note: str,
                now: datetime) -> Evaluation:
    """firing -> acknowledged; a group's firing members are acknowledged with it."""
    alert = _get(state, alert_id)
    if alert.status == "acknowledged":
        return Evaluation(state)
    if alert.status != "firing":
        raise AlertActionError(f"alert {alert_id} is {alert.status}; only firing alerts "
                               "can be acknowledged")
    if not who:
        raise AlertActionError("say who acknowledges")
    changed: list[Alert] = []
    events: list[AlertEvent] = []
    targets = [alert] + [state.alerts[m] for m in alert.members if m in state.alerts]
    for target in targets:
        if target.status != "firing":
            continue
        said = note if target is alert else f"via group {alert.id}: {note}".rstrip(": ")
        changed.append(replace(target, status="acknowledged", acked_at=now, acked_by=who,
                               ack_note=note))
        events.append(AlertEvent(f"{target.id}:acknowledged", target.id, "acknowledged", now,
                                 who, said))
    return _with(state, changed, events)


def assign(state: EngineState, alert_id: str, who: str, assignee: str,
           now: datetime) -> Evaluation:
    alert = _get(state, alert_id)
    if alert.assigned_to == assignee:
        return Evaluation(state)
    event = AlertEvent(f"{alert_id}:assigned:{now.isoformat()}", alert_id, "assigned", now,
                       who, assignee)
    return _with(state, [replace(alert, assigned_to=assignee)], [event])


def add_note(state: EngineState, alert_id: str, who: str, note: str,
             now: datetime) -> Evaluation:
    _get(state, alert_id)
    event = AlertEvent(f"{alert_id}:note:{now.isoformat()}:{who}", alert_id, "note", now, who,
                       note)
    return Evaluation(state, events=(event,))


def resolve_alert(rules: RuleSet, state: EngineState, alert_id: str, who: str, note: str,
                  now: datetime) -> Evaluation:
    """Resolve by hand. If the condition still holds, a new occurrence starts counting now."""
    alert = _get(state, alert_id)
    if alert.status == "pending":
        raise AlertActionError(f"alert {alert_id} is still pending; it has not fired")
    events: list[AlertEvent] = []
    done = resolve(alert, now, events, who, note)
    notes: tuple[Notification, ...] = ()
    if alert.notified & {"firing", "flapping"}:
        rule = rules.by_id.get(alert.rule_id)
        notes = (notification_for(done, "resolved", rule.kind if rule else "unknown", now),)
        done = replace(done, notified=done.notified | {"resolved"})
    result = _with(state, [done], events, notes)
    tracker = state.trackers.get(alert.key)
    if tracker is not None:
        tracker = replace(tracker, last_resolved_at=now,
                          last_occurrence=max(tracker.last_occurrence, alert.occurrence))
        trackers = {**state.trackers, alert.key: tracker}
        result = replace(result, state=replace(result.state, trackers=trackers),
                         trackers=(tracker,))
    return result
