"""Times for people in the room: stored UTC, shown in WIB (Asia/Jakarta, UTC+7, no DST)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WIB_NAME = "Asia/Jakarta"


@lru_cache(maxsize=1)
def wib() -> tzinfo:
    """Asia/Jakarta from the tz database; a fixed +07:00 if tzdata is missing (same since 1964)."""
    try:
        return ZoneInfo(WIB_NAME)
    except ZoneInfoNotFoundError:
        return timezone(timedelta(hours=7), "WIB")


def as_utc(dt: datetime | None) -> datetime | None:
    """Aware UTC datetime. SQLite returns naive datetimes: the registry stores UTC, so naive
    means UTC."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def iso_utc(dt: datetime | None) -> str | None:
    """``2024-05-01T07:03:22.120Z`` (milliseconds), or None."""
    u = as_utc(dt)
    if u is None:
        return None
    return u.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_wib(dt: datetime | None) -> str | None:
    """``2024-05-01T14:03:22.120+07:00``, or None."""
    u = as_utc(dt)
    if u is None:
        return None
    return u.astimezone(wib()).isoformat(timespec="milliseconds")


def display_wib(dt: datetime | None) -> str | None:
    """``2024-05-01 14:03:22 WIB`` for tables, or None (the caller shows its own "absent")."""
    u = as_utc(dt)
    if u is None:
        return None
    return u.astimezone(wib()).strftime("%Y-%m-%d %H:%M:%S") + " WIB"


def display_wib_short(dt: datetime | None, now: datetime) -> str | None:
    """For dense tables: ``14:03:22`` when ``dt`` falls on ``now``'s WIB date, else
    ``2024-04-30 14:03``; None when absent. Column headers say the times are WIB."""
    u = as_utc(dt)
    if u is None:
        return None
    local = u.astimezone(wib())
    if local.date() == now.astimezone(wib()).date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M")


def time_json(dt: datetime | None) -> dict[str, Any] | None:
    """The API's time shape: the same instant in UTC and in WIB, or None when never."""
    if dt is None:
        return None
    return {"utc": iso_utc(dt), "wib": iso_wib(dt)}
