"""Pure logic of the fleet view: state, WIB times, absent values, JSON and rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from hub.web.fleet import (
    ABSENT,
    DeviceRecord,
    compute_state,
    device_json,
    device_row,
    format_health,
    normalize_health,
)
from hub.web.timefmt import as_utc, display_wib, display_wib_short, iso_utc, iso_wib, time_json

NOW = datetime(2024, 5, 1, 7, 0, 0, tzinfo=UTC)


def rec(device_id: str = "cam-001", **kw: Any) -> DeviceRecord:
    return DeviceRecord(id=device_id, site_id="s1", **kw)


def ago(s: float) -> datetime:
    return NOW - timedelta(seconds=s)


# --- time -------------------------------------------------------------------------------

def test_wib_is_utc_plus_seven_across_midnight() -> None:
    t = datetime(2024, 12, 31, 20, 30, 5, 250_000, tzinfo=UTC)
    assert display_wib(t) == "2025-01-01 03:30:05 WIB"
    assert iso_wib(t) == "2025-01-01T03:30:05.250+07:00"
    assert iso_utc(t) == "2024-12-31T20:30:05.250Z"


def test_short_form_drops_the_date_on_the_same_wib_day() -> None:
    # 16:59:59 UTC on 30 April is 23:59:59 WIB that day; 17:00 UTC is already 1 May in WIB.
    assert display_wib_short(datetime(2024, 5, 1, 0, 30, tzinfo=UTC), NOW) == "07:30:00"
    assert display_wib_short(datetime(2024, 4, 30, 16, 59, 59, tzinfo=UTC),
                             NOW) == "2024-04-30 23:59"
    assert display_wib_short(datetime(2024, 4, 30, 17, 0, 0, tzinfo=UTC), NOW) == "00:00:00"
    assert display_wib_short(None, NOW) is None


def test_naive_registry_times_are_utc() -> None:
    # SQLite hands back naive datetimes; the registry stores UTC.
    naive = datetime(2024, 5, 1, 7, 0, 0)
    assert as_utc(naive) == NOW
    assert display_wib(naive) == "2024-05-01 14:00:00 WIB"


def test_other_offsets_are_converted() -> None:
    t = datetime(2024, 5, 1, 9, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert display_wib(t) == "2024-05-01 14:00:00 WIB"


def test_absent_times() -> None:
    assert display_wib(None) is None
    assert time_json(None) is None
    assert time_json(NOW) == {"utc": "2024-05-01T07:00:00.000Z",
                              "wib": "2024-05-01T14:00:00.000+07:00"}


# --- state ------------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "expected"), [
    ({"presence": "online", "presence_at": ago(60), "last_health_at": ago(5)}, "online"),
    ({"presence": "online", "presence_at": ago(60), "last_health_at": ago(31)}, "stale"),
    ({"presence": "online", "presence_at": ago(600), "last_health_at": ago(101)}, "offline"),
    # came back a moment ago: old health does not make it stale
    ({"presence": "online", "presence_at": ago(2), "last_health_at": ago(500)}, "online"),
    ({"presence": "offline", "presence_at": ago(2), "last_health_at": ago(3)}, "offline"),
    ({}, "unknown"),
    ({"status": "decommissioned", "presence": "online", "presence_at": ago(1)},
     "decommissioned"),
    ({"presence": "online", "presence_at": ago(20), "last_health_at": ago(20),
      "health_interval_s": 5.0}, "stale"),
])
def test_state_is_computed_against_now(fields: dict[str, Any], expected: str) -> None:
    assert compute_state(rec(**fields), NOW) == expected


def test_state_accepts_naive_times_from_sqlite() -> None:
    naive = (NOW - timedelta(seconds=5)).replace(tzinfo=None)
    r = rec(presence="online", presence_at=naive, last_health_at=naive)
    assert compute_state(r, NOW) == "online"


# --- health display ---------------------------------------------------------------------

def test_absent_health_is_a_dash_never_zero() -> None:
    shown = format_health(None, locale="id", yes="ya", no="tidak")
    assert set(shown.values()) == {ABSENT}


def test_absent_sources_in_a_report_are_dashes() -> None:
    # A box without a temperature sensor or clock-sync state; its outbox field was omitted
    # on the wire because it equals the contract default 0.
    shown = format_health({"uptime_s": 10, "cpu_pct": 7.25, "mem_pct": None},
                          locale="en", yes="yes", no="no")
    assert shown == {"cpu_pct": "7.3%", "mem_pct": ABSENT, "disk_pct": ABSENT,
                     "temp_c": ABSENT, "outbox_depth": "0", "clock_synced": ABSENT}


def test_health_figures_follow_the_language() -> None:
    h = {"uptime_s": 1, "cpu_pct": 12.34, "mem_pct": 50, "disk_pct": 99.96, "temp_c": 61.5,
         "outbox_depth": 12345, "clock_synced": False}
    assert format_health(h, locale="id", yes="ya", no="tidak") == {
        "cpu_pct": "12,3%", "mem_pct": "50,0%", "disk_pct": "100,0%", "temp_c": "61,5 °C",
        "outbox_depth": "12.345", "clock_synced": "tidak"}
    assert format_health(h, locale="en", yes="yes", no="no")["outbox_depth"] == "12,345"


@pytest.mark.parametrize(("value", "shown"), [
    (7.25, "7.3"), (12.35, "12.3"),  # 12.35 is 12.3499... as a float, as in the browser
    (-0.25, "-0.3"), (0.04, "0.0"), (99.95, "100.0"),
])
def test_rounding_matches_the_page_script(value: float, shown: str) -> None:
    assert format_health({"temp_c": value}, locale="en", yes="", no="")["temp_c"] == shown + " °C"


@pytest.mark.parametrize("junk", ["12", True, float("nan"), float("inf"), [1], {"a": 1}])
def test_malformed_figures_are_dashes(junk: object) -> None:
    shown = format_health({"cpu_pct": junk, "temp_c": junk, "clock_synced": "yes"},
                          locale="en", yes="yes", no="no")
    assert shown["cpu_pct"] == shown["temp_c"] == shown["clock_synced"] == ABSENT


def test_normalize_fills_only_value_defaults() -> None:
    h = normalize_health({"uptime_s": 3, "cpu_pct": 1.0})
    assert h is not None
    assert h["outbox_depth"] == 0 and h["cpu_pct"] == 1.0
    assert "temp_c" not in h and "clock_synced" not in h
    assert normalize_health(None) is None
    assert normalize_health({"outbox_depth": 7})["outbox_depth"] == 7  # type: ignore[index]


def test_device_json_shape() -> None:
    r = rec(presence="online", presence_at=ago(30), last_seen_at=ago(1),
            last_health_at=ago(1), last_health={"uptime_s": 9, "cpu_pct": 3.0},
            agent_version="0.1.0", config_version=4, kecamatan="Beji", kelurahan="Tanah Baru")
    j = device_json(r, NOW)
    assert j["state"] == "online"
    assert j["last_seen"] == {"utc": "2024-05-01T06:59:59.000Z",
                              "wib": "2024-05-01T13:59:59.000+07:00"}
    assert (j["kecamatan"], j["kelurahan"], j["site"]) == ("Beji", "Tanah Baru", "s1")
    assert (j["agent_version"], j["config_version"]) == ("0.1.0", 4)
    assert j["health"]["cpu_pct"] == 3.0 and "temp_c" not in j["health"]


def test_row_shows_dash_for_never_seen() -> None:
    row = device_row(rec(), NOW, locale="en", yes="yes", no="no")
    assert row.last_seen_display == ABSENT
    assert row.data["state"] == "unknown"


def test_camera_states_default_streaming_and_unknown_when_box_not_online() -> None:
    from hub.web.fleet import camera_states

    health = {"cameras": {"jalan": {"fps": 9.9}, "trotoar": {"state": "frozen"}}}
    assert camera_states(health, "online") == {"jalan": "streaming", "trotoar": "frozen"}
    assert camera_states(health, "offline") == {"jalan": "unknown", "trotoar": "unknown"}
    assert camera_states(None, "online") == {}
