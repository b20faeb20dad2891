"""The alert evaluator: every tick, observe the fleet, step the engine, hand out deliveries.

One tick: the rules (reloaded when the file changed) -> device facts from the registry (state
via ``hub.state``, the latest health with its per-camera states; observed when they changed,
see ``facts``) -> zone counts from InfluxDB
for detection rules -> ``AlertStore.step`` (load, evaluate, save under the registry's engine
lock, so evaluators in several processes take turns and never duplicate) -> delivery rows for
notifications stored elsewhere -> wake the delivery workers.

Ticks run every ``interval_s`` on the monotonic clock; the engine's own times are wall-clock
UTC because they are compared with times the ingest stored.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from hub.alerts.delivery import Channel, DeliveryWorker, ensure_deliveries, start_cursor
from hub.alerts.facts import FleetObserver, load_facts, load_health
from hub.alerts.model import Observation
from hub.alerts.rulefile import RuleFile
from hub.alerts.rules import RuleSet
from hub.alerts.store import AlertStore
from hub.alerts.zonecounts import (
    DEFAULT_LATE_S,
    ZoneSamples,
    detection_rules,
    zone_counts_query,
)
from hub.influx import InfluxError
from hub.registry.db import Registry

log = logging.getLogger("dcor.hub.alerts")

STATS_EVERY_S = 60.0


class InfluxReader(Protocol):
    """What the evaluator needs of ``hub.influx.InfluxClient``."""

    def query(self, q: str, *, epoch: str = "ms") -> list[dict[str, Any]]: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class EvaluatorCounters:
    ticks: int = 0
    tick_s_total: float = 0.0
    tick_s_max: float = 0.0
    observations: int = 0
    notifications: int = 0
    influx_errors: int = 0
    tick_errors: int = 0


@dataclass(frozen=True)
class TickReport:
    observations: int
    notifications: int
    took_s: float


class AlertEvaluator:
    def __init__(
        self,
        registry: Registry,
        rule_file: RuleFile,
        *,
        influx: InfluxReader | None = None,
        channels: Sequence[Channel] = (),
        worker_id: str = "alerts",
        interval_s: float = 1.0,
        late_s: float = DEFAULT_LATE_S,
        now: Callable[[], datetime] = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.rule_file = rule_file
        self.influx = influx
        self.store = AlertStore(registry, worker_id)
        self.worker_id = worker_id
        self.interval_s = interval_s
        self.late_s = late_s
        self.now = now
        self.monotonic = monotonic
        self.zones = ZoneSamples()
        self.fleet = FleetObserver()
        self.counters = EvaluatorCounters()
        self.workers = [DeliveryWorker(registry, c, worker_id, self.rules, now=now)
                        for c in channels]
        self.channel_names = tuple(c.name for c in channels)
        self._cursor: int | None = None
        self._influx_logged = 0.0
        self._stop = threading.Event()

    def rules(self) -> RuleSet:
        return self.rule_file.current()

    # --- one tick ------------------------------------------------------------------------

    def observe(self, rules: RuleSet, now: datetime) -> list[Observation]:
        with self.registry.session() as s:
            rows = load_facts(s, now)
            observed = self.fleet.observe(rules, rows, now, functools.partial(load_health, s))
        return observed + self.detections(rules, now)

    def detections(self, rules: RuleSet, now: datetime) -> list[Observation]:
        """Detection rules over the zone counts stored lately. InfluxDB unreachable: no
        readings at all this tick (not "empty zones", which would clear real alerts)."""
        wanted = detection_rules(rules.by_id.values())
        if not wanted or self.influx is None:
            return []
        since = self.zones.since(now, wanted, self.late_s)
        query = zone_counts_query({c for r in wanted for c in r.classes},
                                  int(since.timestamp() * 1000))
        try:
            series = self.influx.query(query)
        except InfluxError as exc:
            if "database not found" not in str(exc):
                self._influx_failed(exc)
                return []
            series = []  # nothing written yet
        except ValueError as exc:  # an answer that is not JSON
            self._influx_failed(exc)
            return []
        self.zones.merge(series, now)
        longest = max(r.window for r in wanted)
        horizon = longest + self.late_s
        self.zones.prune(now - timedelta(seconds=horizon))
        return self.zones.observe(wanted, now, horizon)

    def _influx_failed(self, exc: Exception) -> None:
        self.counters.influx_errors += 1
        if self.monotonic() - self._influx_logged > STATS_EVERY_S:
            self._influx_logged = self.monotonic()
            log.warning("zone counts unavailable, detection rules wait: %s", exc)

    def tick(self, now: datetime | None = None) -> TickReport:
        """One evaluation at ``now`` (default: the wall clock)."""
        started = self.monotonic()
        rules = self.rules()
        now = now or self.now()
        observations = self.observe(rules, now)
        _result, fresh = self.store.step(rules, observations, now, self.channel_names)
        swept = self._sweep(now)
        if fresh or swept:
            for worker in self.workers:
                worker.nudge()
        took = self.monotonic() - started
        c = self.counters
        c.ticks += 1
        c.tick_s_total += took
        c.tick_s_max = max(c.tick_s_max, took)
        c.observations += len(observations)
        c.notifications += len(fresh)
        for n in fresh:
            log.info("notification %s: %s %s (%s)", n.kind, n.rule_id, n.subject.key,
                     ",".join(n.desks))
        return TickReport(len(observations), len(fresh), took)

    def _sweep(self, now: datetime) -> bool:
        if not self.channel_names:
            return False
        with self.registry.session() as s:
            if self._cursor is None:
                self._cursor = start_cursor(s, now)
            before = self._cursor
            self._cursor = ensure_deliveries(s, self.channel_names, before, now)
        return self._cursor != before

    # --- the process -----------------------------------------------------------------------

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def stop(self) -> None:
        self._stop.set()
        for worker in reversed(self.workers):
            worker.stop()

    def run(self, stop: threading.Event | None = None) -> None:
        """Tick every ``interval_s`` until ``stop`` (or ``self.stop()``); workers included.

        Ticks keep a fixed grid on the monotonic clock, and each tick's ``now`` is the wall
        time of its grid point: a for-duration that is a whole number of intervals then ends
        exactly on a tick instead of, half the time, one tick later. The grid is re-anchored
        when the wall clock steps (or a tick runs far behind); missed ticks are skipped.
        """
        stop = stop or self._stop
        self.start()
        step_us = max(1, round(self.interval_s * 1e6))
        mono0, wall0, k = self.monotonic(), self.now(), 0
        stats_at = mono0 + STATS_EVERY_S
        try:
            while not stop.is_set() and not self._stop.is_set():
                at = wall0 + timedelta(microseconds=k * step_us)
                wall = self.now()
                if abs((wall - at).total_seconds()) > max(0.5, self.interval_s):
                    mono0, wall0, k, at = self.monotonic(), wall, 0, wall
                try:
                    self.tick(at)
                except Exception:  # the registry away for a moment must not end the process
                    self.counters.tick_errors += 1
                    log.exception("alert evaluation failed; next tick as usual")
                k += 1
                mono = self.monotonic()
                behind = mono - (mono0 + k * step_us / 1e6)
                if behind > 0:  # overran: skip the ticks already missed
                    k += int(behind * 1e6 // step_us) + 1
                if mono >= stats_at:
                    stats_at = mono + STATS_EVERY_S
                    self.log_stats()
                stop.wait(max(0.0, mono0 + k * step_us / 1e6 - mono))
        finally:
            self.stop()

    def log_stats(self) -> None:
        c = self.counters
        mean = c.tick_s_total / c.ticks if c.ticks else 0.0
        sent = {w.channel.name: w.counters.sent for w in self.workers}
        failed = {w.channel.name: w.counters.failed_attempts for w in self.workers}
        log.info("alerts %s: %d ticks (mean %.3f s, max %.3f s), %d notifications, rule "
                 "reloads %d, rule file errors %d, influx errors %d, sent %s, failed %s",
                 self.worker_id, c.ticks, mean, c.tick_s_max, c.notifications,
                 self.rule_file.stats.loads, self.rule_file.stats.errors, c.influx_errors,
                 sent, failed)
