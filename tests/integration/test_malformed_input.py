"""1,000 malformed messages from mosquitto_pub: refused, counted by reason, nothing stored."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from hub.localservices import wait_until
from hub.web import create_app
from tests.integration.fleetkit import Fleet, publish_lines

pytestmark = pytest.mark.integration

PER_KIND = 125


def _now_ms() -> int:
    return int(time.time() * 1000)


def malformed_batches(victim: str) -> dict[str, tuple[str, list[str]]]:
    """reason -> (topic, payload lines). Each reason gets PER_KIND messages."""
    ts = _now_ms()
    health = f"dcor/v1/{victim}/health"
    deep = "[" * 5000 + "]" * 5000
    return {
        "bad_json": (health, ["{not json" + str(i) for i in range(PER_KIND)]),
        "schema": (health, [json.dumps({"ts": "yesterday", "seq": i + 1, "uptime_s": 1})
                            for i in range(PER_KIND // 5)]
                   + [f'{{"ts":{ts},"seq":{i + 1},"uptime_s":1e999}}'
                      for i in range(PER_KIND // 5)]
                   + [f'{{"ts":{ts},"seq":99999999999999999999999{i},"uptime_s":1}}'
                      for i in range(PER_KIND // 5)]
                   + [f'{{"ts":{ts},"seq":{i + 1},"uptime_s":1,"cpu_pct":-5}}'
                      for i in range(PER_KIND // 5)]
                   + [deep for _ in range(PER_KIND - 4 * (PER_KIND // 5))]),
        "nan": (health, [f'{{"ts":{ts},"seq":{i + 1},"uptime_s":NaN}}'
                         for i in range(PER_KIND)]),
        "unknown_device": ("dcor/v1/nobody-enrolled-this/health",
                           [json.dumps({"ts": ts, "seq": i + 1, "uptime_s": 1})
                            for i in range(PER_KIND)]),
        "device_mismatch": (health, [json.dumps({"ts": ts + i, "seq": i + 1, "uptime_s": 1,
                                                 "device_id": "someone-else"})
                                     for i in range(PER_KIND)]),
        "bad_topic": ("dcor/v1/BAD_ID!/health", ["{}" for _ in range(PER_KIND)]),
        "unsupported_kind": (f"dcor/v1/{victim}/config/desired", ["{}"] * PER_KIND),
        "oversized": (health, ["x" * 70_000 for _ in range(PER_KIND)]),
    }


def test_malformed_flood_is_refused_and_counted(fleet: Fleet) -> None:
    good = fleet.enroll("cam-good-0001").start()
    fleet.enroll("cam-victim-001")  # enrolled, no agent: every message on it is forged
    fleet.start_hub()
    wait_until(lambda: len(fleet.stored_seqs(good.device_id)) >= 2, timeout=15)

    batches = malformed_batches("cam-victim-001")
    assert sum(len(lines) for _, lines in batches.values()) == 1000
    for topic, lines in batches.values():
        publish_lines(fleet.mqtt_port, topic, lines)
    before = len(fleet.stored_seqs(good.device_id))

    app = create_app(fleet.settings, registry=fleet.registry, influx=fleet.influx)

    def rejected() -> dict[str, Any]:
        with app.test_client() as c:
            totals = c.get("/api/v1/ingest/stats").get_json()["totals"]
        by_reason: dict[str, Any] = totals.get("rejected_by_reason", {})
        return by_reason

    wait_until(lambda: sum(rejected().values()) >= 1000 - PER_KIND, timeout=30,
               message="hub counted the malformed messages")
    counts = rejected()
    # config/desired is hub -> agent: the hub never subscribes to it, so those 125 never
    # arrive; every other message is counted under its reason.
    assert counts.get("bad_json", 0) == PER_KIND * 2  # bad JSON, and NaN literals
    assert counts.get("schema", 0) == PER_KIND
    assert counts.get("bad_topic", 0) == PER_KIND
    assert counts.get("unknown_device", 0) == PER_KIND
    assert counts.get("device_mismatch", 0) == PER_KIND
    assert counts.get("oversized", 0) == PER_KIND
    # Valid traffic kept flowing, and nothing of the forged device reached InfluxDB.
    wait_until(lambda: len(fleet.stored_seqs(good.device_id)) > before + 3, timeout=10)
    assert fleet.stored_seqs("cam-victim-001") == []
    assert fleet.hub is not None and fleet.hub.poll() is None
