"""The technician's whole path against a real hub: init-hub, Mosquitto with dynamic security
and TLS, InfluxDB, the ingest process and the web app. A technician enrolls 20 boxes from a
CSV (one bad row among them), runs the on-site check on one box, and the fleet page shows it
verified. No password, token or key shows up in any log or output on the way."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from hub.localservices import MosquittoProcess, TlsListener
from hub.registry.db import open_registry
from hub.security.store import SecurityStore
from hub.security.tokens import parse_token
from hub.settings import load_settings
from hub.web import close_app, create_app, make_web_server
from provisioning.cli import main as provision
from provisioning.hubinit import DYNSEC_JSON
from tests.security.conftest import PASSWORD

pytestmark = pytest.mark.integration

PY = sys.executable
REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO.parent / "shared" / "assets"
KELURAHAN = ["Beji", "Beji Timur", "Kemiri Muka", "Kukusan", "Pondok Cina", "Tanah Baru"]


def _csv(path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["device_id", "site", "kecamatan", "kelurahan", "profile", "site_name",
                    "lat", "lon"])
        for i in range(20):
            kel = KELURAHAN[i % len(KELURAHAN)]
            slug = kel.lower().replace(" ", "-")
            w.writerow([f"{slug}-{i:02d}", f"pole-{slug}-{i:02d}", "Beji", kel,
                        "rpi4-cctv" if i % 2 else "rpi5-cctv", f"Tiang {kel} {i}",
                        f"{-6.37 - i / 1000:.4f}", f"{106.82 + i / 1000:.4f}"])
            if i == 9:  # a typo among them
                w.writerow(["Bad/Id", "pole-x", "Beji", "Beji", "rpi4-cctv", "", "", ""])


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "provisioning.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


@pytest.mark.timeout(150)
def test_a_technician_enrolls_twenty_boxes_and_verifies_one(tmp_path, influxd, influx_db):
    sec = tmp_path / "security"
    assert provision(["init-hub", "--dir", str(sec), "--broker-name", "127.0.0.1",
                      "--broker-name", "localhost"]) == 0
    broker = MosquittoProcess(data_dir=tmp_path / "mosquitto", dynsec_file=sec / DYNSEC_JSON,
                              tls=TlsListener(sec / "broker.crt", sec / "broker.key"))
    hub_yaml = tmp_path / "hub.yaml"
    stack: list = []
    try:
        broker.start()
        stack.append(broker.close)
        hub_yaml.write_text(yaml.safe_dump({
            "data_dir": str(tmp_path / "hub"), "mqtt_port": broker.port,
            "mqtt_username": "dcor-hub", "mqtt_password_file": str(sec / "hub-mqtt.password"),
            "mqtt_client_id": "hub-sec-e2e", "security_dir": str(sec),
            "device_broker_host": "127.0.0.1", "device_broker_port": broker.tls_port,
            "influx_url": influxd.url, "influx_db": influx_db, "stats_interval_s": 0.5,
            "web_host": "127.0.0.1", "web_port": 0, "web_cookie_secure": False,
        }))
        settings = load_settings(hub_yaml, env={})
        settings.data_dir.mkdir(parents=True)
        ingest_log = tmp_path / "ingest.log"
        with ingest_log.open("wb") as log:
            ingest = subprocess.Popen([PY, "-m", "hub.cli", "--config", str(hub_yaml),
                                       "--log-level", "DEBUG", "ingest", "--worker-id", "w1"],
                                      stdout=log, stderr=subprocess.STDOUT)
        stack.append(lambda: (ingest.terminate(), ingest.wait(15)))

        # The admin gives the technician an account and a personal token for the day.
        registry = open_registry(settings.resolved_database_url())
        stack.append(registry.close)
        store = SecurityStore(registry)
        store.create_user("budi-tech", PASSWORD, "technician")
        store.create_user("ani-operator", PASSWORD, "operator", desk="dishub")
        token, _ = store.issue_token("budi-tech", timedelta(hours=8), uses=25)
        token_file = tmp_path / "token"
        token_file.write_text(token.text)
        token_file.chmod(0o600)

        app = create_app(settings)
        server = make_web_server(settings, app)
        web = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                               name="test-web", daemon=True)
        web.start()
        stack.append(lambda: (server.shutdown(), server.server_close(), close_app(app)))
        hub_url = f"http://127.0.0.1:{server.server_port}"

        # --- bulk: 20 good rows and a bad one; then again (resumable) -------------------
        devices_csv = tmp_path / "devices.csv"
        _csv(devices_csv)
        bundles = tmp_path / "bundles"
        first = _run(["bulk", str(devices_csv), "--hub", hub_url, "--token-file",
                      str(token_file), "--out-dir", str(bundles)])
        assert first.returncode == 1, first.stderr  # one row failed
        assert "20 enrolled, 0 skipped (already done), 1 failed" in first.stdout
        assert re.search(r"row 12 Bad/Id: error: invalid device id", first.stdout), first.stdout
        report = list(csv.DictReader(
            (tmp_path / "devices.report.csv").read_text().splitlines()))
        assert [r["result"] for r in report].count("ok") == 20
        assert [(r["row"], r["result"]) for r in report if r["result"] != "ok"] == [
            ("12", "error")]
        again = _run(["bulk", str(devices_csv), "--hub", hub_url, "--token-file",
                      str(token_file), "--out-dir", str(bundles)])
        assert "0 enrolled, 20 skipped (already done), 1 failed" in again.stdout
        box = bundles / "beji-00"
        assert sorted(p.name for p in box.iterdir()) == [
            "agent.yaml", "ca.crt", "hub-signing.pub", "mqtt-password"]
        assert all(p.stat().st_mode & 0o077 == 0 for p in box.iterdir())

        # --- on site: a camera and the model configured, then the check -----------------
        cfg = yaml.safe_load((box / "agent.yaml").read_text())
        cfg["outbox"]["path"] = str(tmp_path / "box" / "outbox.sqlite")
        cfg["data_dir"] = str(tmp_path / "box")
        cfg["cameras"] = [{"id": "cam1", "type": "synthetic", "width": 320, "height": 240,
                           "video": {"enabled": False}}]
        cfg["detector"] = {"model": str(ASSETS / "models" / "detect.tflite"),
                           "labels": str(ASSETS / "models" / "labelmap.txt")}
        (box / "agent.yaml").write_text(yaml.safe_dump(cfg))
        check = _run(["check", "--config", str(box / "agent.yaml"), "--hub", hub_url,
                      "--token-file", str(token_file), "--timeout", "20"])
        assert check.returncode == 0, check.stdout + check.stderr
        assert "all checks passed" in check.stdout
        assert "the hub marked beji-00 as verified" in check.stdout

        # --- the room sees it ----------------------------------------------------------
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        client.post("/login", data={"username": "ani-operator", "password": PASSWORD,
                                    "csrf_token": csrf})
        fleet = client.get("/?lang=en").get_data(as_text=True)
        row = fleet[fleet.index('data-device="beji-00"'):][:600]
        assert "Verified" in row
        other = fleet[fleet.index('data-device="beji-timur-01"'):][:600]
        assert "Verified" not in other
        audit = {(e.action, e.result) for e in
                 app.extensions["dcor_security"].audit.query(limit=500)}
        assert {("enroll", "ok"), ("install_check", "ok")} <= audit

        # --- no secret anywhere in what was printed or logged ---------------------------
        parsed = parse_token(token.text)
        assert parsed is not None
        # The secret part whole: it is URL-safe base64 and may itself hold "_" (splitting
        # the text at the last "_" once gave the one-letter "secret" 'I').
        secrets = [token.text, parsed[1], PASSWORD,
                   (sec / "broker-admin.password").read_text().strip(),
                   (sec / "hub-mqtt.password").read_text().strip(),
                   (box / "mqtt-password").read_text().strip(),
                   (bundles / "kukusan-03" / "mqtt-password").read_text().strip()]
        # Whole base64 lines of the keys; a PEM's short last line (it can be a single
        # character) would match any text.
        secrets += [line for p in ("ca.key", "broker.key", "signing.key")
                    for line in (sec / p).read_text().splitlines()
                    if "-----" not in line and len(line) >= 16]
        outputs = {"bulk": first.stdout + first.stderr, "bulk2": again.stdout + again.stderr,
                   "check": check.stdout + check.stderr,
                   "ingest": ingest_log.read_text(errors="replace"),
                   "mosquitto": broker.log_path.read_text(errors="replace"),
                   "audit": str(app.extensions["dcor_security"].audit.query(limit=500))}
        for name, text in outputs.items():
            for s in secrets:
                assert s not in text, f"a secret leaked into {name}"
    finally:
        for undo in reversed(stack):
            undo()
