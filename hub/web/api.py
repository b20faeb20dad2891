"""JSON API ``/api/v1``: devices (with each camera's newest snapshot), one device with its
last hour of health, ingest counters. Media files and listings are in ``hub.web.media``."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from dcor_wire.topics import TopicError, check_device_id
from hub.influx import InfluxError
from hub.web.data import (
    health_last_hour,
    iter_index,
    load_device,
    load_devices,
    load_ids,
    load_worker_stats,
)
from hub.web.deps import deps
from hub.web.errors import json_error
from hub.web.fleet import device_json
from hub.web.fleetplan import QueryError, entry_of, matches, parse_page, select_page
from hub.web.media import media_url
from hub.web.stats import stats_json

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/devices")
def devices() -> Response | tuple[Response, int]:
    try:
        page = parse_page(request.args)
    except QueryError as exc:
        return json_error(400, "invalid_query", str(exc))
    d = deps()
    now = d.now()
    f = page.filters
    if f.state or f.q:  # the index (no health blobs) decides which devices match
        matched = [e.id for e in (entry_of(b, now) for b in iter_index(d.registry))
                   if matches(e, f)]
    else:  # a place or none: the ids alone
        matched = load_ids(d.registry, kecamatan=f.kecamatan, kelurahan=f.kelurahan)
    ids, more, total = select_page(matched, page)
    # Only the page's devices are read in full.
    body = jsonify([device_json(r, now, media_url=media_url)
                    for r in load_devices(d.registry, ids)])
    body.headers["X-Total-Count"] = str(total)
    if more and ids:
        nxt = url_for("api.devices", **page.args(after=ids[-1]))
        body.headers["Link"] = f'<{nxt}>; rel="next"'
    return body


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
