"""``/api/v1/devices/<id>`` with its last hour of health from a real influxd."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from flask import Flask

from hub.influx import InfluxClient, InfluxConfig
from hub.localservices import InfluxProcess
from hub.registry.db import Registry
from hub.web import create_app
from hub.web.data import health_last_hour_query
from tests.hub_web.conftest import NOW, AddDevice

pytestmark = pytest.mark.integration


@pytest.fixture
def influx_client(influxd: InfluxProcess, influx_db: str) -> Iterator[InfluxClient]:
    client = InfluxClient(InfluxConfig(url=influxd.url, database=influx_db, timeout_s=5.0))
    yield client
    client.close()


@pytest.fixture
def live_app(registry: Registry, influx_client: InfluxClient) -> Flask:
    return create_app(registry=registry, influx=influx_client,
                      test_config={"TESTING": True, "DCOR_NOW": lambda: NOW})


def test_health_1h_from_influx(live_app: Flask, influxd: InfluxProcess, influx_db: str,
                               add_device: AddDevice) -> None:
    add_device("cam-001", presence="online", presence_ago=1, last_health_ago=1)
    now_ms = int(time.time() * 1000)
    # The device's own timestamps, as the ingest writes them (ms precision).
    lines = [
        f"health,device=cam-001,kecamatan=Beji,kelurahan=Kemiri\\ Muka "
        f"cpu_pct=10.5,temp_c=50,outbox_depth=0i,seq=1i {now_ms - 120_000}",
        # no temperature source on this report: the point has no temp_c
        f"health,device=cam-001,kecamatan=Beji,kelurahan=Kemiri\\ Muka "
        f"cpu_pct=11.5,outbox_depth=2i,seq=2i {now_ms - 60_000}",
        # older than an hour: not returned
        f"health,device=cam-001 cpu_pct=99,seq=0i {now_ms - 2 * 3600_000}",
        # another device
        f"health,device=cam-002 cpu_pct=1,seq=5i {now_ms - 30_000}",
    ]
    influxd.write("\n".join(lines), db=influx_db)

    r = live_app.test_client().get("/api/v1/devices/cam-001")
    assert r.status_code == 200
    body = r.get_json()
    assert "influx_error" not in body
    assert body["state"] == "online"
    assert body["health_1h"] == [
        {"time": now_ms - 120_000, "cpu_pct": 10.5, "temp_c": 50, "outbox_depth": 0, "seq": 1},
        {"time": now_ms - 60_000, "cpu_pct": 11.5, "outbox_depth": 2, "seq": 2},
    ]


def test_no_points_is_an_empty_list(live_app: Flask, add_device: AddDevice) -> None:
    add_device("cam-007")
    body = live_app.test_client().get("/api/v1/devices/cam-007").get_json()
    assert body["health_1h"] == []
    assert "influx_error" not in body


def test_missing_database_is_reported_not_raised(registry: Registry, influxd: InfluxProcess,
                                                 add_device: AddDevice) -> None:
    add_device("cam-001")
    client = InfluxClient(InfluxConfig(url=influxd.url, database="t_never_created"))
    try:
        app = create_app(registry=registry, influx=client)
        r = app.test_client().get("/api/v1/devices/cam-001")
    finally:
        client.close()
    assert r.status_code == 200
    body = r.get_json()
    assert body["health_1h"] is None
    assert "database not found" in body["influx_error"]


def test_query_quotes_the_device_id() -> None:
    q = health_last_hour_query("cam-001")
    assert "\"device\" = 'cam-001'" in q and "now() - 1h" in q
    with pytest.raises(ValueError, match="invalid device id"):
        health_last_hour_query("x' OR 1=1 --")
