"""The JSON API against a real SQLite registry; InfluxDB is down in these tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from hub.registry.db import Registry
from hub.web import create_app
from tests.hub_web.conftest import AddDevice

DEVICE_KEYS = {
    "id", "site", "site_name", "kecamatan", "kelurahan", "hardware", "profile", "status",
    "state", "presence", "presence_at", "last_seen", "last_health_at", "health_interval_s",
    "agent_version", "boot_id", "config_version", "last_seq", "health", "cameras",
}


def test_devices_list_shape(client: FlaskClient, add_device: AddDevice) -> None:
    add_device("cam-002", kecamatan="Sawangan", kelurahan="Bedahan", presence="offline",
               presence_ago=5)
    add_device("cam-001", presence="online", presence_ago=60, last_seen_ago=1,
               last_health_ago=1, agent_version="0.1.0", config_version=3, last_seq=42,
               boot_id="b-1", hardware="rpi4", profile="rpi4-cctv",
               last_health={"uptime_s": 5, "cpu_pct": 9.5, "temp_c": 48.0})
    r = client.get("/api/v1/devices")
    assert r.status_code == 200 and r.is_json
    body = r.get_json()
    assert isinstance(body, list)
    assert [d["id"] for d in body] == ["cam-001", "cam-002"]
    one = body[0]
    assert set(one) == DEVICE_KEYS
    assert one["state"] == "online"
    assert one["presence"] == "online"
    assert one["last_seen"] == {"utc": "2024-05-01T06:59:59.000Z",
                                "wib": "2024-05-01T13:59:59.000+07:00"}
    assert (one["agent_version"], one["config_version"], one["last_seq"]) == ("0.1.0", 3, 42)
    assert (one["kecamatan"], one["kelurahan"]) == ("Beji", "Kemiri Muka")
    assert one["site"] == "site-beji-kemiri-muka"
    assert one["health"]["cpu_pct"] == 9.5
    assert "mem_pct" not in one["health"]  # absent stays absent
    two = body[1]
    assert (two["state"], two["last_seen"], two["health"]) == ("offline", None, None)


def test_empty_registry(client: FlaskClient) -> None:
    assert client.get("/api/v1/devices").get_json() == []
    assert client.get("/api/v1/ingest/stats").get_json()["totals"] == {}


@pytest.mark.parametrize("bad", ["CAM-001", "ab", "a_b_c", "-abc", "x" * 64, "cam.001",
                                 "cam%2B001"])
def test_invalid_device_id_is_400_json(client: FlaskClient, bad: str) -> None:
    r = client.get(f"/api/v1/devices/{bad}")
    assert r.status_code == 400 and r.is_json
    err = r.get_json()["error"]
    assert err["status"] == 400 and err["code"] == "invalid_device_id"
    assert "invalid device id" in err["message"]


def test_unknown_device_is_404_json(client: FlaskClient) -> None:
    r = client.get("/api/v1/devices/cam-999")
    assert r.status_code == 404 and r.is_json
    assert r.get_json()["error"]["code"] == "unknown_device"


def test_api_errors_are_json(client: FlaskClient) -> None:
    r = client.get("/api/v1/no-such-thing")
    assert r.status_code == 404 and r.is_json
    assert r.get_json()["error"]["status"] == 404
    r = client.post("/api/v1/devices")
    assert r.status_code == 405 and r.is_json
    # outside the API, errors stay HTML
    r = client.get("/no-such-page")
    assert r.status_code == 404 and not r.is_json


def test_unexpected_api_failure_is_500_json(registry: Registry, dead_influx: Any,
                                            add_device: AddDevice) -> None:
    add_device("cam-001")

    def broken_clock() -> Any:
        raise RuntimeError("clock broke")

    app = create_app(registry=registry, influx=dead_influx,
                     test_config={"DCOR_NOW": broken_clock})
    r = app.test_client().get("/api/v1/devices")
    assert r.status_code == 500 and r.is_json
    assert r.get_json()["error"]["code"] == "internal_server_error"


def test_device_detail_when_influx_is_down(client: FlaskClient, add_device: AddDevice) -> None:
    add_device("cam-001", presence="online", presence_ago=3, last_health_ago=3,
               last_health={"uptime_s": 1})
    r = client.get("/api/v1/devices/cam-001")
    assert r.status_code == 200
    body = r.get_json()
    assert set(body) == DEVICE_KEYS | {"health_1h", "influx_error"}
    assert body["state"] == "online"
    assert body["health_1h"] is None
    assert body["influx_error"].startswith("InfluxDB could not answer")


def test_ingest_stats_sums_workers_and_marks_stale(client: FlaskClient,
                                                   add_worker: Callable[..., None]) -> None:
    add_worker("ingest-1", {"received": 10, "stored": 9, "rejected": {"bad_json": 1},
                            "spool_depth": 0})
    add_worker("ingest-2", {"received": 5, "stored": 5, "rejected": {"bad_json": 2, "nan": 1},
                            "duplicates": 3}, age_s=900)
    body = client.get("/api/v1/ingest/stats").get_json()
    assert body["totals"] == {"received": 15, "stored": 14, "spool_depth": 0,
                              "rejected": {"bad_json": 3, "nan": 1}, "duplicates": 3}
    assert [(w["worker_id"], w["stale"]) for w in body["workers"]] == [
        ("ingest-1", False), ("ingest-2", True)]
    assert body["workers"][1]["age_s"] == 900.0


def test_healthz(client: FlaskClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.get_json() == {"status": "ok", "registry": True}


def test_healthz_when_registry_is_gone(registry: Registry, dead_influx: Any) -> None:
    app = create_app(registry=registry, influx=dead_influx)
    registry.engine.dispose()
    # A database file in a folder that does not exist cannot be opened.
    gone = Registry("sqlite:////nonexistent-dir/x/registry.sqlite")
    app.extensions["dcor"].registry = gone
    r = app.test_client().get("/healthz")
    gone.close()
    assert r.status_code == 503
    assert r.get_json()["registry"] is False
