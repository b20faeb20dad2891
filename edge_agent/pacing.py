"""How many bytes the uplink may have in flight, so a new alarm never queues behind minutes
of backlog on a slow village link. Pure: time comes in as arguments.

An alarm written now is sent after everything already handed to the socket, so what is in
flight is what it waits behind. Keep that near one link round trip plus ``target_queue_s``:

    rate     = bytes PUBACKed over the last ``rate_window_s``
    min_rtt  = smallest PUBACK round trip seen over the last ``rtt_window_s``
    budget   = clamp(rate * (min_rtt + target_queue_s), min_bytes, max_bytes)

On an idle or fast link the budget grows each window (more in flight -> more acked -> higher
rate) until the message-count window is the limit; on a saturated 2 KB/s link it settles
near 2 KB/s * (rtt + 1 s), so an alarm waits about a second behind the backlog instead of
the whole send window (64 readings, ~10 s at 2 KB/s).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class LinkPacer:
    target_queue_s: float = 1.0
    initial_bytes: int = 16 * 1024
    min_bytes: int = 2 * 1024
    max_bytes: int = 8 * 1024 * 1024
    rate_window_s: float = 2.0
    rtt_window_s: float = 30.0
    _acked: deque[tuple[float, int]] = field(default_factory=deque)
    _rtts: deque[tuple[float, float]] = field(default_factory=deque)
    _budget: float = 0.0

    def __post_init__(self) -> None:
        self._budget = float(self.initial_bytes)

    def on_ack(self, nbytes: int, rtt_s: float, now: float) -> None:
        self._acked.append((now, nbytes))
        # Keep only samples that could be the minimum: a monotonic deque.
        while self._rtts and self._rtts[-1][1] >= rtt_s:
            self._rtts.pop()
        self._rtts.append((now, max(0.0, rtt_s)))
        self._update(now)

    def min_rtt(self) -> float:
        return self._rtts[0][1] if self._rtts else 0.0

    def budget(self, now: float) -> int:
        self._trim(now)
        return int(self._budget)

    def _trim(self, now: float) -> None:
        while self._acked and now - self._acked[0][0] > self.rate_window_s:
            self._acked.popleft()
        while len(self._rtts) > 1 and now - self._rtts[0][0] > self.rtt_window_s:
            self._rtts.popleft()

    def _update(self, now: float) -> None:
        self._trim(now)
        if len(self._acked) < 2:
            return  # one sample says nothing about the rate: keep what we had
        span = max(now - self._acked[0][0], 0.25)
        rate = sum(n for _, n in self._acked) / span
        min_rtt = self._rtts[0][1] if self._rtts else 0.0
        wanted = rate * (min_rtt + self.target_queue_s)
        self._budget = min(float(self.max_bytes), max(float(self.min_bytes), wanted))
