"""The enrollment API the technician's ``dcor-provision`` calls with a personal token.

``POST /api/v1/enroll``, ``POST /api/v1/devices/<id>/replace``, ``.../revoke`` and
``.../install-check``; ``GET /api/v1/whoami`` checks a token without spending it. Answers
holding a bundle carry credentials: never cached, never logged.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, request

from dcor_wire.topics import TopicError, check_device_id
from edge_agent.config import ConfigError
from hub.broker.admin import DynsecError
from hub.web.auth import audit, principal, security
from hub.web.errors import json_error
from hub.web.policy import Perm, requires
from provisioning.enroll import Bundle
from provisioning.profiles import ProfileError
from provisioning.registry_ops import EnrollError, SiteSpec
from provisioning.service import EnrollConflict, UnknownDevice

log = logging.getLogger(__name__)

bp = Blueprint("provision", __name__, url_prefix="/api/v1")

_STATUS = ((EnrollConflict, 409, "conflict"), (UnknownDevice, 404, "unknown_device"),
           (DynsecError, 502, "broker_error"))


def _fail(action: str, target: str, exc: Exception) -> tuple[Response, int]:
    status, code = 400, "invalid_request"
    for kind, st, cd in _STATUS:
        if isinstance(exc, kind):
            status, code = st, cd
    result = "error" if status >= 500 else "failed"
    audit(action, result, target, reason=str(exc)[:300])
    if status >= 500:
        log.error("%s of %s failed: %s", action, target, exc)
    return json_error(status, code, str(exc))


def _service() -> Any:
    svc = security().enrollment
    if svc is None:
        return None
    return svc


def _unavailable() -> tuple[Response, int]:
    return json_error(503, "enrollment_unavailable",
                      "this hub has no enrollment set up (run dcor-provision init-hub and set "
                      "device_broker_host)")


def _bundle_json(bundle: Bundle, secure: bool) -> dict[str, Any]:
    cfg = bundle.config
    return {"device_id": cfg.device_id, "files": bundle.files, "secure": secure,
            "broker": {"host": cfg.mqtt.host, "port": cfg.mqtt.port,
                       "tls": cfg.mqtt.tls is not None},
            "profile": cfg.profile, "hardware": cfg.hardware}


def _str(body: dict[str, Any], key: str, default: str | None = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str) or (default is None and not value):
        raise EnrollError(f"{key!r} must be a non-empty string")
    return value


def _coord(site: dict[str, Any], key: str) -> float | None:
    value = site.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise EnrollError(f"site.{key} must be a number")
    return float(value)


@bp.get("/whoami")
@requires(Perm.ACCOUNT)
def whoami() -> Response:
    p = principal()
    return jsonify({"username": p.username, "role": p.role, "desk": p.desk, "via": p.via})


@bp.post("/enroll")
@requires(Perm.ENROLL)
def enroll() -> Any:
    svc = _service()
    if svc is None:
        return _unavailable()
    body = request.get_json(silent=True)
    # Names the attempt in the audit log only; the id itself is checked as sent below.
    target = str(body.get("device_id", ""))[:63] if isinstance(body, dict) else ""
    try:
        if not isinstance(body, dict):
            raise EnrollError("send a JSON object")
        site = body.get("site")
        if not isinstance(site, dict):
            raise EnrollError("'site' must be an object with id, kecamatan and kelurahan")
        overrides = body.get("overrides", {})
        if not isinstance(overrides, dict):
            raise EnrollError("'overrides' must be an object")
        spec = SiteSpec(id=_str(site, "id"), kecamatan=_str(site, "kecamatan"),
                        kelurahan=_str(site, "kelurahan"), name=_str(site, "name", ""),
                        lat=_coord(site, "lat"), lon=_coord(site, "lon"))
        kwargs: dict[str, Any] = {"hardware": _str(body, "hardware", ""),
                                  "overrides": overrides, "actor": principal().username}
        data_dir = _str(body, "agent_data_dir", "")
        if data_dir:
            kwargs["agent_data_dir"] = Path(data_dir)
        # A number or an over-long id is refused, not coerced or cut.
        device_id = check_device_id(body.get("device_id", ""))
        bundle = svc.enroll(device_id, spec, _str(body, "profile"), **kwargs)
    except (EnrollError, ProfileError, ConfigError, TopicError, DynsecError,
            ValueError) as exc:
        return _fail("enroll", target, exc)
    audit("enroll", "ok", target, site=spec.id, profile=bundle.config.profile)
    return jsonify(_bundle_json(bundle, svc.secure)), 201


@bp.post("/devices/<device_id>/replace")
@requires(Perm.ENROLL)
def replace(device_id: str) -> Any:
    svc = _service()
    if svc is None:
        return _unavailable()
    try:
        bundle = svc.replace(check_device_id(device_id), actor=principal().username)
    except (EnrollError, ProfileError, ConfigError, TopicError, DynsecError) as exc:
        return _fail("replace", device_id, exc)
    audit("replace", "ok", device_id)
    return jsonify(_bundle_json(bundle, svc.secure))


@bp.post("/devices/<device_id>/revoke")
@requires(Perm.REVOKE)
def revoke(device_id: str) -> Any:
    svc = _service()
    if svc is None:
        return _unavailable()
    try:
        svc.revoke(check_device_id(device_id), actor=principal().username)
    except (EnrollError, TopicError, DynsecError) as exc:
        return _fail("revoke", device_id, exc)
    audit("revoke", "ok", device_id)
    return jsonify({"device_id": device_id, "revoked": True})


@bp.post("/devices/<device_id>/install-check")
@requires(Perm.CHECK)
def install_check(device_id: str) -> Any:
    svc = _service()
    if svc is None:
        return _unavailable()
    body = request.get_json(silent=True)
    try:
        if not isinstance(body, dict):
            raise EnrollError("send a JSON object with 'items' and 'snapshot'")
        verified, problems = svc.record_check(check_device_id(device_id), body,
                                              actor=principal().username)
    except (EnrollError, TopicError) as exc:
        return _fail("install_check", device_id, exc)
    audit("install_check", "ok" if verified else "failed", device_id, problems=problems)
    return jsonify({"device_id": device_id, "verified": verified, "problems": problems})
