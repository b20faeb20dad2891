"""Notification texts, MQTT messages, and signed webhooks against a real loopback server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dcor_wire.topics import DEVICE_ID_RE, parse_topic
from hub.alerts.model import Notification, Subject
from hub.alerts.notify import (
    NotifyError,
    WebhookConfig,
    WebhookSender,
    alert_topic,
    mqtt_messages,
    notification_payload,
    verify_signature,
)
from hub.alerts.rules import default_rules
from hub.alerts.texts import render, render_all
from tests.alerts.scenario import cam, dev, kel, t, zone

SECRET = b"s3cret-for-tests"


def note(**kw: Any) -> Notification:
    base = Notification(
        id="abc:firing", kind="firing", alert_id="abc", rule_id="device-offline",
        rule_kind="device_offline", subject=dev("dev-a"), severity="warning",
        desks=("kominfo",), at=t(90), since=t(0),
    )
    return replace(base, **kw)


RULES = default_rules().by_id


@pytest.mark.parametrize(("n", "rule", "id_text", "en_text"), [
    (note(), "device-offline",
     "Peringatan: Perangkat offline — perangkat dev-a (Kel. Beji Timur, Kec. Beji), "
     "sejak 2025-01-06 08:00:00 WIB",
     "Warning: Device offline — device dev-a (Beji Timur, Beji), since 2025-01-06 08:00:00 WIB"),
    (note(subject=kel(), members=3), "device-offline",
     "Peringatan: Perangkat offline — Kel. Beji Timur, Kec. Beji: 3 perangkat, "
     "sejak 2025-01-06 08:00:00 WIB",
     "Warning: Device offline — Beji Timur, Beji: 3 devices, since 2025-01-06 08:00:00 WIB"),
    (note(kind="resolved", rule_id="camera-tampered", rule_kind="camera_state",
          subject=cam("dev-a"), detail="frozen", severity="critical"), "camera-tampered",
     "Pulih: Kamera bermasalah (gambar beku) — kamera cam1 di dev-a (Kel. Beji Timur, "
     "Kec. Beji), 2025-01-06 08:01:30 WIB",
     "Resolved: Camera problem (frozen image) — camera cam1 on dev-a (Beji Timur, Beji), "
     "2025-01-06 08:01:30 WIB"),
    (note(kind="escalated", step=1, rule_id="box-hot", rule_kind="metric", value=86.5,
          severity="critical"), "box-hot",
     "ESKALASI Kritis: Suhu perangkat tinggi — perangkat dev-a (Kel. Beji Timur, Kec. Beji), "
     "belum ditanggapi sejak 2025-01-06 08:00:00 WIB",
     "ESCALATED Critical: Box temperature high — device dev-a (Beji Timur, Beji), "
     "not acknowledged since 2025-01-06 08:00:00 WIB"),
    (note(rule_id="crowd", rule_kind="detection", subject=zone("dev-a", "alun"), value=31.0),
     "crowd",
     "Peringatan: Kerumunan — zona alun, kamera cam1 (Kel. Beji Timur, Kec. Beji), "
     "sejak 2025-01-06 08:00:00 WIB (nilai 31)",
     "Warning: Crowd — zone alun, camera cam1 (Beji Timur, Beji), "
     "since 2025-01-06 08:00:00 WIB (value 31)"),
    (note(kind="flapping", rule_id="clock-unsynced", rule_kind="flag", severity="info"),
     "clock-unsynced",
     "Info: Jam perangkat tidak sinkron — perangkat dev-a (Kel. Beji Timur, Kec. Beji) "
     "berulang kali naik-turun (flapping) sejak 2025-01-06 08:00:00 WIB",
     "Info: Clock not synced — device dev-a (Beji Timur, Beji) keeps flapping since "
     "2025-01-06 08:00:00 WIB"),
])
def test_texts_in_both_languages(n: Notification, rule: str, id_text: str, en_text: str) -> None:
    assert render_all(n, RULES[rule]) == {"id": id_text, "en": en_text}


def test_every_kind_renders_without_a_rule() -> None:
    for kind in ("firing", "flapping", "escalated", "resolved"):
        for subject in (dev("dev-a"), cam("dev-a"), zone("dev-a", "z"), kel()):
            assert all(render_all(note(kind=kind, subject=subject, rule_kind="x")).values())
    with pytest.raises(ValueError, match="language"):
        render(note(), "fr")


def test_mqtt_messages_per_desk() -> None:
    n = note(desks=("kominfo", "satpol_pp"))
    messages = mqtt_messages(n, RULES["device-offline"])
    assert [m.topic for m in messages] == ["dcor/v1/_hub/alerts/kominfo",
                                           "dcor/v1/_hub/alerts/satpol_pp"]
    assert all(m.qos == 1 and not m.retain for m in messages)
    body = json.loads(messages[0].payload)
    assert body["id"] == n.id and body["subject"]["device"] == "dev-a"
    assert body["text"]["id"].startswith("Peringatan: Perangkat offline")
    # ``_hub`` can never be a device id, so no device can publish under it.
    assert not DEVICE_ID_RE.fullmatch("_hub")
    with pytest.raises(ValueError):
        parse_topic(messages[0].topic)
    with pytest.raises(ValueError, match="desk"):
        alert_topic("Bad/desk")


class _Receiver(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        srv = self.server
        with srv.lock:
            status = srv.statuses.pop(0) if srv.statuses else 200
            srv.requests.append((dict(self.headers), body, status))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receiver)
        self.lock = threading.Lock()
        self.statuses: list[int] = []
        self.requests: list[tuple[dict[str, str], bytes, int]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def accepted(self) -> list[str]:
        return [h["X-Dcor-Delivery"] for h, _, status in self.requests if status == 200]


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                              name="dcor.test-webhook", daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def sender(url: str, sleeps: list[float], **kw: Any) -> WebhookSender:
    config = WebhookConfig(name="room-test", url=url, secret_env="X", **kw)
    return WebhookSender(config, SECRET, sleep=sleeps.append, jitter=lambda: 0.0)


def test_webhook_fails_once_then_delivers_once(server: _Server) -> None:
    server.statuses = [500]
    sleeps: list[float] = []
    hook = sender(server.url, sleeps)
    try:
        first = hook.send(note(), RULES["device-offline"])
        second = hook.send(note(id="abc:resolved", kind="resolved"))
    finally:
        hook.close()
    assert (first.ok, first.attempts, first.status) == (True, 2, 200)
    assert (second.ok, second.attempts) == (True, 1)
    assert sleeps == [0.25]  # base 0.5 s, jitter factor 0.5
    assert [s for _, _, s in server.requests] == [500, 200, 200]
    assert server.accepted() == ["abc:firing", "abc:resolved"]
    for headers, body, _ in server.requests:
        assert verify_signature(SECRET, headers["X-Dcor-Timestamp"], body,
                                headers["X-Dcor-Signature"])
        assert not verify_signature(b"wrong", headers["X-Dcor-Timestamp"], body,
                                    headers["X-Dcor-Signature"])
    payload = json.loads(server.requests[1][1])
    assert payload == json.loads(json.dumps(notification_payload(note(),
                                                                 RULES["device-offline"])))


def test_webhook_gives_up_on_client_errors_at_once(server: _Server) -> None:
    server.statuses = [400]
    sleeps: list[float] = []
    result = sender(server.url, sleeps).send(note())
    assert (result.ok, result.retryable, result.attempts, result.status) == (
        False, False, 1, 400)
    assert sleeps == []


def test_webhook_retries_on_a_capped_schedule_then_reports(server: _Server) -> None:
    server.statuses = [503, 429, 500, 502]
    sleeps: list[float] = []
    result = sender(server.url, sleeps, attempts=4, base_delay_s=1, max_delay_s=3).send(note())
    assert (result.ok, result.retryable, result.attempts, result.status) == (
        False, True, 4, 502)
    assert sleeps == [0.5, 1.0, 1.5]  # 1, 2, 4 -> capped 3; times the 0.5 jitter factor


def test_webhook_connection_refused_is_retryable() -> None:
    probe = _Server()  # take a free port, then close it so nothing listens there
    url = probe.url
    probe.server_close()
    sleeps: list[float] = []
    result = sender(url, sleeps, attempts=2, timeout_s=2).send(note())
    assert (result.ok, result.retryable, result.status, result.attempts) == (
        False, True, None, 2)
    assert "ConnectionError" in result.error


def test_webhook_deadline_stops_retrying(server: _Server) -> None:
    server.statuses = [500] * 5
    clock = iter([0.0, 0.1, 100.0])
    config = WebhookConfig(name="x", url=server.url, secret_env="X", attempts=5,
                           deadline_s=5)
    hook = WebhookSender(config, SECRET, sleep=lambda s: None, monotonic=lambda: next(clock))
    assert hook.send(note()).attempts == 2


def test_webhook_secret_references(tmp_path: Path) -> None:
    by_env = WebhookConfig(name="a", url="http://127.0.0.1:1/", secret_env="HOOK_SECRET")
    assert by_env.secret({"HOOK_SECRET": "abc"}) == b"abc"
    with pytest.raises(NotifyError, match="HOOK_SECRET"):
        by_env.secret({})
    path = tmp_path / "secret"
    path.write_text("from-file\n")
    assert WebhookConfig(name="b", url="http://x/", secret_file=path).secret({}) == b"from-file"
    with pytest.raises(NotifyError, match="secret_env or secret_file"):
        WebhookConfig(name="c", url="http://x/").secret({})
    only_dishub = WebhookConfig(name="d", url="http://x/", desks=["dishub"])
    assert not only_dishub.wants(note()) and only_dishub.wants(note(desks=("ops", "dishub")))
    assert Subject("device", "a", "b", device="c").key == "device:c"
