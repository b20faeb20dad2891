"""The demo's simulated fleet: a city's worth of boxes beside the few real agents.

``dcor-sim`` (``bench.fleet``) runs them all in one separate process (one thread, epoll), so
the hub's own processes stay as light as with real boxes. Each simulated box has the real
agent outbox and speaks the exact wire contract; it sends health and detections but no
video, and checks and reports pushed configurations (signature, device, version) without
applying their settings, so a rollout over them completes. They are enrolled here like the
real ones (a site with kecamatan, kelurahan and coordinates, a device record), in one
transaction, as ``sim-00001``..., hardware class ``sim`` (a rollout can leave them out by
hardware). They connect to the demo's broker the way the demo's agents do: anonymously, on
loopback.
"""

from __future__ import annotations

from pathlib import Path

from bench.synth import device_ids
from hub.demo.layout import sim_layout
from hub.demo.procs import Child, command, spawn
from hub.settings import load_settings
from provisioning.enroll import open_hub_registry
from provisioning.hubinit import SIGNING_PUB
from provisioning.registry_ops import DeviceSpec, SiteSpec, register_devices

DEFAULT_SIM_DEVICES = 300
MAX_SIM_DEVICES = 5000
SIM_PREFIX = "sim"
SIM_HARDWARE = "sim"
# Real profiles report every 10 s; the demo's few real agents every 2 s for a lively page.
SIM_INTERVAL_S = 10.0
# Connections per second: a few hundred boxes are online within the demo's start-up.
SIM_CONNECT_RATE = 500.0


def sim_ids(count: int) -> list[str]:
    """The ids ``dcor-sim --devices count --prefix sim`` gives its boxes."""
    return device_ids(count, SIM_PREFIX)


def enroll_sim_fleet(hub_config: Path, count: int) -> list[str]:
    """Register ``count`` simulated boxes spread over Depok's kelurahan; return their ids."""
    if count <= 0:
        return []
    specs = [DeviceSpec(device_id, SiteSpec(id=site.id, kecamatan=site.kecamatan,
                                            kelurahan=site.kelurahan, name=site.name,
                                            lat=site.lat, lon=site.lon),
                        site.profile, SIM_HARDWARE)
             for device_id, site in sim_layout(sim_ids(count))]
    registry = open_hub_registry(load_settings(hub_config, env={}))
    try:
        register_devices(registry, specs)
    finally:
        registry.close()
    return [spec.device_id for spec in specs]


def sim_argv(count: int, broker_port: int, outbox_dir: Path,
             hub_key: Path | None = None) -> list[str]:
    key = ["--hub-key", str(hub_key)] if hub_key is not None else []
    return [*command("dcor-sim", "bench.fleet"), *key, "--devices", str(count),
            "--prefix", SIM_PREFIX, "--host", "127.0.0.1", "--port", str(broker_port),
            "--health-interval", str(SIM_INTERVAL_S),
            "--detections-interval", str(SIM_INTERVAL_S),
            "--connect-rate", str(SIM_CONNECT_RATE), "--outbox-dir", str(outbox_dir)]


def start_sim(count: int, broker_port: int, root: Path, logs: Path,
              children: list[Child], hub_config: Path) -> None:
    """``dcor-sim`` as one more child; its boxes' outboxes live in ``<data>/sim/``. They
    check pushed configurations with the hub's signing key, as enrolled boxes do."""
    if count <= 0:
        return
    outbox_dir = root / "sim"
    outbox_dir.mkdir(parents=True, exist_ok=True)
    key = load_settings(hub_config, env={}).resolved_security_dir() / SIGNING_PUB
    children.append(spawn("sim", sim_argv(count, broker_port, outbox_dir,
                                          key if key.is_file() else None), logs / "sim.log"))
