"""What the hub acknowledged to each device lately, to say it again when the box comes back.

An ``ack`` is an ordinary QoS 1 message: when the broker dies (or a link drops) with acks not
yet delivered, the box keeps rows the hub has stored and would send them again. When a box's
"online" arrives (after its reconnect, or when the hub resubscribes and gets the retained
states) the hub says that box's last minute of acks again, and the box holds its backlog until
that first ack: the rows the hub already stored are dropped instead of sent twice. Pure.
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
