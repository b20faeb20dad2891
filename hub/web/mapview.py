"""The map: sites placed by latitude and longitude, coloured by the worst state of their
devices, drawn as inline SVG without any tile server (``hub.web.mapgeo``). The outline is
the sites' own hull, or the kecamatan boundaries an admin uploaded as GeoJSON
(``POST /admin/map/boundaries``, ``.../delete``). Colours follow the fleet stream live
(``static/fleetlive.js``)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from hub.web.auth import principal
from hub.web.deps import deps
from hub.web.fleet import BUCKETS
from hub.web.livefleet import Picture, site_states
from hub.web.mapgeo import (
    MAX_UPLOAD_BYTES,
    GeoJSONError,
    fit,
    label_point,
    outline,
    parse_boundaries,
    ring_path,
)
from hub.web.mapstore import delete_boundaries, load_boundaries, load_sites, save_boundaries
from hub.web.policy import Perm, allowed
from hub.web.views import state_labels
from hub.web.wall import feed, live_strings

bp = Blueprint("map", __name__)


def map_folder() -> Path | None:
    """Where uploads live: ``DCOR_MAP_DIR``, else ``map/`` beside the media store."""
    configured = current_app.config.get("DCOR_MAP_DIR")
    if configured:
        return Path(configured)
    media = deps().media
    return media.root.parent / "map" if media is not None else None


def _geometry(picture: Picture) -> dict[str, Any]:
    sites = load_sites(deps().registry)
    layer = load_boundaries(map_folder())
    states = site_states(picture)
    devices: dict[str, list[str]] = defaultdict(list)
    for e in picture.values():
        devices[e["site"]].append(e["id"])
    placed = [s for s in sites if s.lat is not None and s.lon is not None and devices[s.id]]
    points = [(s.lon, s.lat) for s in placed if s.lon is not None and s.lat is not None]
    if layer is not None:
        points += [p for a in layer.areas for r in a.rings for p in r]
    proj = fit(points)
    out: dict[str, Any] = {"layer": layer, "proj": proj, "sites": [], "areas": [],
                           "outline": None,
                           "unplaced": sum(1 for s in sites if devices[s.id]) - len(placed)}
    if proj is None:
        return out
    for s in placed:
        assert s.lat is not None and s.lon is not None
        x, y = proj.xy((s.lon, s.lat))
        ids = sorted(devices[s.id])
        out["sites"].append({"id": s.id, "x": x, "y": y, "worst": states.get(s.id, "unknown"),
                             "name": s.name or s.id, "kecamatan": s.kecamatan,
                             "kelurahan": s.kelurahan, "devices": ids})
    if layer is not None:
        for a in layer.areas:
            lx, ly = label_point(a, proj)
            out["areas"].append({"name": a.name, "x": lx, "y": ly,
                                 "d": "".join(ring_path(r, proj) for r in a.rings)})
    elif out["sites"]:
        out["outline"] = outline([(s["x"], s["y"]) for s in out["sites"]])
    return out


def _page(error: str | None = None, status: int = 200) -> tuple[str, int]:
    _v, picture, at = feed().current()
    geo = _geometry(picture)
    counts = {b: 0 for b in BUCKETS}
    for s in geo["sites"]:
        counts[s["worst"]] += 1
    uploaded = request.args.get("uploaded", "")
    return render_template(
        "map.html", geo=geo, at=at, labels=state_labels(), counts=counts, error=error,
        uploaded=int(uploaded) if uploaded.isdigit() else None,
        removed=request.args.get("removed") == "1",
        can_upload=allowed(principal().role, Perm.ADMIN) and map_folder() is not None,
        max_mb=MAX_UPLOAD_BYTES // (1024 * 1024), live_strings=live_strings(),
    ), status


@bp.get("/map")
def map_page() -> tuple[str, int]:
    return _page()


@bp.post("/admin/map/boundaries")
def upload_boundaries() -> Response | tuple[str, int]:
    folder = map_folder()
    if folder is None:
        return _page(_("This hub has no data folder to keep the boundaries in."), 503)
    upload = request.files.get("geojson")
    if upload is None or not upload.filename:
        return _page(_("Choose a GeoJSON file first."), 400)
    data = upload.stream.read(MAX_UPLOAD_BYTES + 1)
    try:
        areas = parse_boundaries(data)
    except GeoJSONError as exc:
        return _page(_("The file was not used: %(reason)s", reason=str(exc)), 400)
    save_boundaries(folder, areas, filename=upload.filename, who=principal().username,
                    now=deps().now())
    return redirect(url_for("map.map_page", uploaded=len(areas)), code=303)


@bp.post("/admin/map/boundaries/delete")
def remove_boundaries() -> Response | tuple[str, int]:
    folder = map_folder()
    if folder is not None:
        delete_boundaries(folder)
    return redirect(url_for("map.map_page", removed=1), code=303)
