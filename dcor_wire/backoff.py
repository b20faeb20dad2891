"""Capped exponential backoff with full jitter, on an injected clock and random source.

Part of the shared package because both sides must follow the same reconnect schedule: a
fleet that reconnects in lock step after a broker restart is a self-made outage.

Schedule for attempt n (0-based, counted since the last success):
    ceiling(n) = min(cap, base * 2**n)
    delay(n)   = uniform(0, ceiling(n))      (full jitter)
so with base 0.5 s and cap 30 s the ceilings are 0.5, 1, 2, 4, 8, 16, 30, 30, ... seconds.
Full jitter spreads a fleet that lost its broker at the same moment over the whole window
instead of letting it reconnect in lock step.
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    def __init__(self, base: float, cap: float,
                 rand: Callable[[], float] = random.random) -> None:
        if base <= 0 or cap < base:
            raise ValueError("backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
        self._rand = rand
        self.attempt = 0

    def ceiling(self) -> float:
        return min(self.cap, self.base * (2 ** min(self.attempt, 32)))

    def next_delay(self) -> float:
        delay = self._rand() * self.ceiling()
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
