"""Fixtures for the web app: a real SQLite registry in tmp_path and a fixed clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hub.influx import InfluxClient, InfluxConfig
from hub.localservices.process import free_port
from hub.registry.db import Registry, open_registry
from hub.registry.models import Device, IngestWorkerStats, Site
from hub.web import create_app

# 2024-05-01 07:00 UTC is 14:00 WIB.
NOW = datetime(2024, 5, 1, 7, 0, 0, tzinfo=UTC)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = open_registry(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    yield reg
    reg.close()


@pytest.fixture
def dead_influx() -> Iterator[InfluxClient]:
    """A client pointed at a loopback port nobody listens on: InfluxDB is down."""
    client = InfluxClient(InfluxConfig(url=f"http://127.0.0.1:{free_port()}", database="dcor",
                                       timeout_s=2.0))
    yield client
    client.close()


AddDevice = Callable[..., None]


@pytest.fixture
def add_device(registry: Registry) -> AddDevice:
    """``add_device(id, kecamatan=, kelurahan=, **Device columns)``; the site is made as needed.

    Times may be given as seconds before NOW (``presence_ago=5``) or as datetimes.
    """

    def add(device_id: str, *, kecamatan: str = "Beji", kelurahan: str = "Kemiri Muka",
            site_name: str = "", **columns: Any) -> None:
        for key in ("presence", "last_seen", "last_health"):
            ago = columns.pop(f"{key}_ago", None)
            if ago is not None:
                columns[f"{key}_at"] = NOW - timedelta(seconds=ago)
        site_id = f"site-{kecamatan}-{kelurahan}".lower().replace(" ", "-")
        with registry.session() as s:
            if s.get(Site, site_id) is None:
                s.add(Site(id=site_id, name=site_name or f"Tiang {kelurahan}",
                           kecamatan=kecamatan, kelurahan=kelurahan))
            s.add(Device(id=device_id, site_id=site_id, created_at=NOW, **columns))

    return add


@pytest.fixture
def add_worker(registry: Registry) -> Callable[..., None]:
    def add(worker_id: str, counters: dict[str, Any], age_s: float = 1.0) -> None:
        with registry.session() as s:
            s.add(IngestWorkerStats(worker_id=worker_id, counters=counters,
                                    updated_at=NOW - timedelta(seconds=age_s)))

    return add


@pytest.fixture
def app(registry: Registry, dead_influx: InfluxClient) -> Flask:
    return create_app(registry=registry, influx=dead_influx,
                      test_config={"TESTING": True, "DCOR_NOW": lambda: NOW})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
