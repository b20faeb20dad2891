"""The README's main command, headless: ``scripts/demo.sh`` brings up the whole system, serves
the fleet page with its agents online, and leaves no process behind after SIGTERM."""

from __future__ import annotations

import http.client
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from dcor_wire.topics import check_device_id
from hub.demo.layout import DEPOK_SITES, fleet_layout
from hub.demo.procs import pick_web_port
from hub.localservices.process import free_port
from provisioning.profiles import list_profiles

REPO = Path(__file__).resolve().parents[2]
READY_RE = re.compile(r"fleet page http://127\.0\.0\.1:(\d+)/ \((\d+)/(\d+) agents online")


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
             "--data-dir", str(data_dir)],
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
        assert str(data_dir) in line

        status, page = _get(port, "/")
        assert status == 200
        ids = [device_id for device_id, _ in fleet_layout(3)]
        for device_id in ids:
            assert device_id.encode() in page
        status, body = _get(port, "/api/v1/devices")
        assert status == 200
        devices = {d["id"]: d for d in json.loads(body)}
        assert set(devices) == set(ids)
        assert {d["state"] for d in devices.values()} == {"online"}
        assert all(d["health"] for d in devices.values())
        assert {d["kecamatan"] for d in devices.values()} == {"Beji", "Pancoran Mas",
                                                               "Sukmajaya"}

        children = _descendants(proc.pid)
        # mosquitto, influxd, ingest, web and three agents (setpriv execs in place).
        assert len(children) >= 7, children
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        gone_by = time.monotonic() + 5
        while any(_still_running(p, s) for p, s in children.items()):
            assert time.monotonic() < gone_by, [p for p, s in children.items()
                                                if _still_running(p, s)]
            time.sleep(0.1)
        assert (data_dir / "logs" / f"agent-{ids[0]}.log").stat().st_size > 0  # kept
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


def test_pick_web_port_skips_a_taken_port():
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        assert pick_web_port(taken) != taken
    port = free_port()
    assert pick_web_port(port) == port
