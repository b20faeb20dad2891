"""Bench plumbing around the real hub: services, a registry full of devices, ingest workers.

Everything runs as it would in the room: ``mosquitto`` and ``influxd`` from
``hub.localservices`` on free loopback ports, ``dcor-hub ingest`` as separate processes
(``python -m hub.cli``), a SQLite (or any SQLAlchemy URL) registry.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from bench import synth
from hub.localservices import wait_until
from hub.registry.db import Registry, open_registry
from hub.registry.models import Device, IngestWorkerStats, Site


def broker_config(queue: int = 250_000) -> list[str]:
    """The queue and in-flight settings of ``firmware_configs/mosquitto/dcor.conf``.

    A consumer slower than the stream has the rest queued for it; Mosquitto silently drops
    what is over ``max_queued_messages``, so a run of more messages needs a deeper queue.
    """
    return [f"max_queued_messages {max(queue, 250_000)}", "max_queued_bytes 0",
            "queue_qos0_messages false", "set_tcp_nodelay true"]


def enroll_bulk(registry: Registry, ids: list[str], hardware: str = "rpi4") -> None:
    """Sites and devices for ``ids`` in one transaction (register_device is one per call)."""
    now = datetime.now(UTC)
    with registry.session() as s:
        have = set(s.scalars(select(Device.id)).all())
        for i, dev in enumerate(ids):
            if dev in have:
                continue
            kec, kel = synth.site_of(i)
            s.add(Site(id=f"site-{dev}", name=f"Tiang {dev}", kecamatan=kec, kelurahan=kel))
            s.add(Device(id=dev, site_id=f"site-{dev}", hardware=hardware,
                         profile="rpi4-cctv", status="enrolled", created_at=now))


@dataclass
class HubWorkers:
    """``n`` ``dcor-hub ingest`` processes sharing one subscription (when n > 1)."""

    root: Path
    mqtt_port: int
    influx_url: str
    influx_db: str
    n: int = 1
    database_url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.config = self.root / "hub.yaml"
        self.database_url = self.database_url or f"sqlite:///{self.root / 'registry.sqlite'}"
        settings = {
            "data_dir": str(self.root / "hub"), "database_url": self.database_url,
            "mqtt_port": self.mqtt_port, "mqtt_client_id": "bench-hub",
            "mqtt_share_group": "dcor-hub" if self.n > 1 else "",
            "influx_url": self.influx_url, "influx_db": self.influx_db,
            "stats_interval_s": 0.2, **self.extra,
        }
        self.config.write_text(yaml.safe_dump(settings))
        self.registry = open_registry(self.database_url)

    def start(self) -> None:
        for i in range(1, self.n + 1):
            log = open(self.root / f"ingest-w{i}.log", "ab")  # noqa: SIM115 - child owns it
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "hub.cli", "--config", str(self.config), "--log-level",
                 "WARNING", "ingest", "--worker-id", f"w{i}"],
                stdout=log, stderr=subprocess.STDOUT))
            log.close()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self, timeout: float = 20.0) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()

    def close(self) -> None:
        self.stop()
        self.registry.close()

    def counters(self) -> dict[str, dict[str, Any]]:
        """Each worker's latest counters, as it saved them (every ``stats_interval_s``)."""
        with self.registry.session() as s:
            return {w.worker_id: dict(w.counters or {})
                    for w in s.scalars(select(IngestWorkerStats)).all()}

    def total(self, name: str) -> int:
        return sum(int(c.get(name, 0)) for c in self.counters().values())

    def wait_subscribed(self, timeout: float = 30.0) -> None:
        """Every worker connected (subscriptions are sent in the same callback)."""
        def ready() -> bool:
            found = self.counters()
            return len(found) >= self.n and all(
                c.get("mqtt_connected") for c in found.values())
        wait_until(ready, timeout=timeout, interval=0.1, message="ingest workers connected")
        time.sleep(0.5)  # the SUBACKs follow the CONNACK within a round trip

    def reset_stats(self) -> None:
        with self.registry.session() as s:
            for row in s.scalars(select(IngestWorkerStats)).all():
                s.delete(row)

    def log_tail(self) -> str:
        out = []
        for f in sorted(self.root.glob("ingest-w*.log")):
            out.append(f"== {f.name}\n" + f.read_text(errors="replace")[-2000:])
        return "\n".join(out)
