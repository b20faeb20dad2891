"""Ingest counters, and a log limiter so one noisy device cannot flood the log."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any


class IngestStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.quarantined: Counter[str] = Counter()
        self.gauges: dict[str, float] = {}

    def inc(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] += n

    def reject(self, reason: str) -> None:
        with self._lock:
            self.rejected[reason] += 1
            self.counts["rejected"] += 1

    def quarantine(self, reason: str) -> None:
        with self._lock:
            self.quarantined[reason] += 1
            self.counts["quarantined"] += 1

    def restore(self, saved: dict[str, Any]) -> None:
        """Continue the counters a previous run of this worker saved (gauges start afresh),
        so totals never go backwards when a worker restarts."""
        with self._lock:
            for key, value in saved.items():
                if isinstance(value, int) and not isinstance(value, bool) and key not in (
                        "spool_depth", "pending"):
                    self.counts[key] += value
            for key, target in (("rejected_by_reason", self.rejected),
                                ("quarantined_by_reason", self.quarantined)):
                for reason, n in (saved.get(key) or {}).items():
                    if isinstance(n, int):
                        target[reason] += n

    def gauge(self, name: str, value: float) -> None:
        with self._lock:
            self.gauges[name] = value

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {**self.counts, **self.gauges, "rejected_by_reason": dict(self.rejected),
                    "quarantined_by_reason": dict(self.quarantined)}


class LogLimiter:
    """Allows one log line per key per ``period_s`` (monotonic)."""

    def __init__(self, period_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.period_s = period_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self.suppressed: Counter[str] = Counter()

    def allow(self, key: str) -> bool:
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.period_s:
            self.suppressed[key] += 1
            return False
        if len(self._last) > 10_000:  # bounded: forget the oldest half
            for k in sorted(self._last, key=self._last.__getitem__)[:5_000]:
                del self._last[k]
        self._last[key] = now
        return True
