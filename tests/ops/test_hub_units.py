"""The hub's systemd units: each passes ``systemd-analyze verify`` and keeps a low exposure
score, and the web unit's own gunicorn command line serves the app (``hub.wsgi:create()``)
with JSON logs and request ids, then stops on SIGTERM."""

from __future__ import annotations

import configparser
import http.client
import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hub.localservices import free_port, wait_until
from tests.ops.installkit import (
    REPO,
    exposure,
    needs_systemd_analyze,
    stub_executable,
    verify_unit,
)

UNITS = REPO / "deploy" / "hub" / "systemd"
VENV_BIN = Path(sys.executable).parent


def unit_section(path: Path, section: str = "Service") -> configparser.SectionProxy:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read(path)
    return cp[section]


def unit_environment(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.startswith("Environment="):
            key, _, value = line.removeprefix("Environment=").partition("=")
            env[key] = value
    return env


@needs_systemd_analyze
@pytest.mark.parametrize("name", sorted(p.name for p in UNITS.iterdir()))
def test_every_hub_unit_verifies(tmp_path, name):
    bin_dir = tmp_path / "bin"
    for exe in ("dcor-hub", "gunicorn"):
        stub_executable(bin_dir / exe)
    # The target pulls in the others: they must sit beside it.
    for other in UNITS.iterdir():
        if other.name != name:
            (tmp_path / "v").mkdir(exist_ok=True)
            (tmp_path / "v" / other.name).write_text(
                other.read_text().replace("/opt/dcor-hub/bin", str(bin_dir)))
    code, out, _ = verify_unit(UNITS / name, {"/opt/dcor-hub/bin": str(bin_dir)},
                               tmp_path / "v")
    assert code == 0 and out.strip() == "", out
    if name.endswith(".service"):
        assert exposure(UNITS / name) < 2.5  # 1.7-1.9 when written


def test_services_restart_on_failure_as_the_hub_user():
    for unit in UNITS.glob("*.service"):
        svc = unit_section(unit)
        assert svc["User"] == "dcor-hub" and svc["ProtectSystem"] == "strict", unit.name
        assert unit_environment(unit)["DCOR_HUB_CONFIG"] == "/etc/dcor-hub/hub.yaml"
        if svc["Type"] != "oneshot":
            assert svc["Restart"] == "on-failure", unit.name
    target = unit_section(UNITS / "dcor-hub.target", "Unit")
    assert set(target["Wants"].split()) == {
        "dcor-hub-ingest@1.service", "dcor-hub-web.service", "dcor-hub-alerts.service",
        "dcor-hub-rollout.service"}


def _get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def test_the_web_unit_command_serves_the_app(tmp_path):
    unit = UNITS / "dcor-hub-web.service"
    argv = shlex.split(unit_section(unit)["ExecStart"].replace("%%", "%"))
    assert argv[0] == "/opt/dcor-hub/bin/gunicorn" and argv[-1] == "hub.wsgi:create()"
    port = free_port()
    argv[0] = str(VENV_BIN / "gunicorn")
    argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
    argv[argv.index("--workers") + 1] = "1"  # 2 cores shared by the whole suite
    hub_yaml = tmp_path / "hub.yaml"
    hub_yaml.write_text(yaml.safe_dump({
        "data_dir": str(tmp_path / "data"), "influx_url": f"http://127.0.0.1:{free_port()}",
        "influx_timeout_s": 0.5, "mqtt_port": free_port(), "secret_key": "k" * 64}))
    env = {**os.environ, **unit_environment(unit), "DCOR_HUB_CONFIG": str(hub_yaml)}
    proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        def healthy() -> bool:
            try:
                return _get(port, "/healthz")[0] == 200
            except OSError:
                assert proc.poll() is None, "gunicorn exited"
                return False

        wait_until(healthy, timeout=60, message="gunicorn serving /healthz")
        status, headers, body = _get(port, "/api/v1/openapi.json")
        assert status == 200 and json.loads(body)["openapi"].startswith("3.0")
        assert len(headers["x-request-id"]) == 32
        assert _get(port, "/api/v1/devices")[0] == 401  # logins are on
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            out, err = proc.communicate()
    # The access log names the request id; the app's own lines are JSON.
    assert f"rid={headers['x-request-id']}" in out.decode() + err.decode()
    app_lines = [json.loads(ln) for ln in err.decode().splitlines() if ln.startswith("{")]
    assert any(ln.get("service") == "dcor-hub-web" for ln in app_lines)
    refused = [ln for ln in app_lines if ln.get("path") == "/api/v1/devices"]
    assert refused and refused[0]["status"] == 401 and refused[0]["request_id"]
