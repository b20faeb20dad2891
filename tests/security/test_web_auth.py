"""Login, sessions, CSRF, throttling and lockout, cookies and headers, the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.security.audit import AuditLog
from hub.security.models import User
from hub.security.store import SecurityStore
from tests.security.conftest import PASSWORD, csrf_of, logged_in, login


def _audit(app, **q):
    from hub.web.auth import security

    return security(app).audit.query(**q)


def test_login_logout_and_the_session_is_gone_afterwards(app):
    c = app.test_client()
    assert c.get("/").status_code == 302  # to the login page
    resp = login(c, "ani-operator")
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    assert c.get("/").status_code == 200
    old_cookie = c.get_cookie("dcor_session").value
    token = csrf_of(c, "/account")
    assert c.post("/logout", data={"csrf_token": token}).status_code == 302
    assert c.get("/").status_code == 302
    # Replaying the old cookie does not bring the session back: it was ended on the server.
    c2 = app.test_client()
    c2.set_cookie("dcor_session", old_cookie)
    assert c2.get("/").status_code == 302
    actions = [(e.action, e.result, e.actor) for e in _audit(app)]
    assert ("login", "ok", "ani-operator") in actions
    assert ("logout", "ok", "ani-operator") in actions


def test_wrong_password_and_unknown_user_look_the_same_and_are_audited(app):
    c = app.test_client()
    bad = login(c, "ani-operator", "not the password at all")
    unknown = login(c, "nobody-here", "not the password at all")
    assert bad.status_code == unknown.status_code == 401
    assert bad.get_data() == unknown.get_data()
    failed = _audit(app, action="login", result="failed")
    assert {e.target for e in failed} == {"ani-operator", "nobody-here"}
    assert all(e.source == "127.0.0.1" for e in failed)
    assert all("password" not in str(e.detail).lower() or "***" in str(e.detail)
               for e in failed)


def test_lockout_after_five_failures_holds_even_the_right_password(app):
    c = app.test_client()
    for _ in range(5):
        assert login(c, "budi-tech", "wrong password again").status_code == 401
    assert login(c, "budi-tech").status_code == 401  # locked: right password refused
    # The fifth failure locks; the sixth try is refused as locked without a password check.
    assert [e.detail["reason"] for e in _audit(app, action="login", result="denied")] == [
        "locked", "locked"]


def test_lockout_is_time_bound(security_registry, users):
    now = [datetime(2024, 5, 1, 7, 0, tzinfo=UTC)]
    store = SecurityStore(security_registry, now=lambda: now[0])
    for _ in range(5):
        assert store.authenticate("budi-tech", "wrong password!!").principal is None
    locked = store.authenticate("budi-tech", PASSWORD)
    assert locked.reason == "locked" and locked.locked_until == now[0] + timedelta(minutes=15)
    now[0] += timedelta(minutes=16)
    # Five more failures after the lock ran out: locked twice as long.
    for _ in range(5):
        store.authenticate("budi-tech", "wrong password!!")
    again = store.authenticate("budi-tech", PASSWORD)
    assert again.reason == "locked" and again.locked_until == now[0] + timedelta(minutes=30)
    now[0] += timedelta(minutes=31)
    assert store.authenticate("budi-tech", PASSWORD).reason == "ok"
    with security_registry.session() as s:
        user = s.query(User).filter_by(username="budi-tech").one()
        assert (user.failed_logins, user.locked_until) == (0, None)


def test_login_attempts_are_rate_limited_per_address(app):
    c = app.test_client()
    codes = [login(c, f"guess-{i}", "some password here").status_code for i in range(11)]
    assert codes[:10] == [401] * 10 and codes[10] == 429
    assert _audit(app, action="login", result="denied")[0].detail["reason"] == "rate_limited"


def test_forms_and_api_calls_need_the_csrf_token(app):
    c, token = logged_in(app, "citra-admin")
    form = {"username": "dewi-op", "password": PASSWORD, "role": "operator", "desk": "damkar"}
    assert c.post("/admin/users", data=form).status_code == 400
    assert c.post("/admin/users", data={**form, "csrf_token": "forged"}).status_code == 400
    assert c.post("/admin/users", data={**form, "csrf_token": token}).status_code == 302
    # State-changing API calls with the session cookie: the header.
    assert c.post("/api/v1/devices/nope-01/revoke", json={}).status_code == 400
    resp = c.post("/api/v1/devices/nope-01/revoke", json={}, headers={"X-CSRF-Token": token})
    assert resp.status_code in (404, 503)
    # Even the login form: no login CSRF.
    anon = app.test_client()
    resp = anon.post("/login", data={"username": "citra-admin", "password": PASSWORD})
    assert resp.status_code == 400
    assert len(_audit(app, action="csrf")) == 4


def test_cookies_are_secure_httponly_samesite_by_default(make_app):
    app = make_app(DCOR_COOKIE_SECURE=True)
    c = app.test_client()
    resp = c.get("/login")
    cookie = resp.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")


def test_security_headers_and_no_store_on_personal_pages(app):
    c, _ = logged_in(app, "budi-tech")
    for path in ("/", "/account", "/login", "/api/v1/devices"):
        h = c.get(path).headers
        assert "default-src 'self'" in h["Content-Security-Policy"]
        assert h["X-Frame-Options"] == "DENY"
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] == "same-origin"
    assert c.get("/account").headers["Cache-Control"] == "no-store"


def test_next_cannot_redirect_off_site(app):
    c = app.test_client()
    token = csrf_of(c)
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        resp = c.post("/login", data={"username": "ani-operator", "password": PASSWORD,
                                      "csrf_token": token, "next": target})
        assert resp.headers["Location"] == "/"
        token = csrf_of(c)


def test_disabling_a_user_ends_their_sessions_and_tokens(app):
    from datetime import timedelta

    from hub.web.auth import security

    c, _ = logged_in(app, "budi-tech")
    store = security(app).store
    token, _exp = store.issue_token("budi-tech", timedelta(hours=1))
    store.set_active("budi-tech", False)
    assert c.get("/").status_code == 302
    resp = app.test_client().get("/api/v1/whoami",
                                 headers={"Authorization": f"Bearer {token.text}"})
    assert resp.status_code == 401


def test_anonymous_wall_screen_sees_the_fleet_but_nothing_else(make_app):
    app = make_app(DCOR_ANONYMOUS_VIEWER=True)
    c = app.test_client()
    assert c.get("/").status_code == 200
    assert c.get("/api/v1/devices").status_code == 200
    assert c.get("/admin/audit").status_code == 302
    assert c.get("/account").status_code == 302


def test_audit_log_is_for_admins(app):
    op, _ = logged_in(app, "ani-operator")
    assert op.get("/admin/audit").status_code == 403
    assert op.get("/api/v1/audit").status_code == 403
    admin, _ = logged_in(app, "citra-admin")
    page = admin.get("/admin/audit?action=login").get_data(as_text=True)
    assert "ani-operator" in page and "citra-admin" in page
    rows = admin.get("/api/v1/audit?action=access").get_json()
    assert {r["actor"] for r in rows} == {"ani-operator"}
    assert all(r["result"] == "denied" for r in rows)


def test_audit_redacts_secret_looking_details(security_registry):
    log = AuditLog(security_registry)
    log.record(actor="x", action="t", result="ok",
               detail={"password": "hunter2hunter2", "nested": {"api_token": "abc"},
                       "note": "fine"})
    (entry,) = log.query()
    assert entry.detail == {"password": "***", "nested": {"api_token": "***"}, "note": "fine"}
