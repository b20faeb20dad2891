"""Read-only views for the web app and the CLI: desired against reported per device, drift
with its reason, rollouts with the progress of each wave."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from hub.registry.db import Registry
from hub.rollout import fleetdata
from hub.rollout.documents import latest_desired
from hub.rollout.tables import ConfigReportRow, DesiredConfigRow, RolloutDeviceRow, RolloutRow
from hub.rollout.waves import DeviceFacts, Report, Thresholds, device_outcome


def _iso(t: datetime | None) -> str | None:
    t = fleetdata.aware(t)
    return t.isoformat() if t is not None else None


def drift_reason(desired: DesiredConfigRow | None, rep: ConfigReportRow | None,
                 state: str) -> str:
    """Why a device does not run its desired configuration ("" when it does)."""
    if desired is None:
        return ""
    if rep is not None and rep.version == desired.version and rep.digest == desired.digest:
        return ""
    if rep is not None and rep.digest == desired.digest and rep.digest:
        return ""  # same content under an older version number: nothing to change
    offline = "" if state == "online" else f" (device {state})"
    if desired.published_at is None:
        return "not published yet (broker unreachable?)"
    if rep is None:
        return f"no report since the push{offline}"
    if rep.desired_version == desired.version:
        if rep.status == "rejected":
            return f"rejected: {rep.reason}: {rep.error}".rstrip(": ")
        if rep.status == "rolled_back":
            return f"rolled back: {rep.error or rep.reason}"
        return "applying (on trial)"
    if rep.desired_version > desired.version:
        return f"reports version {rep.desired_version}, newer than the hub's"
    return f"not applied yet; last report is about version {rep.desired_version}{offline}"


def device_rows(registry: Registry, now: datetime | None = None) -> list[dict[str, Any]]:
    now = now or datetime.now(UTC)
    with registry.session() as s:
        devices = fleetdata.device_infos(s)
        ids = sorted(devices)
        desired = latest_desired(s, ids)
        reports = fleetdata.reports(s, ids)
        live = fleetdata.live_status(s, ids, now)
    out = []
    for dev in ids:
        d, r = desired.get(dev), reports.get(dev)
        state = live[dev].state if dev in live else "unknown"
        info = devices[dev]
        out.append({
            "device_id": dev, "kecamatan": info.kecamatan, "kelurahan": info.kelurahan,
            "hardware": info.hardware, "profile": info.profile, "state": state,
            "desired": None if d is None else {
                "version": d.version, "digest": d.digest, "kind": d.kind,
                "rollout": d.rollout_id, "created_at": _iso(d.created_at),
                "published_at": _iso(d.published_at)},
            "reported": None if r is None else {
                "status": r.status, "version": r.version, "digest": r.digest,
                "desired_version": r.desired_version, "reason": r.reason, "error": r.error,
                "rollout": r.rollout_id, "received_at": _iso(r.received_at)},
            "drift": drift_reason(d, r, state),
        })
    return out


def drift(registry: Registry) -> list[dict[str, Any]]:
    return [r for r in device_rows(registry) if r["drift"]]


def rollout_list(registry: Registry, limit: int = 50) -> list[dict[str, Any]]:
    with registry.session() as s:
        rows = list(s.scalars(select(RolloutRow).order_by(RolloutRow.created_at.desc())
                              .limit(limit)))
        counts: dict[str, Counter[str]] = {}
        for rid, state, outcome in s.execute(
                select(RolloutDeviceRow.rollout_id, RolloutDeviceRow.state,
                       RolloutDeviceRow.outcome)
                .where(RolloutDeviceRow.rollout_id.in_([r.id for r in rows]))):
            c = counts.setdefault(rid, Counter())
            c["devices"] += 1
            c[outcome or state] += 1
    return [_summary(r, counts.get(r.id, Counter())) for r in rows]


def _summary(r: RolloutRow, c: Counter[str]) -> dict[str, Any]:
    return {"id": r.id, "status": r.status, "waves": r.waves, "wave": r.wave,
            "reason": r.reason, "auto_aborted": r.auto_aborted, "author": r.author,
            "note": r.note, "created_at": _iso(r.created_at),
            "finished_at": _iso(r.finished_at), "counts": dict(c)}


def rollout_detail(registry: Registry, rollout_id: str,
                   now: datetime | None = None) -> dict[str, Any] | None:
    now = now or datetime.now(UTC)
    with registry.session() as s:
        r = s.get(RolloutRow, rollout_id)
        if r is None:
            return None
        rows = list(s.scalars(select(RolloutDeviceRow)
                              .where(RolloutDeviceRow.rollout_id == rollout_id)
                              .order_by(RolloutDeviceRow.wave, RolloutDeviceRow.device_id)))
        ids = [x.device_id for x in rows]
        reports = fleetdata.reports(s, ids)
        live = fleetdata.live_status(s, ids, now)
    th = Thresholds(**r.spec.get("thresholds", {}))
    waves: list[dict[str, Any]] = [{"wave": i, "devices": []} for i in range(r.waves)]
    for x in rows:
        outcome = device_outcome(facts_of(x, reports.get(x.device_id), live.get(x.device_id)),
                                 th, now.timestamp())
        waves[x.wave]["devices"].append({
            "device_id": x.device_id, "state": x.state, "new_version": x.new_version,
            "prev_version": x.prev_version, "pushed_at": _iso(x.pushed_at),
            "outcome": x.outcome or outcome.kind,
            "reason": x.outcome_reason or outcome.reason})
    for w in waves:
        w["counts"] = dict(Counter(d["outcome"] for d in w["devices"]))
        w["pushed"] = w["wave"] <= r.wave
    body = _summary(r, Counter())
    body.pop("counts")
    body.update(spec=r.spec, waves_detail=waves)
    return body


def facts_of(x: RolloutDeviceRow, rep: ConfigReportRow | None,
             live: fleetdata.Live | None) -> DeviceFacts:
    report = None
    if rep is not None:
        at = fleetdata.aware(rep.received_at)
        report = Report(rep.status, rep.version, rep.desired_version, rep.reason, rep.error,
                        at.timestamp() if at else 0.0)
    pushed = fleetdata.aware(x.pushed_at)
    health_at = live.health_at if live else None
    return DeviceFacts(
        state=x.state,  # type: ignore[arg-type]
        new_version=x.new_version, pushed_at=pushed.timestamp() if pushed else None,
        report=report, online=live.online if live else False, baseline=x.baseline,
        health=live.health if live else None,
        health_at=health_at.timestamp() if health_at else None)
