"""Duplicates are counted at the hub's ingress even across a killed ingest worker: what the
dead run stored and had not acknowledged comes again, and the next run must recognise it."""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import pytest

from hub.localservices import wait_until
from hub.web import create_app
from tests.integration.fleetkit import Fleet, publish_lines

pytestmark = pytest.mark.integration

DEVICE = "cam-dup-0001"


BOOT_MS = int(time.time() * 1000)


def _health(seqs: range) -> list[str]:
    """The same seq is the same message (same timestamp), as a box's resend is."""
    return [json.dumps({"ts": BOOT_MS + s, "seq": s, "uptime_s": s}) for s in seqs]


def test_a_killed_worker_counts_what_its_last_run_stored(fleet: Fleet) -> None:
    fleet.enroll(DEVICE)  # no agent: the test publishes the device's messages itself
    app = create_app(fleet.settings, registry=fleet.registry, influx=fleet.influx)

    def totals() -> dict[str, Any]:
        with app.test_client() as c:
            got: dict[str, Any] = c.get("/api/v1/ingest/stats").get_json()["totals"]
        return got

    topic = f"dcor/v1/{DEVICE}/health"
    fleet.start_hub()

    def probe_stored() -> bool:
        # The hub's first subscription may trail its start: send seq 1 until it lands.
        publish_lines(fleet.mqtt_port, topic, _health(range(1, 2)))
        return fleet.stored_seqs(DEVICE) != []

    wait_until(probe_stored, timeout=20, message="the hub took seq 1")
    publish_lines(fleet.mqtt_port, topic, _health(range(2, 6)))
    wait_until(lambda: sorted(fleet.stored_seqs(DEVICE)) == [1, 2, 3, 4, 5], timeout=20,
               message="the first run stored seq 1-5")
    assert fleet.hub is not None
    # The last probe may still be on its way: read the counters once they stand still
    # (saved every 0.5 s), so nothing of the first run is counted after this reading.
    seen: list[tuple[int, int]] = []

    def settled() -> bool:
        t = totals()
        seen.append((t.get("received", 0), t.get("duplicates", 0)))
        return len(seen) >= 4 and len(set(seen[-4:])) == 1 and t.get("stored", 0) >= 5

    wait_until(settled, timeout=15, interval=0.5, message="the first run's counters settle")
    first_run_dups = seen[-1][1]
    fleet.hub.send_signal(signal.SIGKILL)
    fleet.hub.wait(10)

    fleet.start_hub()
    # 3-5 again (as a box resends what it never saw acknowledged), 6-7 new.
    publish_lines(fleet.mqtt_port, topic, _health(range(3, 8)))
    wait_until(lambda: sorted(fleet.stored_seqs(DEVICE)) == list(range(1, 8)),
               timeout=20, message="the second run stored seq 6-7")
    # The probe's repeats of seq 1 were counted by the first run; the kill may lose up to
    # a save interval of counters, so compare with what the second run alone must add.
    wait_until(lambda: totals().get("duplicates", 0) - first_run_dups == 3, timeout=10,
               message=f"3 duplicates counted (totals {totals()})")
