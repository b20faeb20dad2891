"""Every firmware profile is a valid partial agent config; the broker and systemd files fit."""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edge_agent.config import ConfigError, load_config, validate_config
from edge_agent.yamlconf import load_with_positions
from hub.localservices import wait_until
from hub.localservices.process import find_binary, free_port
from provisioning.profiles import default_profiles_dir, list_profiles

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware_configs"
PROFILES = FIRMWARE / "profiles"
DEVICE_SECTION = "device_id: beji-margonda-01\nmqtt:\n  host: 10.20.0.1\n  port: 1883\n"
EXPECTED = {"rpi4-cctv", "rpi5-cctv", "jetson-orin-nano", "kelurahan-office"}


def _device_file(tmp_path: Path, profile_file: Path, extra: str = "") -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(f"extends: {profile_file}\n{DEVICE_SECTION}{extra}")
    return path


def test_the_profile_folder_holds_the_expected_profiles():
    assert default_profiles_dir() == PROFILES
    assert set(list_profiles()) == EXPECTED
    assert (PROFILES / "common.yaml").is_file()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_profile_with_a_device_section_validates(tmp_path, name):
    data, positions = load_with_positions(_device_file(tmp_path, PROFILES / f"{name}.yaml"))
    cfg = validate_config(data, positions)
    assert (cfg.device_id, cfg.profile) == ("beji-margonda-01", name)
    assert cfg.hardware
    assert (cfg.mqtt.host, cfg.mqtt.port) == ("10.20.0.1", 1883)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_profile_is_thin_and_partial(name):
    own = yaml.safe_load((PROFILES / f"{name}.yaml").read_text())
    assert own["extends"] == "common.yaml"
    assert own["profile"] == name  # the file name, so the registry and the file agree
    # Identity and broker address come from enrollment, never from a profile.
    assert "device_id" not in own
    merged, _ = load_with_positions(PROFILES / f"{name}.yaml")
    assert "device_id" not in merged
    assert not {"host", "port", "username", "password_file"} & set(merged.get("mqtt", {}))


def test_profiles_differ_where_the_hardware_differs():
    cfgs = {n: validate_config({**load_with_positions(PROFILES / f"{n}.yaml")[0],
                                "device_id": "x-01"}) for n in EXPECTED}
    assert len({c.health.interval for c in cfgs.values()}) >= 3
    assert len({c.outbox.max_bytes for c in cfgs.values()}) == len(EXPECTED)
    assert len({c.hardware for c in cfgs.values()}) == len(EXPECTED)
    office = cfgs["kelurahan-office"]
    # A thin uplink: report less often, replay gently.
    assert office.health.interval > cfgs["rpi5-cctv"].health.interval
    assert office.outbox.backlog_rate < cfgs["jetson-orin-nano"].outbox.backlog_rate


def test_validate_command_rejects_an_unknown_key_with_file_and_line(tmp_path):
    path = _device_file(tmp_path, PROFILES / "rpi4-cctv.yaml",
                        extra="health:\n  intervall: 5s\n")
    proc = subprocess.run([sys.executable, "-m", "edge_agent.cli", "validate", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    # The unknown key is on line 7 of the device file (after extends + 4 device lines + health).
    assert f"{path}:7: health.intervall: Extra inputs are not permitted" in proc.stderr


def test_unknown_key_inside_a_profile_names_the_profile_line(tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "common.yaml").write_text((PROFILES / "common.yaml").read_text())
    bad = profiles / "rpi4-cctv.yaml"
    bad.write_text("extends: common.yaml\nprofile: rpi4-cctv\noutbox:\n  windw: 8\n")
    with pytest.raises(ConfigError) as err:
        load_config(_device_file(tmp_path, bad))
    assert f"{bad}:4: outbox.windw: Extra inputs are not permitted" in err.value.problems


def _conf_values(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out.setdefault(key, value.strip())
    return out


def test_broker_receive_maximum_covers_every_outbox_window():
    conf = _conf_values((FIRMWARE / "mosquitto" / "dcor.conf").read_text())
    windows = [validate_config({**load_with_positions(PROFILES / f"{n}.yaml")[0],
                                "device_id": "x-01"}).outbox.window for n in EXPECTED]
    assert int(conf["max_inflight_messages"]) >= max(windows)
    assert int(conf["max_queued_messages"]) >= 100_000
    assert conf["persistence"] == "true"
    assert conf["listener"] == "1883 127.0.0.1"  # the hub's listener: loopback only


@pytest.mark.integration
def test_mosquitto_accepts_the_broker_config(tmp_path):
    port = free_port()
    text = (FIRMWARE / "mosquitto" / "dcor.conf").read_text()
    text = text.replace("listener 1883 127.0.0.1", f"listener {port} 127.0.0.1")
    text += f"persistence_location {tmp_path}/\nlog_dest file {tmp_path}/mosquitto.log\n"
    if os.geteuid() == 0:  # else it drops to the `mosquitto` user, who cannot use tmp_path
        text += "user root\n"
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(text)
    proc = subprocess.Popen([find_binary("mosquitto"), "-c", str(conf)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        log = tmp_path / "mosquitto.log"
        wait_until(lambda: proc.poll() is not None or (
            log.exists() and "running" in log.read_text()), 10, message="mosquitto running")
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


def test_systemd_unit_runs_the_agent_and_restarts_on_failure():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(FIRMWARE / "systemd" / "dcor-agent.service")
    svc = unit["Service"]
    assert re.search(r"dcor-agent run --config \S+/agent\.yaml( |$)", svc["ExecStart"])
    assert svc["Restart"] == "on-failure"
    assert svc["User"] == "dcor-agent"
    assert svc["NoNewPrivileges"] == "yes" and svc["ProtectSystem"] == "strict"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
