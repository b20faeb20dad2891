"""Each benchmark end to end at a tiny size, so CI knows they still run and still check
what they claim (the real runs are on demand: docs/benchmarks.md)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bench import fleet_ui, ingest, rawpub, scale, synth
from bench.common import ProcSampler, emit, percentile
from bench.fleet import SimFleet
from bench.hubkit import HubWorkers, broker_config, enroll_bulk
from bench.simdevice import SimConfig
from dcor_wire import payloads
from hub.localservices import InfluxProcess, MosquittoProcess, wait_until

pytestmark = pytest.mark.integration


def test_percentile_and_emit(capsys: pytest.CaptureFixture[str]) -> None:
    assert percentile([], 95) == 0.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile(list(map(float, range(1, 101))), 95) == 95.0
    emit({"a": 1.23456, "b": "x"})
    assert json.loads(capsys.readouterr().out) == {"a": 1.23, "b": "x"}


def test_sampler_counts_cpu_of_a_busy_process() -> None:
    import os

    sampler = ProcSampler([os.getpid()], interval_s=0.05).start()
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        pass
    usage = sampler.stop()
    assert usage.cpu_pct > 30 and usage.rss_mb_max > 1


def test_synthetic_payloads_are_wire_valid() -> None:
    box = synth.SyntheticBox("sim-00001")
    h = payloads.decode(payloads.Health, synth.health_payload(box, 7, 1_800_000_000_000))
    d = payloads.decode(payloads.Detections,
                        synth.detections_payload(box, 8, 1_800_000_000_000))
    assert (h.seq, d.seq, d.camera) == (7, 8, "cam1") and h.cameras["cam1"].fps > 0
    assert synth.device_ids(3) == ["sim-00001", "sim-00002", "sim-00003"]


def test_raw_publisher_packets() -> None:
    pkt = rawpub.publish_packet("a/b", b"xy", 5)
    assert pkt == b"\x32\x09\x00\x03a/b\x00\x05xy"
    assert rawpub._remaining_length(321) == b"\xc1\x02"


def test_ingest_bench_tiny() -> None:
    result = ingest.run(devices=5, messages=400, workers=2, publishers=2)
    assert result["messages"] == 400 and result["lost"] == 0
    assert result["broker_msgs_per_s"] > 0 and result["hub_msgs_per_s"] > 0
    assert set(result) >= {"messages", "broker_msgs_per_s", "hub_msgs_per_s", "ratio", "lost"}


def test_fleet_ui_bench_tiny() -> None:
    result = fleet_ui.run(devices=60, requests=3, database_url=None)
    assert result["devices"] == 60
    assert 0 < result["page_p50_ms"] <= result["page_p95_ms"]
    assert 0 < result["api_p50_ms"] <= result["api_p95_ms"]


def test_scale_bench_tiny() -> None:
    result = scale.run(devices=20, minutes=0.05, workers=1, interval_s=0.5)
    assert result["lost"] == 0 and result["produced"] > 0
    assert result["hub_rss_mb"] > 0 and result["broker_rss_mb"] > 0
    assert result["points_per_s"] > 0


def test_simulated_fleet_reconnects_and_loses_nothing(tmp_path: Path) -> None:
    """The simulator's boxes ride out a broker restart like agents: their outboxes keep
    what was produced meanwhile, and everything ends up stored exactly once."""
    ids = synth.device_ids(10, "simr")
    with MosquittoProcess(data_dir=tmp_path / "mq", persistence=True,
                          extra_config=broker_config()) as broker, \
            InfluxProcess(data_dir=tmp_path / "influxd") as influx:
        influx.create_database("sim")
        hub = HubWorkers(tmp_path / "hub", broker.port, influx.url, "sim", n=1)
        enroll_bulk(hub.registry, ids)
        hub.start()
        hub.wait_subscribed()
        fleet = SimFleet(ids, SimConfig(port=broker.port, health_interval_s=0.3,
                                        detections_interval_s=0.3, ack_timeout_s=5.0),
                         tmp_path / "outboxes").start()
        try:
            wait_until(lambda: fleet.connected() == len(ids), timeout=15)
            wait_until(lambda: fleet.stats()["acked_rows"] > 40, timeout=15)
            broker.stop()
            time.sleep(1.0)  # the outage: the boxes keep producing into their outboxes
            assert fleet.stats()["outbox_rows"] > 0
            broker.restart()
            wait_until(lambda: fleet.connected() == len(ids), timeout=30,
                       message="boxes reconnected")
            time.sleep(0.5)
            fleet.pause()
            wait_until(lambda: fleet.stats()["outbox_rows"] == 0, timeout=30,
                       message="outboxes drained")
            last = fleet.last_seqs()
            stats = fleet.stats()
            assert stats["connects"] >= 2 * len(ids)
            for dev, seq in last.items():
                res = influx.query(
                    "SELECT seq FROM health, detections WHERE device = "
                    f"'{dev}'", db="sim")
                seqs = sorted(v[1] for s in res["results"][0].get("series", [])
                              for v in s["values"])
                assert seqs == list(range(1, seq + 1)), dev
        finally:
            fleet.stop()
            hub.close()
