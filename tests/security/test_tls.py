"""The agent's TLS to the broker: certificate and host name checked, never plaintext.

A foreign CA, a certificate for another host name and an expired certificate are refused;
TLS configured against a plaintext listener never falls back to plaintext."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from edge_agent.config import validate_config
from edge_agent.outbox import Outbox
from edge_agent.uplink import Uplink
from hub.localservices import MosquittoProcess, TlsListener, wait_until
from tests.security.conftest import dynsec_file

pytestmark = pytest.mark.integration

PASSWORD = "tls-box-password-123"


def _uplink(tmp_path: Path, port: int, ca: Path, device_id: str) -> tuple[Uplink, Outbox]:
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    pw.chmod(0o600)
    cfg = validate_config({
        "device_id": device_id,
        "mqtt": {"host": "127.0.0.1", "port": port, "password_file": str(pw),
                 "tls": {"ca_file": str(ca)}, "require_tls": True,
                 "reconnect_min": "100ms", "reconnect_max": "200ms", "keepalive_s": 5},
        "outbox": {"path": str(tmp_path / "outbox.sqlite")},
    })
    outbox = Outbox(cfg.outbox.path, cfg.outbox.max_bytes)
    return Uplink(cfg, outbox, lambda online: b'{"online": %d}' % online), outbox


def _attempt(tmp_path: Path, port: int, ca: Path, device_id: str) -> tuple[bool, str]:
    """(connected, last error) after the uplink tried a few times."""
    up, outbox = _uplink(tmp_path, port, ca, device_id)
    up.start()
    try:
        wait_until(lambda: up.connected or up.stats.last_error, 10, message="an attempt")
        if not up.connected:
            time.sleep(0.6)  # several retries: still never connected
        return up.connected or up.stats.connects > 0, up.stats.last_error
    finally:
        up.stop(timeout=2)
        outbox.close()


@pytest.fixture
def device(broker_admin):
    device_id = f"tls-{uuid.uuid4().hex[:8]}"
    broker_admin.create_device(device_id, PASSWORD)
    yield device_id
    broker_admin.delete_device(device_id)


def test_the_right_ca_and_host_connects(tmp_path, secure_broker, pki_files, device):
    connected, _ = _attempt(tmp_path, secure_broker.tls_port, pki_files.ca, device)
    assert connected


def test_a_foreign_ca_is_refused(tmp_path, secure_broker, pki_files, device):
    connected, error = _attempt(tmp_path, secure_broker.tls_port, pki_files.foreign_ca, device)
    assert not connected and "CERTIFICATE_VERIFY_FAILED" in error


def test_tls_against_a_plaintext_listener_never_falls_back(tmp_path, secure_broker, pki_files,
                                                          device):
    connected, error = _attempt(tmp_path, secure_broker.port, pki_files.ca, device)
    assert not connected and error.startswith("connect:")
    log = secure_broker.log_tail(200)
    assert f"as {device}" not in log  # the broker never saw it log in


@pytest.mark.parametrize("which", ["wrong_host", "expired"])
def test_wrong_host_and_expired_certificates_are_refused(tmp_path, mosquitto_factory,
                                                         pki_files, which):
    cert, key = ((pki_files.wrong_host_cert, pki_files.wrong_host_key) if which == "wrong_host"
                 else (pki_files.expired_cert, pki_files.expired_key))
    folder = tmp_path / "broker"
    folder.mkdir()
    broker: MosquittoProcess = mosquitto_factory(dynsec_file=dynsec_file(folder),
                                                 tls=TlsListener(cert, key))
    from hub.broker.admin import BrokerEndpoint, DynsecAdmin
    from tests.security.conftest import ADMIN_PW

    DynsecAdmin(BrokerEndpoint("127.0.0.1", broker.port, "dcor-admin", ADMIN_PW)
                ).create_device("tls-box-01", PASSWORD)
    connected, error = _attempt(tmp_path, broker.tls_port, pki_files.ca, "tls-box-01")
    assert not connected
    reason = "address mismatch" if which == "wrong_host" else "certificate has expired"
    assert reason in error, error
