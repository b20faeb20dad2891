"""The walking skeleton end to end: agents -> Mosquitto -> hub ingest -> InfluxDB -> API.

Everything here is a real process: mosquitto, influxd, ``dcor-hub ingest`` and
``dcor-agent run``, talking over loopback.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.localservices import InfluxProcess, MosquittoProcess, wait_until
from hub.web import create_app
from tests.integration.fleetkit import Fleet

pytestmark = pytest.mark.integration


@pytest.fixture
def fleet(tmp_path: Path, mosquitto_factory: Any, influxd: InfluxProcess,
          influx_db: str) -> Iterator[Fleet]:
    broker: MosquittoProcess = mosquitto_factory()
    f = Fleet(tmp_path / "fleet", broker.port, influxd.url, influx_db)
    f.broker = broker  # type: ignore[attr-defined]
    try:
        yield f
    finally:
        f.stop()


def api_devices(fleet: Fleet) -> dict[str, dict[str, Any]]:
    app = create_app(fleet.settings, registry=fleet.registry, influx=fleet.influx)
    with app.test_client() as c:
        return {d["id"]: d for d in c.get("/api/v1/devices").get_json()}


def test_three_agents_online_with_health_and_points(fleet: Fleet) -> None:
    ids = ["cam-beji-001", "cam-beji-002", "office-kemiri-01"]
    agents = [fleet.enroll(i).start() for i in ids]
    fleet.start_hub()
    started = time.monotonic()

    def all_online() -> bool:
        devs = api_devices(fleet)
        return all(devs[i]["state"] == "online" and devs[i]["health"] for i in ids)

    wait_until(all_online, timeout=15, interval=0.3, message="three agents online")
    assert time.monotonic() - started < 15
    devs = api_devices(fleet)
    for i in ids:
        assert devs[i]["health"]["cpu_pct"] is not None
        assert devs[i]["health"]["mem_pct"] > 0
    # InfluxDB holds their points, stamped with the agents' own clock (ms since epoch,
    # within the test's lifetime), not the hub's arrival time.
    t0_ms = int(time.time() * 1000) - 60_000
    for a in agents:
        series = fleet.influx.query(
            f"SELECT cpu_pct, seq FROM health WHERE device = '{a.device_id}'")
        values = series[0]["values"]
        assert values and all(v[0] > t0_ms for v in values)
    api = create_app(fleet.settings, registry=fleet.registry, influx=fleet.influx)
    with api.test_client() as c:
        one = c.get(f"/api/v1/devices/{ids[0]}").get_json()
    assert one["health_1h"], one


def test_killed_agent_goes_offline_and_seq_continues(fleet: Fleet) -> None:
    agent = fleet.enroll("cam-kill-001").start()
    fleet.start_hub()
    wait_until(lambda: api_devices(fleet)["cam-kill-001"]["state"] == "online", timeout=15)
    wait_until(lambda: len(fleet.stored_seqs("cam-kill-001")) >= 3, timeout=10)
    agent.kill()
    killed = time.monotonic()
    keepalive = 5
    wait_until(lambda: api_devices(fleet)["cam-kill-001"]["presence"] == "offline",
               timeout=1.5 * keepalive + 7, interval=0.2, message="last will seen by hub")
    assert time.monotonic() - killed <= 1.5 * keepalive + 7
    _, last_before = agent.outbox()
    agent.start()
    wait_until(lambda: api_devices(fleet)["cam-kill-001"]["state"] == "online", timeout=15)
    wait_until(lambda: max(fleet.stored_seqs("cam-kill-001")) > last_before + 2, timeout=10)
    seqs = sorted(fleet.stored_seqs("cam-kill-001"))
    # Monotonic across the restart, and nothing the killed process produced is missing.
    assert seqs == list(range(1, seqs[-1] + 1))


def _drain(fleet: Fleet, ids: list[str]) -> None:
    """Stop producing, let the outboxes empty: restart each agent with a slow health clock."""
    produced = {i: fleet.agents[i].outbox()[1] for i in ids}
    for i in ids:
        fleet.agents[i].terminate()
        path = fleet.agents[i].config_path
        cfg = yaml.safe_load(path.read_text())
        cfg["health"]["interval"] = "1h"
        path.write_text(yaml.safe_dump(cfg))
        fleet.agents[i].start()
    # The restarted agent reports once at start: wait for that too, then for empty outboxes.
    wait_until(lambda: all(fleet.agents[i].outbox()[0] == 0
                           and fleet.agents[i].outbox()[1] > produced[i] for i in ids),
               timeout=30,
               interval=0.3, message="outboxes empty")


def _assert_exactly_once(fleet: Fleet, ids: list[str]) -> None:
    for i in ids:
        _, last = fleet.agents[i].outbox()
        seqs = fleet.stored_seqs(i)
        assert len(seqs) == len(set(seqs)), f"{i}: duplicate points"
        assert sorted(seqs) == list(range(1, last + 1)), f"{i}: lost readings"


def test_broker_outage_loses_nothing(fleet: Fleet) -> None:
    ids = ["cam-outage-01", "cam-outage-02"]
    for i in ids:
        fleet.enroll(i, health={"interval": "0.2s"}).start()
    fleet.start_hub()
    wait_until(lambda: all(len(fleet.stored_seqs(i)) > 10 for i in ids), timeout=15)
    broker: MosquittoProcess = fleet.broker  # type: ignore[attr-defined]
    broker.stop()
    time.sleep(30)  # the outage itself: agents keep producing into their outboxes
    assert all(fleet.agents[i].outbox()[0] > 100 for i in ids)
    broker.restart()
    _drain(fleet, ids)
    _assert_exactly_once(fleet, ids)


def test_influx_outage_spools_and_replays(tmp_path: Path, mosquitto: MosquittoProcess,
                                          influxd_factory: Any) -> None:
    influx: InfluxProcess = influxd_factory()
    fleet = Fleet(tmp_path / "fleet", mosquitto.port, influx.url, "dcor")
    try:
        ids = ["cam-spool-01"]
        fleet.enroll(ids[0], health={"interval": "0.2s"}).start()
        fleet.start_hub()
        wait_until(lambda: len(fleet.stored_seqs(ids[0])) > 10, timeout=15)
        influx.stop()
        time.sleep(30)
        assert fleet.hub is not None and fleet.hub.poll() is None, fleet.hub_log()
        # Acked to the agent from the spool: the outbox does not grow during the outage.
        assert fleet.agents[ids[0]].outbox()[0] < 50
        assert list((tmp_path / "fleet/hub/spool").rglob("*.lp")), fleet.hub_log()
        influx.restart()
        _drain(fleet, ids)
        wait_until(lambda: not any((tmp_path / "fleet/hub/spool").rglob("*.lp")),
                   timeout=20, message="spool replayed")
        _assert_exactly_once(fleet, ids)
    finally:
        fleet.stop()
