"""The fault lab: broker, influxd, the two fault fronts, the hub and agent hosts, as real
processes on loopback, plus what the oracle needs to judge a run.

    agents (bench.agenthost, N per process) --FaultProxy--> mosquitto --> dcor-hub ingest
    dcor-hub ingest --FaultInflux--> influxd

Every scenario gets a fresh lab (its own ports, folders and database). Processes the lab did
not mean to stop are counted as crashes; RSS is sampled every second.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from bench.faultinflux import FaultInflux
from bench.faultproxy import FaultProxy
from bench.oracle import Verdict, judge, read_ledgers, reconnect_share
from hub.influx import InfluxClient, InfluxConfig, InfluxError, quote_string, rows
from hub.localservices import InfluxProcess, MosquittoProcess, wait_until
from hub.registry.db import open_registry
from hub.registry.models import Device, IngestWorkerStats
from provisioning.registry_ops import SiteSpec, register_device

PY = sys.executable
REPO_ROOT = Path(__file__).resolve().parent.parent  # `bench` is not installed: run from here
HUB_WORKER = "w1"
# The production broker settings that matter here (firmware_configs/mosquitto/dcor.conf).
BROKER_CONFIG = ["max_queued_messages 250000", "max_queued_bytes 0",
                 "max_inflight_messages 128", "log_timestamp true"]
_CONNECT_RE = re.compile(r"^(\d+): New client connected from \S+ as (\S+)")


@dataclass
class LabSpec:
    agents: int = 50
    hosts: int = 5
    rate: float = 10.0  # readings per second per agent
    keepalive_s: int = 30
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    # 0: the lab's fleet connects at once when it starts; scenarios that restart agents set
    # the agent's own default (``agent_restart_spec``), since that is what they measure.
    first_connect_spread_s: float = 0.0
    ack_timeout_s: float = 30.0
    outbox_max_bytes: int = 64 * 1024 * 1024
    alarm_every_s: float = 0.0
    broker_persistence: bool = False
    influx_timeout_s: float = 5.0
    clock_offsets_ms: dict[int, int] = field(default_factory=dict)  # agent index -> offset
    seed: int = 1


@dataclass
class Host:
    index: int
    spec_path: Path
    log_path: Path
    devices: list[str]
    proc: subprocess.Popen[bytes] | None = None


class Lab:
    def __init__(self, root: Path, spec: LabSpec) -> None:
        self.root = root
        self.spec = spec
        root.mkdir(parents=True, exist_ok=True)
        self.influxd = InfluxProcess(data_dir=root / "influxd")
        self.broker = MosquittoProcess(data_dir=root / "mosquitto",
                                       persistence=spec.broker_persistence,
                                       extra_config=BROKER_CONFIG)
        self.front: FaultInflux | None = None
        self.proxy: FaultProxy | None = None
        self.hub: subprocess.Popen[bytes] | None = None
        self._meant_to_end: set[int] = set()  # pids the lab itself stopped or killed
        self.hosts: list[Host] = []
        self.devices = [f"sim-{i:03d}" for i in range(spec.agents)]
        self.crashes: list[str] = []
        self.integrity_failures = 0
        self.integrity_checks = 0
        self.rss_max_mb: dict[str, float] = {}
        self.rss_series: dict[str, list[float]] = {}
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None
        self.db = "dcor"

    # --- bring-up ---------------------------------------------------------------------------

    def start(self) -> Lab:
        self.influxd.start()
        self.broker.start()
        self.front = FaultInflux(self.influxd.port).start()
        self.proxy = FaultProxy(self.broker.port, name="uplink", seed=self.spec.seed).start()
        self._write_hub_config()
        registry = open_registry(f"sqlite:///{self.root / 'registry.sqlite'}")
        try:
            for i, dev in enumerate(self.devices):
                register_device(registry, dev, SiteSpec(f"site-{dev}", "Beji",
                                                        f"Kel {i % 7}"), "bench")
        finally:
            registry.close()
        self.start_hub()
        per_host = -(-len(self.devices) // max(1, self.spec.hosts))
        for h in range(self.spec.hosts):
            devs = self.devices[h * per_host:(h + 1) * per_host]
            if devs:
                self.hosts.append(self._make_host(h, devs))
        for host in self.hosts:
            self.start_host(host)
        self._sampler = threading.Thread(target=self._sample, name="dcor.bench.sampler",
                                         daemon=True)
        self._sampler.start()
        if self.hosts:
            wait_until(self.fleet_connected, timeout=60, interval=0.5,
                       message="every agent connected once")
        return self

    def fleet_connected(self) -> bool:
        seen = {client for _, client in broker_connects(self.broker.log_path)}
        return seen >= set(self.devices)

    def _write_hub_config(self) -> None:
        assert self.front is not None
        self.hub_config = self.root / "hub.yaml"
        self.hub_config.write_text(yaml.safe_dump({
            "data_dir": str(self.root / "hub"),
            "database_url": f"sqlite:///{self.root / 'registry.sqlite'}",
            "mqtt_port": self.broker.port, "mqtt_client_id": "hub-bench",
            "influx_url": self.front.url, "influx_db": self.db,
            "influx_timeout_s": self.spec.influx_timeout_s, "stats_interval_s": 0.5,
        }))

    def agent_config(self, index: int, device: str) -> dict[str, Any]:
        s = self.spec
        assert self.proxy is not None
        return {
            "device_id": device, "profile": "bench",
            "mqtt": {"port": self.proxy.port, "keepalive_s": s.keepalive_s,
                     "reconnect_min": s.reconnect_min_s, "reconnect_max": s.reconnect_max_s,
                     "first_connect_spread": s.first_connect_spread_s},
            "health": {"interval": 3600, "disk_path": str(self.root)},
            "outbox": {"path": str(self.root / "agents" / device / "outbox.sqlite"),
                       "max_bytes": s.outbox_max_bytes, "ack_timeout": s.ack_timeout_s},
        }

    def _make_host(self, h: int, devices: list[str]) -> Host:
        agents = []
        for dev in devices:
            i = self.devices.index(dev)
            agents.append({"config": self.agent_config(i, dev), "rate": self.spec.rate,
                           "alarm_every_s": self.spec.alarm_every_s,
                           "clock_offset_ms": self.spec.clock_offsets_ms.get(i, 0)})
        spec_path = self.root / f"host-{h}.json"
        spec_path.write_text(json.dumps({"ledger": str(self.root / f"ledger-{h}.txt"),
                                         "stop_file": str(self.stop_file), "agents": agents}))
        return Host(h, spec_path, self.root / f"host-{h}.log", devices)

    def start_host(self, host: Host) -> None:
        with open(host.log_path, "ab") as log:
            host.proc = subprocess.Popen([PY, "-m", "bench.agenthost", str(host.spec_path)],
                                         stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)

    def start_hub(self) -> None:
        with open(self.root / "hub.log", "ab") as log:
            self.hub = subprocess.Popen(
                [PY, "-m", "hub.cli", "--config", str(self.hub_config), "--log-level",
                 "WARNING", "ingest", "--worker-id", HUB_WORKER],
                stdout=log, stderr=subprocess.STDOUT)

    # --- faults on processes ------------------------------------------------------------------

    def kill_host(self, host: Host) -> None:
        """SIGKILL an agent host, then check every outbox it held is a sound SQLite file."""
        if host.proc is None or host.proc.poll() is not None:
            return
        self._meant_to_end.add(host.proc.pid)
        host.proc.kill()
        host.proc.wait(10)
        for dev in host.devices:
            self.integrity_checks += 1
            if not outbox_integrity_ok(self.root / "agents" / dev / "outbox.sqlite"):
                self.integrity_failures += 1

    def signal_hub(self, sig: signal.Signals) -> None:
        assert self.hub is not None
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self._meant_to_end.add(self.hub.pid)
        self.hub.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.hub.wait(30)

    # --- quiescence and judgement -------------------------------------------------------------

    @property
    def stop_file(self) -> Path:
        return self.root / "stop-producing"

    def stop_producing(self) -> None:
        self.stop_file.touch()

    def outbox_depths(self) -> dict[str, int]:
        out = {}
        for dev in self.devices:
            out[dev] = outbox_figures(self.root / "agents" / dev / "outbox.sqlite")[0]
        return out

    def quiesce(self, timeout: float) -> bool:
        """Stop producing; wait until every outbox is empty (every row acked) and the hub's
        spool is replayed (every point in InfluxDB)."""
        self.stop_producing()
        spool = self.root / "hub" / "spool"

        def settled() -> bool:
            return not any(self.outbox_depths().values()) and not any(spool.rglob("*.lp"))

        try:
            wait_until(settled, timeout=timeout, interval=0.5,
                       message="outboxes and the hub's spool empty")
            return True
        except TimeoutError:
            return False

    def finish(self) -> dict[str, Any]:
        """Stop agents and hub cleanly, then judge. Call after ``quiesce``."""
        self._stop.set()
        for host in self.hosts:
            if host.proc is not None and host.proc.poll() is None:
                self._meant_to_end.add(host.proc.pid)
                host.proc.terminate()
        for host in self.hosts:
            if host.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    host.proc.wait(30)
        if self.hub is not None and self.hub.poll() is None:
            self.signal_hub(signal.SIGTERM)
        return self.judge()

    def stored_seqs(self, measurement: str, device: str) -> list[int]:
        client = InfluxClient(InfluxConfig(self.influxd.url, self.db, timeout_s=60))
        try:
            series = client.query(f"SELECT seq FROM {measurement} WHERE device = "
                                  f"{quote_string(device)}")
        except InfluxError as exc:
            if "database not found" in str(exc):
                return []
            raise
        finally:
            client.close()
        return [int(r["seq"]) for r in rows(series) if r.get("seq") is not None]

    def hub_counters(self) -> dict[str, Any]:
        registry = open_registry(f"sqlite:///{self.root / 'registry.sqlite'}")
        try:
            with registry.session() as s:
                row = s.get(IngestWorkerStats, HUB_WORKER)
                return dict(row.counters or {}) if row else {}
        finally:
            registry.close()

    def device_health(self, device: str) -> dict[str, Any]:
        registry = open_registry(f"sqlite:///{self.root / 'registry.sqlite'}")
        try:
            with registry.session() as s:
                d = s.get(Device, device)
                return dict(d.last_health or {}) if d is not None else {}
        finally:
            registry.close()

    def judge(self, refused_by_influx: dict[str, set[int]] | None = None,
              extra_measurements: tuple[str, ...] = ()) -> dict[str, Any]:
        ledgers = read_ledgers(self.root.glob("ledger-*.txt"))
        verdicts: list[Verdict] = []
        for dev in self.devices:
            stored = self.stored_seqs("health", dev)
            for m in extra_measurements:
                stored += self.stored_seqs(m, dev)
            dropped = sum(outbox_figures(self.root / "agents" / dev / "outbox.sqlite")[2]
                          .values())
            verdicts.append(judge(dev, ledgers.get(dev) or _empty(), stored, dropped,
                                  (refused_by_influx or {}).get(dev, ())))
        counters = self.hub_counters()
        fleet = set(self.devices)
        connects = [c for c in broker_connects(self.broker.log_path) if c[1] in fleet]
        reconnects, share = reconnect_share(connects, len(self.devices))
        produced = sum(v.produced for v in verdicts)
        dups = int(counters.get("duplicates", 0))
        return {
            "produced": produced,
            "lost": sum(v.lost for v in verdicts),
            "evicted": sum(v.evicted for v in verdicts),
            "duplicates": dups,
            "duplicates_ratio": round(dups / produced, 5) if produced else 0.0,
            "duplicate_points": sum(v.duplicate_points for v in verdicts),
            "drops_exact": all(v.drops_exact for v in verdicts),
            "crashes": len(self.crashes),
            "crashed": self.crashes[:5],
            "reconnects": reconnects,
            "max_reconnect_share_per_s": round(share, 3),
            "integrity_checks": self.integrity_checks,
            "integrity_failures": self.integrity_failures,
            "rss_max_mb": {k: round(v, 1) for k, v in self.rss_max_mb.items()},
            "rss_growth": self.rss_growth(),
            "hub": {k: counters.get(k) for k in (
                "received", "stored", "duplicates", "rejected", "quarantined",
                "spooled_batches", "replayed_batches", "influx_refused_lines",
                "mqtt_reconnects") if counters.get(k) is not None},
            "verdicts": verdicts,
        }

    def rss_growth(self) -> dict[str, float]:
        """Last-quarter median RSS over second-quarter median: ~1 when memory is bounded."""
        out = {}
        for role, series in self.rss_series.items():
            n = len(series)
            if n < 8:
                continue
            q2 = sorted(series[n // 4:n // 2])[len(series[n // 4:n // 2]) // 2]
            q4 = sorted(series[3 * n // 4:])[len(series[3 * n // 4:]) // 2]
            out[role] = round(q4 / q2, 2) if q2 else 0.0
        return out

    # --- sampling -------------------------------------------------------------------------

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            procs: dict[str, list[int]] = {"hub": [], "agent_host": [], "broker": []}
            watched = [("hub", self.hub)] + [(f"host {h.index}", h.proc) for h in self.hosts]
            for name, proc in watched:
                if proc is None:
                    continue
                if proc.poll() is None:
                    procs["hub" if name == "hub" else "agent_host"].append(proc.pid)
                elif proc.pid not in self._meant_to_end:
                    self.crashes.append(f"{name} exit {proc.returncode}")
                    self._meant_to_end.add(proc.pid)
            if self.broker.pid is not None and self.broker.is_running():
                procs["broker"].append(self.broker.pid)
            for role, pids in procs.items():
                for pid in pids:
                    with contextlib.suppress(psutil.Error):
                        mb = psutil.Process(pid).memory_info().rss / 1e6
                        self.rss_max_mb[role] = max(self.rss_max_mb.get(role, 0.0), mb)
                        if role != "agent_host" or pid == procs["agent_host"][0]:
                            self.rss_series.setdefault(role, []).append(mb)

    # --- teardown -------------------------------------------------------------------------

    def close(self) -> None:
        self._stop.set()
        for host in self.hosts:
            if host.proc is not None and host.proc.poll() is None:
                host.proc.kill()
                host.proc.wait(10)
        if self.hub is not None and self.hub.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.hub.pid, signal.SIGCONT)
            self.hub.kill()
            self.hub.wait(10)
        for part in (self.proxy, self.front):
            if part is not None:
                part.stop()
        self.broker.close()
        self.influxd.close()


def _empty() -> Any:
    from bench.oracle import DeviceLedger

    return DeviceLedger()


def outbox_figures(path: Path) -> tuple[int, int, dict[str, int]]:
    """(rows, last seq, dropped by class) of an outbox file; zeros when it does not exist."""
    if not path.exists():
        return 0, 0, {}
    db = sqlite3.connect(str(path), timeout=10)
    try:
        depth = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.OperationalError:
        return 0, 0, {}
    finally:
        db.close()
    dropped = {k[len("dropped_"):]: int(v) for k, v in meta.items() if k.startswith("dropped_")}
    return int(depth), int(meta.get("next_seq", 1)) - 1, dropped


def outbox_integrity_ok(path: Path) -> bool:
    if not path.exists():
        return True
    db = sqlite3.connect(str(path), timeout=10)
    try:
        return bool(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")
    finally:
        db.close()


def broker_connects(log_path: Path) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return out
    for ln in text.splitlines():
        m = _CONNECT_RE.match(ln)
        if m:
            out.append((float(m.group(1)), m.group(2)))
    return out
