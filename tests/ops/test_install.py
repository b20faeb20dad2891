"""``deploy/agent/install.sh`` (``python -m edge_agent.install``) into a throwaway root folder:
the user, the venv, the bundle with its modes and owners, the unit (checked by
``systemd-analyze``), log rotation; then again (an upgrade) and with another box's bundle.
What cannot run here (apt, pip of the real wheels, systemctl, the cameras) is listed in
docs/operations.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.app import check_secret_files
from edge_agent.config import load_config
from provisioning import pki
from provisioning.enroll import DeviceCredentials, EnrollRequest, build_bundle
from provisioning.registry_ops import SiteSpec
from tests.ops.installkit import (
    ASSETS,
    REPO,
    exposure,
    fake_root,
    group_members,
    mode_owner,
    needs_root,
    needs_systemd_analyze,
    passwd_entry,
    stub_executable,
    verify_unit,
)

pytestmark = needs_root
INSTALL = REPO / "deploy" / "agent" / "install.sh"
UNIT = "etc/systemd/system/dcor-agent.service"


def make_bundle(folder: Path, device_id: str) -> Path:
    _ca_key, ca = pki.make_ca()
    creds = DeviceCredentials("pw-" + device_id * 2, pki.cert_pem(ca).decode(),
                              pki.public_pem(pki.make_signing_key()).decode())
    req = EnrollRequest(device_id, SiteSpec("site-1", "Beji", "Kemiri Muka"), "rpi4-cctv",
                        "hub.dcor.example", 8883)
    return build_bundle(req, credentials=creds).write(folder)


def run_install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(INSTALL), "--root", str(root), "--no-pip",
                           "--python", sys.executable, *args],
                          capture_output=True, text=True, timeout=120)


def test_a_pi_gets_user_venv_bundle_unit_and_log_rotation(tmp_path):
    root = fake_root(tmp_path / "root", "etc/rpi-issue")
    bundle = make_bundle(tmp_path / "bundle", "beji-pole-01")
    args = ["--bundle", str(bundle)]
    if (ASSETS / "models" / "detect.tflite").exists():
        args += ["--model-from", str(ASSETS / "models")]
    proc = run_install(root, *args)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "platform raspberry-pi" in proc.stdout
    assert "next: systemctl daemon-reload" in proc.stdout  # not run on a folder

    user = passwd_entry(root, "dcor-agent")
    assert user is not None
    uid, gid = int(user[2]), int(user[3])
    assert uid < 1000 and user[5:] == ["/var/lib/dcor-agent", "/usr/sbin/nologin"]
    assert "dcor-agent" in group_members(root, "video")
    assert "dcor-agent" in group_members(root, "render")

    expected = {  # path: (mode, uid, gid)
        "etc/dcor-agent": (0o750, 0, gid),
        "etc/dcor-agent/agent.yaml": (0o640, 0, gid),
        "etc/dcor-agent/mqtt-password": (0o600, uid, gid),
        "etc/dcor-agent/ca.crt": (0o644, 0, gid),
        "etc/dcor-agent/hub-signing.pub": (0o644, 0, gid),
        "var/lib/dcor-agent": (0o750, uid, gid),
        "var/log/dcor-agent": (0o750, uid, gid),
        UNIT: (0o644, 0, 0),
        "etc/logrotate.d/dcor-agent": (0o644, 0, 0),
        "etc/systemd/journald.conf.d/dcor-agent.conf": (0o644, 0, 0),
    }
    if "--model-from" in args:
        expected["var/lib/dcor-agent/models/coco_ssd_mobilenet_v1/detect.tflite"] = (
            0o640, uid, gid)
    assert {p: mode_owner(root / p) for p in expected} == expected
    assert (root / "etc/dcor-agent/mqtt-password").read_text() == (
        bundle / "mqtt-password").read_text()
    assert "include-system-site-packages = true" in (
        root / "opt/dcor-agent/pyvenv.cfg").read_text()  # picamera2 from Raspberry Pi OS

    unit = (root / UNIT).read_text()
    assert unit == (REPO / "firmware_configs/systemd/dcor-agent.service").read_text()
    for line in ("Type=notify", "WatchdogSec=60s", "Restart=on-failure", "User=dcor-agent",
                 "ProtectSystem=strict", "NoNewPrivileges=yes", "LogsDirectory=dcor-agent"):
        assert f"\n{line}\n" in unit, line
    assert "char-media" in (root / f"{UNIT}.d/10-platform.conf").read_text()
    assert (root / "etc/logrotate.d/dcor-agent").read_bytes() == (
        REPO / "firmware_configs/logrotate/dcor-agent").read_bytes()

    # The installed bundle is valid where it lies, and its secret passes the agent's check.
    installed = root / "etc/dcor-agent/agent.yaml"
    check = subprocess.run([sys.executable, "-m", "edge_agent.cli", "validate", str(installed)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    cfg = load_config(installed)
    assert cfg.device_id == "beji-pole-01" and cfg.mqtt.require_tls
    check_secret_files(cfg)


@needs_systemd_analyze
def test_the_installed_unit_passes_systemd_analyze(tmp_path):
    root = fake_root(tmp_path / "root", "etc/rpi-issue")
    assert run_install(root).returncode == 0
    venv = root / "opt/dcor-agent"
    stub_executable(venv / "bin/dcor-agent")  # --no-pip: stand-in for the real script
    code, out, _ = verify_unit(root / UNIT, {"/opt/dcor-agent": str(venv)}, tmp_path / "v",
                               [root / f"{UNIT}.d/10-platform.conf"])
    assert code == 0 and out.strip() == "", out
    assert exposure(root / UNIT) < 3.0  # 1.9 when written ("OK")


def test_a_jetson_gets_its_own_venv_and_device_policy(tmp_path):
    root = fake_root(tmp_path / "root", "etc/nv_tegra_release")
    proc = run_install(root)
    assert proc.returncode == 0, proc.stderr
    assert "platform jetson" in proc.stdout
    assert "next: put an enrollment bundle in place" in proc.stdout
    assert "include-system-site-packages = false" in (
        root / "opt/dcor-agent/pyvenv.cfg").read_text()
    assert "DevicePolicy=auto" in (root / f"{UNIT}.d/10-platform.conf").read_text()
    assert "dcor-agent" in group_members(root, "render")


def test_again_is_an_upgrade_and_another_box_needs_force(tmp_path):
    root = fake_root(tmp_path / "root")
    first = make_bundle(tmp_path / "b1", "beji-pole-01")
    assert run_install(root, "--bundle", str(first)).returncode == 0
    outbox = root / "var/lib/dcor-agent/outbox.sqlite"
    outbox.write_bytes(b"rows the hub has not acknowledged")
    uid = passwd_entry(root, "dcor-agent")

    again = run_install(root, "--bundle", str(first))
    assert again.returncode == 0, again.stderr
    assert "user dcor-agent exists" in again.stdout and "upgrading in place" in again.stdout
    assert passwd_entry(root, "dcor-agent") == uid
    assert outbox.read_bytes() == b"rows the hub has not acknowledged"

    other = make_bundle(tmp_path / "b2", "beji-pole-02")
    refused = run_install(root, "--bundle", str(other))
    assert refused.returncode == 2
    assert "enrolled as beji-pole-01" in refused.stderr and "--force" in refused.stderr
    assert "beji-pole-01" in (root / "etc/dcor-agent/agent.yaml").read_text()
    forced = run_install(root, "--bundle", str(other), "--force")
    assert forced.returncode == 0
    assert "beji-pole-02" in (root / "etc/dcor-agent/agent.yaml").read_text()
    assert outbox.exists()


@pytest.mark.parametrize("content", [None, "not a bundle"])
def test_a_folder_without_agent_yaml_is_refused(tmp_path, content):
    root = fake_root(tmp_path / "root")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    if content:
        (bundle / "notes.txt").write_text(content)
    proc = run_install(root, "--bundle", str(bundle))
    assert proc.returncode == 2 and "holds no agent.yaml" in proc.stderr
