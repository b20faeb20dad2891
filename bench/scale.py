"""One hub box under a city's fleet: N simulated devices at their default rates.

    python -m bench.scale [--devices 2000] [--minutes 5] [--workers 1]

Real Mosquitto (the queue settings of firmware_configs/mosquitto/dcor.conf), real influxd,
``dcor-hub ingest`` processes, and the simulated fleet (``bench.fleet``: real outboxes and
payloads; health every 10 s, detections every 10 s per camera) in this process. After the
devices connect and one reporting interval has passed, the hub's processes are sampled for
``--minutes``; then production stops, every outbox must drain through the hub's acks, and
InfluxDB must hold one point per message produced. One JSON line: ``devices``, ``minutes``,
``hub_cpu_pct`` (percent of one core, all workers), ``hub_rss_mb``, ``broker_rss_mb``,
``influxd_cpu_pct``, ``points_per_s`` (lines written to InfluxDB per second), ``lost``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import synth
from bench.common import ProcSampler, emit, machine, note
from bench.fleet import SimFleet
from bench.hubkit import HubWorkers, broker_config, enroll_bulk
from bench.simdevice import SimConfig
from hub.localservices import InfluxProcess, MosquittoProcess, wait_until


def count_messages(influx: InfluxProcess, db: str) -> int:
    """Health and detections points: one per message (duplicates land on the same point)."""
    total = 0
    for m in ("health", "detections"):
        res = influx.query(f'SELECT count("seq") FROM "{m}"', db=db, timeout=120)
        for series in res["results"][0].get("series", []):
            total += int(series["values"][0][1])
    return total


def run(devices: int, minutes: float, workers: int, interval_s: float) -> dict[str, Any]:
    ids = synth.device_ids(devices)
    with tempfile.TemporaryDirectory(prefix="dcor-bench-scale-") as tmp, \
            MosquittoProcess(data_dir=Path(tmp) / "mosquitto",
                             extra_config=broker_config()) as broker, \
            InfluxProcess(data_dir=Path(tmp) / "influxd") as influx:
        influx.create_database("scale")
        hub = HubWorkers(Path(tmp) / "hub", broker.port, influx.url, "scale", n=workers,
                         extra={"stats_interval_s": 1.0})
        enroll_bulk(hub.registry, ids)
        hub.start()
        hub.wait_subscribed()
        cfg = SimConfig(port=broker.port, health_interval_s=interval_s,
                        detections_interval_s=interval_s)
        fleet = SimFleet(ids, cfg, Path(tmp) / "outboxes").start()
        try:
            wait_until(lambda: fleet.connected() == devices, timeout=120, interval=0.5,
                       message=f"{devices} simulated devices connected")
            note(f"{devices} devices connected; warming up for one interval")
            time.sleep(interval_s)
            written0 = hub.total("points_written")
            hub_s = ProcSampler(hub.pids, interval_s=2.0).start()
            broker_s = ProcSampler([broker.pid or 0], interval_s=2.0).start()
            influx_s = ProcSampler([influx.pid or 0], interval_s=2.0).start()
            t0 = time.monotonic()
            time.sleep(minutes * 60)
            elapsed = time.monotonic() - t0
            hub_u, broker_u, influx_u = hub_s.stop(), broker_s.stop(), influx_s.stop()
            written = hub.total("points_written") - written0
            note(f"measured {elapsed:.0f}s; draining the outboxes")
            fleet.pause()
            wait_until(lambda: fleet.stats()["outbox_rows"] == 0, timeout=120, interval=1.0,
                       message="outboxes drained")
            stats = fleet.stats()
            stored = count_messages(influx, "scale")
        finally:
            fleet.stop()
            hub.close()
    return {
        "bench": "scale", "devices": devices, "minutes": round(elapsed / 60, 2),
        "workers": workers, "hub_cpu_pct": hub_u.cpu_pct, "hub_rss_mb": hub_u.rss_mb_max,
        "broker_cpu_pct": broker_u.cpu_pct, "broker_rss_mb": broker_u.rss_mb_max,
        "influxd_cpu_pct": influx_u.cpu_pct, "influxd_rss_mb": influx_u.rss_mb_max,
        "offered_msgs_per_s": round(devices * (1 + cfg.cameras) / interval_s, 1),
        "points_per_s": round(written / elapsed, 1), "produced": stats["produced"],
        "resent": stats["resent"], "outbox_dropped": stats["dropped"],
        "lost": stats["produced"] - stored, **machine(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=2000)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--workers", type=int, default=1, help="dcor-hub ingest processes")
    p.add_argument("--interval", type=float, default=10.0,
                   help="health and detections period of each device, seconds")
    a = p.parse_args(argv)
    emit(run(a.devices, a.minutes, a.workers, a.interval))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
