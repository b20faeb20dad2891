"""The fleet view's pure logic: device records -> state, JSON, display strings (the page's
grouping and filters are ``hub.web.fleetplan``'s).

No Flask, no SQL: ``hub.web.data`` reads the registry into ``DeviceRecord`` and the views
render what this module returns, so the page, the JSON API and the tests agree.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, NamedTuple
from urllib.parse import quote

import msgspec
from babel.numbers import get_decimal_symbol, get_group_symbol

from dcor_wire.payloads import Health
from hub.state import device_state
from hub.web.timefmt import as_utc, display_wib, display_wib_short, time_json

ABSENT: Final = "—"
# The three figures every group header shows; "degraded" is a stale device (said online,
# health late). Unknown and decommissioned devices are counted too but shown only if present.
BUCKET_OF_STATE: Final = {
    "online": "online",
    "stale": "degraded",
    "offline": "offline",
    "unknown": "unknown",
    "decommissioned": "decommissioned",
}
BUCKETS: Final = ("online", "degraded", "offline", "unknown", "decommissioned")
# Health figures the fleet table shows, in column order.
HEALTH_COLUMNS: Final = ("cpu_pct", "mem_pct", "disk_pct", "temp_c", "outbox_depth",
                         "clock_synced")
MEDIA_KINDS: Final = ("snapshot", "clip")
# Where the media blueprint serves a file; views pass url_for instead (script root aware).
MEDIA_URL_PREFIX: Final = "/api/v1/media/"

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

MediaUrl = Callable[[str], str]


def default_media_url(item_id: str) -> str:
    return MEDIA_URL_PREFIX + quote(item_id, safe=":")  # as url_for writes it


@dataclass(frozen=True)
class MediaRecord:
    """One row of the media table. ``path`` (relative to the media root) never leaves the
    hub: the API names a file by its row id only."""

    id: str
    device_id: str
    camera: str
    kind: str
    media_id: str
    event_id: str
    ts_ms: int
    path: str
    size: int
    created_at: datetime | None = None


@dataclass(frozen=True)
class CameraRecord:
    """A camera of a device that has media; its newest snapshot, if it has any."""

    camera: str
    latest_snapshot: MediaRecord | None = None


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """What the registry knows about one device, detached from any SQL session (slotted:
    the wall's feed reads the whole fleet every second)."""

    id: str
    site_id: str
    site_name: str = ""
    kecamatan: str = ""
    kelurahan: str = ""
    hardware: str = ""
    profile: str = ""
    status: str = "enrolled"
    presence: str = "unknown"
    presence_at: datetime | None = None
    last_seen_at: datetime | None = None
    last_health_at: datetime | None = None
    last_health: dict[str, Any] | None = None
    health_interval_s: float = 10.0
    agent_version: str = ""
    boot_id: str = ""
    config_version: int = 0
    last_seq: int = 0
    cameras: tuple[CameraRecord, ...] = ()


class DeviceBrief(NamedTuple):
    """A device as the fleet's index reads it: where it is and what decides its state, with
    no health blob and no media; ``reported_cameras`` is the ``cameras`` part of its last
    health reduced to (camera, state it reports), by camera, empty when no camera reports a
    state of its own (they all stream). A tuple of plain values: a page reads thousands per
    request, and the garbage collector stops tracking those, which keeps its passes short."""

    id: str
    site_id: str
    site_name: str
    kecamatan: str
    kelurahan: str
    status: str
    presence: str
    presence_at: datetime | None
    last_health_at: datetime | None
    health_interval_s: float
    camera_reports: tuple[tuple[str, str], ...] = ()


def compute_state(rec: DeviceRecord | DeviceBrief, now: datetime) -> str:
    return device_state(
        status=rec.status,
        presence=rec.presence,
        last_health_at=as_utc(rec.last_health_at),
        presence_at=as_utc(rec.presence_at),
        health_interval_s=rec.health_interval_s,
        now=now,
    )


@functools.cache  # msgspec evaluates the annotations on every call: slow per device
def _contract_defaults() -> dict[str, Any]:
    """Health fields whose wire default is a value (omitted on the wire when equal to it)."""
    out: dict[str, Any] = {}
    for f in msgspec.structs.fields(Health):
        if f.default is not msgspec.NODEFAULT and f.default is not None and f.name not in (
            "v", "cameras"
        ):
            out[f.name] = f.default
    return out


def normalize_health(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stored health dict with the contract's value defaults filled in (an omitted
    ``outbox_depth`` means 0); optional sources that were absent stay absent."""
    if raw is None:
        return None
    out = {k: v for k, v in _contract_defaults().items() if k not in raw}  # a copy
    out.update(raw)
    return out


def device_time(ts_ms: int) -> datetime | None:
    """A device's millisecond timestamp as aware UTC; None when no datetime can hold it (the
    wire allows up to 2**53 ms)."""
    try:
        return _EPOCH + timedelta(milliseconds=ts_ms)  # exact, unlike a float division
    except OverflowError:
        return None


def media_json(m: MediaRecord, media_url: MediaUrl = default_media_url) -> dict[str, Any]:
    """One media item as the listing returns it (``ts`` is the device's capture time)."""
    return {
        "id": m.id,
        "device": m.device_id,
        "camera": m.camera,
        "kind": m.kind,
        "media_id": m.media_id,
        "event_id": m.event_id or None,
        "ts": time_json(device_time(m.ts_ms)),
        "received": time_json(m.created_at),
        "size": m.size,
        "url": media_url(m.id),
    }


def snapshot_json(m: MediaRecord | None, media_url: MediaUrl = default_media_url
                  ) -> dict[str, Any] | None:
    if m is None:
        return None
    return {"id": m.id, "url": media_url(m.id), "ts": time_json(device_time(m.ts_ms)),
            "event_id": m.event_id or None}


def camera_states(health: dict[str, Any] | None, device_state: str) -> dict[str, str]:
    """Each camera's own state as its box last reported it (``streaming`` is the wire
    default, so it is absent from the payload); ``unknown`` while the box itself is not
    online, since then nobody is watching the camera."""
    cams = (health or {}).get("cameras") or {}
    if device_state != "online":
        return {cam: "unknown" for cam in cams}
    return {cam: (info or {}).get("state", "streaming") for cam, info in cams.items()}


def camera_reports(cameras: Any) -> tuple[tuple[str, str], ...]:
    """(camera, the state it reports) of the ``cameras`` part of a health payload, by
    camera; ``streaming`` where it says none (the wire default)."""
    if not isinstance(cameras, dict):
        return ()
    return tuple(sorted((str(cam), str((info if isinstance(info, dict) else {})
                                       .get("state", "streaming")))
                        for cam, info in cameras.items()))


def cameras_json(cameras: tuple[CameraRecord, ...], media_url: MediaUrl = default_media_url,
                 states: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Cameras with media or a reported state, each with its state and latest snapshot."""
    states = states or {}
    by_id = {c.camera: c for c in cameras}
    return [{"camera": cam, "state": states.get(cam, "unknown"),
             "latest_snapshot": snapshot_json(by_id[cam].latest_snapshot, media_url)
             if cam in by_id else None}
            for cam in sorted(set(by_id) | set(states))]


def device_json(rec: DeviceRecord, now: datetime, *,
                media_url: MediaUrl = default_media_url) -> dict[str, Any]:
    """One device as ``/api/v1/devices`` returns it."""
    state = compute_state(rec, now)
    return {
        "id": rec.id,
        "site": rec.site_id,
        "site_name": rec.site_name,
        "kecamatan": rec.kecamatan,
        "kelurahan": rec.kelurahan,
        "hardware": rec.hardware,
        "profile": rec.profile,
        "status": rec.status,
        "state": state,
        "presence": rec.presence,
        "presence_at": time_json(rec.presence_at),
        "last_seen": time_json(rec.last_seen_at),
        "last_health_at": time_json(rec.last_health_at),
        "health_interval_s": rec.health_interval_s,
        "agent_version": rec.agent_version,
        "boot_id": rec.boot_id,
        "config_version": rec.config_version,
        "last_seq": rec.last_seq,
        "health": normalize_health(rec.last_health),
        "cameras": cameras_json(rec.cameras, media_url,
                                camera_states(rec.last_health, state)),
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


@functools.cache
def _symbols(locale: str) -> tuple[str, str]:
    """(decimal, group) symbols of a locale, looked up once: Babel's formatter per table cell
    was most of the fleet page's time at a few thousand devices."""
    return get_decimal_symbol(locale), get_group_symbol(locale)


def _localize(text: str, locale: str) -> str:
    dec, group = _symbols(locale)
    return text.replace(",", "\0").replace(".", dec).replace("\0", group)


def _one_decimal(n: float, locale: str) -> str:
    # Half away from zero on the float's exact value: what the page script's Intl does, so a
    # figure does not change when the script redraws the table.
    q = Decimal(n).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return _localize(f"{q:.1f}", locale)


def _whole(n: int, locale: str) -> str:
    return _localize(f"{n:,d}", locale)


def format_health(health: dict[str, Any] | None, *, locale: str, yes: str, no: str
                  ) -> dict[str, str]:
    """Display strings for ``HEALTH_COLUMNS``; anything absent or malformed is "—", never 0."""
    h = normalize_health(health) or {}
    out: dict[str, str] = {}
    for key in ("cpu_pct", "mem_pct", "disk_pct"):
        n = _number(h.get(key))
        out[key] = ABSENT if n is None else _one_decimal(n, locale) + "%"
    t = _number(h.get("temp_c"))
    out["temp_c"] = ABSENT if t is None else _one_decimal(t, locale) + " °C"
    d = _number(h.get("outbox_depth"))
    out["outbox_depth"] = ABSENT if d is None else _whole(int(d), locale)
    synced = h.get("clock_synced")
    out["clock_synced"] = (yes if synced else no) if isinstance(synced, bool) else ABSENT
    return out


@dataclass(frozen=True)
class Thumb:
    """One camera's cell of the thumbnail strip; ``url`` is None when it has no snapshot."""

    camera: str
    url: str | None = None
    time_full: str = ""


@dataclass
class DeviceRow:
    """One table row: the fields of the API dict that it shows, and its display strings."""

    data: dict[str, Any]
    last_seen_display: str
    last_seen_full: str
    health_display: dict[str, str]
    thumbs: list[Thumb] = field(default_factory=list)


def thumbs(cameras: tuple[CameraRecord, ...], media_url: MediaUrl = default_media_url
           ) -> list[Thumb]:
    """The page's thumbnail strip of one device, one entry per camera with media."""
    out = []
    for c in cameras:
        s = c.latest_snapshot
        out.append(Thumb(c.camera) if s is None else Thumb(
            c.camera, media_url(s.id), display_wib(device_time(s.ts_ms)) or ABSENT))
    return out


def device_row(rec: DeviceRecord, now: datetime, *, locale: str, yes: str, no: str,
               media_url: MediaUrl = default_media_url) -> DeviceRow:
    # Not the whole device_json: its times, health and cameras would be built for nothing.
    data = {"id": rec.id, "site": rec.site_id, "site_name": rec.site_name,
            "kecamatan": rec.kecamatan, "kelurahan": rec.kelurahan,
            "state": compute_state(rec, now)}
    return DeviceRow(
        data=data,
        last_seen_display=display_wib_short(rec.last_seen_at, now) or ABSENT,
        last_seen_full=display_wib(rec.last_seen_at) or "",
        health_display=format_health(rec.last_health, locale=locale, yes=yes, no=no),
        thumbs=thumbs(rec.cameras, media_url),
    )
