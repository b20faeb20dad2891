"""hub.state.device_state: one pure function the web views and the alerts agree on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.state import OFFLINE_INTERVALS, STALE_INTERVALS, STATES, device_state

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
INTERVAL = 10.0  # seconds between health reports


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def state(*, status: str = "active", presence: str = "online",
          health: datetime | None = None, presence_at: datetime | None = None,
          interval: float = INTERVAL) -> str:
    return device_state(status=status, presence=presence, last_health_at=health,
                        presence_at=presence_at, health_interval_s=interval, now=NOW)


def test_thresholds_are_the_documented_ones() -> None:
    assert (STALE_INTERVALS, OFFLINE_INTERVALS) == (3, 10)
    assert STATES == ("online", "stale", "offline", "unknown", "decommissioned")


@pytest.mark.parametrize(
    ("silent_s", "expected"),
    [
        (0, "online"),
        (-5, "online"),  # health stamped slightly in the future (clock skew)
        (29.999, "online"),
        (30, "online"),  # exactly 3 intervals: not yet stale
        (30.001, "stale"),
        (99.999, "stale"),
        (100, "stale"),  # exactly 10 intervals: not yet offline
        (100.001, "offline"),
        (86_400, "offline"),
    ],
)
def test_boundaries_from_the_last_health(silent_s: float, expected: str) -> None:
    assert state(health=ago(silent_s), presence_at=ago(10_000)) == expected


@pytest.mark.parametrize(
    ("interval", "silent_s", "expected"),
    [(60.0, 179, "online"), (60.0, 181, "stale"), (60.0, 601, "offline"),
     (1.0, 3.5, "stale"), (1.0, 10.5, "offline")],
)
def test_thresholds_scale_with_the_device_interval(interval: float, silent_s: float,
                                                   expected: str) -> None:
    assert state(health=ago(silent_s), interval=interval) == expected


def test_a_box_that_just_came_back_counts_from_its_presence() -> None:
    # Its last health is an hour old, but it announced itself 5 s ago.
    assert state(health=ago(3600), presence_at=ago(5)) == "online"
    assert state(health=ago(3600), presence_at=ago(31)) == "stale"
    assert state(health=None, presence_at=ago(5)) == "online"
    assert state(health=None, presence_at=ago(101)) == "offline"


def test_online_with_no_timestamps_at_all_is_stale() -> None:
    assert state(health=None, presence_at=None) == "stale"


def test_offline_presence_wins_over_fresh_health() -> None:
    # The last will arrived; health still queued in the broker must not revive the box.
    assert state(presence="offline", health=ago(1), presence_at=ago(1)) == "offline"
    assert state(presence="offline") == "offline"


@pytest.mark.parametrize("presence", ["", "unknown", "Online", "weird"])
def test_never_heard_from_is_unknown(presence: str) -> None:
    assert state(presence=presence, health=ago(1)) == "unknown"
    assert state(presence=presence) == "unknown"


@pytest.mark.parametrize("presence", ["online", "offline", "", "unknown"])
def test_decommissioned_wins_over_everything(presence: str) -> None:
    assert state(status="decommissioned", presence=presence, health=ago(1)) == "decommissioned"


@pytest.mark.parametrize("status", ["active", "enrolled", "maintenance", ""])
def test_other_statuses_follow_presence(status: str) -> None:
    assert state(status=status, health=ago(1)) == "online"
