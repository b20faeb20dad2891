"""``dcor-hub demo``: broker, InfluxDB, hub and a fleet of agents on this machine.

Everything runs on free 127.0.0.1 ports (never the default ones: the machine may run its own
Mosquitto or InfluxDB) under one data folder::

    <data>/mosquitto/  <data>/influxd/   broker and database (config, data, their logs)
    <data>/hub/        hub.yaml, registry.sqlite, spool
    <data>/devices/<id>/  each device's enrollment bundle (agent.yaml) and its outbox
    <data>/logs/       ingest.log, web.log, agent-<id>.log

Devices are enrolled through ``provisioning.enroll`` (the code behind ``dcor-provision
enroll``). Processes start in order and stop in reverse on Ctrl-C or SIGTERM; a temporary data
folder is removed afterwards, one given with ``--data-dir`` is kept.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hub.localservices import InfluxProcess, MosquittoProcess
from hub.localservices.process import free_port
from hub.settings import load_settings
from provisioning.cli import open_hub_registry
from provisioning.enroll import AGENT_CONFIG_NAME, EnrollRequest, enroll
from provisioning.registry_ops import SiteSpec

HEALTH_INTERVAL = "2s"  # lively fleet page; real profiles report every 10-30 s
ONLINE_TIMEOUT_S = 45.0
MAX_AGENTS = 100


@dataclass(frozen=True)
class DemoSite:
    id: str
    name: str
    kecamatan: str
    kelurahan: str
    lat: float
    lon: float
    profile: str


# Real Depok places (coordinates approximate); the first six cover six kecamatan and all
# four profiles, so the default fleet already shows the grouping and the hardware mix.
DEPOK_SITES = (
    DemoSite("beji-margonda", "Tiang CCTV Jl. Margonda Raya", "Beji", "Kemiri Muka",
             -6.3733, 106.8321, "rpi5-cctv"),
    DemoSite("pancoranmas-terminal", "Terminal Terpadu Depok", "Pancoran Mas", "Depok",
             -6.3918, 106.8219, "jetson-orin-nano"),
    DemoSite("sukmajaya-tole-iskandar", "Jl. Tole Iskandar", "Sukmajaya", "Mekarjaya",
             -6.3980, 106.8440, "rpi4-cctv"),
    DemoSite("cimanggis-kantor-tugu", "Kantor Kelurahan Tugu", "Cimanggis", "Tugu",
             -6.3650, 106.8640, "kelurahan-office"),
    DemoSite("cilodong-alun-alun", "Alun-Alun Kota Depok", "Cilodong", "Kalimulya",
             -6.4133, 106.8315, "rpi5-cctv"),
    DemoSite("limo-raya-limo", "Jl. Raya Limo", "Limo", "Limo", -6.3690, 106.7810,
             "rpi4-cctv"),
    DemoSite("cimanggis-pasar-cisalak", "Jl. Raya Bogor - Pasar Cisalak", "Cimanggis",
             "Cisalak Pasar", -6.3850, 106.8660, "rpi5-cctv"),
    DemoSite("pancoranmas-puskesmas", "Puskesmas Pancoran Mas", "Pancoran Mas",
             "Pancoran Mas", -6.4080, 106.8110, "rpi4-cctv"),
    DemoSite("sukmajaya-simpang-juanda", "Simpang Jl. Ir. H. Juanda", "Sukmajaya", "Baktijaya",
             -6.3795, 106.8440, "jetson-orin-nano"),
    DemoSite("cilodong-kantor-kalibaru", "Kantor Kelurahan Kalibaru", "Cilodong", "Kalibaru",
             -6.4410, 106.8390, "kelurahan-office"),
    DemoSite("beji-kukusan", "Jl. Kukusan - Kampus UI", "Beji", "Kukusan", -6.3700, 106.8180,
             "rpi4-cctv"),
    DemoSite("pancoranmas-mampang", "Simpang Jl. Raya Sawangan - Mampang", "Pancoran Mas",
             "Mampang", -6.4010, 106.8060, "rpi5-cctv"),
)


def fleet_layout(count: int) -> list[tuple[str, DemoSite]]:
    """``count`` (device id, site) pairs; sites repeat (-02, -03...) past the table's end."""
    return [(f"{DEPOK_SITES[i % len(DEPOK_SITES)].id}-{i // len(DEPOK_SITES) + 1:02d}",
             DEPOK_SITES[i % len(DEPOK_SITES)]) for i in range(count)]


class _Stopped(Exception):
    """Ctrl-C or SIGTERM: unwind and stop everything in reverse order."""


def _raise_stopped(_signum: int, _frame: Any) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
    raise _Stopped


class Progress:
    """One updating line on a terminal; plain lines (changes only) otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._last = ""

    def show(self, text: str) -> None:
        if text == self._last:
            return
        self._last = text
        if self.tty:
            sys.stderr.write(f"\r\x1b[K[demo] {text}")
        else:
            sys.stderr.write(f"[demo] {text}\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty and self._last:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


@dataclass
class Child:
    """A hub or agent process of the demo, logging to its own file."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self) -> None:
        if self.alive():
            self.proc.terminate()

    def stop(self, timeout: float = 10.0) -> None:
        self.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def command(script: str, module: str) -> list[str]:
    """The console script beside this interpreter, else ``python -m module``."""
    exe = Path(sys.executable).parent / script
    return [str(exe)] if os.access(exe, os.X_OK) else [sys.executable, "-m", module]


def spawn(name: str, argv: list[str], log_path: Path) -> Child:
    # DCOR_* of the caller's shell must not override the demo's generated settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCOR_")}
    env["PYTHONUNBUFFERED"] = "1"
    setpriv = shutil.which("setpriv")
    if setpriv:  # children get SIGTERM if the demo dies, even by SIGKILL
        argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
    with open(log_path, "ab") as log:
        # Own session: a terminal's Ctrl-C reaches only the demo, which stops them in order.
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return Child(name, proc, log_path)


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the web server does
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_web_port(preferred: int) -> int:
    """``preferred`` if free, else the next free port above it (0: any free port)."""
    if preferred == 0:
        return free_port()
    for port in range(preferred, min(preferred + 200, 65536)):
        if port_is_free(port):
            return port
    return free_port()


def get_json(port: int, path: str, timeout: float = 2.0) -> Any:
    """GET ``path`` on 127.0.0.1 and decode JSON; None when not (yet) answering."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        return json.loads(body) if resp.status == 200 else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()


def _answers(port: int, path: str) -> bool:
    return get_json(port, path) is not None


def wait_for(check: Callable[[], bool], timeout: float, watch: list[Child]) -> bool:
    """Poll ``check`` on a monotonic clock; fail early when a watched process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        for child in watch:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited (code {child.proc.returncode}); "
                                   f"see {child.log_path}")
        time.sleep(0.2)
    return False


# --- the stages -----------------------------------------------------------------------------

def write_hub_settings(root: Path, broker: MosquittoProcess, influx: InfluxProcess,
                       web_port: int) -> Path:
    path = root / "hub" / "hub.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({
        "data_dir": str(root / "hub"), "mqtt_host": "127.0.0.1", "mqtt_port": broker.port,
        "influx_url": influx.url, "influx_db": "dcor", "web_host": "127.0.0.1",
        "web_port": web_port, "stats_interval_s": 1.0,
    }, sort_keys=False))
    return path


def enroll_fleet(hub_config: Path, root: Path, broker_port: int, count: int) -> list[Path]:
    """Enroll ``count`` devices as ``dcor-provision enroll`` does; return their bundles."""
    registry = open_hub_registry(load_settings(hub_config, env={}))
    bundles = []
    try:
        for device_id, site in fleet_layout(count):
            bundle = root / "devices" / device_id
            data = bundle / "data"
            data.mkdir(parents=True, exist_ok=True)
            req = EnrollRequest(
                device_id=device_id, profile=site.profile, broker_host="127.0.0.1",
                broker_port=broker_port, agent_data_dir=data,
                site=SiteSpec(id=site.id, kecamatan=site.kecamatan, kelurahan=site.kelurahan,
                              name=site.name, lat=site.lat, lon=site.lon),
                overrides={"health": {"interval": HEALTH_INTERVAL, "disk_path": str(data)}},
            )
            enroll(registry, req, bundle, force=True)
            bundles.append(bundle)
    finally:
        registry.close()
    return bundles


def start_web(hub_cmd: list[str], logs: Path, preferred: int) -> tuple[Child, int]:
    """Start ``dcor-hub web``; if another program takes the port first, try the next one."""
    port = pick_web_port(preferred)
    for _attempt in range(3):
        web = spawn("web", [*hub_cmd, "web", "--port", str(port)], logs / "web.log")
        try:
            if wait_for(functools.partial(_answers, port, "/healthz"), 30.0, [web]):
                return web, port
            raise RuntimeError(f"web did not answer on port {port}; see {web.log_path}")
        except RuntimeError:
            web.stop()
            if "in use" not in web.log_path.read_text(errors="replace"):
                raise
            port = pick_web_port(port + 1)
    raise RuntimeError(f"no free port for the web app near {preferred}")


def online_count(web_port: int, device_ids: set[str]) -> int:
    devices = get_json(web_port, "/api/v1/devices") or []
    return sum(1 for d in devices if d.get("id") in device_ids and d.get("state") == "online")


@contextlib.contextmanager
def demo_root(data_dir: str | None) -> Iterator[Path]:
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


def run_demo(agents: int = 6, web_port: int = 8080, data_dir: str | None = None) -> int:
    """Run the whole system locally until Ctrl-C / SIGTERM; 0 on a clean stop."""
    if not 1 <= agents <= MAX_AGENTS:
        print(f"dcor-hub demo: --agents must be 1..{MAX_AGENTS}", file=sys.stderr)
        return 2
    started = time.monotonic()
    progress = Progress()
    previous = {s: signal.signal(s, _raise_stopped) for s in (signal.SIGINT, signal.SIGTERM)}
    children: list[Child] = []
    try:
        with demo_root(data_dir) as root, contextlib.ExitStack() as stack:
            logs = root / "logs"
            logs.mkdir(exist_ok=True)
            progress.show("starting Mosquitto")
            broker = MosquittoProcess(
                data_dir=root / "mosquitto", persistence=True,
                extra_config=["max_queued_messages 100000", "max_inflight_messages 128"])
            stack.callback(broker.close)
            broker.start()
            progress.show("starting InfluxDB")
            influx = InfluxProcess(data_dir=root / "influxd")
            stack.callback(influx.close)
            influx.start()
            progress.show(f"enrolling {agents} devices in Depok")
            hub_config = write_hub_settings(root, broker, influx, web_port)
            bundles = enroll_fleet(hub_config, root, broker.port, agents)
            hub_cmd = [*command("dcor-hub", "hub.cli"), "--config", str(hub_config)]
            # Unwinds first (last in): children stop before InfluxDB and the broker.
            stack.callback(_stop_all, children, progress)
            progress.show("starting hub ingest")
            children.append(spawn("ingest", [*hub_cmd, "ingest", "--worker-id", "demo-ingest"],
                                  logs / "ingest.log"))
            progress.show("starting hub web")
            web, port = start_web(hub_cmd, logs, web_port)
            children.append(web)
            agent_cmd = command("dcor-agent", "edge_agent.cli")
            for bundle in bundles:
                children.append(spawn(f"agent {bundle.name}", [
                    *agent_cmd, "run", "--config", str(bundle / AGENT_CONFIG_NAME)],
                    logs / f"agent-{bundle.name}.log"))
            ids = {b.name for b in bundles}

            def all_online() -> bool:
                n = online_count(port, ids)
                progress.show(f"agents online {n}/{len(ids)}")
                return n == len(ids)

            ok = wait_for(all_online, ONLINE_TIMEOUT_S, children)
            progress.done()
            if not ok:
                print(f"[demo] not every agent is online yet; see {logs}/agent-*.log",
                      file=sys.stderr)
            print(f"dcor-fleet demo ready in {time.monotonic() - started:.1f} s: fleet page "
                  f"http://127.0.0.1:{port}/ ({online_count(port, ids)}/{len(ids)} agents "
                  f"online; data and logs in {root}; Ctrl-C stops)", flush=True)
            return _supervise(children)
    except _Stopped:
        return 0
    except Exception as exc:  # a start failure: say what and where, after stopping the rest
        progress.done()
        print(f"dcor-hub demo: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _supervise(children: list[Child]) -> int:
    """Wait for a signal; stop early (code 1) if the hub's ingest or web process dies."""
    warned: set[str] = set()
    while True:
        for child in children:
            if child.alive() or child.name in warned:
                continue
            print(f"[demo] {child.name} exited (code {child.proc.returncode}); see "
                  f"{child.log_path}", file=sys.stderr, flush=True)
            if child.name in ("ingest", "web"):
                return 1
            warned.add(child.name)
        time.sleep(0.5)


def _stop_all(children: list[Child], progress: Progress) -> None:
    """Reverse order of start: agents (all at once, each says offline), web, ingest."""
    progress.show("stopping")
    for child in children:
        if child.name.startswith("agent "):
            child.terminate()
    for child in reversed(children):
        child.stop()
    progress.done()
