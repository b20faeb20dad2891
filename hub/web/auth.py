"""Authentication and authorization of every request, CSRF, and the automatic audit trail.

One ``before_request`` guard: who is asking (a browser session, an API token on ``/api/``, or
nobody), may they call this endpoint (``hub.web.policy``), and does a state-changing browser
request carry its CSRF token. One ``after_request`` hook: every state-changing request and
every media view leaves an audit entry, plus the security headers.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from flask import Flask, Response, current_app, g, jsonify, redirect, request, session, url_for
from werkzeug.exceptions import Forbidden
from werkzeug.wrappers import Response as WResponse

from hub.security.audit import AuditLog
from hub.security.ratelimit import SlidingWindow
from hub.security.store import ANONYMOUS, Principal, SecurityStore, consume_token_use
from hub.web.policy import Perm, allowed, permission_of

log = logging.getLogger("dcor.hub.web.auth")

SECURITY_KEY: Final = "dcor_security"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
VIEW_AUDIT_WINDOW_S: Final = 600.0
VIEWER: Final = Principal(username="anonymous", role="viewer")
TEST_PRINCIPAL: Final = Principal(username="test", role="admin", via="test")
# Endpoints whose views write a richer audit entry themselves.
SELF_AUDITED: Final = frozenset({"auth.login", "auth.logout"})
# Pages that hold secrets once (a new token) or personal data: never cached.
NO_STORE_PREFIXES: Final = ("/login", "/account", "/admin", "/api/")


class ViewDedup:
    """Audit a person's look at one device's media once per window, not every refresh."""

    def __init__(self, window: float = VIEW_AUDIT_WINDOW_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._mono = monotonic
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def first(self, actor: str, subject: str) -> bool:
        now = self._mono()
        with self._lock:
            if len(self._seen) > 50_000:
                self._seen = {k: t for k, t in self._seen.items() if now - t < self.window}
            last = self._seen.get((actor, subject))
            if last is not None and now - last < self.window:
                return False
            self._seen[(actor, subject)] = now
            return True


@dataclass
class SecurityDeps:
    store: SecurityStore
    audit: AuditLog
    enrollment: Any = None  # provisioning.service.EnrollmentService, when configured
    anonymous_viewer: bool = False
    login_disabled: bool = False  # tests of other areas only (app.config, never settings)
    proxy_hops: int = 0
    login_limiter: SlidingWindow = field(default_factory=lambda: SlidingWindow(10, 60.0))
    token_limiter: SlidingWindow = field(default_factory=lambda: SlidingWindow(10, 300.0))
    views: ViewDedup = field(default_factory=ViewDedup)


def security(app: Flask | None = None) -> SecurityDeps:
    found: SecurityDeps = (app or current_app).extensions[SECURITY_KEY]
    return found


def principal() -> Principal:
    return getattr(g, "principal", ANONYMOUS)


def client_ip() -> str:
    """The caller's address; with ``proxy_hops`` trusted proxies, from X-Forwarded-For."""
    hops = security().proxy_hops
    if hops:
        forwarded = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",")
                     if a.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops][:64]
    return (request.remote_addr or "")[:64]


def audit(action: str, result: str, target: str = "", *, actor: Principal | None = None,
          **detail: Any) -> None:
    """One audit entry for this request (who, from where); views call this for their own
    actions so the automatic entry is skipped."""
    p = actor or principal()
    security().audit.record(actor=p.username, role=p.role, action=action, target=target,
                            source=client_ip(), result=result, detail=detail)
    g.audited = True


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def _csrf_ok() -> bool:
    expected = session.get("csrf")
    given = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD, "")
    return isinstance(expected, str) and bool(given) and hmac.compare_digest(expected, given)


def _json_error(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify({"error": {"status": status, "code": code, "message": message}}), status


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _takes_tokens() -> bool:
    return _is_api() or request.path == "/metrics"


# --- the guard ------------------------------------------------------------------------------

def _identify(sec: SecurityDeps) -> Principal | tuple[Response, int]:
    if sec.login_disabled:
        return TEST_PRINCIPAL
    auth = request.headers.get("Authorization", "")
    if auth:
        scheme, _, value = auth.partition(" ")
        if not _takes_tokens() or scheme.lower() != "bearer":
            return _json_error(401, "invalid_token", "bearer tokens are accepted on /api/ only")
        ip = client_ip()
        wait = sec.token_limiter.blocked(ip)
        if wait:
            audit("token_auth", "denied", actor=ANONYMOUS, reason="rate_limited")
            resp, status = _json_error(429, "too_many_attempts",
                                       "too many invalid tokens from this address")
            resp.headers["Retry-After"] = str(int(wait) + 1)
            return resp, status
        res = sec.store.check_token(value, consume=False)
        if res.principal is None:
            sec.token_limiter.hit(ip)
            who = Principal(username=f"token:{res.token_id or '?'}", role="")
            audit("token_auth", "denied", actor=who, reason=res.reason)
            return _json_error(401, "invalid_token",
                               "the token is invalid, expired, revoked or used up")
        return res.principal
    sid = session.get("sid")
    if isinstance(sid, str):
        found = sec.store.session_principal(sid)
        if found is not None:
            return found
        session.pop("sid", None)
    return VIEWER if sec.anonymous_viewer else ANONYMOUS


def _deny(p: Principal, perm: Perm | None) -> Any:
    if request.method not in SAFE_METHODS or p.authenticated:
        audit("access", "denied", request.path, actor=p, endpoint=request.endpoint or "",
              method=request.method, needs=str(perm) if perm else "unclassified")
    if not p.authenticated:
        if _takes_tokens() or request.path == "/healthz":
            resp, status = _json_error(401, "login_required", "log in or send a bearer token")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="dcor-hub"'
            return resp, status
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if _is_api():
        return _json_error(403, "forbidden", f"your role ({p.role}) may not do this")
    raise Forbidden()


def _guard() -> Any:
    endpoint = request.endpoint
    if endpoint is None:
        return None  # 404 / 405 are answered by Flask
    sec = security()
    view = current_app.view_functions.get(endpoint)
    perm = permission_of(endpoint, view)
    if perm is None:
        log.warning("endpoint %s has no declared permission: admins only", endpoint)
    who = _identify(sec)
    if isinstance(who, tuple):
        return who
    g.principal = who
    if not allowed(who.role, perm):
        return _deny(who, perm)
    if (request.method not in SAFE_METHODS and who.via in ("session", "anonymous")
            and not sec.login_disabled and not _csrf_ok()):
        audit("csrf", "denied", request.path, actor=who, endpoint=endpoint)
        if _is_api():
            return _json_error(400, "csrf_failed", f"send the {CSRF_HEADER} header")
        return _json_error(400, "csrf_failed", "the form expired; reload the page")
    # A use is spent only by a state change the token was allowed to make.
    if (who.via == "token" and request.method not in SAFE_METHODS and perm is Perm.ENROLL
            and not consume_token_use(sec.store.registry, who.token_id)):
        audit("token_auth", "denied", actor=who, reason="used_up")
        return _json_error(401, "invalid_token",
                           "the token is invalid, expired, revoked or used up")
    return None


# --- after every request --------------------------------------------------------------------

def _result_of(status: int) -> str:
    if status < 400:
        return "ok"
    return "denied" if status in (401, 403, 429) else ("error" if status >= 500 else "failed")


def _after(response: WResponse) -> WResponse:
    endpoint = request.endpoint or ""
    p = principal()
    if not getattr(g, "audited", False) and endpoint:
        if request.method not in SAFE_METHODS and endpoint not in SELF_AUDITED:
            target = "/".join(str(v) for v in (request.view_args or {}).values())
            audit(f"http:{endpoint}", _result_of(response.status_code), target,
                  method=request.method, status=response.status_code)
        elif endpoint == "media.media_file" and response.status_code in (200, 206, 304):
            item = str((request.view_args or {}).get("item_id", ""))
            device, _, rest = item.partition(":")
            kind = rest.partition(":")[0] or "media"
            if security().views.first(p.username + "@" + client_ip(), f"{device}:{kind}"):
                audit(f"{kind}_view", "ok", item)
    h = response.headers
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    h.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        h.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.path.startswith(NO_STORE_PREFIXES) and endpoint != "media.media_file":
        h["Cache-Control"] = "no-store"
    return response


def install_verified(device_id: str) -> bool:
    """For templates: was this box's install verified on site? (one query per request)"""
    found = getattr(g, "_dcor_verified", None)
    if found is None:
        from provisioning.service import verified_devices

        found = g._dcor_verified = verified_devices(security().store.registry)
    return device_id in found


def init_auth(app: Flask, deps: SecurityDeps, *, cookie_secure: bool) -> None:
    app.extensions[SECURITY_KEY] = deps
    app.config.update(
        SESSION_COOKIE_NAME="dcor_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        # Write the cookie only when the session changed: refreshed on every answer, a slow
        # answer begun before the CSRF token was made (a snapshot still loading from the
        # previous page) would put back the cookie without it, and the next form fails.
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    app.before_request(_guard)
    app.after_request(_after)
    app.jinja_env.globals.update(csrf_token=csrf_token, current_principal=principal,
                                 install_verified=install_verified)
