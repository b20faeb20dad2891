"""A hub for configuration tests: keys, profiles, registry, and the ingest and rollout engine
as real processes; agents as real ``dcor-agent run`` processes (or many in one host)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dcor_wire import topics
from hub.localservices import wait_until
from hub.registry.db import Registry, open_registry
from hub.registry.models import Device
from hub.rollout.service import ConfigService
from hub.rollout.tables import ConfigReportRow
from hub.settings import HubSettings, load_settings
from provisioning.registry_ops import SiteSpec, register_device
from tests.config.docs import write_keys
from tests.integration.fleetkit import AgentProc

PY = sys.executable
PROFILE = """
profile: test-box
hardware: x86
mqtt:
  keepalive_s: 5
  reconnect_max: 2s
health:
  interval: 0.5s
"""
# A camera that costs little: small synthetic frames, no video ring, no snapshots.
CHEAP_CAMERA = {"type": "synthetic", "width": 160, "height": 120, "fps": 5, "blobs": 1,
                "video": {"enabled": False}, "snapshots": {"periodic_interval": 0},
                "health": {"down": "1s", "recover": "0.5s"}}


def cheap_camera(cam_id: str, **over: Any) -> dict[str, Any]:
    return {"id": cam_id, **CHEAP_CAMERA, **over}


def wait_or_kill(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait; kill after ``timeout``. Always reaped: a Popen collected while running is a
    test failure."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def reap(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Terminate (if still running), then ``wait_or_kill``."""
    if proc.poll() is None:
        proc.terminate()
    wait_or_kill(proc, timeout)


@dataclass
class ConfigHub:
    root: Path
    mqtt_port: int
    influx_url: str
    influx_db: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    agents: dict[str, AgentProc] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.key, _priv, self.pub = write_keys(self.root / "security")
        self.profiles = self.root / "profiles"
        self.profiles.mkdir()
        (self.profiles / "test-box.yaml").write_text(textwrap.dedent(PROFILE))
        self.hub_config = self.root / "hub.yaml"
        self.hub_config.write_text(yaml.safe_dump({
            "data_dir": str(self.root / "hub"),
            "database_url": f"sqlite:///{self.root / 'registry.sqlite'}",
            "mqtt_port": self.mqtt_port, "mqtt_client_id": f"hub-{self.root.name}",
            "influx_url": self.influx_url, "influx_db": self.influx_db,
            "influx_timeout_s": 3, "stats_interval_s": 0.5,
            "security_dir": str(self.root / "security"), "rollout_interval_s": 0.2,
        }))
        self.settings: HubSettings = load_settings(self.hub_config, env={})
        self.registry: Registry = open_registry(self.settings.resolved_database_url())
        self.svc = ConfigService(self.registry, self.settings, profiles_dir=self.profiles)

    # --- processes ------------------------------------------------------------------------

    def _spawn(self, name: str, *args: str) -> None:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        self.procs[name] = subprocess.Popen(
            [PY, "-m", "hub.cli", "--config", str(self.hub_config), *args],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()

    def start_ingest(self) -> None:
        self._spawn("ingest", "ingest", "--worker-id", "w1")

    def start_engine(self) -> None:
        self._spawn("engine", "rollout", "run")

    def stop(self) -> None:
        for a in self.agents.values():
            a.kill()
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():  # all told first: they stop side by side
            wait_or_kill(p, 10)
        self.registry.close()

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-3000:]

    # --- devices --------------------------------------------------------------------------

    def register(self, device_id: str, kecamatan: str = "Beji",
                 kelurahan: str = "Kemiri Muka") -> None:
        register_device(self.registry, device_id,
                        SiteSpec(f"site-{device_id}", kecamatan, kelurahan), "test-box", "x86")

    def agent_config(self, device_id: str, **extra: Any) -> dict[str, Any]:
        folder = self.root / device_id
        cfg = {"device_id": device_id, "profile": "test-box", "hardware": "x86",
               "mqtt": {"port": self.mqtt_port, "keepalive_s": 5, "reconnect_max": "2s",
                        "first_connect_spread": 0},
               "health": {"interval": "0.5s"},
               "outbox": {"path": str(folder / "outbox.sqlite"), "ack_timeout": "5s"},
               "data_dir": str(folder / "data"), "hub_public_key_file": str(self.pub)}
        cfg.update(extra)
        return cfg

    def enroll(self, device_id: str, kecamatan: str = "Beji", kelurahan: str = "Kemiri Muka",
               **extra: Any) -> AgentProc:
        self.register(device_id, kecamatan, kelurahan)
        folder = self.root / device_id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "agent.yaml"
        path.write_text(yaml.safe_dump(self.agent_config(device_id, **extra)))
        ap = AgentProc(device_id, path, folder / "outbox.sqlite", folder / "agent.log")
        self.agents[device_id] = ap
        return ap

    def state_dir(self, device_id: str) -> Path:
        return self.root / device_id / "config"

    def active_version(self, device_id: str) -> int:
        p = self.state_dir(device_id) / "active.json"
        if not p.exists():
            return 0
        return int(json.loads(p.read_text())["envelope"]["doc"]["version"])

    # --- registry views -------------------------------------------------------------------

    def report(self, device_id: str) -> ConfigReportRow | None:
        with self.registry.session() as s:
            return s.get(ConfigReportRow, device_id)

    def device(self, device_id: str) -> Device | None:
        with self.registry.session() as s:
            return s.get(Device, device_id)

    def wait_report(self, device_id: str, timeout: float = 20.0,
                    **want: Any) -> ConfigReportRow:
        def match() -> ConfigReportRow | None:
            r = self.report(device_id)
            ok = r is not None and all(getattr(r, k) == v for k, v in want.items())
            return r if ok else None

        try:
            return wait_until(match, timeout, message=f"report {want} of {device_id}")
        except TimeoutError as exc:
            got = self.report(device_id)
            seen = None if got is None else {k: getattr(got, k) for k in
                                             ("status", "version", "desired_version",
                                              "reason", "error")}
            raise AssertionError(f"{exc}; last report {seen}") from exc

    def wait_online(self, ids: list[str], timeout: float = 30.0) -> None:
        def all_online() -> bool:
            with self.registry.session() as s:
                return all((d := s.get(Device, i)) is not None and d.presence == "online"
                           and d.last_health is not None for i in ids)

        wait_until(all_online, timeout, message="devices online with health")


def desired_topic(device_id: str) -> str:
    return topics.device_topic(device_id, topics.CONFIG_DESIRED)


def publish(port: int, topic: str, body: bytes, retain: bool = True) -> None:
    """One QoS 1 message from a client of the test's own (what a hub, or an intruder with
    the hub's broker rights, could send)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        info = c.publish(topic, body, qos=1, retain=retain)
        info.wait_for_publish(5)
        assert info.is_published()
    finally:
        c.disconnect()
        c.loop_stop()
