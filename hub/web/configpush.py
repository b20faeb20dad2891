"""Configuration push in the web app: the admin page and the JSON API (``hub.rollout``).

Page: ``/admin/config`` (desired against reported per device, drift, rollouts with the
progress of each wave, pause / resume / abort buttons).
API (admins: ``Perm.CONFIG_PUSH``):
  GET  /api/v1/config/devices            desired vs reported per device, with drift reason
  GET  /api/v1/config/drift              only the drifted devices
  GET  /api/v1/config/overrides          history (?scope=&key=)
  PUT  /api/v1/config/overrides/<scope>/<key>   {"data": {...}, "note": ""}; DELETE removes
  GET  /api/v1/config/models             the model catalogue
  GET  /api/v1/rollouts                  newest first; POST starts one (docs/configuration.md)
  GET  /api/v1/rollouts/<id>             with each wave's devices and outcomes
  POST /api/v1/rollouts/<id>/<action>    pause | resume | abort (JSON, or a form: redirect)
Files: ``GET /models/<sha256>`` serves catalogued model files to the boxes (no login: a box
has broker credentials, not web ones; the file is named by its digest and checked by it),
with Range requests so an interrupted download resumes.
The rollout engine process does the signing and publishing; these routes write intent.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _

from hub.rollout import views
from hub.rollout.service import ConfigPushError, ConfigService
from hub.settings import HubSettings
from hub.web.auth import audit, principal
from hub.web.deps import deps
from hub.web.errors import json_error
from hub.web.policy import Perm, requires
from hub.web.timefmt import display_wib
from hub.web.views import state_labels

bp = Blueprint("configpush", __name__)
EXTENSION_KEY = "dcor.configpush"
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


def init_app(app: Flask, settings: HubSettings | None) -> None:
    registry = deps(app).registry
    registry.create_schema()  # the configuration tables, for a registry opened earlier
    app.extensions[EXTENSION_KEY] = ConfigService(
        registry, settings, profiles_dir=app.config.get("DCOR_PROFILES_DIR"))
    app.register_blueprint(bp)


def _svc() -> ConfigService:
    found: ConfigService = current_app.extensions[EXTENSION_KEY]
    return found


def _refused(exc: ConfigPushError) -> tuple[Response, int]:
    return json_error(exc.status, "config_refused", str(exc), problems=exc.problems)


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, description="send a JSON object")
    return data


# --- page ------------------------------------------------------------------------------------

def _labels() -> dict[str, str]:
    return {"running": _("Running"), "paused": _("Paused"), "aborting": _("Aborting"),
            "aborted": _("Aborted"), "completed": _("Completed"), "applied": _("Applied"),
            "rejected": _("Rejected"), "rolled_back": _("Rolled back"), "ok": _("OK"),
            "failed": _("Failed"), "waiting": _("Waiting"), "skipped": _("Skipped")}


@bp.get("/admin/config")
@requires(Perm.CONFIG_PUSH)
def page() -> str:
    registry = deps().registry
    rollouts = views.rollout_list(registry, limit=10)
    details = [views.rollout_detail(registry, r["id"]) for r in rollouts
               if r["status"] in ("running", "paused", "aborting")]
    return render_template("config_push.html", devices=views.device_rows(registry),
                           rollouts=rollouts, details=[d for d in details if d],
                           labels=_labels(), states=state_labels(), wib=_wib)


def _wib(iso: str | None) -> str | None:
    return display_wib(datetime.fromisoformat(iso)) if iso else None


# --- API -------------------------------------------------------------------------------------

@bp.get("/api/v1/config/devices")
@requires(Perm.CONFIG_PUSH)
def api_devices() -> Response:
    return jsonify(views.device_rows(deps().registry))


@bp.get("/api/v1/config/drift")
@requires(Perm.CONFIG_PUSH)
def api_drift() -> Response:
    return jsonify(views.drift(deps().registry))


@bp.get("/api/v1/config/overrides")
@requires(Perm.CONFIG_PUSH)
def api_overrides() -> Response:
    return jsonify(_svc().override_history(request.args.get("scope") or None,
                                           request.args.get("key") or None))


@bp.route("/api/v1/config/overrides/<scope>/<key>", methods=["PUT", "DELETE"])
@requires(Perm.CONFIG_PUSH)
def api_set_override(scope: str, key: str) -> Response | tuple[Response, int]:
    body = _body() if request.method == "PUT" else {}
    data = body.get("data") if request.method == "PUT" else None
    if request.method == "PUT" and not isinstance(data, dict):
        return json_error(400, "bad_request", "send {\"data\": {...agent.yaml keys...}}")
    note = body.get("note", "")
    if not isinstance(note, str) or len(note) > 300:  # refused as sent, not coerced or cut
        return json_error(400, "bad_request", "'note' must be a string of at most 300 "
                          "characters")
    try:
        row_id = _svc().set_override(scope, key, data, author=principal().username, note=note)
    except ConfigPushError as exc:
        audit("config_override", "failed", f"{scope}/{key}", reason=str(exc))
        return _refused(exc)
    audit("config_override", "ok", f"{scope}/{key}", removed=data is None, override=row_id)
    return jsonify({"id": row_id, "scope": scope, "key": key})


@bp.get("/api/v1/config/models")
@requires(Perm.CONFIG_PUSH)
def api_models() -> Response:
    return jsonify(_svc().list_models())


@bp.get("/api/v1/rollouts")
@requires(Perm.CONFIG_PUSH)
def api_rollouts() -> Response:
    return jsonify(views.rollout_list(deps().registry))


@bp.post("/api/v1/rollouts")
@requires(Perm.CONFIG_PUSH)
def api_start() -> tuple[Response, int]:
    try:
        out = _svc().create_rollout(_body(), author=principal().username)
    except ConfigPushError as exc:
        audit("config_rollout_start", "failed", "", reason=str(exc),
              problems=exc.problems[:5])
        return _refused(exc)
    audit("config_rollout_start", "ok", out["id"], devices=out["devices"], waves=out["waves"])
    return jsonify(out), 201


@bp.get("/api/v1/rollouts/<rollout_id>")
@requires(Perm.CONFIG_PUSH)
def api_rollout(rollout_id: str) -> Response | tuple[Response, int]:
    found = views.rollout_detail(deps().registry, rollout_id)
    if found is None:
        return json_error(404, "unknown_rollout", f"no rollout {rollout_id!r}")
    return jsonify(found)


@bp.post("/api/v1/rollouts/<rollout_id>/<action>")
@requires(Perm.CONFIG_PUSH)
def api_steer(rollout_id: str, action: str) -> Any:
    form = not request.is_json
    # No body at all is fine (no reason); a JSON list or a reason that is no text is refused.
    body = request.get_json(silent=True) if not form and request.get_data() else {}
    reason = request.form.get("reason", "") if form else (
        body.get("reason", "") if isinstance(body, dict) else None)
    if not isinstance(reason, str):
        return json_error(400, "bad_request", "send a JSON object; 'reason' must be a string")
    try:
        out = _svc().steer(rollout_id, action, author=principal().username, reason=reason)
    except ConfigPushError as exc:
        audit(f"config_rollout_{action}"[:64], "failed", rollout_id, reason=str(exc))
        return _refused(exc)
    audit(f"config_rollout_{action}"[:64], "ok", rollout_id)
    if form:
        return redirect(url_for("configpush.page"))
    return jsonify(out)


# --- model files -----------------------------------------------------------------------------

@bp.get("/models/<sha256>")
@requires(Perm.PUBLIC)
def model_file(sha256: str) -> Response:
    if not _SHA_RE.match(sha256):
        abort(404)
    try:
        path = _svc().model_path(sha256)
    except ConfigPushError:
        path = None
    if path is None:
        abort(404)
    return send_file(path, mimetype="application/octet-stream", conditional=True,
                     download_name=sha256, max_age=86400)
