"""The hub's ingest connection over TLS: its own credentials, the CA and host name checked,
never a fallback to plaintext."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hub.ingest.mqttlink import HubMqtt
from hub.settings import load_settings
from tests.security.conftest import HUB_PW

pytestmark = pytest.mark.integration


def _link(tmp_path: Path, port: int, ca: Path) -> HubMqtt:
    pw = tmp_path / "hub-pw"
    pw.write_text(HUB_PW)
    settings = load_settings(env={}, overrides={
        "data_dir": str(tmp_path / "hub"), "mqtt_port": port, "mqtt_username": "dcor-hub",
        "mqtt_password_file": str(pw), "mqtt_tls_ca_file": str(ca),
        "influx_url": "http://127.0.0.1:9"})
    return HubMqtt(settings, ["dcor/v1/+/health"], lambda _g, _m: None, "dcor-hub-tls-test")


def test_the_hub_connects_with_the_right_ca(tmp_path, secure_broker, pki_files):
    link = _link(tmp_path, secure_broker.tls_port, pki_files.ca)
    link.start()
    try:
        assert link.wait_connected(10)
    finally:
        link.stop()


@pytest.mark.parametrize("which", ["foreign_ca", "plaintext_port"])
def test_the_hub_refuses_what_it_cannot_verify(tmp_path, secure_broker, pki_files, which,
                                              caplog):
    ca = pki_files.foreign_ca if which == "foreign_ca" else pki_files.ca
    port = secure_broker.tls_port if which == "foreign_ca" else secure_broker.port
    link = _link(tmp_path, port, ca)
    link.start()
    try:
        time.sleep(1.5)  # several attempts
        assert not link.connected()
    finally:
        link.stop()
    if which == "foreign_ca":
        assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
