"""Log in and out, and one's own account page (personal API tokens for technicians)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as WResponse

from hub.security.store import UserError
from hub.web.auth import audit, client_ip, principal, security
from hub.web.policy import Perm, requires

bp = Blueprint("auth", __name__)

TOKEN_TTLS: Final = {"8h": timedelta(hours=8), "24h": timedelta(hours=24),
                     "7d": timedelta(days=7)}


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never ``//evil.example`` or ``https://...``."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("fleet.fleet")


@bp.route("/login", methods=["GET", "POST"])
@requires(Perm.PUBLIC)
def login() -> Any:
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""), error="")
    sec = security()
    ip = client_ip()
    username = request.form.get("username", "").strip()[:64]
    nxt = request.form.get("next", "")
    wait = sec.login_limiter.blocked(ip)
    if wait:
        audit("login", "denied", username, reason="rate_limited")
        return render_template("login.html", next=nxt, error=_(
            "Too many attempts from this computer. Try again in %(n)d seconds.",
            n=int(wait) + 1)), 429
    sec.login_limiter.hit(ip)
    result = sec.store.authenticate(username, request.form.get("password", ""))
    if result.principal is None:
        audit("login", "denied" if result.reason == "locked" else "failed", username,
              reason=result.reason)
        return render_template("login.html", next=nxt, error=_(
            "Login failed. After repeated failures an account is locked for a while.")), 401
    session.clear()  # no session fixation: a fresh session id and CSRF token
    session.permanent = True
    session["sid"] = sec.store.create_session(result.principal.user_id, ip)
    sec.login_limiter.reset(ip)
    audit("login", "ok", username, actor=result.principal)
    return redirect(_safe_next(nxt))


@bp.post("/logout")
@requires(Perm.ACCOUNT)
def logout() -> WResponse:
    sid = session.get("sid")
    if isinstance(sid, str):
        security().store.end_session(sid)
    audit("logout", "ok", principal().username)
    session.clear()
    return redirect(url_for("auth.login"))


def _account_page(new_token: str = "", status: int = 200, error: str = "") -> Any:
    p = principal()
    tokens = []
    if p.role in ("technician", "admin"):
        tokens = [t for t, _name in security().store.list_tokens(p.username)]
    return render_template("account.html", me=p, tokens=tokens, new_token=new_token,
                           ttls=list(TOKEN_TTLS), error=error), status


@bp.get("/account")
@requires(Perm.ACCOUNT)
def account() -> Any:
    return _account_page()


@bp.post("/account/tokens")
@requires(Perm.ACCOUNT)
def new_token() -> Any:
    p = principal()
    ttl = TOKEN_TTLS.get(request.form.get("ttl", ""), TOKEN_TTLS["8h"])
    raw_uses = request.form.get("uses", "").strip()
    try:
        uses = int(raw_uses) if raw_uses else None
        token, expires = security().store.issue_token(
            p.username, ttl, uses=uses, label=request.form.get("label", "")[:100])
    except (UserError, ValueError) as exc:
        audit("token_issue", "failed", p.username, reason=str(exc))
        return _account_page(status=400, error=str(exc))
    audit("token_issue", "ok", p.username, token_id=token.id, expires=expires.isoformat(),
          uses=uses)
    return _account_page(new_token=token.text)


@bp.post("/account/tokens/<token_id>/revoke")
@requires(Perm.ACCOUNT)
def revoke_token(token_id: str) -> Any:
    p = principal()
    mine = {t.id for t, _n in security().store.list_tokens(p.username)}
    if token_id not in mine and p.role != "admin":
        audit("token_revoke", "denied", token_id)
        return _account_page(status=404, error=_("No such token."))
    security().store.revoke_token(token_id)
    audit("token_revoke", "ok", token_id)
    return redirect(url_for("auth.account"))
