"""Alerts with real processes: agents, ``dcor-hub ingest``, ``dcor-hub alerts`` and
``dcor-hub web`` against real Mosquitto and InfluxDB, a webhook receiver on loopback and a
server-sent events client."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from hub.alerts.tables import AlertRow, NotificationRow
from hub.localservices import InfluxProcess, MosquittoProcess, free_port, wait_until
from hub.registry.models import Device
from tests.alerts.receiver import SECRET, WebhookReceiver
from tests.alerts.test_web import SseClient
from tests.integration.fleetkit import PY, Fleet
from tests.integration.test_vision_path import camera_agent, needs_assets

pytestmark = pytest.mark.integration

KEL = "Kemiri Muka"
RULES = """
version: 1
desks:
  - {id: kominfo, name_id: Kominfo, name_en: Kominfo}
  - {id: satpol_pp, name_id: Satpol PP, name_en: Municipal police}
rules:
  - {id: uplink-down, kind: uplink_down, for: 2s, clear: 2s, severity: critical,
     desk: kominfo, inhibit: kelurahan}
  - {id: device-offline, kind: device_offline, for: 2s, clear: 1s, desk: kominfo,
     inhibit: device, group: {min_members: 2, wait: 1s}}
  - {id: camera-down, kind: camera_state, states: [down, no_frames], for: 2s, clear: 2s,
     desk: kominfo}
  - {id: crowd, kind: detection, classes: [person], min_count: %(persons)d, window: 4s,
     aggregate: mean, for: 5s, clear: 5s, desk: satpol_pp}
"""


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    srv = WebhookReceiver(fail_first=True).start()  # every delivery fails once, then succeeds
    yield srv
    srv.close()


@pytest.fixture
def fleet(tmp_path: Path, mosquitto: MosquittoProcess, influxd: InfluxProcess,
          influx_db: str) -> Iterator[Fleet]:
    f = Fleet(tmp_path / "fleet", mosquitto.port, influxd.url, influx_db)
    try:
        yield f
    finally:
        f.stop()


class HubProcs:
    """``dcor-hub alerts`` and ``dcor-hub web`` beside the fleet's ingest."""

    def __init__(self, fleet: Fleet, receiver: WebhookReceiver, persons: int = 3) -> None:
        self.fleet = fleet
        rules = fleet.root / "alert_rules.yaml"
        rules.write_text(RULES % {"persons": persons})
        config = yaml.safe_load(fleet.hub_config.read_text())
        # The wall screen reads without logging in: the SSE client below is one.
        config.update(alert_rules_path=str(rules), alert_interval_s=0.3,
                      web_anonymous_viewer=True, alert_webhooks=[{
            "name": "room", "url": receiver.url, "secret_env": "DCOR_TEST_HOOK_SECRET",
            "base_delay_s": 0.2, "max_delay_s": 1.0}])
        fleet.hub_config.write_text(yaml.safe_dump(config))
        self.web_port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *command: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DCOR_")}
        env["DCOR_TEST_HOOK_SECRET"] = SECRET.decode()
        with open(self.fleet.root / f"{command[0]}.log", "ab") as log:
            self.procs.append(subprocess.Popen(
                [PY, "-m", "hub.cli", "--config", str(self.fleet.hub_config), *command],
                stdout=log, stderr=subprocess.STDOUT, env=env))

    def start_alerts(self) -> None:
        self.start("alerts", "--worker-id", "it-alerts")

    def start_web(self) -> None:
        import http.client

        self.start("web", "--port", str(self.web_port))

        def answers() -> bool:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.web_port, timeout=1)
                conn.request("GET", "/healthz")
                return conn.getresponse().status == 200
            except OSError:
                return False

        wait_until(answers, timeout=30, message="web answers")

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()

    def log(self, name: str) -> str:
        return (self.fleet.root / f"{name}.log").read_text(errors="replace")[-3000:]


def notifications(fleet: Fleet) -> list[tuple[str, str, str]]:
    with fleet.registry.session() as s:
        return [(r.kind, r.body["rule_id"], r.body["subject"]["kelurahan"])
                for r in s.scalars(select(NotificationRow).order_by(NotificationRow.seq))]


def accepted(receiver: WebhookReceiver) -> list[tuple[str, str]]:
    return [(r.body["kind"], r.body["rule"]) for r in receiver.accepted()]


def online(fleet: Fleet, ids: list[str]) -> bool:
    with fleet.registry.session() as s:
        devs = s.scalars(select(Device).where(Device.id.in_(ids))).all()
        return len(devs) == len(ids) and all(
            d.presence == "online" and d.last_health_at is not None for d in devs)


def test_uplink_cut_gives_one_grouped_alert(fleet: Fleet, receiver: WebhookReceiver) -> None:
    cut = [f"kmk-{i}" for i in range(3)]
    agents = {d: fleet.enroll(d, kelurahan=KEL) for d in cut}
    fleet.enroll("btm-0", kelurahan="Beji Timur")
    hub = HubProcs(fleet, receiver)
    fleet.start_hub()
    hub.start_alerts()
    for agent in fleet.agents.values():
        agent.start()
    sse = None
    try:
        hub.start_web()
        sse = SseClient(hub.web_port, "/api/v1/alerts/stream?desk=kominfo")
        wait_until(lambda: online(fleet, [*cut, "btm-0"]), timeout=45, interval=0.3,
                   message="agents online")
        for d in cut:  # the kelurahan's uplink goes: its boxes drop off the broker at once
            agents[d].kill()

        def group_formed() -> bool:
            with fleet.registry.session() as s:
                rows = s.scalars(select(AlertRow).where(AlertRow.status == "firing")).all()
                return sum(r.rule == "device-offline" for r in rows) == 4  # 3 + the group
        wait_until(group_formed, timeout=30, interval=0.3, message="device alerts fired")
        wait_until(lambda: accepted(receiver), timeout=15, interval=0.2,
                   message=f"webhook; alerts log:\n{hub.log('alerts')}")
        [(_, event)] = sse.wait(1)
        assert (event["kind"], event["rule"], event["subject"]["kelurahan"]) == (
            "firing", "uplink-down", KEL)
        assert "Jaringan kelurahan terputus" in event["text"]["id"]
        # Device and camera alerts exist but the one uplink alert speaks for them all.
        assert notifications(fleet) == [("firing", "uplink-down", KEL)]

        for d in cut:  # the link is back
            agents[d].start()
        wait_until(lambda: len(accepted(receiver)) == 2, timeout=45, interval=0.3,
                   message=f"resolved; alerts log:\n{hub.log('alerts')}")
        assert accepted(receiver) == [("firing", "uplink-down"), ("resolved", "uplink-down")]
        assert notifications(fleet) == [("firing", "uplink-down", KEL),
                                        ("resolved", "uplink-down", KEL)]
        # Each notification reached the receiver once, and once more after its failure.
        assert sorted(receiver.attempts().values()) == [2, 2]
        assert all(r.signed for r in receiver.received)
        assert [e["kind"] for _, e in sse.wait(2)] == ["firing", "resolved"]
    finally:
        if sse is not None:
            sse.close()
        hub.stop()


@needs_assets
def test_crowd_rule_fires_on_the_video_replay(fleet: Fleet, receiver: WebhookReceiver) -> None:
    dev = "cam-crowd-001"
    camera_agent(fleet, dev).start()
    hub = HubProcs(fleet, receiver, persons=3)
    fleet.start_hub()
    hub.start_alerts()
    try:
        def crowd() -> Any:
            return [r.body for r in receiver.accepted() if r.body["rule"] == "crowd"]

        [body] = wait_until(crowd, timeout=90, interval=0.5,
                            message=f"crowd alert; alerts log:\n{hub.log('alerts')}")
        assert body["kind"] == "firing" and body["desks"] == ["satpol_pp"]
        assert body["subject"] == {
            "kind": "zone", "key": f"zone:{dev}/path/walkway", "kecamatan": "Beji",
            "kelurahan": KEL, "device": dev, "camera": "path", "zone": "walkway"}
        assert body["value"] >= 3
        assert body["text"]["en"].startswith("Warning: Detections over threshold — zone walkway")
        with fleet.registry.session() as s:
            row = s.scalars(select(AlertRow).where(AlertRow.rule == "crowd")).one()
            assert row.fired_at is not None
            held = (row.fired_at - row.since).total_seconds()
        assert held >= 5.0  # the for-duration held before it fired
    finally:
        hub.stop()
