"""Admin pages: users (create, disable, unlock) and the audit log (HTML and JSON)."""

from __future__ import annotations

from typing import Any, Final

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for

from hub.security.audit import RESULTS
from hub.security.passwords import PasswordPolicyError
from hub.security.store import ROLES, UserError, desks
from hub.web.auth import audit, security
from hub.web.policy import Perm, requires
from hub.web.timefmt import display_wib

bp = Blueprint("admin", __name__)

AUDIT_LIMIT: Final = 200


def _users_page(status: int = 200, error: str = "") -> Any:
    return render_template("admin_users.html", users=security().store.list_users(),
                           roles=ROLES, desks=desks(), error=error), status


@bp.get("/admin/users")
@requires(Perm.ADMIN)
def users() -> Any:
    return _users_page()


@bp.post("/admin/users")
@requires(Perm.ADMIN)
def create_user() -> Any:
    f = request.form
    username = f.get("username", "").strip()
    try:
        security().store.create_user(username, f.get("password", ""), f.get("role", ""),
                                     desk=f.get("desk", ""),
                                     display_name=f.get("display_name", "").strip())
    except (UserError, PasswordPolicyError) as exc:
        audit("user_create", "failed", username, reason=str(exc))
        return _users_page(400, str(exc))
    audit("user_create", "ok", username, role=f.get("role", ""), desk=f.get("desk", ""))
    return redirect(url_for("admin.users"))


@bp.post("/admin/users/<username>/active")
@requires(Perm.ADMIN)
def set_active(username: str) -> Any:
    active = request.form.get("active") == "1"
    try:
        security().store.set_active(username, active)
    except UserError as exc:
        audit("user_active", "failed", username, reason=str(exc))
        return _users_page(404, str(exc))
    audit("user_enable" if active else "user_disable", "ok", username)
    return redirect(url_for("admin.users"))


@bp.post("/admin/users/<username>/unlock")
@requires(Perm.ADMIN)
def unlock(username: str) -> Any:
    try:
        security().store.unlock(username)
    except UserError as exc:
        audit("user_unlock", "failed", username, reason=str(exc))
        return _users_page(404, str(exc))
    audit("user_unlock", "ok", username)
    return redirect(url_for("admin.users"))


def _audit_query() -> dict[str, Any]:
    args = request.args
    result = args.get("result") or None
    return {"action": args.get("action") or None, "actor": args.get("actor") or None,
            "result": result if result in RESULTS else None, "limit": AUDIT_LIMIT}


@bp.get("/admin/audit")
@requires(Perm.ADMIN)
def audit_page() -> str:
    q = _audit_query()
    entries = security().audit.query(**q)
    return render_template("admin_audit.html", entries=entries, query=q, results=RESULTS,
                           wib=display_wib)


@bp.get("/api/v1/audit")
@requires(Perm.ADMIN)
def audit_json() -> Response:
    entries = security().audit.query(**_audit_query())
    return jsonify([{"ts": e.ts.isoformat(), "actor": e.actor, "role": e.role,
                     "action": e.action, "target": e.target, "source": e.source,
                     "result": e.result, "detail": e.detail} for e in entries])
