"""The OpenAPI document of the JSON API: it covers every ``/api/`` route of the app, the hub
serves it, and schemathesis fuzzes a live hub (real HTTP, real logins, a real influxd) with
it: no 5xx, answers as documented, invalid requests refused and changing nothing."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from hub.registry.db import open_registry
from hub.security.store import SecurityStore
from hub.settings import load_settings
from hub.web import close_app, create_app, make_web_server
from hub.web.openapi import load_spec
from provisioning.registry_ops import SiteSpec, register_device

# Never-ending answers: checked once by hand below, not fuzzed.
STREAMS: Final = {"/api/v1/alerts/stream", "/api/v1/fleet/stream"}
# Per operation and mode: ~35 operations x 2 modes within the time budget. A deeper run:
# DCOR_FUZZ_EXAMPLES=200 .venv/bin/pytest tests/ops/test_openapi.py (random, not derandomized).
EXAMPLES: Final = int(os.environ.get("DCOR_FUZZ_EXAMPLES", "6"))
CHECKS: Final = [not_a_server_error, status_code_conformance, content_type_conformance,
                 response_schema_conformance]
# Tables an invalid request may touch: the audit log records refusals; sessions and token
# use times are bookkeeping.
VOLATILE: Final = {"audit_log": None, "web_sessions": None, "api_tokens": {"last_used_at"}}


def spec_operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, item in spec["paths"].items() for m in item
            if m in ("get", "post", "put", "delete", "patch")}


def app_operations(app) -> set[tuple[str, str]]:
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
            out |= {(m, path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return out


@dataclass
class LiveHub:
    url: str
    token: str
    db: Path
    app: Any


@pytest.fixture(scope="module")
def live_hub(tmp_path_factory, influxd) -> Iterator[LiveHub]:
    import hub.web.security_setup as security_setup

    root = tmp_path_factory.mktemp("live-hub")
    saved, security_setup.TESTS_WITHOUT_LOGIN = security_setup.TESTS_WITHOUT_LOGIN, False
    influxd.create_database("openapi_fuzz")
    cfg = load_settings(env={}, overrides={
        "data_dir": root, "web_port": 0, "secret_key": "k" * 64, "web_cookie_secure": False,
        "influx_url": influxd.url, "influx_db": "openapi_fuzz", "influx_timeout_s": 2})
    registry = open_registry(cfg.resolved_database_url())
    store = SecurityStore(registry)
    store.create_user("citra-admin", "correct horse battery staple", "admin")
    token, _ = store.issue_token("citra-admin", timedelta(hours=1))
    register_device(registry, "beji-pole-01", SiteSpec("site-1", "Beji", "Kemiri Muka"),
                    "rpi4-cctv")
    app = create_app(cfg, registry=registry)
    server = make_web_server(cfg, app)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                         name="dcor.test:live-hub", daemon=True)
    t.start()
    try:
        yield LiveHub(f"http://127.0.0.1:{server.server_port}", token.text,
                      root / "registry.sqlite", app)
    finally:
        server.shutdown()
        server.server_close()
        close_app(app)
        registry.close()
        security_setup.TESTS_WITHOUT_LOGIN = saved


def db_state(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        out = {}
        for t in tables:
            if t in VOLATILE and VOLATILE[t] is None:
                continue
            cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')
                    if r[1] not in (VOLATILE.get(t) or set())]
            quoted = ", ".join(f'"{c}"' for c in cols)
            out[t] = sorted(conn.execute(f'SELECT {quoted} FROM "{t}"').fetchall(), key=repr)
    return out


def test_every_api_route_is_documented(live_hub):
    documented = spec_operations(load_spec())
    routes = app_operations(live_hub.app)
    assert routes - documented == set(), (
        "routes missing from hub/web/openapi.yaml: "
        f"{sorted(routes - documented)}")
    stale = documented - routes
    assert stale == set(), f"documented but not in the app: {sorted(stale)}"


def test_the_hub_serves_its_document_without_login(live_hub):
    r = requests.get(f"{live_hub.url}/api/v1/openapi.json", timeout=5)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert body["openapi"] == "3.0.3" and body["info"]["version"] != "0"
    assert spec_operations(body) == spec_operations(load_spec())
    assert not any(k.startswith("x-shared") for k in body)


def test_without_credentials_every_operation_answers_401(live_hub):
    wrong = []
    for method, path in sorted(spec_operations(load_spec())):
        if path == "/api/v1/openapi.json":
            continue
        url = live_hub.url + re.sub(r"\{[a-z_]+\}", "beji-pole-01", path)
        r = requests.request(method, url, json={}, timeout=5, stream=True)
        if r.status_code != 401 or r.json()["error"]["code"] != "login_required":
            wrong.append(f"{method} {path}: {r.status_code}")
        r.close()
    assert not wrong, wrong


def test_the_alert_stream_answers_as_documented(live_hub):
    with requests.get(f"{live_hub.url}/api/v1/alerts/stream", stream=True, timeout=5,
                      headers={"Authorization": f"Bearer {live_hub.token}"}) as r:
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        assert next(r.iter_content(64)).startswith(b"retry:")


def _fuzz(live_hub: LiveHub, mode: GenerationMode, checks: list[Any]) -> list[str]:
    schema = schemathesis.openapi.from_url(f"{live_hub.url}/api/v1/openapi.json", timeout=10)
    # The session's token wins over a generated Authorization header: a case made invalid only
    # there reached the hub as a valid request, which then wrote. Credentials are tested on
    # their own (test_without_credentials_every_operation_answers_401).
    schema.config.generation.update(with_security_parameters=False)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {live_hub.token}"
    failures: list[str] = []
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path in STREAMS:
            continue

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  derandomize="DCOR_FUZZ_EXAMPLES" not in os.environ,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            response = case.call(base_url=live_hub.url, session=session, timeout=10)
            case.validate_response(response, checks=checks)

        try:
            run()
        except Unsatisfiable:
            if mode != GenerationMode.NEGATIVE:
                failures.append(f"{op.method.upper()} {op.path}: no valid request generated")
            # else: nothing of it can be invalid (no parameters or body with constraints)
        except (Exception, BaseExceptionGroup) as exc:  # every operation's, then all at once
            failures.append(f"{op.method.upper()} {op.path}: {str(exc)[:600]}")
    session.close()
    return failures


def test_invalid_requests_are_refused_and_change_nothing(live_hub):
    before = db_state(live_hub.db)
    failures = _fuzz(live_hub, GenerationMode.NEGATIVE, [*CHECKS, negative_data_rejection])
    assert not failures, "\n".join(failures)
    after = db_state(live_hub.db)
    changed = {t for t in before.keys() | after.keys() if before.get(t) != after.get(t)}
    assert not changed, f"invalid requests changed {sorted(changed)}"


def test_valid_requests_never_fail_on_the_server(live_hub):
    failures = _fuzz(live_hub, GenerationMode.POSITIVE, CHECKS)
    assert not failures, "\n".join(failures)
