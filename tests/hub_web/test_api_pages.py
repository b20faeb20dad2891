"""``/api/v1/devices`` a page at a time: limit, the ``after`` cursor, the ``Link`` to the next
page, filters; and the registry reads behind it (no health blobs for devices not returned)."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from hub.registry.db import Registry
from hub.web import data
from hub.web.fleetplan import API_DEFAULT_LIMIT
from tests.hub_web.conftest import AddDevice


@pytest.fixture
def seven(add_device: AddDevice) -> None:
    for i in range(1, 8):
        add_device(f"cam-{i:03d}", kecamatan="Beji" if i <= 4 else "Limo",
                   kelurahan="Kemiri Muka" if i <= 4 else "Limo",
                   presence="offline" if i % 3 == 0 else "online", presence_ago=60,
                   last_health_ago=2, last_health={"uptime_s": i, "cpu_pct": float(i)})


def next_link(headers: dict[str, str]) -> str | None:
    link = headers.get("Link")
    if link is None:
        return None
    m = re.fullmatch(r'<([^>]+)>; rel="next"', link)
    assert m, link
    return m.group(1)


def test_walks_every_device_page_by_page(client: FlaskClient, seven: None) -> None:
    seen: list[str] = []
    url: str | None = "/api/v1/devices?limit=3"
    pages = 0
    while url:
        r = client.get(url)
        assert r.status_code == 200 and r.headers["X-Total-Count"] == "7"
        seen += [d["id"] for d in r.get_json()]
        url, pages = next_link(dict(r.headers)), pages + 1
    assert seen == [f"cam-{i:03d}" for i in range(1, 8)] and pages == 3
    first = client.get("/api/v1/devices?limit=3")
    assert next_link(dict(first.headers)) == "/api/v1/devices?after=cam-003&limit=3"


def test_default_page_has_no_link_when_everything_fits(client: FlaskClient,
                                                         seven: None) -> None:
    r = client.get("/api/v1/devices")
    assert len(r.get_json()) == 7 < API_DEFAULT_LIMIT
    assert "Link" not in r.headers and r.headers["X-Total-Count"] == "7"
    # Every device in full, as before pages existed.
    one = r.get_json()[0]
    assert one["health"]["cpu_pct"] == 1.0 and one["state"] == "online"


def test_filters_and_the_link_keeps_them(client: FlaskClient, seven: None) -> None:
    r = client.get("/api/v1/devices?kecamatan=Limo&limit=1")
    assert [d["id"] for d in r.get_json()] == ["cam-005"]
    assert r.headers["X-Total-Count"] == "3"
    assert next_link(dict(r.headers)) == "/api/v1/devices?kecamatan=Limo&after=cam-005&limit=1"
    offline = client.get("/api/v1/devices?state=offline").get_json()
    assert [d["id"] for d in offline] == ["cam-003", "cam-006"]
    attention = client.get("/api/v1/devices?state=attention&kelurahan=Kemiri+Muka").get_json()
    assert [d["id"] for d in attention] == ["cam-003"]
    assert [d["id"] for d in client.get("/api/v1/devices?q=CAM-00").get_json()][-1] == "cam-007"
    after = client.get("/api/v1/devices?after=cam-006").get_json()
    assert [d["id"] for d in after] == ["cam-007"]


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=ten", "after=Bad_Id",
                                   "state=broken", "kecamatan=" + "x" * 101])
def test_invalid_parameters_are_400_json(client: FlaskClient, query: str) -> None:
    r = client.get(f"/api/v1/devices?{query}")
    assert r.status_code == 400 and r.is_json
    assert r.get_json()["error"]["code"] == "invalid_query"


def test_registry_reads(registry: Registry, add_device: AddDevice,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    add_device("cam-002", kecamatan="Sawangan", kelurahan="Bedahan",
               last_health={"uptime_s": 1, "cameras": {"gate": {"state": "frozen"}}})
    # Streaming is the wire's default: a payload that names no state is not even decoded.
    add_device("cam-001", last_health={"uptime_s": 2, "cameras": {"gate": {"fps": 9.5}}})
    add_device("cam-003")
    index = {b.id: b for b in data.iter_index(registry)}
    assert set(index) == {"cam-001", "cam-002", "cam-003"}
    # The index has no health blob: only the cameras part of it, when a camera has a state.
    assert not hasattr(index["cam-002"], "last_health")
    assert index["cam-002"].camera_reports == (("gate", "frozen"),)
    assert index["cam-001"].camera_reports == () == index["cam-003"].camera_reports
    assert (index["cam-002"].kecamatan, index["cam-002"].site_name) == (
        "Sawangan", "Tiang Bedahan")
    # Full records of the ids asked for, by id, read a few ids at a time.
    monkeypatch.setattr(data, "_ID_CHUNK", 2)
    full = data.load_devices(registry, ["cam-003", "cam-002", "cam-001", "cam-404"])
    assert [r.id for r in full] == ["cam-001", "cam-002", "cam-003"]
    assert full[1].last_health == {"uptime_s": 1, "cameras": {"gate": {"state": "frozen"}}}
    assert data.load_devices(registry, []) == []
    assert [r.id for r in data.load_devices(registry)] == ["cam-001", "cam-002", "cam-003"]
    assert sorted(data.load_ids(registry)) == ["cam-001", "cam-002", "cam-003"]
    assert data.load_ids(registry, kecamatan="Sawangan") == ["cam-002"]
    assert data.load_ids(registry, kecamatan="Beji", kelurahan="Bedahan") == []
    assert sorted(data.load_ids(registry, kelurahan="Kemiri Muka")) == ["cam-001", "cam-003"]
