"""edge_agent.health: board readings, with absent sources left out rather than reported as 0."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path
from typing import Any

import msgspec
import pytest

from dcor_wire import payloads
from edge_agent import health
from edge_agent.health import (
    HealthCollector,
    decode_throttled,
    read_temperature_c,
    read_throttled,
)


def thermal_tree(root: Path, zones: dict[str, str | None]) -> Path:
    """``zones``: zone name -> content of its ``temp`` file (None: no temp file at all)."""
    for name, temp in zones.items():
        (root / name).mkdir(parents=True)
        (root / name / "type").write_text("cpu-thermal\n")
        if temp is not None:
            (root / name / "temp").write_text(temp)
    return root


@pytest.mark.parametrize(
    ("zones", "expected"),
    [
        ({"thermal_zone0": "48123\n"}, 48.123),
        ({"thermal_zone0": "48000\n", "thermal_zone1": "61500\n", "thermal_zone2": "30000"},
         61.5),  # the hottest zone
        ({"thermal_zone0": "-5000\n"}, -5.0),
        ({"thermal_zone0": "0\n"}, 0.0),  # a real 0 °C reading is a reading
        ({"thermal_zone0": "200000\n"}, 200.0),
        ({"thermal_zone0": "-60000\n"}, -60.0),
        # broken sensors are ignored, the working zone still counts
        ({"thermal_zone0": "52000\n", "thermal_zone1": "200001\n"}, 52.0),
        ({"thermal_zone0": "52000\n", "thermal_zone1": "-273150\n"}, 52.0),
        ({"thermal_zone0": "52000\n", "thermal_zone1": "garbage\n"}, 52.0),
        ({"thermal_zone0": "52000\n", "thermal_zone1": ""}, 52.0),
        ({"thermal_zone0": "52000\n", "thermal_zone1": "55.5\n"}, 52.0),
        ({"thermal_zone0": "52000\n", "thermal_zone1": None}, 52.0),
        ({"cooling_device0": "99000\n", "thermal_zone0": "40000\n"}, 40.0),  # not a zone
        # nothing usable
        ({}, None),
        ({"thermal_zone0": "999999\n"}, None),
        ({"thermal_zone0": "n/a\n", "thermal_zone1": None}, None),
        ({"cooling_device0": "40000\n"}, None),
    ],
)
def test_read_temperature(tmp_path: Path, zones: dict[str, str | None],
                          expected: float | None) -> None:
    got = read_temperature_c(thermal_tree(tmp_path / "thermal", zones))
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_read_temperature_of_a_missing_root(tmp_path: Path) -> None:
    assert read_temperature_c(tmp_path / "no-such-dir") is None


def test_unreadable_temp_is_skipped(tmp_path: Path) -> None:
    root = thermal_tree(tmp_path, {"thermal_zone0": "45000\n", "thermal_zone1": None})
    (root / "thermal_zone1" / "temp").mkdir()  # reading a folder raises OSError
    assert read_temperature_c(root) == 45.0


ALL_FALSE = {"undervoltage_now": False, "throttled_now": False,
             "undervoltage_ever": False, "throttled_ever": False}


@pytest.mark.parametrize(
    ("flags", "true_keys"),
    [
        (0x0, set()),
        (0x1, {"undervoltage_now"}),
        (0x4, {"throttled_now"}),
        (0x10000, {"undervoltage_ever"}),
        (0x40000, {"throttled_ever"}),
        (0x50005, {"undervoltage_now", "throttled_now", "undervoltage_ever", "throttled_ever"}),
        (0x50000, {"undervoltage_ever", "throttled_ever"}),  # recovered, but it happened
        (0x2 | 0x8 | 0x20000 | 0x80000, set()),  # freq capped / soft temp limit: not mapped
    ],
)
def test_decode_throttled(flags: int, true_keys: set[str]) -> None:
    assert decode_throttled(flags) == {k: k in true_keys for k in ALL_FALSE}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("50005\n", {k: True for k in ALL_FALSE}),
        ("0x4\n", {**ALL_FALSE, "throttled_now": True}),
        ("0\n", ALL_FALSE),
        ("10000", {**ALL_FALSE, "undervoltage_ever": True}),  # hex, not decimal
    ],
)
def test_read_throttled_from_a_file(tmp_path: Path, content: str,
                                    expected: dict[str, bool]) -> None:
    p = tmp_path / "get_throttled"
    p.write_text(content)
    assert read_throttled((p,)) == expected


def test_read_throttled_falls_through_to_the_next_path(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.write_text("not hex\n")
    good = tmp_path / "good"
    good.write_text("4\n")
    assert read_throttled((tmp_path / "missing", broken, good))["throttled_now"] is True


def test_read_throttled_absent_is_empty(tmp_path: Path) -> None:
    assert read_throttled((tmp_path / "missing",)) == {}
    assert read_throttled(()) == {}


def test_clock_synced_is_a_bool_or_none() -> None:
    assert health.clock_synced() in (True, False, None)


# --- the collector ------------------------------------------------------------------------

BOARD_KEYS = {"temp_c", "undervoltage_now", "throttled_now", "undervoltage_ever",
              "throttled_ever", "clock_synced"}


@pytest.fixture
def bare_box(monkeypatch: pytest.MonkeyPatch) -> None:
    """A box with no thermal zones, no Pi firmware, no adjtimex, no load average, no disk."""
    monkeypatch.setattr(health, "read_temperature_c", lambda: None)
    monkeypatch.setattr(health, "read_throttled", lambda: {})
    monkeypatch.setattr(health, "clock_synced", lambda: None)

    def no_load() -> Any:
        raise OSError("no load average here")

    def no_disk(path: str) -> Any:
        raise OSError(f"cannot stat {path}")

    monkeypatch.setattr(health.psutil, "getloadavg", no_load)
    monkeypatch.setattr(health.psutil, "disk_usage", no_disk)


def test_absent_sources_are_left_out_not_zero(bare_box: None) -> None:
    sample = HealthCollector().sample()
    assert set(sample) == {"uptime_s", "cpu_pct", "mem_pct", "mem_used_mb"}
    # And on the wire they stay absent.
    h = msgspec.convert({**sample, "ts": 1, "seq": 1}, payloads.Health)
    wire = msgspec.json.decode(payloads.encode(h))
    assert not set(wire) & (BOARD_KEYS | {"load1", "disk_pct", "disk_free_mb"})


def test_present_sources_are_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(health, "read_temperature_c", lambda: 61.234)
    monkeypatch.setattr(health, "read_throttled", lambda: decode_throttled(0x50000))
    monkeypatch.setattr(health, "clock_synced", lambda: False)
    monkeypatch.setattr(health.psutil, "getloadavg", lambda: (0.456, 0.3, 0.2))
    usage = namedtuple("usage", "total used free percent")
    monkeypatch.setattr(health.psutil, "disk_usage",
                        lambda path: usage(100 * 2**20, 75 * 2**20, 25 * 2**20, 75.04))
    sample = HealthCollector(tmp_path).sample()
    assert sample["temp_c"] == 61.2
    assert sample["load1"] == 0.46
    assert (sample["disk_pct"], sample["disk_free_mb"]) == (75.0, 25.0)
    assert sample["clock_synced"] is False  # False is a reading, kept apart from absent
    assert sample["throttled_ever"] is True and sample["throttled_now"] is False
    # Every key is a Health field with a valid value.
    h = msgspec.convert({**sample, "ts": 1, "seq": 1}, payloads.Health)
    payloads.decode(payloads.Health, payloads.encode(h))


def test_disk_path_is_the_one_configured(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    asked: list[str] = []
    usage = namedtuple("usage", "total used free percent")

    def disk_usage(path: str) -> Any:
        asked.append(path)
        return usage(1, 0, 1, 0.0)

    monkeypatch.setattr(health.psutil, "disk_usage", disk_usage)
    HealthCollector(tmp_path / "data").sample()
    assert asked == [str(tmp_path / "data")]


def test_uptime_counts_from_the_collector_start(bare_box: None) -> None:
    collector = HealthCollector()
    first = collector.sample()["uptime_s"]
    assert 0.0 <= first < 5.0
    assert collector.sample()["uptime_s"] >= first
