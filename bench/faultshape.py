"""Pure shaping arithmetic for the fault proxy: a byte token bucket and ordered delivery."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    """Bytes per second with a small burst; ``take`` answers how long to wait first.

    Tokens may go negative (debt), so a chunk larger than the burst still passes, just later,
    and the next chunk waits for the debt to be paid. ``rate`` 0 means unlimited.
    """

    rate: float
    at: float
    burst_s: float = 0.25
    tokens: float = 0.0

    def take(self, n: int, now: float) -> float:
        if self.rate <= 0:
            self.at = now
            return 0.0
        burst = self.rate * self.burst_s
        self.tokens = min(burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        self.tokens -= n
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


@dataclass
class DeliveryClock:
    """Latency with jitter, but TCP order kept: never deliver before the previous chunk."""

    last: float = 0.0

    def due(self, now: float, delay: float) -> float:
        self.last = max(self.last, now + max(0.0, delay))
        return self.last
