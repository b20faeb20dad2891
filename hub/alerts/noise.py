"""Noise control: grouping per kelurahan, inhibition along the hierarchy, silences.

Grouping: when at least ``group.min_members`` alerts of one groupable rule are active
(pending counts, at least one firing) in one kelurahan, one group alert with the kelurahan as
subject stands for them; members keep their own lifecycle but do not notify while the group is
active. Later members join silently. The group resolves when its last member has.

Inhibition: an active (pending included, so a slower inhibitor still wins the race) alert of
a rule with ``inhibit: kelurahan`` suppresses every other rule's alerts in that kelurahan;
``inhibit: device`` suppresses other rules' alerts of that device and its cameras and zones.

Silences: an active silence whose matchers (fnmatch globs over the alert's labels) all match.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from fnmatch import fnmatchcase

from hub.alerts.lifecycle import resolve
from hub.alerts.model import Alert, AlertEvent, Silence, Subject, Tracker, alert_id
from hub.alerts.rules import Rule


def labels_of(alert: Alert, rule: Rule | None) -> dict[str, str]:
    labels = dict(rule.labels) if rule else {}
    labels.update(alert.subject.labels())
    labels.update(rule=alert.rule_id, severity=alert.severity, desk=alert.desks[0],
                  status=alert.status)
    return labels


def silence_matches(silence: Silence, alert: Alert, labels: Mapping[str, str]) -> bool:
    for name, pattern in silence.matchers:
        if name == "desk":  # any desk the alert is routed to
            if not any(fnmatchcase(d, pattern) for d in alert.desks):
                return False
        elif not fnmatchcase(labels.get(name, ""), pattern):
            return False
    return True


def group_alerts(
    alerts: dict[tuple[str, str], Alert],
    trackers: dict[tuple[str, str], Tracker],
    rules: Mapping[str, Rule],
    removed: set[str],
    now: datetime,
    events: list[AlertEvent],
) -> None:
    """Form, update and resolve group alerts, in place. ``alerts`` is keyed by (subject, rule)."""
    members: dict[tuple[str, str, str], list[Alert]] = defaultdict(list)
    groups: dict[tuple[str, str, str], Alert] = {}
    for alert in alerts.values():
        if not alert.active:
            continue
        place = (alert.rule_id, alert.subject.kecamatan, alert.subject.kelurahan)
        rule = rules.get(alert.rule_id)
        if alert.subject.kind == "kelurahan" and (rule is None or rule.group is not None):
            groups[place] = alert
        elif rule is not None and rule.group is not None:
            members[place].append(alert)
    for place in sorted(set(members) | set(groups)):
        active = sorted(members.get(place, []), key=lambda a: a.id)
        group = groups.get(place)
        rule = rules.get(place[0])
        if group is None:
            if rule is None or rule.group is None or len(active) < rule.group.min_members:
                continue
            if not any(a.status != "pending" for a in active):
                continue
            group = _open_group(place, active, trackers, rule, now, events)
        elif not active:
            done = resolve(group, now, events)
            alerts[done.key] = done
            tr = trackers.get(done.key) or Tracker(subject=done.subject, rule_id=done.rule_id,
                                                   last_occurrence=done.occurrence)
            trackers[done.key] = replace(tr, condition=False, condition_since=now, last_at=now,
                                         last_resolved_at=now)
            continue
        ids = {a.id for a in active}
        listed = tuple(sorted((set(group.members) - removed) | ids))
        group = replace(group, members=listed, value=float(len(active)))
        alerts[group.key] = group
        for member in active:
            if member.group_id != group.id:
                events.append(AlertEvent(f"{member.id}:grouped:{group.id}", member.id,
                                         "grouped", now, note=group.id))
                alerts[member.key] = replace(member, group_id=group.id)


def _open_group(
    place: tuple[str, str, str],
    active: list[Alert],
    trackers: dict[tuple[str, str], Tracker],
    rule: Rule,
    now: datetime,
    events: list[AlertEvent],
) -> Alert:
    subject = Subject("kelurahan", place[1], place[2])
    key = (subject.key, rule.id)
    tr = trackers.get(key) or Tracker(subject=subject, rule_id=rule.id)
    occurrence = tr.last_occurrence + 1
    trackers[key] = replace(tr, condition=True, condition_since=now, last_at=now,
                            last_occurrence=occurrence)
    previous = alert_id(subject.key, rule.id, occurrence - 1) if occurrence > 1 else ""
    group = Alert(
        subject=subject, rule_id=rule.id, occurrence=occurrence, status="firing",
        severity=rule.severity, desks=(rule.desk,), since=min(a.since for a in active),
        fired_at=now, previous_id=previous, members=tuple(a.id for a in active),
    )
    events.append(AlertEvent(f"{group.id}:firing", group.id, "firing", now))
    return group


def suppress(
    alerts: Iterable[Alert], rules: Mapping[str, Rule], silences: Iterable[Silence],
    now: datetime,
) -> dict[str, str]:
    """Why each active alert must not notify now: alert id -> reason ('' = free to notify)."""
    active = [a for a in alerts if a.active]
    ids = {a.id for a in active}
    by_kelurahan: dict[tuple[str, str], list[Alert]] = defaultdict(list)
    by_device: dict[str, list[Alert]] = defaultdict(list)
    for alert in sorted(active, key=lambda a: a.id):
        rule = rules.get(alert.rule_id)
        if rule is None or rule.inhibit is None:
            continue
        if rule.inhibit == "kelurahan":
            by_kelurahan[(alert.subject.kecamatan, alert.subject.kelurahan)].append(alert)
        elif alert.subject.device:
            by_device[alert.subject.device].append(alert)
    live = [s for s in silences if s.active_at(now)]
    out: dict[str, str] = {}
    for alert in active:
        place = (alert.subject.kecamatan, alert.subject.kelurahan)
        sources = by_kelurahan.get(place, []) + by_device.get(alert.subject.device, [])
        inhibitor = next((s for s in sources if s.rule_id != alert.rule_id), None)
        reason = ""
        if alert.group_id and alert.group_id in ids:
            reason = f"group:{alert.group_id}"
        elif inhibitor is not None:
            reason = f"inhibited:{inhibitor.id}"
        else:
            labels = labels_of(alert, rules.get(alert.rule_id))
            silence = next((s for s in live if silence_matches(s, alert, labels)), None)
            reason = f"silence:{silence.id}" if silence else ""
        out[alert.id] = reason
    return out
