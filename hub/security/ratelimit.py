"""Attempt throttling (pure; clock injectable).

``SlidingWindow``: at most ``limit`` events per key in any ``window`` seconds, on a monotonic
clock, per process (a first line against one address hammering a worker).
``lockout_until``: the account lockout rule, stored in the registry so every web worker
enforces it (wall clock, since it is compared across processes).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

MAX_KEYS: Final = 10_000  # forget the oldest keys beyond this (memory bound)


class SlidingWindow:
    def __init__(self, limit: int, window: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._mono = monotonic
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _trim(self, key: str, now: float) -> deque[float]:
        q = self._events.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def blocked(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        with self._lock:
            now = self._mono()
            q = self._trim(key, now)
            if len(q) < self.limit:
                return 0.0
            return max(0.0, q[0] + self.window - now)

    def hit(self, key: str) -> None:
        with self._lock:
            now = self._mono()
            self._trim(key, now).append(now)
            if len(self._events) > MAX_KEYS:
                for stale in list(self._events)[: len(self._events) - MAX_KEYS]:
                    del self._events[stale]

    def reset(self, key: str) -> None:
        with self._lock:
            self._events.pop(key, None)


def lockout_until(failed_logins: int, now: datetime, threshold: int,
                  duration: timedelta) -> datetime | None:
    """After ``threshold`` consecutive failures the account is locked for ``duration``
    (doubling with every further ``threshold`` failures, capped at 16x)."""
    if failed_logins < threshold or failed_logins % threshold:
        return None
    factor = min(16, 2 ** (failed_logins // threshold - 1))
    return now + duration * factor
