"""A small fleet for integration tests: hub ingest and agents as real processes."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hub.influx import InfluxClient, InfluxConfig, InfluxError, quote_string, rows
from hub.registry.db import Registry, open_registry
from hub.settings import HubSettings, load_settings
from provisioning.registry_ops import SiteSpec, register_device

PY = sys.executable


@dataclass
class AgentProc:
    device_id: str
    config_path: Path
    outbox_path: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProc:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [PY, "-m", "edge_agent.cli", "run", "--config", str(self.config_path)],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(15)

    def outbox(self) -> tuple[int, int]:
        """(rows still in the outbox, last seq produced)."""
        db = sqlite3.connect(str(self.outbox_path))
        try:
            depth = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            row = db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
        finally:
            db.close()
        return depth, (row[0] - 1) if row else 0


@dataclass
class Fleet:
    root: Path
    mqtt_port: int
    influx_url: str
    influx_db: str
    agents: dict[str, AgentProc] = field(default_factory=dict)
    hub: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.hub_config = self.root / "hub.yaml"
        self.hub_config.write_text(yaml.safe_dump({
            "data_dir": str(self.root / "hub"),
            "database_url": f"sqlite:///{self.root / 'registry.sqlite'}",
            "mqtt_port": self.mqtt_port, "mqtt_client_id": f"hub-{self.root.name}",
            "influx_url": self.influx_url, "influx_db": self.influx_db,
            "influx_timeout_s": 3, "stats_interval_s": 0.5,
        }))
        self.settings: HubSettings = load_settings(self.hub_config, env={})
        self.registry: Registry = open_registry(self.settings.resolved_database_url())
        self.influx = InfluxClient(InfluxConfig(self.influx_url, self.influx_db))

    def enroll(self, device_id: str, kelurahan: str = "Kemiri Muka",
               kecamatan: str = "Beji", **agent: Any) -> AgentProc:
        register_device(self.registry, device_id,
                        SiteSpec(f"site-{device_id}", kecamatan, kelurahan), "test")
        outbox = self.root / device_id / "outbox.sqlite"
        cfg = {"device_id": device_id, "mqtt": {"port": self.mqtt_port, "keepalive_s": 5,
                                                "reconnect_max": "2s",
                                                "first_connect_spread": 0},
               "health": {"interval": "0.5s"}, "outbox": {"path": str(outbox)}}
        for key, value in agent.items():
            cfg[key] = {**cfg.get(key, {}), **value}
        path = self.root / device_id / "agent.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(cfg))
        ap = AgentProc(device_id, path, outbox, self.root / device_id / "agent.log")
        self.agents[device_id] = ap
        return ap

    def start_hub(self) -> None:
        log = open(self.root / "hub.log", "ab")  # noqa: SIM115 - handed to the child
        self.hub = subprocess.Popen(
            [PY, "-m", "hub.cli", "--config", str(self.hub_config), "ingest",
             "--worker-id", "w1"], stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def stop(self) -> None:
        for a in self.agents.values():
            a.kill()
        if self.hub and self.hub.poll() is None:
            self.hub.terminate()
            try:
                self.hub.wait(15)
            except subprocess.TimeoutExpired:
                self.hub.kill()
                self.hub.wait(10)
        self.registry.close()
        self.influx.close()

    def stored_seqs(self, device_id: str) -> list[int]:
        """Every ``seq`` of a device's health points in InfluxDB (duplicates would show)."""
        try:
            series = self.influx.query(
                f"SELECT seq FROM health WHERE device = {quote_string(device_id)}")
        except InfluxError as exc:
            if "database not found" in str(exc):
                return []
            raise
        return [int(r["seq"]) for r in rows(series)]

    def hub_log(self) -> str:
        return (self.root / "hub.log").read_text(errors="replace")[-4000:]


def publish_lines(port: int, topic: str, lines: list[str]) -> None:
    """Each line one QoS 1 message on ``topic`` (``mosquitto_pub -l``), as a device would."""
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1",
                    "-V", "mqttv5", "-t", topic, "-l"],
                   input="\n".join(lines).encode() + b"\n", check=True, timeout=60)
