"""The room's pages: the fleet view at ``/``, and ``/healthz`` for the process supervisor."""

from __future__ import annotations

import functools
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request, url_for
from flask_babel import gettext as _

from hub.web.data import iter_index, load_devices, registry_ok
from hub.web.deps import deps
from hub.web.fleet import BUCKETS, device_row
from hub.web.fleetplan import STATE_FILTERS, FleetQuery, QueryError, entry_of, parse_query, plan
from hub.web.i18n import current_language
from hub.web.media import media_url
from hub.web.timefmt import display_wib

bp = Blueprint("fleet", __name__)

REFRESH_S = 5


def state_labels() -> dict[str, str]:
    """Visible names of device states and group buckets, in the request's language."""
    return {
        "online": _("Online"),
        "stale": _("Late"),
        "offline": _("Offline"),
        "unknown": _("Unknown"),
        "decommissioned": _("Decommissioned"),
        "degraded": _("Degraded"),
    }


def camera_labels() -> dict[str, str]:
    """Visible names of camera states (``edge_agent.vision.camera_health``)."""
    return {"streaming": _("Streaming"), "no_frames": _("No frames"), "covered": _("Covered"),
            "frozen": _("Frozen image"), "detector_stalled": _("Detector stalled")}


def column_labels() -> list[str]:
    return [_("Device"), _("State"), _("Last seen (WIB)"), _("CPU"), _("Memory"), _("Disk"),
            _("Temperature"), _("Outbox"), _("Clock synced")]


def js_strings() -> dict[str, Any]:
    """What fleet.js says itself: the server draws everything else, in the page's language."""
    return {"refreshFailed": _("Refresh failed, retrying")}


@bp.get("/")
def fleet() -> str | tuple[str, int]:
    try:
        query = parse_query(request.args)
    except QueryError as exc:
        return str(exc), 400
    d = deps()
    now = d.now()
    lang = current_language()
    p = plan((entry_of(b, now) for b in iter_index(d.registry)), query)
    # Only the rows the page lists are read in full (health, cameras' snapshots).
    yes, no = _("yes"), _("no")
    rows = {r.id: device_row(r, now, locale=lang, yes=yes, no=no, media_url=media_url)
            for r in load_devices(d.registry, p.listed)}
    return render_template(
        "fleet.html",
        plan=p,
        rows=rows,
        query=query,
        toggle_url=functools.partial(_toggle_url, query),
        device_count=sum(p.totals.values()),
        buckets=BUCKETS,
        labels=state_labels(),
        camera_labels=camera_labels(),
        state_filters=STATE_FILTERS,
        columns=column_labels(),
        js_strings=js_strings(),
        generated_at=display_wib(now),
        refresh_s=REFRESH_S,
    )


def _toggle_url(query: FleetQuery, key: str) -> str:
    """This page with one kelurahan's folded rows opened, or closed if they are open."""
    opened = set(query.open) ^ {key}
    return url_for("fleet.fleet", **query.args(opened))


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    ok = registry_ok(deps().registry)
    return jsonify({"status": "ok" if ok else "degraded", "registry": ok}), 200 if ok else 503
