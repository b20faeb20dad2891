"""Fixtures the integration tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.localservices import InfluxProcess, MosquittoProcess
from tests.integration.fleetkit import Fleet


@pytest.fixture
def fleet(tmp_path: Path, mosquitto_factory: Any, influxd: InfluxProcess,
          influx_db: str) -> Iterator[Fleet]:
    """A fleet with a broker of its own: retained state of other tests' devices would count
    as unknown. Modules that need another broker define their own ``fleet``."""
    broker: MosquittoProcess = mosquitto_factory()
    f = Fleet(tmp_path / "fleet", broker.port, influxd.url, influx_db)
    try:
        yield f
    finally:
        f.stop()
