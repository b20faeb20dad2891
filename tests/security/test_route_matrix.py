"""Every route x role gives exactly the allowed matrix. The routes come from the app's URL
map, so a new route fails here until it is classified (``hub/web/policy.py``) and its row is
added below; the expected roles are written out here, not read from the policy."""

from __future__ import annotations

from typing import Final

import pytest

from hub.web.policy import permission_of
from tests.security.conftest import USERS, logged_in

ANON, OPERATOR, TECH, ADMIN = "anonymous", "ani-operator", "budi-tech", "citra-admin"
STAFF = {OPERATOR, TECH, ADMIN}
# permission -> who may (the roles: operator per desk, technician, admin)
MAY: Final = {
    "public": {ANON, *STAFF},
    "view": STAFF,
    "view_media": STAFF,
    "account": STAFF,
    "alert_act": {OPERATOR, ADMIN},
    "enroll": {TECH, ADMIN},
    "check": {TECH, ADMIN},
    "revoke": {ADMIN},
    "config_push": {ADMIN},
    "admin": {ADMIN},
}
ROUTES: Final = {
    "static": "public", "auth.login": "public", "fleet.healthz": "public",
    "auth.logout": "account", "auth.account": "account", "auth.new_token": "account",
    "auth.revoke_token": "account", "provision.whoami": "account",
    "fleet.fleet": "view", "api.devices": "view", "api.device": "view",
    "api.ingest_stats": "view", "metrics.metrics": "view", "openapi.spec": "public",
    "media.media_file": "view_media", "media.device_media": "view_media",
    "alerts.console": "view", "alerts.console_rows": "view", "alerts.alert_page": "view",
    "alerts.api_list": "view", "alerts.api_detail": "view", "alerts.api_stream": "view",
    "alerts.api_silences": "view",
    "alerts.api_acknowledge": "alert_act", "alerts.api_assign": "alert_act",
    "alerts.api_note": "alert_act", "alerts.api_resolve": "alert_act",
    "alerts.api_silence_alert": "alert_act", "alerts.api_add_silence": "alert_act",
    "alerts.api_expire_silence": "alert_act",
    "provision.enroll": "enroll", "provision.replace": "enroll",
    "provision.install_check": "check", "provision.revoke": "revoke",
    "admin.users": "admin", "admin.create_user": "admin", "admin.set_active": "admin",
    "admin.unlock": "admin", "admin.audit_page": "admin", "admin.audit_json": "admin",
    "wall.wall": "view", "wall.fleet_stream": "view", "map.map_page": "view",
    "map.upload_boundaries": "admin", "map.remove_boundaries": "admin",
    "device.device_page": "view", "device.device_history": "view",
    "configpush.page": "config_push", "configpush.api_devices": "config_push",
    "configpush.api_drift": "config_push", "configpush.api_overrides": "config_push",
    "configpush.api_set_override": "config_push", "configpush.api_models": "config_push",
    "configpush.api_rollouts": "config_push", "configpush.api_start": "config_push",
    "configpush.api_rollout": "config_push", "configpush.api_steer": "config_push",
    "configpush.model_file": "public",
}
# Their own normal answers look like a refusal: an empty login fails (401, or 400 without
# the form's CSRF token), logging out sends you to the login page.
ANSWERS_LIKE_A_GUARD: Final = {("auth.login", "POST"): (400, 401),
                               ("auth.logout", "POST"): (302,)}
ARGS: Final = {"device_id": "matrix-dev-01", "item_id": "matrix-dev-01:snapshot:x",
               "alert_id": "no-such-alert", "token_id": "0123456789ab",
               "username": "nobody-here", "silence_id": "no-such-silence",
               "filename": "hub.css", "rollout_id": "no-such-rollout", "action": "pause",
               "scope": "device", "key": "matrix-dev-01", "sha256": "0" * 64}


def _requests(app):
    adapter = app.url_map.bind("localhost")
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.endpoint == "auth.logout",
                                                                 r.rule)):
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            url = adapter.build(rule.endpoint, {a: ARGS[a] for a in rule.arguments},
                                method=method)
            yield rule.endpoint, method, url


def test_every_route_is_classified(app):
    endpoints = {r.endpoint for r in app.url_map.iter_rules()}
    assert endpoints == set(ROUTES), (
        f"unclassified: {sorted(endpoints - set(ROUTES))}; gone: "
        f"{sorted(set(ROUTES) - endpoints)} (classify in hub/web/policy.py and here)")
    for endpoint, perm in ROUTES.items():
        assert permission_of(endpoint, app.view_functions[endpoint]) == perm, endpoint


@pytest.mark.parametrize("who", [ANON, *USERS])
def test_route_role_matrix(app, who):
    if who == ANON:
        client, token = app.test_client(), ""
    else:
        client, token = logged_in(app, who)
    wrong = []
    for endpoint, method, url in _requests(app):
        allowed = who in MAY[ROUTES[endpoint]]
        headers = {"X-CSRF-Token": token} if token else {}
        resp = client.open(url, method=method, json={} if method != "GET" else None,
                           headers=headers)
        status, location = resp.status_code, resp.headers.get("Location", "")
        resp.close()
        to_login = status == 302 and location.startswith("/login")
        if allowed and (endpoint, method) in ANSWERS_LIKE_A_GUARD:
            ok = status in ANSWERS_LIKE_A_GUARD[endpoint, method]
        elif allowed:
            ok = status not in (401, 403) and not to_login
        elif who == ANON:
            ok = status == 401 if url.startswith(("/api/", "/healthz", "/metrics")) \
                else to_login
        else:
            ok = status == 403
        if not ok:
            wrong.append(f"{method} {url} ({endpoint}): {status} {location}")
    assert not wrong, f"{who}:\n" + "\n".join(wrong)
