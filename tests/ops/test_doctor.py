"""``dcor-hub doctor`` against real processes: all well, then a broker down, InfluxDB
unreachable, a refused login, an old schema, a full spool and certificates about to expire.
Plus the pure conclusions (certificate and disk thresholds, exit codes)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hub.localservices import InfluxProcess, free_port
from hub.ops.checks import (
    Finding,
    Status,
    cert_finding,
    disk_finding,
    exit_code,
    format_json,
    format_report,
)
from hub.ops.doctor import run_doctor
from hub.registry.db import open_registry
from hub.registry.migrations import upgrade_head
from hub.registry.models import IngestWorkerStats
from hub.settings import HubSettings, load_settings
from provisioning import pki

NOW = dt.datetime.now(dt.UTC)
GiB = 1024**3


def by_check(findings: list[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in findings:
        out.setdefault(f.check, []).append(f)
    return out


def status_of(findings: list[Finding], check: str) -> set[Status]:
    return {f.status for f in by_check(findings).get(check, [])}


def make_security(folder: Path, broker_days: float, host: str = "hub.dcor.example") -> None:
    folder.mkdir(parents=True)
    ca_key, ca = pki.make_ca()
    _key, cert = pki.make_server_cert(ca_key, ca, [host], not_before=NOW - dt.timedelta(
        days=1), not_after=NOW + dt.timedelta(days=broker_days))
    pki.write_file(folder / "ca.crt", pki.cert_pem(ca), 0o644)
    pki.write_file(folder / "broker.crt", pki.cert_pem(cert), 0o644)


@pytest.fixture
def healthy_hub(tmp_path, mosquitto_factory, influxd: InfluxProcess, influx_db) -> Path:
    """A hub.yaml whose every dependency is up: broker, InfluxDB, a migrated registry with a
    live ingest worker, certificates good for a year."""
    broker = mosquitto_factory()
    data = tmp_path / "data"
    data.mkdir()
    make_security(tmp_path / "security", 365)
    db = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    upgrade_head(db)
    reg = open_registry(db)
    with reg.session() as s:
        s.add(IngestWorkerStats(worker_id="w1", counters={}, updated_at=dt.datetime.now(dt.UTC)))
    reg.close()
    cfg = {"data_dir": str(data), "database_url": db, "mqtt_port": broker.port,
           "influx_url": influxd.url, "influx_db": influx_db, "secret_key": "k" * 64,
           "security_dir": str(tmp_path / "security"), "device_broker_host": "hub.dcor.example"}
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(cfg))
    path.with_suffix(".broker").write_text(str(broker.pid))
    return path


def settings_of(path: Path, **overrides: object) -> HubSettings:
    return load_settings(path, env={}, overrides=overrides)


def doctor_cli(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub.cli", "--config", str(path), "doctor",
                           "--influx-data-dir", str(path.parent), *args],
                          capture_output=True, text=True, timeout=60)


def test_all_well_exits_zero_and_names_each_check(healthy_hub):
    proc = doctor_cli(healthy_hub)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for check in ("broker", "influxdb", "database", "ingest", "disk", "spool",
                  "certificates", "settings", "clock"):
        assert check in proc.stdout
    assert "0 failed" in proc.stdout and "alembic" not in proc.stdout + proc.stderr
    findings = run_doctor(settings_of(healthy_hub), influx_data_dir=healthy_hub.parent)
    data = json.loads(format_json(findings))
    assert {f["check"] for f in data if f["status"] == "fail"} == set()
    assert {f["status"] for f in data} <= {"ok", "warn"}


def test_a_stopped_broker_and_an_unreachable_influxdb_fail_with_a_fix(healthy_hub,
                                                                      mosquitto_factory):
    settings = settings_of(healthy_hub, mqtt_port=free_port(),
                           influx_url=f"http://127.0.0.1:{free_port()}")
    findings = run_doctor(settings, timeout=2.0)
    assert status_of(findings, "broker") == {Status.FAIL}
    assert status_of(findings, "influxdb") == {Status.FAIL}
    assert status_of(findings, "database") == {Status.OK}
    broker = by_check(findings)["broker"][0]
    assert "unreachable" in broker.summary and "systemctl start mosquitto" in broker.fix
    assert "spools" in by_check(findings)["influxdb"][0].fix
    assert exit_code(findings) == 1


def test_a_broker_killed_under_the_hub_makes_the_cli_exit_one(healthy_hub, mosquitto_factory):
    os.kill(int(healthy_hub.with_suffix(".broker").read_text()), signal.SIGKILL)
    proc = doctor_cli(healthy_hub, "--timeout", "2")
    assert proc.returncode == 1
    line = next(ln for ln in proc.stdout.splitlines() if "broker" in ln)
    assert line.startswith("FAIL")
    assert "fix: start the broker" in proc.stdout


def test_a_refused_login_is_told_apart_from_a_down_broker(healthy_hub, mosquitto_factory):
    locked = mosquitto_factory(allow_anonymous=False)
    findings = run_doctor(settings_of(healthy_hub, mqtt_port=locked.port,
                                      mqtt_username="dcor-hub", mqtt_password="wrong"))
    broker = by_check(findings)["broker"][0]
    assert broker.status is Status.FAIL and "refused the hub's login" in broker.summary
    assert "mqtt_password_file" in broker.fix


def test_schema_spool_workers_and_certificates(healthy_hub, tmp_path):
    fresh = f"sqlite:///{tmp_path / 'old.sqlite'}"
    open_registry(fresh).close()  # tables made by create_schema, no migration revision
    spool = tmp_path / "data" / "spool" / "w1"
    spool.mkdir(parents=True)
    (spool / "000001.lp").write_bytes(b"health,device=x v=1 1\n")
    short = tmp_path / "short"
    make_security(short, 3, host="other.example")
    findings = run_doctor(settings_of(healthy_hub, database_url=fresh, security_dir=short,
                                      secret_key=""))
    assert status_of(findings, "database") == {Status.WARN}
    assert status_of(findings, "spool") == {Status.WARN}
    assert status_of(findings, "ingest") == {Status.FAIL}  # this registry has no worker
    broker_cert = [f for f in by_check(findings)["certificates"] if "broker.crt" in f.summary]
    assert broker_cert[0].status is Status.FAIL and "expires in" in broker_cert[0].summary
    assert status_of(findings, "settings") == {Status.WARN}
    missing = f"sqlite:///{tmp_path / 'none.sqlite'}"
    db = by_check(run_doctor(settings_of(healthy_hub, database_url=missing)))["database"][0]
    assert db.status is Status.FAIL and "dcor-hub migrate" in db.fix


@pytest.mark.parametrize("days, host, sans, expected", [
    (400, "", [], Status.OK),
    (20, "", [], Status.WARN),
    (3, "", [], Status.FAIL),
    (-1, "", [], Status.FAIL),
    (400, "hub.dcor.example", ["hub.dcor.example"], Status.OK),
    (400, "HUB.dcor.example", ["hub.dcor.example"], Status.OK),
    (400, "hub.dcor.example", ["10.0.0.1"], Status.FAIL),
])
def test_certificate_thresholds(days, host, sans, expected):
    f = cert_finding("broker.crt", NOW + dt.timedelta(days=days), NOW, sans, host)
    assert f.status is expected
    assert (f.fix != "") is (expected is not Status.OK)


@pytest.mark.parametrize("free, total, expected", [
    (100 * GiB, 200 * GiB, Status.OK),
    (15 * GiB, 200 * GiB, Status.WARN),   # under 10 %
    (1 * GiB, 4 * GiB, Status.WARN),      # 25 %, but under 2 GiB
    (4 * GiB, 200 * GiB, Status.WARN),    # 2 %, but 4 GiB left: not yet failing
    (300 * 1024**2, 16 * GiB, Status.FAIL),
])
def test_disk_thresholds(free, total, expected):
    assert disk_finding("hub data", "/var/lib/dcor-hub", free, total, "fix").status is expected


def test_the_report_and_the_exit_code():
    findings = [Finding("broker", Status.OK, "up"),
                Finding("certificates", Status.WARN, "expires soon", "renew it")]
    text = format_report(findings)
    assert "WARN  certificates  expires soon" in text and "fix: renew it" in text
    assert text.endswith("0 failed, 1 warnings, 1 ok")
    assert exit_code(findings) == 0 and exit_code(findings, strict=True) == 1
