"""Summing the ingest workers' counters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.web.stats import STALE_WORKER_S, WorkerRecord, stats_json, sum_counters

NOW = datetime(2024, 5, 1, 7, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("workers", "total"), [
    ([], {}),
    ([{"received": 3}], {"received": 3}),
    ([{"received": 3, "stored": 2}, {"received": 4, "duplicates": 1}],
     {"received": 7, "stored": 2, "duplicates": 1}),
    # nested, by reason
    ([{"rejected": {"bad_json": 2, "too_big": 1}}, {"rejected": {"bad_json": 5}}],
     {"rejected": {"bad_json": 7, "too_big": 1}}),
    # deeper nesting and floats
    ([{"a": {"b": {"c": 1.5}}}, {"a": {"b": {"c": 2}}}], {"a": {"b": {"c": 3.5}}}),
    # what cannot be summed is left out of the totals
    ([{"version": "0.1", "influx_up": True, "n": 1}, {"n": 2, "x": None}], {"n": 3}),
    # a type clash keeps the first kind
    ([{"k": 1}, {"k": {"z": 1}}], {"k": 1}),
    ([{"k": {"z": 1}}, {"k": 4}], {"k": {"z": 1}}),
    ([{"k": {}}, {"nan": float("nan")}], {}),
])
def test_sum_counters(workers: list[dict[str, object]], total: dict[str, object]) -> None:
    assert sum_counters(workers) == total


def test_stale_workers_count_but_are_marked() -> None:
    workers = [
        WorkerRecord("w-b", {"received": 10, "rejected": {"bad_json": 1}},
                     NOW - timedelta(seconds=2)),
        WorkerRecord("w-a", {"received": 5}, NOW - timedelta(seconds=STALE_WORKER_S + 1)),
        # SQLite gives naive UTC datetimes back
        WorkerRecord("w-c", {"received": 1}, (NOW - timedelta(seconds=3)).replace(tzinfo=None)),
    ]
    j = stats_json(workers, NOW)
    assert j["totals"] == {"received": 16, "rejected": {"bad_json": 1}}
    assert [(w["worker_id"], w["stale"], w["age_s"]) for w in j["workers"]] == [
        ("w-a", True, STALE_WORKER_S + 1), ("w-b", False, 2.0), ("w-c", False, 3.0)]
    assert j["workers"][1]["counters"] == {"received": 10, "rejected": {"bad_json": 1}}
    assert j["workers"][1]["updated_at"]["wib"] == "2024-05-01T13:59:58.000+07:00"
    assert (j["worker_count"], j["live_worker_count"]) == (3, 2)
