"""JSON API ``/api/v1``: devices (with each camera's newest snapshot), one device with its
last hour of health, ingest counters. Media files and listings are in ``hub.web.media``."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify

from dcor_wire.topics import TopicError, check_device_id
from hub.influx import InfluxError
from hub.web.data import health_last_hour, load_device, load_devices, load_worker_stats
from hub.web.deps import deps
from hub.web.errors import json_error
from hub.web.fleet import device_json
from hub.web.media import media_url
from hub.web.stats import stats_json

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/devices")
def devices() -> Response:
    d = deps()
    now = d.now()
    records = sorted(load_devices(d.registry), key=lambda r: r.id)
    return jsonify([device_json(r, now, media_url=media_url) for r in records])


@bp.get("/devices/<device_id>")
def device(device_id: str) -> Response | tuple[Response, int]:
    try:
        check_device_id(device_id)
    except TopicError as exc:
        return json_error(400, "invalid_device_id", str(exc))
    d = deps()
    rec = load_device(d.registry, device_id)
    if rec is None:
        return json_error(404, "unknown_device", f"no device {device_id!r} in the registry")
    body: dict[str, Any] = device_json(rec, d.now(), media_url=media_url)
    try:
        body["health_1h"] = health_last_hour(d.influx, device_id)
    except (InfluxError, ValueError) as exc:  # ValueError: a body that is not JSON
        # The registry part is still worth showing; say why the history is missing.
        log.warning("health history of %s unavailable: %s", device_id, exc)
        body["health_1h"] = None
        body["influx_error"] = f"InfluxDB could not answer: {str(exc)[:300]}"
    return jsonify(body)


@bp.get("/ingest/stats")
def ingest_stats() -> Response:
    d = deps()
    return jsonify(stats_json(load_worker_stats(d.registry), d.now()))
