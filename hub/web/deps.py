"""What the views need, stored on the app by the factory (``app.extensions["dcor"]``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import Flask, current_app

from hub.influx import InfluxClient
from hub.media.store import MediaStore
from hub.registry.db import Registry

EXTENSION_KEY = "dcor"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class WebDeps:
    registry: Registry
    influx: InfluxClient
    # Wall clock on purpose: states compare against times stored by the ingest.
    now: Callable[[], datetime] = utc_now
    # Clients the factory built itself and ``close_app`` must close.
    owned: list[Registry | InfluxClient] = field(default_factory=list)
    # Snapshots and clips on disk; None when the app was built without one (files then
    # answer 503, the registry's media rows are still listed).
    media: MediaStore | None = None


def deps(app: Flask | None = None) -> WebDeps:
    found: WebDeps = (app or current_app).extensions[EXTENSION_KEY]
    return found
