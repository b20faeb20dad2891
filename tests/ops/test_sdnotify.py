"""systemd's notify protocol: the helper alone, then a real ``dcor-agent run`` under a fake
systemd (a datagram socket in NOTIFY_SOCKET) saying READY, pinging the watchdog and STOPPING."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from edge_agent.sdnotify import Notifier, watchdog_interval_s
from hub.localservices import MosquittoProcess


def _listener(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(0.2)
    return s


def _drain(s: socket.socket, enough, timeout: float) -> list[str]:
    """Messages until ``enough(messages)`` or the timeout."""
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not enough(got):
        try:
            got.append(s.recv(4096).decode())
        except TimeoutError:
            continue
    return got


def _ready_then_pings(got: list[str], pings: int = 5) -> bool:
    firsts = [i for i, m in enumerate(got) if m.startswith("READY=1")]
    return bool(firsts) and got[firsts[0]:].count("WATCHDOG=1") >= pings


def test_without_notify_socket_everything_is_a_no_op():
    n = Notifier(env={})
    assert not n.enabled and n.ping_every_s is None
    assert (n.ready(), n.watchdog(), n.stopping()) == (False, False, False)


@pytest.mark.parametrize("env, expected", [
    ({}, None),
    ({"WATCHDOG_USEC": "60000000"}, 60.0),
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
    ({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}, 4.0),
])
def test_watchdog_period_from_the_environment(env, expected):
    assert watchdog_interval_s(env) == expected


def test_messages_reach_a_path_and_an_abstract_socket(tmp_path):
    with _listener(tmp_path / "notify") as s:
        n = Notifier(env={"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "2000000"})
        assert n.ping_every_s == 1.0
        assert n.ready("device x") and n.watchdog() and n.stopping()
        assert [s.recv(100).decode() for _ in range(3)] == [
            "READY=1\nSTATUS=device x", "WATCHDOG=1", "STOPPING=1"]
    name = f"dcor-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind("\0" + name)
        assert Notifier(env={"NOTIFY_SOCKET": "@" + name}).watchdog()
        assert s.recv(100) == b"WATCHDOG=1"


def test_a_vanished_socket_is_reported_once_and_never_raises(tmp_path, caplog):
    n = Notifier(env={"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert not n.watchdog() and not n.watchdog()
    assert len([r for r in caplog.records if "cannot notify systemd" in r.message]) == 1


def test_the_agent_says_ready_pings_the_watchdog_and_says_stopping(tmp_path, mosquitto:
                                                                   MosquittoProcess):
    cfg = {"device_id": "notify-test-01", "mqtt": {"port": mosquitto.port},
           "health": {"interval": "30s"},  # longer than the watchdog: pings come between
           "outbox": {"path": str(tmp_path / "outbox.sqlite")}}
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(cfg))
    sock_path = tmp_path / "notify"
    with _listener(sock_path) as s:
        env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "600000",
               "DCOR_LOG_FORMAT": "json"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge_agent.cli", "run", "--config",
             str(tmp_path / "agent.yaml")], env=env, stderr=subprocess.PIPE)
        try:
            # 0.6 s watchdog -> a ping every 0.3 s while the 30 s health tick waits.
            got = _drain(s, _ready_then_pings, 15.0)
            assert _ready_then_pings(got), got
            proc.send_signal(signal.SIGTERM)
            assert "STOPPING=1" in _drain(s, lambda m: "STOPPING=1" in m, 5.0)
            _out, err = proc.communicate(timeout=15)
            assert proc.returncode == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    lines = [json.loads(ln) for ln in err.decode().splitlines() if ln.strip()]
    assert lines and all(ln["device"] == "notify-test-01" for ln in lines)
    assert any("started" in ln["msg"] and ln["level"] == "info" for ln in lines)
