"""The rollout engine (``dcor-hub rollout run``): the only process holding the signing key.

Every ``rollout_interval_s``, for each unfinished rollout: judge each pushed device
(``waves.device_outcome``), decide (``waves.decide``), and act: sign and store the next
wave's documents, abort (every device this rollout changed gets the document it had before,
under a new version), or complete. Then it publishes, retained, every stored document the
broker has not acknowledged yet (the newest per device; an older unpublished one is
superseded). Run one engine per hub: the registry is the only state it keeps.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from dcor_wire.configdoc import content_digest
from hub.registry.db import Registry
from hub.rollout import fleetdata
from hub.rollout.documents import (
    add_desired,
    build_envelope,
    latest_desired,
    next_versions,
    planned_of,
)
from hub.rollout.publisher import DesiredPublisher
from hub.rollout.tables import DesiredConfigRow, RolloutDeviceRow, RolloutRow
from hub.rollout.views import facts_of
from hub.rollout.waves import Decision, Outcome, Thresholds, decide, device_outcome
from hub.security.audit import AuditLog

log = logging.getLogger("dcor.hub.rollout")

ENGINE_ACTOR = "rollout-engine"
PUBLISH_BATCH = 500
EMPTY = {"config": {}, "models": {}, "digest": content_digest({}, {})}


class RolloutEngine:
    def __init__(self, registry: Registry, key: Ed25519PrivateKey,
                 publisher: DesiredPublisher | Any, *,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.registry = registry
        self.key = key
        self.publisher = publisher
        self.audit = AuditLog(registry)
        self._now = now
        self.published = 0

    def run(self, stop: threading.Event, interval_s: float) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except Exception:  # the next tick tries again; nothing is half done in the db
                log.exception("rollout tick failed")
            stop.wait(max(0.05, interval_s - (time.monotonic() - started)))

    def tick(self) -> None:
        with self.registry.session() as s:
            ids = list(s.scalars(select(RolloutRow.id).where(
                RolloutRow.status.in_(("running", "paused", "aborting")))
                .order_by(RolloutRow.created_at)))
        for rid in ids:
            self._step(rid)
        self.publish_pending()

    # --- one rollout ----------------------------------------------------------------------

    def _step(self, rid: str) -> None:
        now = self._now()
        audit: list[dict[str, Any]] = []
        with self.registry.session() as s:
            r = s.get(RolloutRow, rid)
            if r is None:
                return
            rows = list(s.scalars(select(RolloutDeviceRow)
                                  .where(RolloutDeviceRow.rollout_id == rid)))
            th = Thresholds(**r.spec.get("thresholds", {}))
            ids = [x.device_id for x in rows]
            reports = fleetdata.reports(s, ids)
            live = fleetdata.live_status(s, ids, now)
            outcomes: dict[str, Outcome] = {}
            for x in rows:
                o = device_outcome(facts_of(x, reports.get(x.device_id), live.get(x.device_id)),
                                   th, now.timestamp())
                outcomes[x.device_id] = o
                if o.kind in ("ok", "failed") and not x.outcome and x.state != "planned":
                    x.outcome, x.outcome_reason, x.settled_at = o.kind, o.reason[:500], now
            if r.status == "aborting":
                decision = Decision("abort", r.wave, r.reason)
            else:
                by_wave: list[list[Outcome]] = [[] for _ in range(r.waves)]
                for x in rows:
                    by_wave[x.wave].append(outcomes[x.device_id])
                decision = decide(r.status, r.wave, by_wave, th)
            if decision.action == "push":
                audit.append(self._push(s, r, [x for x in rows if x.wave == decision.wave],
                                        live, now))
            elif decision.action == "abort":
                audit.append(self._abort(s, r, rows, decision.reason, now))
            elif decision.action == "complete":
                r.status, r.finished_at, r.updated_at = "completed", now, now
                failed = sum(1 for o in outcomes.values() if o.kind == "failed")
                r.reason = f"{failed} device(s) failed, under the threshold" if failed else ""
                audit.append({"action": "config_rollout_complete", "target": rid,
                              "detail": {"devices": len(rows), "failed": failed}})
        for entry in audit:
            self.audit.record(actor=ENGINE_ACTOR, role="system", result="ok", **entry)

    def _push(self, s: Session, r: RolloutRow, rows: list[RolloutDeviceRow],
              live: dict[str, fleetdata.Live], now: datetime) -> dict[str, Any]:
        spec = r.spec
        ids = [x.device_id for x in rows]
        current = latest_desired(s, ids)
        reports = fleetdata.reports(s, ids)
        versions = next_versions(s, ids)
        pushed = skipped = unchanged = 0
        for x in rows:
            cur, rep = current.get(x.device_id), reports.get(x.device_id)
            state = live.get(x.device_id)
            if spec.get("skip_offline", True) and (state is None or not state.online):
                x.state, x.outcome, x.settled_at = "skipped", "skipped", now
                x.outcome_reason = f"{state.state if state else 'unknown'} when wave started"
                skipped += 1
                continue
            if cur is not None and cur.digest == x.planned["digest"] and rep is not None \
                    and rep.version == cur.version:
                x.state, x.outcome, x.settled_at = "unchanged", "ok", now
                x.outcome_reason = "already had this configuration"
                unchanged += 1
                continue
            version = versions[x.device_id]
            body = build_envelope(self.key, device_id=x.device_id, version=version,
                                  planned=x.planned, apply=spec.get("apply", {}),
                                  rollout=r.id)
            add_desired(s, device_id=x.device_id, version=version,
                        digest=x.planned["digest"], envelope=body, kind="push",
                        rollout_id=r.id, author=r.author)
            x.state, x.new_version, x.pushed_at = "pushed", version, now
            x.prev_version = cur.version if cur else 0
            x.prev_digest = cur.digest if cur else ""
            x.baseline = state.health if state else None
            pushed += 1
        r.wave += 1
        r.updated_at = now
        log.info("rollout %s: wave %d of %d: %d pushed, %d unchanged, %d skipped", r.id,
                 r.wave + 1, r.waves, pushed, unchanged, skipped)
        return {"action": "config_push", "target": r.id,
                "detail": {"wave": r.wave, "pushed": pushed, "unchanged": unchanged,
                           "skipped": skipped, "author": r.author}}

    def _abort(self, s: Session, r: RolloutRow, rows: list[RolloutDeviceRow], reason: str,
               now: datetime) -> dict[str, Any]:
        """Every device this rollout pushed to gets its previous document back (the empty
        one, i.e. its own agent.yaml, when it had none), under a new version."""
        auto = r.status != "aborting"
        changed = [x for x in rows if x.state == "pushed"]
        versions = next_versions(s, [x.device_id for x in changed])
        prev_rows = {(d.device_id, d.version): d for d in s.scalars(
            select(DesiredConfigRow).where(DesiredConfigRow.device_id.in_(
                [x.device_id for x in changed])))} if changed else {}
        for x in changed:
            prev = prev_rows.get((x.device_id, x.prev_version))
            planned = planned_of(prev) if prev is not None else EMPTY
            body = build_envelope(self.key, device_id=x.device_id,
                                  version=versions[x.device_id], planned=planned,
                                  apply=r.spec.get("apply", {}), rollout=r.id, kind="revert")
            add_desired(s, device_id=x.device_id, version=versions[x.device_id],
                        digest=str(planned["digest"]), envelope=body, kind="revert",
                        rollout_id=r.id, author=ENGINE_ACTOR)
            x.state = "reverted"
            if not x.outcome:
                x.outcome, x.outcome_reason, x.settled_at = "failed", "reverted", now
        r.status, r.auto_aborted, r.finished_at, r.updated_at = "aborted", auto, now, now
        r.reason = (reason or r.reason)[:500]
        log.warning("rollout %s aborted (%s): %s; %d device(s) going back", r.id,
                    "automatic" if auto else "by request", r.reason, len(changed))
        return {"action": "config_rollout_abort", "target": r.id,
                "detail": {"automatic": auto, "reason": r.reason, "reverted": len(changed)}}

    # --- publishing -----------------------------------------------------------------------

    def publish_pending(self) -> int:
        """Publish the newest unpublished document of each device; returns how many the
        broker took."""
        with self.registry.session() as s:
            rows = list(s.scalars(select(DesiredConfigRow)
                                  .where(DesiredConfigRow.published_at.is_(None))
                                  .order_by(DesiredConfigRow.id)))
            newest: dict[str, DesiredConfigRow] = {}
            now = self._now()
            for row in rows:
                older = newest.get(row.device_id)
                if older is not None:
                    older.published_at = now  # superseded: the retained one is what counts
                newest[row.device_id] = row
            todo = [(r.id, r.device_id, r.envelope.encode("utf-8")) for r in newest.values()]
        done = 0
        for i in range(0, len(todo), PUBLISH_BATCH):
            batch = todo[i: i + PUBLISH_BATCH]
            ok = self.publisher.publish([(dev, body) for _, dev, body in batch])
            acked = [row_id for (row_id, _, _), good in zip(batch, ok, strict=True) if good]
            if acked:
                with self.registry.session() as s:
                    for row in s.scalars(select(DesiredConfigRow)
                                         .where(DesiredConfigRow.id.in_(acked))):
                        row.published_at = self._now()
                done += len(acked)
            if len(acked) < len(batch):
                break  # the broker is away: the next tick tries again
        self.published += done
        return done
