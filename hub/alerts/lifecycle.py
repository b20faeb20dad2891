"""The life of one (subject, rule): observations -> tracker -> pending/firing/resolved alert.

Rules of the road (all times injected, nothing here reads a clock):
- The last observed condition holds until a newer observation says otherwise; observations
  older than the tracker's last one (or its last change) are stale and ignored, so several
  workers feeding readings out of order cannot undo each other; a repeat changes nothing.
- Pending: the condition is true; it fires once it held ``for`` seconds, and is dropped
  (no record, no notification) if it clears first.
- Firing or acknowledged: resolves once the condition has been clear for ``clear`` seconds.
- Every change of the raw condition is a transition. ``transitions`` of them within ``window``
  make the key flap: its alert fires at once, marked flapping, and neither resolves nor
  re-fires while the flapping lasts; flapping ends below half the threshold.
- A new occurrence after resolution links to the previous one and is counted from the later
  of the condition's start and the resolution (so a manual resolve restarts the clock).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from hub.alerts.model import Alert, AlertEvent, Observation, Tracker, alert_id
from hub.alerts.rules import SUBJECT_KIND, FlapPolicy, Rule


def apply_observations(
    trackers: Mapping[tuple[str, str], Tracker],
    observations: Iterable[Observation],
    rules: Mapping[str, Rule],
) -> dict[tuple[str, str], Tracker]:
    """Fold observations (any order) into trackers. Skipped: unknown rules, subjects of the
    wrong kind for the rule (a camera reading for a device rule), stale readings."""
    out = dict(trackers)
    for obs in sorted(observations, key=lambda o: o.at):
        rule = rules.get(obs.rule_id)
        if rule is None or SUBJECT_KIND[rule.kind] != obs.subject.kind:
            continue
        key = (obs.subject.key, obs.rule_id)
        tr = out.get(key)
        if tr is None:
            if not obs.active:
                continue  # clear and never seen: the same as an idle key, keep nothing
            tr = Tracker(subject=obs.subject, rule_id=obs.rule_id)
        # ``last_at`` is not stored (it changes with every reading); after a reload the time
        # of the last change still keeps a lagging worker's older reading out.
        newest = max((x for x in (tr.last_at, tr.condition_since) if x is not None), default=None)
        if newest is not None and obs.at < newest:
            continue
        changed = obs.active != tr.condition
        out[key] = replace(
            tr,
            subject=obs.subject,  # the hierarchy may have changed (device moved)
            condition=obs.active,
            condition_since=obs.at if changed else tr.condition_since,
            last_at=obs.at,
            value=obs.value,
            detail=obs.detail,
            # A first reading that is clear changes nothing; one that is true counts, so a key
            # forgotten while idle (never stored) counts the same as one remembered as clear.
            transitions=(*tr.transitions, obs.at) if changed and (
                tr.condition is not None or obs.active) else tr.transitions,
        )
    return out


def _flap_update(tr: Tracker, policy: FlapPolicy | None, now: datetime) -> Tracker:
    if policy is None:
        return replace(tr, transitions=(), flapping=False) if tr.transitions else tr
    horizon = now - timedelta(seconds=policy.window)
    recent = tuple(t for t in tr.transitions if t > horizon)
    flapping = tr.flapping
    if not flapping and len(recent) >= policy.transitions:
        flapping = True
    elif flapping and len(recent) < max(1, policy.transitions // 2):
        flapping = False
    if recent == tr.transitions and flapping == tr.flapping:
        return tr
    return replace(tr, transitions=recent, flapping=flapping)


def step(
    tr: Tracker,
    alert: Alert | None,
    rule: Rule,
    flap: FlapPolicy | None,
    now: datetime,
    events: list[AlertEvent],
) -> tuple[Tracker, Alert | None, str | None]:
    """Advance one key to ``now``: returns (tracker, alert or None, id of a dropped pending)."""
    tr = _flap_update(tr, flap, now)
    cond = tr.condition is True
    if alert is None and (cond or tr.flapping):
        alert = _new_alert(tr, rule, now)
    if alert is None:
        return tr, None, None
    if tr.value is not None or tr.detail:  # a tracker reloaded after a restart has neither
        alert = replace(alert, value=tr.value, detail=tr.detail)
    aid = alert.id

    if alert.status == "pending":
        held = (now - alert.since).total_seconds()
        if tr.flapping or (cond and held >= rule.for_):
            alert = replace(alert, status="firing", fired_at=now)
            tr = replace(tr, last_occurrence=alert.occurrence)
            events.append(AlertEvent(f"{aid}:firing", aid, "firing", now))
        elif not cond:
            return tr, None, aid
    if tr.flapping != alert.flapping:
        kind = "flapping" if tr.flapping else "flap_end"
        events.append(AlertEvent(f"{aid}:{kind}:{now.isoformat()}", aid, kind, now))
        alert = replace(alert, flapping=tr.flapping)

    if alert.status in ("firing", "acknowledged"):
        if cond:
            alert = replace(alert, clear_since=None) if alert.clear_since else alert
        else:
            clear_since = alert.clear_since or tr.condition_since or now
            alert = replace(alert, clear_since=clear_since)
            if not tr.flapping and (now - clear_since).total_seconds() >= rule.clear:
                alert = resolve(alert, now, events)
                tr = replace(tr, last_resolved_at=now)
    return tr, alert, None


def _new_alert(tr: Tracker, rule: Rule, now: datetime) -> Alert:
    occurrence = tr.last_occurrence + 1
    if tr.condition and tr.condition_since is not None:
        since = tr.condition_since
    else:  # flapping while currently clear: the trouble started with the first transition
        since = tr.transitions[0] if tr.transitions else now
    if tr.last_resolved_at is not None and since < tr.last_resolved_at:
        since = tr.last_resolved_at
    previous = alert_id(tr.subject.key, tr.rule_id, occurrence - 1) if occurrence > 1 else ""
    return Alert(
        subject=tr.subject, rule_id=tr.rule_id, occurrence=occurrence, status="pending",
        severity=rule.severity, desks=(rule.desk,), since=since, previous_id=previous,
    )


def resolve(alert: Alert, now: datetime, events: list[AlertEvent], actor: str = "",
            note: str = "") -> Alert:
    events.append(AlertEvent(f"{alert.id}:resolved", alert.id, "resolved", now, actor, note))
    return replace(alert, status="resolved", resolved_at=now, suppressed_by="")
