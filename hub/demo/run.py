"""The demo's stages, composed by ``run_demo`` (see ``hub.demo`` for the folder layout).

Signals only set a stop event; the stages check it between steps and while polling, so a
Ctrl-C never lands between starting a process and recording it (which would leave it
running, unseen by the clean-up).
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from hub.demo.alertrules import write_demo_rules
from hub.demo.cameras import camera_overrides
from hub.demo.layout import fleet_layout
from hub.demo.procs import (
    Child,
    Interrupted,
    Progress,
    answers,
    command,
    get_list,
    log_size,
    pick_web_port,
    read_from,
    spawn,
    wait_for,
)
from hub.demo.simfleet import (
    DEFAULT_SIM_DEVICES,
    MAX_SIM_DEVICES,
    enroll_sim_fleet,
    start_sim,
)
from hub.localservices import InfluxProcess, MosquittoProcess
from hub.settings import load_settings
from provisioning.enroll import AGENT_CONFIG_NAME, EnrollRequest, enroll, open_hub_registry
from provisioning.registry_ops import SiteSpec

HEALTH_INTERVAL = "2s"  # a lively fleet page; real profiles report every 10-30 s
ONLINE_TIMEOUT_S = 45.0
MAX_AGENTS = 100
# Mosquitto settings of firmware_configs/mosquitto/dcor.conf that matter on one machine.
BROKER_SETTINGS = ("max_queued_messages 100000", "max_inflight_messages 128")
# Ctrl-C, a supervisor's or test's SIGTERM, and the terminal closing.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def checkpoint(stop: threading.Event) -> None:
    if stop.is_set():
        raise Interrupted


# --- the stages -----------------------------------------------------------------------------

def start_services(root: Path, stack: contextlib.ExitStack, progress: Progress,
                   stop: threading.Event) -> tuple[MosquittoProcess, InfluxProcess]:
    """Mosquitto, then InfluxDB; each start waits (bounded) for readiness."""
    progress.show("starting Mosquitto")
    broker = MosquittoProcess(data_dir=root / "mosquitto", persistence=True,
                              extra_config=BROKER_SETTINGS)
    stack.callback(broker.close)
    broker.start()
    checkpoint(stop)
    progress.show("starting InfluxDB")
    influx = InfluxProcess(data_dir=root / "influxd")
    stack.callback(influx.close)
    influx.start()
    return broker, influx


def write_hub_settings(root: Path, broker: MosquittoProcess, influx: InfluxProcess,
                       web_port: int) -> Path:
    path = root / "hub" / "hub.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({
        "data_dir": str(root / "hub"), "mqtt_host": "127.0.0.1", "mqtt_port": broker.port,
        "influx_url": influx.url, "influx_db": "dcor", "web_host": "127.0.0.1",
        "web_port": web_port, "stats_interval_s": 1.0,
        "alert_rules_path": str(write_demo_rules(root / "hub" / "alert_rules.yaml")),
        # The wall screen on loopback needs no login; plain HTTP, so no Secure cookies.
        "web_anonymous_viewer": True, "web_cookie_secure": False,
    }, sort_keys=False))
    return path


def create_demo_admin(hub_config: Path) -> Path:
    """An ``admin`` user with a random password, written to a 0600 file beside hub.yaml."""
    import secrets

    from hub.security.store import SecurityStore
    from provisioning.pki import write_file

    password = secrets.token_urlsafe(12)
    registry = open_hub_registry(load_settings(hub_config, env={}))
    try:
        store = SecurityStore(registry)
        if not any(u.username == "admin" for u in store.list_users()):
            store.create_user("admin", password, "admin", display_name="Demo admin")
            write_file(hub_config.parent / "admin-password", (password + "\n").encode(), 0o600)
    finally:
        registry.close()
    return hub_config.parent / "admin-password"


def ensure_signing_key(hub_config: Path) -> Path:
    """The hub's configuration-signing key pair (as ``dcor-provision init-hub`` writes it,
    without the broker's certificates the demo's loopback broker does not use); returns the
    public half, which the demo's boxes check pushed configurations with."""
    from provisioning.hubinit import SIGNING_KEY, SIGNING_PUB, write_signing_key

    folder = load_settings(hub_config, env={}).resolved_security_dir()
    if not (folder / SIGNING_KEY).is_file():
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        return write_signing_key(folder)
    return folder / SIGNING_PUB


def enroll_fleet(hub_config: Path, root: Path, broker_port: int, count: int) -> list[Path]:
    """Enroll ``count`` devices as ``dcor-provision enroll`` does; return their bundles."""
    hub_key = ensure_signing_key(hub_config)
    registry = open_hub_registry(load_settings(hub_config, env={}))
    bundles = []
    try:
        for index, (device_id, site) in enumerate(fleet_layout(count)):
            bundle = root / "devices" / device_id
            data = bundle / "data"
            data.mkdir(parents=True, exist_ok=True)
            req = EnrollRequest(
                device_id=device_id, profile=site.profile, broker_host="127.0.0.1",
                broker_port=broker_port, agent_data_dir=data,
                site=SiteSpec(id=site.id, kecamatan=site.kecamatan, kelurahan=site.kelurahan,
                              name=site.name, lat=site.lat, lon=site.lon),
                # A demo box connects at once: no boot spread (mqtt.first_connect_spread).
                overrides={"mqtt": {"first_connect_spread": 0},
                           "hub_public_key_file": str(hub_key),
                           "health": {"interval": HEALTH_INTERVAL, "disk_path": str(data)},
                           **camera_overrides(index)},
            )
            enroll(registry, req, bundle, force=True)
            bundles.append(bundle)
    finally:
        registry.close()
    return bundles


def start_web(hub_cmd: list[str], logs: Path, preferred: int, children: list[Child],
              stop: threading.Event) -> int:
    """Start ``dcor-hub web``; if another program takes the port first, try the next one."""
    port = pick_web_port(preferred)
    log = logs / "web.log"
    for _attempt in range(3):
        offset = log_size(log)
        web = spawn("web", [*hub_cmd, "web", "--port", str(port)], log)
        children.append(web)
        try:
            if wait_for(functools.partial(answers, port, "/healthz"), 30.0, [web], stop):
                return port
            raise RuntimeError(f"web did not answer on port {port}; see {log}")
        except RuntimeError:
            web.stop()
            children.remove(web)
            if "in use" not in read_from(log, offset):
                raise
            port = pick_web_port(port + 1)
    raise RuntimeError(f"no free port for the web app near {preferred}")


def start_hub(hub_config: Path, logs: Path, web_port: int, children: list[Child],
              progress: Progress, stop: threading.Event) -> int:
    """Ingest, alerts, the rollout engine, then web; return the web port."""
    hub_cmd = [*command("dcor-hub", "hub.cli"), "--config", str(hub_config)]
    progress.show("starting hub ingest")
    children.append(spawn("ingest", [*hub_cmd, "ingest", "--worker-id", "demo-ingest"],
                          logs / "ingest.log"))
    progress.show("starting hub alerts")
    children.append(spawn("alerts", [*hub_cmd, "alerts", "--worker-id", "demo-alerts"],
                          logs / "alerts.log"))
    # Signs and publishes what the configuration page (or `dcor-hub rollout start`) asks.
    progress.show("starting hub rollout engine")
    children.append(spawn("rollout", [*hub_cmd, "rollout", "run"], logs / "rollout.log"))
    progress.show("starting hub web")
    return start_web(hub_cmd, logs, web_port, children, stop)


def start_agents(bundles: list[Path], logs: Path, children: list[Child]) -> None:
    agent_cmd = command("dcor-agent", "edge_agent.cli")
    for bundle in bundles:
        children.append(spawn(f"agent {bundle.name}",
                              [*agent_cmd, "run", "--config", str(bundle / AGENT_CONFIG_NAME)],
                              logs / f"agent-{bundle.name}.log"))


def online_ids(web_port: int) -> set[str]:
    # Every page: a city-sized simulated fleet does not fit in one answer.
    devices = get_list(web_port, "/api/v1/devices?state=online&limit=1000")
    return {str(d.get("id")) for d in devices if d.get("state") == "online"}


def wait_online(web_port: int, agent_ids: set[str], sim_ids: set[str], children: list[Child],
                progress: Progress, stop: threading.Event) -> tuple[int, int]:
    """Poll the fleet API until every agent and simulated box is online (or the timeout);
    return how many of each are."""
    counts = (0, 0)

    def all_online() -> bool:
        nonlocal counts
        online = online_ids(web_port)
        counts = (len(agent_ids & online), len(sim_ids & online))
        sims = f", simulated {counts[1]}/{len(sim_ids)}" if sim_ids else ""
        progress.show(f"agents online {counts[0]}/{len(agent_ids)}{sims}")
        return counts == (len(agent_ids), len(sim_ids))

    # Listing a few hundred devices costs the web process a tenth of a second or more: asked
    # five times a second, it would take the CPU the starting agents need.
    wait_for(all_online, ONLINE_TIMEOUT_S, children, stop,
             interval=0.5 if len(sim_ids) > 50 else 0.2)
    progress.done()
    return counts


@contextlib.contextmanager
def demo_root(data_dir: str | None) -> Iterator[Path]:
    """The given folder (kept), or a temporary one removed at the end."""
    if data_dir is not None:
        root = Path(data_dir).resolve()
        root.mkdir(parents=True, exist_ok=True)
        yield root
        return
    root = Path(tempfile.mkdtemp(prefix="dcor-demo-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_demo(agents: int = 6, web_port: int = 8080, data_dir: str | None = None,
             sim_devices: int = DEFAULT_SIM_DEVICES) -> int:
    """Run the whole system locally until Ctrl-C / SIGTERM; 0 on a clean stop, 1 when a part
    fails to start or the hub dies, 2 for bad arguments. ``sim_devices`` simulated boxes
    (``hub.demo.simfleet``) run beside the ``agents`` real ones."""
    if not 1 <= agents <= MAX_AGENTS:
        print(f"dcor-hub demo: --agents must be 1..{MAX_AGENTS}", file=sys.stderr)
        return 2
    if not 0 <= sim_devices <= MAX_SIM_DEVICES:
        print(f"dcor-hub demo: --sim-devices must be 0..{MAX_SIM_DEVICES}", file=sys.stderr)
        return 2
    started = time.monotonic()
    progress = Progress()
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in STOP_SIGNALS}
    children: list[Child] = []
    try:
        with demo_root(data_dir) as root, contextlib.ExitStack() as stack:
            logs = root / "logs"
            logs.mkdir(exist_ok=True)
            broker, influx = start_services(root, stack, progress, stop)
            checkpoint(stop)
            sims_text = f" and {sim_devices} simulated boxes" if sim_devices else ""
            progress.show(f"enrolling {agents} devices{sims_text} in Depok")
            hub_config = write_hub_settings(root, broker, influx, web_port)
            bundles = enroll_fleet(hub_config, root, broker.port, agents)
            sim_ids = set(enroll_sim_fleet(hub_config, sim_devices))
            admin_password = create_demo_admin(hub_config)
            # Unwinds first (registered last): children stop before InfluxDB and the broker.
            stack.callback(stop_children, children, progress)
            port = start_hub(hub_config, logs, web_port, children, progress, stop)
            start_agents(bundles, logs, children)
            # After the hub: its boxes connect once the ingest has subscribed, and opening
            # hundreds of outboxes would slow the web process's start-up.
            start_sim(sim_devices, broker.port, root, logs, children, hub_config)
            online, sims_online = wait_online(port, {b.name for b in bundles}, sim_ids,
                                              children, progress, stop)
            if online < len(bundles):
                print(f"[demo] not every agent is online yet; see {logs}/agent-*.log",
                      file=sys.stderr)
            if sims_online < len(sim_ids):
                print(f"[demo] not every simulated box is online yet; see {logs}/sim.log",
                      file=sys.stderr)
            sims = (f", {sims_online}/{len(sim_ids)} simulated boxes online (dcor-sim)"
                    if sim_ids else "")
            print(f"dcor-fleet demo ready in {time.monotonic() - started:.1f} s: fleet page "
                  f"http://127.0.0.1:{port}/ ({online}/{len(bundles)} agents online{sims}; "
                  f"data and logs in {root}; Ctrl-C stops)", flush=True)
            print(f"[demo] log in at http://127.0.0.1:{port}/login as admin, password in "
                  f"{admin_password}", flush=True)
            print(f"[demo] alert console http://127.0.0.1:{port}/alerts; rules in "
                  f"{root / 'hub' / 'alert_rules.yaml'} (reloaded when saved)", flush=True)
            return supervise(children, stop)
    except Interrupted:
        return 0
    except Exception as exc:  # a start failure: everything is stopped by now; say why
        progress.done()
        print(f"dcor-hub demo: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def supervise(children: list[Child], stop: threading.Event) -> int:
    """Wait for the stop event (0); return 1 early if a hub process (ingest, alerts, web)
    dies."""
    warned: set[str] = set()
    while not stop.wait(0.5):
        for child in children:
            if child.alive() or child.name in warned:
                continue
            print(f"[demo] {child.name} exited (code {child.proc.returncode}); see "
                  f"{child.log_path}", file=sys.stderr, flush=True)
            if child.name in ("ingest", "alerts", "web"):
                return 1
            warned.add(child.name)
    return 0


def stop_children(children: list[Child], progress: Progress) -> None:
    """Reverse order of start: agents and the simulated fleet (all at once, each box says
    offline), web, alerts, ingest."""
    progress.show("stopping")
    for child in children:
        if child.name.startswith("agent ") or child.name == "sim":
            child.terminate()
    for child in reversed(children):
        child.stop()
    progress.done()
