"""The clock window: points stamped far from the hub's clock are set aside, not stored.

A box without a real-time clock boots in 1970 (or wherever its last fake-hwclock save was) and
one with a bad NTP answer can run days ahead. Stored as they are, its points would land on
top of good data or far from any query, so the hub keeps them in the ``quarantine``
measurement instead, counts them by reason and flags the device's health. Pure.

The window is wide on the past side on purpose: an outbox legitimately replays readings that
are days or weeks old after an outage (64 MiB at the default profile holds about nine days of
one camera's readings, 512 MiB on an rpi5 more than two months).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from hub.ingest.lineproto import line

BEHIND = "clock_behind"
AHEAD = "clock_ahead"
QUARANTINE_MEASUREMENT = "quarantine"


@dataclass(frozen=True)
class ClockWindow:
    max_behind_s: float = 90 * 86400.0
    max_ahead_s: float = 600.0
    # Nothing this project runs on was built before 2020: an earlier stamp is a dead clock.
    floor_ms: int = 1_577_836_800_000

    def verdict(self, ts_ms: int, now_ms: int) -> str:
        """'' when ``ts_ms`` is plausible, else the reason to quarantine it."""
        if ts_ms > now_ms + self.max_ahead_s * 1000:
            return AHEAD
        if ts_ms < self.floor_ms or ts_ms < now_ms - self.max_behind_s * 1000:
            return BEHIND
        return ""


@dataclass
class QuarantineStamps:
    """Quarantined points are stamped with the hub's time, strictly increasing per device, so
    two of them never share a timestamp (and overwrite each other)."""

    _last: dict[str, int] = field(default_factory=dict)

    def stamp(self, device: str, now_ms: int) -> int:
        ts = max(now_ms, self._last.get(device, 0) + 1)
        if len(self._last) > 200_000:
            self._last.clear()
        self._last[device] = ts
        return ts


def quarantine_line(tags: dict[str, str], kind: str, reason: str, payload: msgspec.Struct,
                    raw: bytes, at_ms: int) -> str | None:
    """One point keeping the whole message: its device time, seq and the JSON as received."""
    fields: dict[str, object] = {
        "device_ts": int(getattr(payload, "ts", 0)),
        "seq": int(getattr(payload, "seq", 0)),
        "payload": raw.decode("utf-8", errors="replace"),
    }
    return line(QUARANTINE_MEASUREMENT, {**tags, "kind": kind, "reason": reason}, fields, at_ms)
