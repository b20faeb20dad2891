"""Alert delay at fleet scale: from a condition becoming true in the registry to the firing
alert reaching the room over server-sent events, minus the rule's for-duration.

Setup: Mosquitto and influxd on free loopback ports, a SQLite registry with ``--devices``
simulated devices written directly (63 kelurahan), a writer thread standing in for the ingest
(every device's health refreshed every 10 s, in batches each second), and the real
``dcor-hub alerts`` and ``dcor-hub web`` processes. An SSE client follows
``/api/v1/alerts/stream``. Every ~1.5 s one healthy device's stored health turns hot (the
condition of ``box-hot``, for-duration ``--for-s``); the delay of that trial is the SSE
arrival time minus the commit time minus the for-duration.

    python -m bench.alerts [--devices 2000] [--trials 40]

Prints one JSON line: devices, p50_s, p95_s (and trials, max_s, the evaluator's tick time).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import update

from bench.common import emit, machine, note, percentile
from hub.alerts import tables  # noqa: F401 - the alert tables exist before create_schema
from hub.alerts.rules import default_rules_text
from hub.localservices import InfluxProcess, MosquittoProcess, free_port, wait_until
from hub.registry.db import Registry, open_registry
from hub.registry.models import Device, Site

HEALTH_INTERVAL_S = 10.0
HEALTHY = {"uptime_s": 1000.0, "cpu_pct": 20.0, "mem_pct": 40.0, "disk_pct": 30.0,
           "temp_c": 52.0, "outbox_oldest_s": 0.0, "clock_synced": True,
           "throttled_now": False, "undervoltage_now": False,
           "cameras": {"cam1": {"state": "streaming", "fps": 5.0}}}


def bench_rules(for_s: float) -> str:
    data: dict[str, Any] = yaml.safe_load(default_rules_text())
    for rule in data["rules"]:
        if rule["id"] == "box-hot":
            rule.update({"for": f"{for_s:g}s", "clear": "5s"})
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def populate(registry: Registry, devices: int) -> list[str]:
    now = datetime.now(UTC)
    ids = [f"sim-{i:05d}" for i in range(devices)]
    with registry.session() as s:
        for k in range(63):
            s.add(Site(id=f"site-{k}", kecamatan=f"Kecamatan {k % 11}",
                       kelurahan=f"Kelurahan {k}"))
        for i, dev in enumerate(ids):
            s.add(Device(id=dev, site_id=f"site-{i % 63}", created_at=now, presence="online",
                         presence_at=now, last_health_at=now, last_health=HEALTHY,
                         health_interval_s=HEALTH_INTERVAL_S))
    return ids


class IngestStandIn:
    """Refreshes every device's health each HEALTH_INTERVAL_S, a slice per second, as the
    ingest's batched registry updates do; ``make_hot`` turns one device's health hot."""

    def __init__(self, registry: Registry, ids: list[str]) -> None:
        self.registry = registry
        self.ids = ids
        self.hot: set[str] = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bench.ingest", daemon=True)

    def _run(self) -> None:
        per_tick = max(1, int(len(self.ids) / HEALTH_INTERVAL_S))
        start = 0
        while not self.stop.wait(1.0):
            chunk = self.ids[start:start + per_tick]
            start = (start + per_tick) % len(self.ids)
            with self.lock:
                chunk = [d for d in chunk if d not in self.hot]
            with self.registry.session() as s:
                s.execute(update(Device).where(Device.id.in_(chunk))
                          .values(last_health_at=datetime.now(UTC)))

    def make_hot(self, device: str) -> float:
        """Store a hot health reading; returns the wall time of the commit."""
        with self.lock:
            self.hot.add(device)
        with self.registry.session() as s:
            s.execute(update(Device).where(Device.id == device).values(
                last_health={**HEALTHY, "temp_c": 88.0}, last_health_at=datetime.now(UTC)))
        return time.time()


class SseReader:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.conn.request("GET", "/api/v1/alerts/stream?desk=kominfo")
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise RuntimeError(f"stream answered {self.resp.status}")
        self.arrivals: dict[str, float] = {}  # device -> arrival of its firing box-hot
        self.cond = threading.Condition()
        threading.Thread(target=self._read, name="bench.sse", daemon=True).start()

    def _read(self) -> None:
        try:
            for raw in self.resp:
                line = raw.decode()
                if not line.startswith("data: "):
                    continue
                at = time.time()
                event = json.loads(line[6:])
                if event["kind"] == "firing" and event["rule"] == "box-hot":
                    with self.cond:
                        self.arrivals.setdefault(event["subject"]["device"], at)
                        self.cond.notify_all()
        except (OSError, ValueError):
            pass


def spawn(name: str, argv: list[str], root: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCOR_")}
    with open(root / f"{name}.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "hub.cli", *argv], stdout=log,
                                stderr=subprocess.STDOUT, env=env)


def web_ready(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False


def run(devices: int, trials: int, for_s: float, interval_s: float, root: Path) -> dict[str, Any]:
    with MosquittoProcess(data_dir=root / "mosquitto") as broker, \
            InfluxProcess(data_dir=root / "influxd") as influx:
        rules = root / "rules.yaml"
        rules.write_text(bench_rules(for_s))
        web_port = free_port()
        config = root / "hub.yaml"
        config.write_text(yaml.safe_dump({
            "data_dir": str(root / "hub"), "database_url": f"sqlite:///{root / 'reg.sqlite'}",
            "mqtt_port": broker.port, "influx_url": influx.url, "influx_db": "dcor",
            "alert_rules_path": str(rules), "alert_interval_s": interval_s,
            "web_port": web_port, "web_anonymous_viewer": True, "web_cookie_secure": False}))
        registry = open_registry(f"sqlite:///{root / 'reg.sqlite'}")
        ids = populate(registry, devices)
        note(f"{devices} devices in the registry")
        ingest = IngestStandIn(registry, ids)
        ingest.thread.start()
        procs = [spawn("alerts", ["--config", str(config), "alerts", "--worker-id", "bench"],
                       root),
                 spawn("web", ["--config", str(config), "web"], root)]
        try:
            wait_until(lambda: web_ready(web_port), timeout=60, message="web answers")
            time.sleep(3 * interval_s)  # the evaluator's first ticks (and their cost) pass
            sse = SseReader(web_port)
            note(f"running {trials} trials, one every ~1.5 s")
            made: dict[str, float] = {}
            candidates = random.Random(7).sample(ids, trials)
            for device in candidates:
                made[device] = ingest.make_hot(device)
                time.sleep(random.uniform(1.0, 2.0))
            with sse.cond:
                sse.cond.wait_for(lambda: len(sse.arrivals) >= trials,
                                  timeout=for_s + 30 * interval_s + 30)
            delays = [sse.arrivals[d] - made[d] - for_s for d in made if d in sse.arrivals]
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
            ingest.stop.set()
            ingest.thread.join(5)
            registry.close()
        ticks = _tick_stats(root / "alerts.log")  # written when the evaluator stops
    return {"devices": devices, "p50_s": percentile(delays, 50), "p95_s": percentile(delays, 95),
            "max_s": max(delays, default=0.0), "trials": trials, "received": len(delays),
            "for_s": for_s, "interval_s": interval_s, **ticks, **machine()}


def _tick_stats(log: Path) -> dict[str, Any]:
    """The evaluator logs its mean and max tick time when it stops."""
    import re

    found = re.findall(r"ticks \(mean ([\d.]+) s, max ([\d.]+) s\)", log.read_text())
    if not found:
        return {}
    mean, most = found[-1]
    return {"tick_mean_s": float(mean), "tick_max_s": float(most)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.alerts", description=__doc__)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--for-s", type=float, default=5.0)
    parser.add_argument("--interval-s", type=float, default=1.0, help="alert_interval_s")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp:
        emit(run(args.devices, args.trials, args.for_s, args.interval_s, Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
