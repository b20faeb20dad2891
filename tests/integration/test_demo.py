"""The README's main command, headless: ``scripts/demo.sh`` brings up the whole system, serves
the fleet page with its agents and simulated boxes online, and leaves no process behind after
SIGTERM."""

from __future__ import annotations

import http.client
import http.server
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from bench.synth import device_ids
from dcor_wire.topics import check_device_id
from hub.cli import DEMO_SIM_DEFAULT
from hub.demo.layout import DEPOK_SITES, KECAMATAN, fleet_layout, sim_layout
from hub.demo.procs import get_list, pick_web_port
from hub.demo.simfleet import DEFAULT_SIM_DEVICES, enroll_sim_fleet, sim_ids
from hub.localservices import wait_until
from hub.localservices.process import free_port
from hub.registry.db import open_registry
from hub.registry.models import Device, Site
from provisioning.profiles import list_profiles

REPO = Path(__file__).resolve().parents[2]
READY_RE = re.compile(r"fleet page http://127\.0\.0\.1:(\d+)/ \((\d+)/(\d+) agents online")
SIMS_RE = re.compile(r"(\d+)/(\d+) simulated boxes online")
SIMS = 4  # a few: the demo's start-up stays short


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every process we can see."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(entry.name)] = (int(fields[1]), fields[19])
    return table


def _descendants(root: int) -> dict[int, str]:
    """pid -> start time of every process below ``root``."""
    table = _proc_table()
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, started) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = started
                frontier.append(pid)
    return found


def _still_running(pid: int, started: str) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == started and fields[0] != "Z"  # same process, not a reaped zombie


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _read_ready_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sel.select(timeout=0.5):
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break  # the demo exited
            buf += chunk
            for line in buf.decode(errors="replace").splitlines():
                if READY_RE.search(line):
                    return line
    finally:
        sel.close()
    raise AssertionError(f"no ready line within {timeout}s; stdout so far: {buf!r}")


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_demo_script_serves_the_fleet_and_stops_cleanly(tmp_path):
    started = time.monotonic()
    data_dir = tmp_path / "demo"
    # Whoever holds the port asked for, the demo must take the next free one.
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    asked = squatter.getsockname()[1]
    stderr_path = tmp_path / "demo.stderr"
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            ["bash", str(REPO / "scripts" / "demo.sh"), "--agents", "3", "--port", str(asked),
             "--data-dir", str(data_dir), "--sim-devices", str(SIMS)],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
            start_new_session=True)
    children: dict[int, str] = {}
    try:
        line = _read_ready_line(proc, 50)
        startup_s = time.monotonic() - started
        m = READY_RE.search(line)
        assert m is not None
        port, online, total = int(m.group(1)), int(m.group(2)), int(m.group(3))
        assert port != asked and (online, total) == (3, 3)
        sims = SIMS_RE.search(line)
        assert sims is not None and (int(sims.group(1)), int(sims.group(2))) == (SIMS, SIMS)
        assert str(data_dir) in line

        status, page = _get(port, "/")
        assert status == 200
        ids = [device_id for device_id, _ in fleet_layout(3)]
        simulated = sim_ids(SIMS)
        for device_id in ids + simulated:
            assert device_id.encode() in page
        status, body = _get(port, "/api/v1/devices")
        assert status == 200
        devices = {d["id"]: d for d in json.loads(body)}
        assert set(devices) == set(ids) | set(simulated)
        assert {d["state"] for d in devices.values()} == {"online"}
        # Presence reaches the registry at once, the latest health within a second.
        wait_until(lambda: all(d["id"] not in ids or d["health"]
                               for d in json.loads(_get(port, "/api/v1/devices")[1])),
                   10, message="the video agents' health in the registry")
        assert {devices[i]["kecamatan"] for i in ids} == {"Beji", "Pancoran Mas", "Sukmajaya"}
        # Enrolled like real boxes: a site in a Depok kelurahan, on the map.
        assert {devices[i]["hardware"] for i in simulated} == {"sim"}
        assert len({devices[i]["kecamatan"] for i in simulated}) == SIMS
        status, page = _get(port, "/map")
        assert status == 200 and b"Tiang CCTV" in page

        children = _descendants(proc.pid)
        # mosquitto, influxd, ingest, alerts, rollout, web, three agents and dcor-sim
        # (setpriv execs in place).
        assert len(children) >= 10, children
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        gone_by = time.monotonic() + 5
        while any(_still_running(p, s) for p, s in children.items()):
            assert time.monotonic() < gone_by, [p for p, s in children.items()
                                                if _still_running(p, s)]
            time.sleep(0.1)
        assert (data_dir / "logs" / f"agent-{ids[0]}.log").stat().st_size > 0  # kept
        # Each simulated box said offline before the hub stopped.
        assert _presence(data_dir, simulated) == {"offline"}
        print(f"demo start-up {startup_s:.1f} s; total {time.monotonic() - started:.1f} s")
        assert time.monotonic() - started < 60
    finally:
        squatter.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid, start in children.items():
            if _still_running(pid, start):
                os.kill(pid, signal.SIGKILL)
        if proc.stdout:
            proc.stdout.close()


def test_fleet_layout_is_valid_and_spread_over_depok():
    layout = fleet_layout(30)
    ids = [device_id for device_id, _ in layout]
    assert len(set(ids)) == 30
    for device_id in ids:
        check_device_id(device_id)
    assert ids[len(DEPOK_SITES)].endswith("-02")  # sites repeat past the table
    first_six = [site for _, site in fleet_layout(6)]
    assert len({s.kecamatan for s in first_six}) == 6
    assert {s.profile for s in first_six} == set(list_profiles())
    for site in DEPOK_SITES:
        assert -6.46 < site.lat < -6.33 and 106.73 < site.lon < 106.90


def _presence(data_dir: Path, ids: list[str]) -> set[str]:
    registry = open_registry(f"sqlite:///{data_dir / 'hub' / 'registry.sqlite'}")
    try:
        with registry.session() as s:
            return {str(s.get(Device, i).presence) for i in ids}  # type: ignore[union-attr]
    finally:
        registry.close()


def test_sim_layout_spreads_the_boxes_over_every_kelurahan_of_depok():
    ids = sim_ids(200)
    assert ids == device_ids(200, "sim")  # what dcor-sim --prefix sim names its boxes
    layout = sim_layout(ids)
    assert [device_id for device_id, _ in layout] == ids
    for device_id in ids:
        check_device_id(device_id)
    places = {(kec, kel) for kec, _lat, _lon, kels in KECAMATAN for kel in kels}
    assert len(places) == 63 and len(KECAMATAN) == 11
    assert {(site.kecamatan, site.kelurahan) for _, site in layout} == places
    assert len({site.id for _, site in layout}) == 200  # one pole each
    assert {site.profile for _, site in layout} == set(list_profiles())
    for _, site in layout:
        assert -6.46 < site.lat < -6.32 and 106.72 < site.lon < 106.91
    assert DEMO_SIM_DEFAULT == DEFAULT_SIM_DEVICES  # the CLI's help names the real default


def test_simulated_boxes_are_enrolled_with_their_sites(tmp_path):
    hub_yaml = tmp_path / "hub.yaml"
    hub_yaml.write_text(f"data_dir: {tmp_path / 'hub'}\n")
    assert enroll_sim_fleet(hub_yaml, 0) == []
    ids = enroll_sim_fleet(hub_yaml, 70)
    assert enroll_sim_fleet(hub_yaml, 70) == ids  # again: the same records, updated
    registry = open_registry(f"sqlite:///{tmp_path / 'hub' / 'registry.sqlite'}")
    try:
        with registry.session() as s:
            devices = {d.id: d for d in s.scalars(select(Device))}
            sites = {x.id: x for x in s.scalars(select(Site))}
            assert set(devices) == set(ids) and len(sites) == 70
            for d in devices.values():
                site = sites[d.site_id]
                assert d.status == "enrolled" and d.hardware == "sim"
                assert site.lat is not None and site.lon is not None and site.kelurahan
    finally:
        registry.close()


@pytest.mark.parametrize(("argv", "env", "expected"), [
    ([], None, DEFAULT_SIM_DEVICES),
    ([], "0", 0),
    ([], "25", 25),
    (["--sim-devices", "7"], "25", 7),  # the flag wins
])
def test_sim_devices_from_the_flag_or_the_environment(monkeypatch, argv, env, expected):
    import hub.demo
    from hub.cli import SIM_DEVICES_ENV, main

    seen: dict[str, object] = {}
    monkeypatch.setattr(hub.demo, "run_demo", lambda **kw: seen.update(kw) or 0)
    if env is None:
        monkeypatch.delenv(SIM_DEVICES_ENV, raising=False)
    else:
        monkeypatch.setenv(SIM_DEVICES_ENV, env)
    assert main(["demo", *argv]) == 0
    assert seen["sim_devices"] == expected


def test_get_list_follows_next_links():
    pages = {"/items": (b'["a", "b"]', '</items?after=b>; rel="next"'),
             "/items?after=b": (b'["c"]', "")}

    class Pages(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, link = pages[self.path]
            self.send_response(200)
            if link:
                self.send_header("Link", link)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        assert get_list(port, "/items") == ["a", "b", "c"]
        assert get_list(port, "/items?after=b") == ["c"]
        assert get_list(free_port(), "/items") == []  # nobody answering
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_pick_web_port_skips_a_taken_port():
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        assert pick_web_port(taken) != taken
    port = free_port()
    assert pick_web_port(port) == port
