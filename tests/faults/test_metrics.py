"""``/metrics`` on the hub web app and on the agent, parsed back with prometheus-client."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge_agent.metrics import start_metrics_server
from edge_agent.outbox import Outbox
from edge_agent.telemetry import Priority
from edge_agent.uplink import UplinkStats
from hub.influx import InfluxClient, InfluxConfig
from hub.localservices.process import free_port
from hub.registry.db import Registry, open_registry
from hub.registry.models import Device, IngestWorkerStats, Site
from hub.web import create_app

NOW = datetime(2024, 5, 1, 7, 0, 0, tzinfo=UTC)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = open_registry(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    yield reg
    reg.close()


def test_hub_metrics_sum_workers_and_show_device_outboxes(registry: Registry) -> None:
    with registry.session() as s:
        s.add(Site(id="s1", name="Tiang", kecamatan="Beji", kelurahan="Kemiri Muka"))
        s.add(Device(id="cam-001", site_id="s1", created_at=NOW, last_health={
            "outbox_depth": 12, "outbox_oldest_s": 3.5, "outbox_dropped": 2, "reconnects": 4,
            "clock_suspect": True}))
        s.add(Device(id="cam-002", site_id="s1", created_at=NOW))
        s.add(IngestWorkerStats(worker_id="w1", updated_at=NOW - timedelta(seconds=2),
                                counters={"received": 10, "stored": 9, "duplicates": 1,
                                          "spool_depth": 3, "mqtt_connected": True,
                                          "rejected_by_reason": {"schema": 1},
                                          "quarantined_by_reason": {"clock_ahead": 4}}))
        s.add(IngestWorkerStats(worker_id="w2", updated_at=NOW - timedelta(seconds=900),
                                counters={"received": 5, "stored": 5,
                                          "rejected_by_reason": {"schema": 2, "bad_json": 1}}))
    influx = InfluxClient(InfluxConfig(f"http://127.0.0.1:{free_port()}", "dcor"))
    app = create_app(registry=registry, influx=influx,
                     test_config={"TESTING": True, "DCOR_NOW": lambda: NOW})
    try:
        r = app.test_client().get("/metrics")
    finally:
        influx.close()
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=")
    got = samples(r.get_data(as_text=True))
    assert got[("dcor_ingest_received_total", ())] == 15
    assert got[("dcor_ingest_stored_total", ())] == 14
    assert got[("dcor_ingest_duplicates_total", ())] == 1
    assert got[("dcor_ingest_rejected_total", (("reason", "schema"),))] == 3
    assert got[("dcor_ingest_rejected_total", (("reason", "bad_json"),))] == 1
    assert got[("dcor_ingest_quarantined_total", (("reason", "clock_ahead"),))] == 4
    assert got[("dcor_ingest_spool_batches", ())] == 3
    assert got[("dcor_ingest_workers", (("state", "live"),))] == 1
    assert got[("dcor_ingest_workers", (("state", "stale"),))] == 1
    dev = (("device", "cam-001"),)
    assert got[("dcor_device_outbox_depth", dev)] == 12
    assert got[("dcor_device_outbox_oldest_seconds", dev)] == 3.5
    assert got[("dcor_device_outbox_dropped_total", dev)] == 2
    assert got[("dcor_device_clock_suspect", dev)] == 1
    assert ("dcor_device_outbox_depth", (("device", "cam-002"),)) not in got  # no health yet


class _Uplink:
    def __init__(self) -> None:
        self.stats = UplinkStats(published=7, acked_rows=5, resent=1, reconnects=2)

    @property
    def connected(self) -> bool:
        return True


def test_agent_metrics_server(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite", 64 * 1024)
    for _ in range(3):
        outbox.put("dcor/v1/cam-001/health", lambda seq: b'{"x":1}', Priority.HEALTH)
    server = start_metrics_server(outbox, _Uplink(), 0, addr="127.0.0.1")
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                f"http://127.0.0.1:{server.port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    finally:
        server.close()
        outbox.close()
    got: dict[Any, float] = samples(text)
    assert got[("dcor_agent_outbox_depth", ())] == 3
    assert got[("dcor_agent_last_seq", ())] == 3
    assert got[("dcor_agent_uplink_connected", ())] == 1
    assert got[("dcor_agent_uplink_reconnects_total", ())] == 2
    assert got[("dcor_agent_outbox_dropped_total", (("class", "clip"),))] == 0
