"""Shared fixtures: real Mosquitto and influxd on free 127.0.0.1 ports.

Session-wide services are shared read-mostly: tests keep to their own topics (a unique device
id) and their own database (``influx_db``). A test that stops, kills, pauses or restarts a
service takes its own from ``mosquitto_factory`` / ``influxd_factory``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.localservices import InfluxProcess, MosquittoProcess

MosquittoFactory = Callable[..., MosquittoProcess]
InfluxFactory = Callable[..., InfluxProcess]


@pytest.fixture(autouse=True)
def _web_without_login(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests of other areas call the web app without logging in: every request acts as an
    admin there. ``tests/security`` tests the real login, roles and CSRF."""
    if "security" not in Path(str(request.node.path)).parts:
        monkeypatch.setattr("hub.web.security_setup.TESTS_WITHOUT_LOGIN", True)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoProcess]:
    """One broker for the whole run (anonymous, no persistence). Do not stop it in a test."""
    broker = MosquittoProcess(data_dir=tmp_path_factory.mktemp("mosquitto"))
    try:
        broker.start()
        yield broker
    finally:
        broker.close()


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxProcess]:
    """One influxd for the whole run. Use ``influx_db`` for a database of your own."""
    server = InfluxProcess(data_dir=tmp_path_factory.mktemp("influxd"))
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[MosquittoFactory]:
    """``make(**MosquittoProcess kwargs)`` -> a started broker of this test's own.

    Each call gets its own data folder under ``tmp_path`` unless ``data_dir`` is given; every
    broker made is killed after the test, whether it passed or not.
    """
    made: list[MosquittoProcess] = []

    def make(**kwargs: Any) -> MosquittoProcess:
        kwargs.setdefault("data_dir", tmp_path / f"mosquitto-{len(made)}")
        broker = MosquittoProcess(**kwargs)
        made.append(broker)
        return broker.start()

    try:
        yield make
    finally:
        _kill_all(made)


@pytest.fixture
def influxd_factory(tmp_path: Path) -> Iterator[InfluxFactory]:
    """``make(**InfluxProcess kwargs)`` -> a started influxd this test may stop or kill."""
    made: list[InfluxProcess] = []

    def make(**kwargs: Any) -> InfluxProcess:
        kwargs.setdefault("data_dir", tmp_path / f"influxd-{len(made)}")
        server = InfluxProcess(**kwargs)
        made.append(server)
        return server.start()

    try:
        yield make
    finally:
        _kill_all(made)


@pytest.fixture
def influx_db(influxd: InfluxProcess) -> Iterator[str]:
    """A fresh database ``t_<8 hex>`` on the session influxd, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:8]}"
    influxd.create_database(name)
    yield name
    if influxd.is_running():
        influxd.drop_database(name)


@pytest.fixture
def device_id() -> str:
    """A wire-valid device id no other test uses, so topics on the shared broker never mix."""
    return f"test-{uuid.uuid4().hex[:12]}"


def _kill_all(services: list[MosquittoProcess] | list[InfluxProcess]) -> None:
    # Tests own these and may have left them paused or half-broken: SIGKILL, no grace needed.
    for service in services:
        service.kill()
        service.close()
