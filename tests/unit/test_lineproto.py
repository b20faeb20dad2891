"""hub.ingest.lineproto: InfluxDB line protocol escaping, and a round trip through influxd."""

from __future__ import annotations

from typing import Any

import pytest

from hub.ingest.lineproto import line
from hub.localservices import InfluxProcess

TS = 1_700_000_000_000


@pytest.mark.parametrize(
    ("measurement", "expected"),
    [
        ("health", "health"),
        ("cpu load", "cpu\\ load"),
        ("a,b", "a\\,b"),
        ("a=b", "a=b"),  # '=' needs no escape in a measurement
        ("a\\b", "a/b"),  # not escapable in 1.x: replaced
        ("a\nb", "a\\ b"),  # newlines become an (escaped) space
    ],
)
def test_measurement_escaping(measurement: str, expected: str) -> None:
    assert line(measurement, {}, {"x": 1}, TS) == f"{expected} x=1i {TS}"


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ("a,b", "a\\,b"),
        ("a b", "a\\ b"),
        ("a=b", "a\\=b"),
        ("a\\b", "a/b"),  # not escapable in 1.x: replaced
        ("a\nb", "a\\ b"),  # newlines become an (escaped) space
        ('a"b', 'a"b'),  # quotes are literal outside string fields
        ("Pancoran Mas, Depok", "Pancoran\\ Mas\\,\\ Depok"),
    ],
)
def test_tag_and_field_key_escaping(raw: str, escaped: str) -> None:
    assert line("m", {raw: raw}, {"f": 1}, TS) == f"m,{escaped}={escaped} f=1i {TS}"
    assert line("m", {}, {raw: 1}, TS) == f"m {escaped}=1i {TS}"


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("plain", '"plain"'),
        ("", '""'),
        ('say "hi"', '"say \\"hi\\""'),
        ("C:\\dir\\", '"C:\\\\dir\\\\"'),
        ('\\"', '"\\\\\\""'),
        ("a\nb", '"a\\nb"'),
        ("a,b c=d", '"a,b c=d"'),  # nothing but quotes and backslashes is escaped inside
        ("Kelurahan Bojongsari Baru", '"Kelurahan Bojongsari Baru"'),
    ],
)
def test_string_field_escaping(value: str, rendered: str) -> None:
    assert line("m", {}, {"s": value}, TS) == f"m s={rendered} {TS}"


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        (0, "0i"),
        (-5, "-5i"),
        (2**53, f"{2**53}i"),
        (True, "true"),  # a bool is an int subclass: it must not become 1i
        (False, "false"),
        (1.5, "1.5"),
        (0.0, "0.0"),
        (-2.25, "-2.25"),
        (1e20, "1e+20"),
        (3.0, "3.0"),  # stays a float field, so the field's type never flips
    ],
)
def test_field_values(value: Any, rendered: str) -> None:
    assert line("m", {}, {"f": value}, TS) == f"m f={rendered} {TS}"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), None, [1], {"a": 1},
                                 b"bytes", object()])
def test_values_with_no_line_protocol_form_are_dropped(bad: object) -> None:
    assert line("m", {}, {"bad": bad, "ok": 1}, TS) == f"m ok=1i {TS}"


def test_a_line_with_no_valid_field_is_none() -> None:
    assert line("m", {"device": "d"}, {}, TS) is None
    assert line("m", {"device": "d"}, {"a": float("nan"), "b": None}, TS) is None


def test_empty_tag_values_are_skipped_and_tags_sorted() -> None:
    got = line("health", {"kelurahan": "", "device": "cam-001", "kecamatan": "beji"},
               {"seq": 7, "cpu_pct": 5.0}, TS)
    assert got == f"health,device=cam-001,kecamatan=beji seq=7i,cpu_pct=5.0 {TS}"


def test_all_tags_empty_leaves_no_comma() -> None:
    assert line("m", {"a": "", "b": ""}, {"f": 1}, TS) == f"m f=1i {TS}"


def test_timestamp_is_an_integer() -> None:
    got = line("m", {}, {"f": 1}, 1.0e12)  # type: ignore[arg-type]
    assert got is not None and got.endswith(" 1000000000000")


# --- the real thing -----------------------------------------------------------------------

# (tag value, string field value): each survives a write and a read back unchanged.
TRICKY = {
    "comma": ("Pancoran Mas,Depok", 'a,b'),
    "space": ("Sukma Jaya", "two words"),
    "equals": ("a=b", "x=y"),
    "quote": ('say "hi"', 'say "hi"'),
    "backslash": ("plain", "C:\\dir\\"),
    "all": ("a, b=c", 'q"\\, =z'),
}


@pytest.mark.integration
def test_tricky_lines_round_trip_through_influxd(influxd: InfluxProcess, influx_db: str) -> None:
    lines = []
    for i, (name, (tag, text)) in enumerate(TRICKY.items()):
        got = line("dcor health,v1", {"case": name, "site name": tag, "empty": ""},
                   {"text": text, "n": i, "ok": True, "x": 0.5, "nan": float("nan"),
                    "odd key=,": 1.25},
                   TS + i)
        assert got is not None
        lines.append(got)
    influxd.write("\n".join(lines), influx_db)

    result = influxd.query('SELECT * FROM "dcor health,v1" ORDER BY time', db=influx_db)
    series = result["results"][0]["series"]
    assert len(series) == 1 and series[0]["name"] == "dcor health,v1"
    cols = series[0]["columns"]
    rows = [dict(zip(cols, values, strict=True)) for values in series[0]["values"]]
    assert len(rows) == len(TRICKY)
    assert "nan" not in cols and "empty" not in cols
    for i, (row, (name, (tag, text))) in enumerate(zip(rows, TRICKY.items(), strict=True)):
        assert row["time"] == TS + i
        assert row["case"] == name
        assert row["site name"] == tag
        assert row["text"] == text
        assert row["n"] == i and row["ok"] is True and row["x"] == 0.5
        assert row["odd key=,"] == 1.25

    # n was written with an i suffix: InfluxDB typed it an integer, not a float.
    keys = influxd.query('SHOW FIELD KEYS FROM "dcor health,v1"', db=influx_db)
    types = dict(keys["results"][0]["series"][0]["values"])
    assert types["n"] == "integer" and types["ok"] == "boolean"
    assert types["x"] == "float" and types["text"] == "string"
    # Tags are tags (indexed), not fields.
    tag_keys = influxd.query('SHOW TAG KEYS FROM "dcor health,v1"', db=influx_db)
    assert sorted(v[0] for v in tag_keys["results"][0]["series"][0]["values"]) == [
        "case", "site name"]
