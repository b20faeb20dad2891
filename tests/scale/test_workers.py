"""Three ``dcor-hub ingest`` workers on one shared subscription, with real agents.

Each message must be delivered to one worker only and stored once, every device must get
its acks (whichever worker stored the seq), device state must follow presence although
state messages are not shared, and two ``dcor-hub alerts`` processes beside them must raise
one alert, not two.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from hub.alerts.tables import AlertRow, NotificationRow
from hub.localservices import InfluxProcess, MosquittoProcess, wait_until
from hub.web import create_app
from tests.integration.fleetkit import PY, Fleet

pytestmark = pytest.mark.integration

WORKERS = ("w1", "w2", "w3")
RULES = """
version: 1
desks:
  - {id: kominfo, name_id: Kominfo, name_en: Kominfo}
rules:
  - {id: device-offline, kind: device_offline, for: 1s, clear: 1s, desk: kominfo}
"""


class SharedHub:
    """The fleet's hub config with a share group; 3 ingest workers and 2 alert evaluators."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        rules = fleet.root / "rules.yaml"
        rules.write_text(RULES)
        cfg = yaml.safe_load(fleet.hub_config.read_text())
        cfg.update(mqtt_share_group="dcor-hub", alert_rules_path=str(rules),
                   alert_interval_s=0.3, alert_mqtt=False)
        fleet.hub_config.write_text(yaml.safe_dump(cfg))
        self.procs: list[subprocess.Popen[bytes]] = []

    def _spawn(self, name: str, *args: str) -> None:
        log = open(self.fleet.root / f"{name}.log", "ab")  # noqa: SIM115 - child owns it
        self.procs.append(subprocess.Popen(
            [PY, "-m", "hub.cli", "--config", str(self.fleet.hub_config), *args],
            stdout=log, stderr=subprocess.STDOUT))
        log.close()

    def start(self) -> None:
        for w in WORKERS:
            self._spawn(f"ingest-{w}", "ingest", "--worker-id", w)
        for a in ("a1", "a2"):
            self._spawn(f"alerts-{a}", "alerts")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()

    def logs(self) -> str:
        return "\n".join(f"== {f.name}\n{f.read_text(errors='replace')[-1500:]}"
                         for f in sorted(self.fleet.root.glob("*-*.log")))


@pytest.fixture
def fleet(tmp_path: Path, mosquitto_factory: Any, influxd: InfluxProcess,
          influx_db: str) -> Iterator[Fleet]:
    broker: MosquittoProcess = mosquitto_factory()
    f = Fleet(tmp_path / "fleet", broker.port, influxd.url, influx_db)
    try:
        yield f
    finally:
        f.stop()


def _devices(fleet: Fleet) -> dict[str, dict[str, Any]]:
    app = create_app(fleet.settings, registry=fleet.registry, influx=fleet.influx)
    with app.test_client() as c:
        return {d["id"]: d for d in c.get("/api/v1/devices").get_json()}


def _worker_counters(fleet: Fleet) -> dict[str, dict[str, Any]]:
    app = create_app(fleet.settings, registry=fleet.registry, influx=fleet.influx)
    with app.test_client() as c:
        body = c.get("/api/v1/ingest/stats").get_json()
    return {w["worker_id"]: w["counters"] for w in body["workers"]}


def test_three_workers_store_each_message_once(fleet: Fleet) -> None:
    ids = [f"cam-share-{i:02d}" for i in range(4)]
    for i in ids:
        fleet.enroll(i, health={"interval": "0.2s"}).start()
    hub = SharedHub(fleet)
    hub.start()
    try:
        wait_until(lambda: all(len(fleet.stored_seqs(i)) >= 25 for i in ids), timeout=40,
                   interval=0.3, message="every device stored")
        devs = _devices(fleet)
        assert all(devs[i]["state"] == "online" for i in ids), devs

        # Stop producing and let every outbox drain: the acks come from three workers.
        for i in ids:
            fleet.agents[i].terminate()
        produced = {i: fleet.agents[i].outbox()[1] for i in ids}
        for i in ids:
            cfg = yaml.safe_load(fleet.agents[i].config_path.read_text())
            cfg["health"]["interval"] = "1h"
            fleet.agents[i].config_path.write_text(yaml.safe_dump(cfg))
            fleet.agents[i].start()
        wait_until(lambda: all(fleet.agents[i].outbox()[0] == 0
                               and fleet.agents[i].outbox()[1] > produced[i] for i in ids),
                   timeout=40, interval=0.3, message="outboxes drained by the hub's acks")
        total = 0
        for i in ids:
            last = fleet.agents[i].outbox()[1]
            seqs = fleet.stored_seqs(i)
            assert sorted(seqs) == list(range(1, last + 1)), f"{i}: lost or duplicated"
            total += last

        # Shared, not fanned out: every worker took part, and together they received each
        # health message once. Presence goes to all three workers: each box says online,
        # offline, online again, and each worker may also get the retained state when it
        # subscribes, so at most 4 state messages per box per worker come on top.
        counters = wait_until(lambda: (c := _worker_counters(fleet)) and all(
            c.get(f"{w}", {}).get("received", 0) > 0 for w in WORKERS) and c, timeout=10)
        received = sum(int(counters[w]["received"]) for w in WORKERS)
        states = 4 * len(WORKERS) * len(ids)
        assert total <= received <= total + states, (received, total, counters)
        assert sum(int(counters[w].get("duplicates", 0)) for w in WORKERS) == 0

        # Presence is not shared: a killed agent's last will reaches every worker, and the
        # registry ends offline; the two evaluators raise one alert for it.
        victim = ids[0]
        fleet.agents[victim].kill()
        wait_until(lambda: _devices(fleet)[victim]["state"] == "offline", timeout=20,
                   interval=0.3, message="killed agent offline")
        wait_until(lambda: _alerts(fleet, victim), timeout=20, interval=0.3,
                   message=f"device-offline alert for {victim}\n{hub.logs()}")
        time.sleep(2)  # several evaluation rounds of both evaluators
        # (The drain restart above may have raised and resolved an earlier occurrence.)
        alerts = _alerts(fleet, victim, open_only=True)
        assert len(alerts) == 1, alerts
        with fleet.registry.session() as s:
            fired = s.scalars(select(NotificationRow).where(
                NotificationRow.alert_id == alerts[0], NotificationRow.kind == "firing")).all()
        assert len(fired) == 1
        assert all(_devices(fleet)[i]["state"] == "online" for i in ids[1:])
    finally:
        hub.stop()


def _alerts(fleet: Fleet, device: str, open_only: bool = True) -> list[str]:
    """The device-offline alerts of ``device`` (not yet resolved, unless ``open_only``)."""
    q = select(AlertRow.id).where(AlertRow.device == device, AlertRow.rule == "device-offline")
    if open_only:
        q = q.where(AlertRow.resolved_at.is_(None))
    with fleet.registry.session() as s:
        return list(s.scalars(q).all())
