"""Fixtures of the security tests: key material made once per run, a broker with the
dynamic-security plugin and a TLS listener, and web apps with real logins."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hub.broker.acl import ADMIN_ROLE, HUB_ROLE
from hub.broker.admin import BrokerEndpoint, DynsecAdmin
from hub.broker.dynsec_file import BrokerClient, initial_config, write_config
from hub.influx import InfluxClient
from hub.localservices import MosquittoProcess, TlsListener
from hub.registry.db import Registry
from hub.security.store import SecurityStore
from hub.web import create_app
from provisioning import pki

ADMIN_PW = "broker-admin-pw-0123456789"
HUB_PW = "hub-ingest-pw-0123456789"
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Pki:
    root: Path
    ca: Path  # the hub's CA
    cert: Path  # broker certificate for 127.0.0.1 and localhost, signed by ca
    key: Path
    foreign_ca: Path  # a CA nobody uses
    wrong_host_cert: Path  # signed by ca, but for broker.example only
    wrong_host_key: Path
    expired_cert: Path  # signed by ca, for 127.0.0.1, expired yesterday
    expired_key: Path


@pytest.fixture(scope="session")
def pki_files(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    ca_key, ca = pki.make_ca()
    _fk, foreign = pki.make_ca("someone else's CA")

    def pair(name: str, key: Any, cert: Any) -> tuple[Path, Path]:
        c = pki.write_file(root / f"{name}.crt", pki.cert_pem(cert), 0o644)
        k = pki.write_file(root / f"{name}.key", pki.private_pem(key), 0o600)
        return c, k

    cert, key = pair("broker", *pki.make_server_cert(ca_key, ca, ["127.0.0.1", "localhost"]))
    wc, wk = pair("wrong-host", *pki.make_server_cert(ca_key, ca, ["broker.example"]))
    now = dt.datetime.now(dt.UTC)
    ec, ek = pair("expired", *pki.make_server_cert(
        ca_key, ca, ["127.0.0.1"], not_before=now - dt.timedelta(days=30),
        not_after=now - dt.timedelta(days=1)))
    return Pki(root, pki.write_file(root / "ca.crt", pki.cert_pem(ca), 0o644), cert, key,
               pki.write_file(root / "foreign-ca.crt", pki.cert_pem(foreign), 0o644),
               wc, wk, ec, ek)


def dynsec_file(folder: Path) -> Path:
    return write_config(folder / "dynamic-security.json", initial_config([
        BrokerClient("dcor-admin", ADMIN_PW, (ADMIN_ROLE,)),
        BrokerClient("dcor-hub", HUB_PW, (HUB_ROLE,)),
    ]))


@pytest.fixture(scope="session")
def secure_broker(tmp_path_factory: pytest.TempPathFactory,
                  pki_files: Pki) -> Iterator[MosquittoProcess]:
    """Dynamic security on both listeners; TLS on ``tls_port``. Shared: tests use their own
    device ids; a test that restarts or kills a broker makes its own."""
    root = tmp_path_factory.mktemp("secure-broker")
    broker = MosquittoProcess(data_dir=root, dynsec_file=dynsec_file(root),
                              tls=TlsListener(pki_files.cert, pki_files.key))
    try:
        broker.start()
        yield broker
    finally:
        broker.close()


@pytest.fixture
def broker_admin(secure_broker: MosquittoProcess) -> DynsecAdmin:
    return DynsecAdmin(BrokerEndpoint("127.0.0.1", secure_broker.port, "dcor-admin", ADMIN_PW))


# --- web --------------------------------------------------------------------------------

@pytest.fixture
def security_registry(tmp_path: Path) -> Iterator[Registry]:
    from hub.registry.db import open_registry

    reg = open_registry(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    yield reg
    reg.close()


@pytest.fixture
def dead_influx() -> Iterator[InfluxClient]:
    from hub.influx import InfluxConfig
    from hub.localservices.process import free_port

    client = InfluxClient(InfluxConfig(url=f"http://127.0.0.1:{free_port()}", database="x",
                                       timeout_s=1.0))
    yield client
    client.close()


USERS = {  # username -> (role, desk)
    "ani-operator": ("operator", "dishub"),
    "budi-tech": ("technician", ""),
    "citra-admin": ("admin", ""),
}


@pytest.fixture
def users(security_registry: Registry) -> SecurityStore:
    store = SecurityStore(security_registry)
    for name, (role, desk) in USERS.items():
        store.create_user(name, PASSWORD, role, desk=desk)
    return store


MakeApp = Callable[..., Flask]


@pytest.fixture
def make_app(security_registry: Registry, dead_influx: InfluxClient, users: SecurityStore
             ) -> MakeApp:
    def make(**config: Any) -> Flask:
        # Plain-http test client: Secure cookies are tested on their own.
        return create_app(registry=security_registry, influx=dead_influx,
                          test_config={"TESTING": True, "DCOR_COOKIE_SECURE": False,
                                       **config})

    return make


@pytest.fixture
def app(make_app: MakeApp) -> Flask:
    return make_app()


_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    m = _CSRF_RE.search(page)
    assert m, page[:500]
    return m.group(1)


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    token = csrf_of(client)
    return client.post("/login", data={"username": username, "password": password,
                             "csrf_token": token})


def logged_in(app: Flask, username: str) -> tuple[FlaskClient, str]:
    """A client logged in as ``username`` and its CSRF token."""
    c = app.test_client()
    resp = login(c, username)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
    return c, csrf_of(c, "/account")
