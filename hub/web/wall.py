"""The wall view for the room's 1920x1080 screen, and the fleet's live stream.

``/wall?desk=&kecamatan=``: fleet health rolled up per kecamatan and kelurahan, the firing
alerts of the viewer's desk (``desk``, else an operator's own desk, else every desk) and the
camera wall (newest snapshot of each camera with its state). The first paint is rendered
here; ``static/fleetlive.js`` then follows ``GET /api/v1/fleet/stream`` (see
``hub.web.fleetfeed``) and ``static/wall.js`` the alert stream, so the page never reloads.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from typing import Any

from flask import Blueprint, Flask, Response, current_app, render_template, request, url_for
from flask import stream_with_context as with_context
from flask_babel import gettext as _
from sqlalchemy import select

from hub.alerts.model import ACTIVE
from hub.alerts.tables import AlertRow
from hub.registry.db import Registry
from hub.web import alerts as alerts_web
from hub.web.alertdata import AlertFilter, list_alerts, texts_of
from hub.web.alertlabels import desk_name, severity_labels
from hub.web.auth import principal
from hub.web.data import load_devices
from hub.web.deps import deps
from hub.web.fleet import BUCKETS, device_json
from hub.web.fleetfeed import FleetFeed, stream
from hub.web.i18n import current_language
from hub.web.livefleet import SEP, Picture, picture_of, rollup, tile_size, wall_tiles
from hub.web.timefmt import display_wib
from hub.web.views import camera_labels, state_labels

bp = Blueprint("wall", __name__)
FEED_KEY = "dcor.fleetfeed"
ALERT_LIMIT = 50


def status_labels() -> dict[str, str]:
    """A tile shows a device state or a camera state; one table for both."""
    return {**state_labels(), **camera_labels()}


def init_app(app: Flask) -> None:
    d = deps(app)

    def build() -> tuple[Picture, str, str]:
        now = d.now()
        return (picture_of(device_json(r, now) for r in load_devices(d.registry)),
                display_wib(now) or "", alerts_signature(d.registry))

    cfg = app.config
    app.extensions[FEED_KEY] = FleetFeed(build, poll_s=float(cfg.get("DCOR_FLEET_POLL_S", 1.0)))
    app.register_blueprint(bp)


def alerts_signature(registry: Registry) -> str:
    """What changes when an active alert appears, changes status or hands, or goes away."""
    digest = hashlib.sha1(usedforsecurity=False)
    with registry.session() as s:
        for row in s.execute(select(AlertRow.id, AlertRow.status, AlertRow.assigned_to,
                                    AlertRow.suppressed_by, AlertRow.severity)
                             .where(AlertRow.status.in_(ACTIVE)).order_by(AlertRow.id)):
            digest.update("\x1f".join(str(v) for v in row).encode() + b"\n")
    return digest.hexdigest()


def feed() -> FleetFeed:
    found: FleetFeed = current_app.extensions[FEED_KEY]
    return found


def heartbeat_s() -> float:
    return float(current_app.config.get("DCOR_FLEET_HEARTBEAT_S", 5.0))


def live_strings() -> dict[str, Any]:
    """What ``fleetlive.js`` shows, in the page's language."""
    return {"states": status_labels(), "lost": _("Connection to the hub lost. Reconnecting…"),
            "dataAsOf": _("Data as of %(time)s"), "byState": _("Devices by state"),
            "kelTitle": _("%(online)d of %(total)d online"), "unknownPlace": _("Not recorded"),
            "heartbeatMs": int(heartbeat_s() * 1000)}


def wall_strings() -> dict[str, Any]:
    """What ``wall.js`` shows in the alert column."""
    return {"lang": current_language(), "severities": severity_labels(),
            "empty": _("No alert needs action."), "failed": _("Refresh failed, retrying")}


def _desk(rules: Any) -> str | None:
    asked = request.args.get("desk", "").strip()
    if asked in rules.desk_by_id:
        return asked
    who = principal()
    if not asked and who.role == "operator" and who.desk in rules.desk_by_id:
        return str(who.desk)
    return None


@bp.get("/wall")
def wall() -> str:
    rules = current_app.extensions[alerts_web.EXTENSION_KEY].rules()
    desk = _desk(rules)
    kecamatan = request.args.get("kecamatan", "").strip()[:100] or None
    _v, picture, at = feed().current()
    tiles = wall_tiles(picture, kecamatan)
    groups = rollup({k: e for k, e in picture.items() if kecamatan in (None, e["kec"])})
    alerts = list_alerts(deps().registry, AlertFilter(desk=desk, state="firing",
                                                      limit=ALERT_LIMIT))
    alert_args: dict[str, Any] = {"state": "firing", "limit": str(ALERT_LIMIT)}
    stream_args: dict[str, Any] = {}
    if desk:
        alert_args["desk"] = stream_args["desk"] = desk
    return render_template(
        "wall.html", tiles=tiles, size=tile_size(len(tiles)), groups=groups, at=at,
        buckets=BUCKETS, labels=state_labels(), statuses=status_labels(), sep=SEP,
        total=sum((g.counts for g in groups), start=Counter()),
        desks=rules.desks, desk=desk, desk_names={x.id: desk_name(x) for x in rules.desks},
        kecamatan=kecamatan, kecamatan_names=sorted({e["kec"] for e in picture.values()
                                                     if e["kec"]}),
        alerts=alerts, texts_of=functools.partial(texts_of, rules=rules), now=deps().now(),
        severity_labels=severity_labels(), display_wib=display_wib,
        live_strings=live_strings(), wall_strings=wall_strings(),
        alerts_api=url_for("alerts.api_list", **alert_args),
        alerts_stream=url_for("alerts.api_stream", **stream_args),
    )


@bp.get("/api/v1/fleet/stream")
def fleet_stream() -> Response:
    max_age = float(current_app.config.get("DCOR_SSE_MAX_AGE_S", 300.0))
    body = stream(feed(), request.headers.get("Last-Event-ID"), heartbeat_s=heartbeat_s(),
                  max_age_s=max_age)
    response = Response(with_context(body), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache, no-transform"
    response.headers["X-Accel-Buffering"] = "no"
    return response
