"""The registry on PostgreSQL: migrations, and the hub running on it.

The test starts its own server (``PostgresProcess``: initdb in a temporary folder, a free
port, stopped by PID), never the machine's. SQLite stays the default and is migrated too.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, select

from hub.cli import main as hub_main
from hub.localservices import InfluxProcess, PostgresProcess, wait_until
from hub.localservices.postgres import pg_bindir
from hub.registry.db import open_registry
from hub.registry.migrations import alembic_config, all_metadata, current_revision
from hub.registry.models import Device
from hub.web import create_app
from tests.integration.fleetkit import PY, Fleet

pytestmark = pytest.mark.integration


def _have_postgres() -> bool:
    try:
        pg_bindir()
    except Exception:
        return False
    return True


needs_postgres = pytest.mark.skipif(not _have_postgres(),
                                    reason="PostgreSQL server binaries not installed "
                                           "(apt-get install -y postgresql)")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresProcess]:
    server = PostgresProcess()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def pg_url(postgres: PostgresProcess) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:8]}"
    url = postgres.create_database(name)
    yield url
    postgres.drop_database(name)


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def _schema_drift(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, all_metadata()))
    finally:
        engine.dispose()


def _migrate(url: str, capsys: pytest.CaptureFixture[str]) -> str:
    env_before = os.environ.get("DCOR_DATABASE_URL")
    os.environ["DCOR_DATABASE_URL"] = url
    try:
        assert hub_main(["migrate"]) == 0
    finally:
        if env_before is None:
            del os.environ["DCOR_DATABASE_URL"]
        else:
            os.environ["DCOR_DATABASE_URL"] = env_before
    return capsys.readouterr().out


@needs_postgres
def test_migrate_creates_every_table_on_postgres(pg_url: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = _migrate(pg_url, capsys)
    assert "newest schema" in out and "postgres" in out
    assert current_revision(pg_url) == _head()
    # The migrations and the models agree: a table changed without a revision fails here.
    assert _schema_drift(pg_url) == []
    engine = create_engine(pg_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"sites", "devices", "ingest_worker_stats", "alerts", "alert_notifications"} <= tables
    # Running it again is a no-op.
    _migrate(pg_url, capsys)
    assert current_revision(pg_url) == _head()


def test_migrate_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    _migrate(url, capsys)
    assert current_revision(url) == _head()
    assert _schema_drift(url) == []


@needs_postgres
def test_hub_runs_on_postgres(tmp_path: Path, pg_url: str, mosquitto: Any,
                              influxd: InfluxProcess, influx_db: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """Two ingest workers with DCOR_DATABASE_URL pointing at PostgreSQL; the web API reads
    the devices they updated."""
    _migrate(pg_url, capsys)
    fleet = Fleet(tmp_path / "fleet", mosquitto.port, influxd.url, influx_db)
    fleet.registry.close()
    fleet.registry = open_registry(pg_url, create=False)
    cfg = yaml.safe_load(fleet.hub_config.read_text())
    cfg.update(database_url="", mqtt_share_group="dcor-hub")  # the URL comes from the env
    fleet.hub_config.write_text(yaml.safe_dump(cfg))
    fleet.settings = fleet.settings.model_copy(update={"database_url": pg_url})
    ids = ["cam-pg-01", "cam-pg-02"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i in ids:
            fleet.enroll(i).start()
        env = {**os.environ, "DCOR_DATABASE_URL": pg_url}
        for w in ("w1", "w2"):
            log = open(fleet.root / f"ingest-{w}.log", "ab")  # noqa: SIM115 - child owns it
            procs.append(subprocess.Popen(
                [PY, "-m", "hub.cli", "--config", str(fleet.hub_config), "ingest",
                 "--worker-id", w], stdout=log, stderr=subprocess.STDOUT, env=env))
            log.close()
        app = create_app(fleet.settings, registry=fleet.registry, influx=fleet.influx)

        def online() -> bool:
            with app.test_client() as c:
                devs = {d["id"]: d for d in c.get("/api/v1/devices").get_json()}
            return all(devs[i]["state"] == "online" and devs[i]["health"] for i in ids)

        wait_until(online, timeout=30, interval=0.3, message="devices online via PostgreSQL")
        with fleet.registry.session() as s:
            rows = s.scalars(select(Device).where(Device.id.in_(ids))).all()
            assert all(r.last_seq > 0 and r.presence == "online" for r in rows)
        assert all(len(fleet.stored_seqs(i)) > 0 for i in ids)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        fleet.stop()
