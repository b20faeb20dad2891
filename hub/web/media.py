"""Snapshots and clips over HTTP: one file by its media row id, and a device's listing.

A URL never names a path: the row id is looked up in the registry and only the row's stored
path goes through ``MediaStore.resolve``, which refuses anything outside the media root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from flask import Blueprint, Response, jsonify, request, send_file, url_for
from werkzeug.datastructures import MultiDict

from dcor_wire.topics import CAMERA_ID_RE, TopicError, check_device_id
from hub.web.data import device_exists, list_media, load_media
from hub.web.deps import deps
from hub.web.errors import json_error
from hub.web.fleet import MEDIA_KINDS, media_json
from hub.web.queryargs import QueryError, limit_of, single

bp = Blueprint("media", __name__, url_prefix="/api/v1")

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 200
# A file's id never changes content (a new snapshot is a new row), so the browser may keep
# it; private because camera images must not sit in shared caches.
CACHE_MAX_AGE_S: Final = 24 * 3600
MIMETYPES: Final = {"snapshot": ("image/jpeg", "jpg"), "clip": ("video/mp4", "mp4")}
# "<device>:<kind>:<media id>" as the ingest writes it; anything else cannot be a row.
ITEM_ID_RE: Final = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,199}")


@dataclass(frozen=True)
class MediaQuery:
    kind: str | None = None
    camera: str | None = None
    limit: int = DEFAULT_LIMIT


def _one(args: MultiDict[str, str], key: str) -> str | None:
    return single(args, key) or None


def parse_media_query(args: MultiDict[str, str]) -> MediaQuery:
    """``kind`` (snapshot | clip), ``camera`` (a camera id), ``limit`` (1..200); an empty
    value means "not given". Other parameters (``lang``) are ignored."""
    kind = _one(args, "kind")
    if kind is not None and kind not in MEDIA_KINDS:
        raise QueryError(f"kind must be one of {', '.join(MEDIA_KINDS)}")
    camera = _one(args, "camera")
    if camera is not None and not CAMERA_ID_RE.fullmatch(camera):
        raise QueryError("camera must be 1-32 characters a-z, 0-9, '_' and '-'")
    limit = limit_of(_one(args, "limit"), DEFAULT_LIMIT, MAX_LIMIT)
    return MediaQuery(kind=kind, camera=camera, limit=limit)


def media_url(item_id: str) -> str:
    """Where the app serves one media item (use inside a request or app context)."""
    return url_for("media.media_file", item_id=item_id)


@bp.get("/media/<item_id>")
def media_file(item_id: str) -> Response | tuple[Response, int]:
    d = deps()
    item = load_media(d.registry, item_id) if ITEM_ID_RE.fullmatch(item_id) else None
    if item is None or item.kind not in MIMETYPES:
        return json_error(404, "unknown_media", f"no media item {item_id!r}")
    if d.media is None:
        return json_error(503, "media_unavailable", "this web app has no media store")
    path = d.media.resolve(item.path)
    if path is None:
        # Pruned by retention (the ingest deletes the row soon after) or never written.
        return json_error(404, "media_gone", f"the file of {item_id!r} is no longer stored")
    mimetype, ext = MIMETYPES[item.kind]
    # conditional=True answers If-None-Match / If-Modified-Since and byte ranges (206), so a
    # video element can seek in a clip.
    response = send_file(path, mimetype=mimetype, conditional=True, etag=True,
                         max_age=CACHE_MAX_AGE_S, download_name=f"{item.media_id}.{ext}")
    response.cache_control.public = False
    response.cache_control.private = True
    return response


@bp.get("/devices/<device_id>/media")
def device_media(device_id: str) -> Response | tuple[Response, int]:
    try:
        check_device_id(device_id)
        query = parse_media_query(request.args)
    except (TopicError, QueryError) as exc:
        code = "invalid_device_id" if isinstance(exc, TopicError) else "invalid_parameter"
        return json_error(400, code, str(exc))
    d = deps()
    if not device_exists(d.registry, device_id):
        return json_error(404, "unknown_device", f"no device {device_id!r} in the registry")
    items = list_media(d.registry, device_id, kind=query.kind, camera=query.camera,
                       limit=query.limit)
    return jsonify({
        "device": device_id,
        "kind": query.kind,
        "camera": query.camera,
        "limit": query.limit,
        "items": [media_json(m, media_url) for m in items],
    })
