"""Device state from what the registry knows: pure, so the web and alerts agree on it.

online        the device said so (retained state) and health arrives on time
stale         said online, but no health for ``STALE_INTERVALS`` health intervals
offline       last will / explicit offline, or stale for ``OFFLINE_INTERVALS`` intervals
unknown       enrolled but never heard from
decommissioned
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

STALE_INTERVALS: Final = 3
OFFLINE_INTERVALS: Final = 10
STATES: Final = ("online", "stale", "offline", "unknown", "decommissioned")


def device_state(
    *,
    status: str,
    presence: str,
    last_health_at: datetime | None,
    presence_at: datetime | None,
    health_interval_s: float,
    now: datetime,
) -> str:
    if status == "decommissioned":
        return "decommissioned"
    if presence == "offline":
        return "offline"
    if presence != "online":
        return "unknown"
    # Health older than the presence message counts from the presence message, so a box
    # that just came back is not stale before it had a chance to report.
    if last_health_at is None or presence_at is None:
        reference = last_health_at or presence_at
    else:
        reference = max(last_health_at, presence_at)
    if reference is None:
        return "stale"
    silent_s = (now - reference).total_seconds()
    if silent_s > OFFLINE_INTERVALS * health_interval_s:
        return "offline"
    if silent_s > STALE_INTERVALS * health_interval_s:
        return "stale"
    return "online"
