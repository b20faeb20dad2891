"""The agent refuses to start with readable secrets, and with TLS required but missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edge_agent.app import check_secret_files
from edge_agent.config import ConfigError, load_config, validate_config
from edge_agent.mqtt_tls import TlsConfigError, tls_context


def _bundle(tmp_path: Path, mode: int = 0o600, key_mode: int = 0o600) -> Path:
    (tmp_path / "mqtt-password").write_text("secret-password-123\n")
    (tmp_path / "mqtt-password").chmod(mode)
    (tmp_path / "client.key").write_text("not really a key")
    (tmp_path / "client.key").chmod(key_mode)
    (tmp_path / "ca.crt").write_text("x")
    cfg = {"device_id": "hyg-01", "outbox": {"path": str(tmp_path / "outbox.sqlite")},
           "mqtt": {"password_file": "mqtt-password", "require_tls": True,
                    "tls": {"ca_file": "ca.crt", "cert_file": "client.crt",
                            "key_file": "client.key"}}}
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_relative_secret_paths_follow_the_config_file(tmp_path):
    cfg = load_config(_bundle(tmp_path))
    assert cfg.mqtt.password_file == tmp_path / "mqtt-password"
    assert cfg.mqtt.tls is not None and cfg.mqtt.tls.ca_file == tmp_path / "ca.crt"
    check_secret_files(cfg)  # 0600: fine


@pytest.mark.parametrize("mode, key_mode", [(0o640, 0o600), (0o604, 0o600), (0o600, 0o644)])
def test_readable_password_or_key_is_refused(tmp_path, mode, key_mode):
    cfg = load_config(_bundle(tmp_path, mode, key_mode))
    with pytest.raises(PermissionError, match="chmod 600"):
        check_secret_files(cfg)


def test_dcor_agent_run_refuses_to_start(tmp_path):
    path = _bundle(tmp_path, 0o644)
    proc = subprocess.run([sys.executable, "-m", "edge_agent.cli", "run", "--config",
                           str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "readable by group or others" in proc.stderr
    assert "secret-password-123" not in proc.stderr + proc.stdout


def test_tls_required_but_not_configured_is_a_config_error():
    with pytest.raises(ConfigError, match="require_tls"):
        validate_config({"device_id": "hyg-02", "mqtt": {"require_tls": True}})


def test_an_unusable_ca_file_stops_the_start_instead_of_plaintext(tmp_path):
    cfg = load_config(_bundle(tmp_path))
    assert cfg.mqtt.tls is not None
    with pytest.raises(TlsConfigError, match=r"ca\.crt"):
        tls_context(cfg.mqtt.tls)
