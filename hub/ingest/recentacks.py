"""What the hub acknowledged to each device lately, to say it again after a reconnect.

An ``ack`` is an ordinary QoS 1 message: when the broker dies (or the hub's link drops) with
acks not yet delivered, the devices keep rows the hub has stored and send them again. Saying
the last minute's acks again as soon as the hub is back lets the boxes drop those rows before
their resend timers fire, which turns most of those duplicates into nothing. Pure.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable


class RecentAcks:
    def __init__(self, horizon_s: float = 60.0, max_per_device: int = 10_000) -> None:
        self.horizon_s = horizon_s
        self.max_per_device = max_per_device
        self._by_device: dict[str, deque[tuple[float, int]]] = {}

    def add(self, device: str, seqs: Iterable[int], now: float) -> None:
        q = self._by_device.setdefault(device, deque(maxlen=self.max_per_device))
        q.extend((now, s) for s in seqs)

    def recent(self, now: float) -> dict[str, set[int]]:
        """Seqs acknowledged within the horizon, per device; older entries are forgotten."""
        out: dict[str, set[int]] = {}
        for device in list(self._by_device):
            q = self._by_device[device]
            while q and now - q[0][0] > self.horizon_s:
                q.popleft()
            if q:
                out[device] = {s for _, s in q}
            else:
                del self._by_device[device]
        return out
