"""One device's page: what it is and where, its cameras, charts of CPU, temperature, outbox
depth, fps and inference time over 1 h / 24 h / 7 d (InfluxDB, downsampled with GROUP BY
time, drawn as inline SVG by ``hub.web.svgchart``), detection counts, events with their
snapshots and clips, desired and reported configuration, and (for admins) its audit trail.

``GET /api/v1/devices/<id>/history?range=1h|24h|7d`` gives the same history as JSON.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from babel.numbers import format_decimal
from flask import Blueprint, Response, abort, jsonify, render_template, request
from flask_babel import gettext as _

from dcor_wire.topics import TopicError, check_device_id
from hub.influx import InfluxError
from hub.web.auth import principal
from hub.web.data import list_media, load_device
from hub.web.deps import deps
from hub.web.devicedata import History, audit_trail, config_state, event_media, history
from hub.web.errors import json_error
from hub.web.fleet import ABSENT, device_json, device_time, format_health
from hub.web.i18n import current_language
from hub.web.media import media_url
from hub.web.policy import Perm, allowed
from hub.web.series import RANGES, Range, parse_range
from hub.web.svgchart import Chart, line_chart
from hub.web.timefmt import display_wib
from hub.web.views import state_labels
from hub.web.wall import camera_labels, live_strings

log = logging.getLogger(__name__)

bp = Blueprint("device", __name__)


def range_labels() -> dict[str, str]:
    return {"1h": _("1 hour"), "24h": _("24 hours"), "7d": _("7 days")}


def event_labels() -> dict[str, str]:
    return {"zone_enter": _("Entered a zone"), "crowd": _("Crowd"),
            "camera_down": _("Camera down"), "frozen": _("Frozen image"),
            "covered": _("Camera covered"), "scene_change": _("Scene changed"),
            "detector_stalled": _("Detector stalled"), "raised": _("raised"),
            "cleared": _("cleared"), "instant": _("instant")}


def wib_text(t: dict[str, Any] | None) -> str:
    """An API time (``time_json``) as the page writes it."""
    wib = (t or {}).get("wib")
    return f"{wib[:10]} {wib[11:19]} WIB" if isinstance(wib, str) else ABSENT


def _fmt(decimals: int, unit: str) -> Callable[[float], str]:
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    lang = current_language()
    return lambda v: format_decimal(v, pattern, locale=lang) + unit


def charts(h: History, r: Range) -> list[dict[str, Any]]:
    end_ms = int(time.time() * 1000)  # InfluxDB's now(): the ranges are relative to it
    start_ms = end_ms - r.seconds * 1000
    specs = [
        ("cpu_pct", _("CPU"), h.health.get("cpu_pct", {}), _fmt(0, "%"), 0.0),
        ("temp_c", _("Temperature"), h.health.get("temp_c", {}), _fmt(0, " °C"), 0.0),
        ("outbox_depth", _("Outbox depth"), h.health.get("outbox_depth", {}), _fmt(0, ""), 0.0),
        ("fps", _("Frames per second"), h.cameras.get("fps", {}), _fmt(1, ""), 0.0),
        ("inference_ms", _("Inference time"), h.cameras.get("inference_ms", {}),
         _fmt(0, " ms"), 0.0),
    ]
    out = []
    for key, title, series, fmt, floor in specs:
        chart: Chart = line_chart(series, start_ms, end_ms, r.bucket_s, fmt, y_floor=floor)
        out.append({"key": key, "title": title, "chart": chart,
                    "last": [(line.name, fmt(line.last)) for line in chart.lines
                             if line.last is not None]})
    return out


def _events(h: History, registry: Any, device_id: str) -> list[dict[str, Any]]:
    media = event_media(registry, device_id, [str(e.get("id", "")) for e in h.events])
    out = []
    for e in h.events:
        ms = int(e.get("time", 0))
        out.append({**e, "when": display_wib(device_time(ms)) or ABSENT,
                    "media": media.get(str(e.get("id", "")), [])})
    return out


def _load(device_id: str) -> Any:
    try:
        check_device_id(device_id)
    except TopicError:
        abort(404)
    rec = load_device(deps().registry, device_id)
    if rec is None:
        abort(404)
    return rec


@bp.get("/devices/<device_id>")
def device_page(device_id: str) -> str:
    d = deps()
    rec = _load(device_id)
    now = d.now()
    data = device_json(rec, now, media_url=media_url)
    r = parse_range(request.args.get("range"))
    influx_error = None
    try:
        h = history(d.influx, device_id, r)
    except (InfluxError, ValueError) as exc:
        log.warning("history of %s unavailable: %s", device_id, exc)
        h, influx_error = History(), str(exc)[:300]
    lang = current_language()
    return render_template(
        "device.html", d=data, rec=rec, r=r, ranges=RANGES, range_labels=range_labels(),
        charts=charts(h, r), counts=h.counts, events=_events(h, d.registry, device_id),
        snapshots=list_media(d.registry, device_id, kind="snapshot", limit=8),
        clips=list_media(d.registry, device_id, kind="clip", limit=8),
        config=config_state(d.registry, device_id),
        audit=audit_trail(d.registry, device_id) if allowed(principal().role, Perm.ADMIN)
        else None,
        influx_error=influx_error, labels=state_labels(), cam_labels=camera_labels(),
        event_labels=event_labels(), display_wib=display_wib, device_time=device_time,
        health=format_health(rec.last_health, locale=lang, yes=_("yes"), no=_("no")),
        last_seen=display_wib(rec.last_seen_at) or ABSENT, media_url=media_url,
        live_strings=live_strings(), wib_text=wib_text,
    )


def _points(series: dict[str, list[tuple[int, float]]]) -> dict[str, list[list[float]]]:
    return {name: [[t, v] for t, v in pts] for name, pts in series.items()}


@bp.get("/api/v1/devices/<device_id>/history")
def device_history(device_id: str) -> Response | tuple[Response, int]:
    try:
        check_device_id(device_id)
    except TopicError as exc:
        return json_error(400, "invalid_device_id", str(exc))
    d = deps()
    if load_device(d.registry, device_id) is None:
        return json_error(404, "unknown_device", f"no device {device_id!r} in the registry")
    key = request.args.get("range", "1h")
    if key not in RANGES:
        return json_error(400, "invalid_parameter", f"range must be one of {', '.join(RANGES)}")
    r = RANGES[key]
    try:
        h = history(d.influx, device_id, r)
    except (InfluxError, ValueError) as exc:
        return json_error(503, "influx_unavailable", f"InfluxDB could not answer: {exc}"[:400])
    return jsonify({
        "device": device_id, "range": r.key, "bucket": r.bucket,
        "health": {f: _points(v) for f, v in h.health.items()},
        "cameras": {f: _points(v) for f, v in h.cameras.items()},
        "detections": h.counts,
        "events": h.events,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    })
