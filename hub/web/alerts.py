"""The alert console: pages per desk, the alert JSON API, operator actions, the live stream.

Pages: ``/alerts?desk=&severity=&kecamatan=&state=`` (``/alerts/rows`` is its table body,
for the live refresh) and ``/alerts/<id>`` (facts, forms, history, snapshots and clips).
API: ``GET /api/v1/alerts`` (same filters), ``GET /api/v1/alerts/<id>`` (with history, member
alerts and media), ``GET /api/v1/alerts/stream`` (server-sent events; ``?desk=``, cursor
``?after=`` or ``Last-Event-ID``), ``GET /api/v1/silences``.

State-changing routes are the ``POST`` ones below, all in this blueprint. The app's guard
(``hub.web.auth``) checks the login, the role (``hub.web.policy``: ``alerts.*`` endpoints) and
the CSRF token (``X-CSRF-Token`` header or ``csrf_token`` form field) before they run; here an
operator may act only on alerts routed to their desk. They take JSON (or a plain form, then
answer with a redirect to ``next``). Who acts is the logged-in person; without logins (tests,
a hub without users) it is ``by`` in the body.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from werkzeug.routing import BuildError

from hub.alerts import actions
from hub.alerts.actions import AlertActionError
from hub.alerts.durations import parse_duration
from hub.alerts.model import AlertEvent, EngineState, Evaluation, Notification, Silence
from hub.alerts.notify import notification_payload
from hub.alerts.rulefile import RuleFile
from hub.alerts.rules import RulesError, RuleSet
from hub.alerts.store import AlertStore, active_silences
from hub.settings import HubSettings
from hub.web import alertlabels as labels
from hub.web.alertdata import (
    STATES,
    AlertFilter,
    alert_json,
    detail_json,
    kecamatan_names,
    list_alerts,
    load_alert,
    load_detail,
    parse_filter,
    texts_of,
)
from hub.web.alertforms import (
    BadRequest,
    actor,
    body_of,
    done,
    not_your_desk,
    silence_json,
    text,
)
from hub.web.alertstream import NotificationFeed, parse_cursor, stream
from hub.web.deps import deps
from hub.web.errors import json_error
from hub.web.queryargs import QueryError
from hub.web.timefmt import display_wib

log = logging.getLogger(__name__)

bp = Blueprint("alerts", __name__)
EXTENSION_KEY = "dcor.alerts"
MIN_SILENCE_S, MAX_SILENCE_S = 60.0, 30 * 86400.0
# As openapi.yaml's SilenceDuration: the form's choices fit; '3600' or '1h30m' do not.
SILENCE_DURATION = re.compile(r"[0-9]+[smhd]")


@dataclass
class AlertsWeb:
    rule_file: RuleFile
    feed: NotificationFeed
    heartbeat_s: float = 15.0
    stream_max_age_s: float = 300.0

    def rules(self) -> RuleSet:
        return self.rule_file.current()


def init_app(app: Flask, settings: HubSettings | None) -> None:
    """Register the blueprint; rules from ``settings.alert_rules_path`` (or the test config's
    ``DCOR_ALERT_RULES_PATH``), reloaded on change. Call after the registry is on the app."""
    path = app.config.get("DCOR_ALERT_RULES_PATH") or (
        settings.alert_rules_path if settings is not None else None)
    try:
        rule_file = RuleFile(path)
    except RulesError as exc:
        log.error("%s\nThe alert console uses the packaged default rules.", exc)
        rule_file = RuleFile(None)
    registry = deps(app).registry
    registry.create_schema()  # the alert tables, when the registry was opened before import
    app.extensions[EXTENSION_KEY] = AlertsWeb(
        rule_file, NotificationFeed(registry),
        heartbeat_s=float(app.config.get("DCOR_SSE_HEARTBEAT_S", 15.0)),
        stream_max_age_s=float(app.config.get("DCOR_SSE_MAX_AGE_S", 300.0)))
    app.register_blueprint(bp)


def _web() -> AlertsWeb:
    found: AlertsWeb = current_app.extensions[EXTENSION_KEY]
    return found


def _media_url(item_id: str) -> str | None:
    try:
        return url_for("media.media_file", item_id=item_id)
    except BuildError:
        return None  # the media routes are not mounted in this app


# --- pages -----------------------------------------------------------------------------------

def _page_context() -> dict[str, Any]:
    rules = _web().rules()
    return {"rules": rules, "desk_names": {d.id: labels.desk_name(d) for d in rules.desks},
            "status_labels": labels.status_labels(),
            "severity_labels": labels.severity_labels(), "now": deps().now(),
            "texts_of": functools.partial(texts_of, rules=rules), "display_wib": display_wib,
            "ms_wib": _ms_wib}


def _ms_wib(ms: int) -> str | None:
    return display_wib(datetime.fromtimestamp(ms / 1000, UTC))


@bp.get("/alerts")
def console() -> str | tuple[str, int]:
    ctx = _page_context()
    try:
        f = parse_filter(request.args, ctx["rules"].desk_by_id)
    except QueryError as exc:
        return render_template("alerts.html", error=str(exc), alerts=[], filter=None,
                               back=url_for("alerts.console"), **_console_extras(), **ctx), 400
    return render_template("alerts.html", error=None, filter=f,
                           alerts=list_alerts(deps().registry, f),
                           back=_console_url(f),
                           **_console_extras(), **ctx)


def _console_url(f: AlertFilter) -> str:
    args: dict[str, Any] = f.query_args()
    return url_for("alerts.console", **args)


def _console_extras() -> dict[str, Any]:
    return {"states": STATES, "state_labels": labels.state_filter_labels(),
            "kecamatan": kecamatan_names(deps().registry), "js_strings": labels.js_strings()}


@bp.get("/alerts/rows")
def console_rows() -> str | tuple[str, int]:
    ctx = _page_context()
    try:
        f = parse_filter(request.args, ctx["rules"].desk_by_id)
    except QueryError as exc:
        return str(exc), 400
    return render_template("_alert_rows.html", alerts=list_alerts(deps().registry, f),
                           back=_console_url(f), **ctx)


@bp.get("/alerts/<alert_id>")
def alert_page(alert_id: str) -> str:
    ctx = _page_context()
    detail = load_detail(deps().registry, alert_id, ctx["now"])
    if detail is None:
        abort(404)
    return render_template("alert_detail.html", d=detail, a=detail.alert,
                           event_labels=labels.event_labels(),
                           silence_choices=labels.silence_labels(), media_url=_media_url,
                           js_strings=labels.js_strings(), **ctx)


# --- JSON API --------------------------------------------------------------------------------

@bp.get("/api/v1/alerts")
def api_list() -> Response | tuple[Response, int]:
    rules = _web().rules()
    try:
        f = parse_filter(request.args, rules.desk_by_id)
    except QueryError as exc:
        return json_error(400, "invalid_parameter", str(exc))
    now = deps().now()
    return jsonify({"filter": {**f.query_args(), "state": f.state, "limit": f.limit},
                    "alerts": [alert_json(a, rules, now) for a in list_alerts(
                        deps().registry, f)]})


@bp.get("/api/v1/alerts/<alert_id>")
def api_detail(alert_id: str) -> Response | tuple[Response, int]:
    now = deps().now()
    detail = load_detail(deps().registry, alert_id, now)
    if detail is None:
        return json_error(404, "unknown_alert", f"no alert {alert_id!r}")
    return jsonify(detail_json(detail, _web().rules(), now, _media_url))


@bp.get("/api/v1/alerts/stream")
def api_stream() -> Response | tuple[Response, int]:
    web = _web()
    desk = request.args.get("desk") or None
    if desk is not None and desk not in web.rules().desk_by_id:
        return json_error(400, "invalid_parameter", f"unknown desk {desk!r}")
    cursor = parse_cursor(request.headers.get("Last-Event-ID"))
    if cursor is None:
        cursor = parse_cursor(request.args.get("after"))
    if cursor is None:
        cursor = web.feed.newest()  # only what happens from now on

    def render(n: Notification) -> dict[str, Any] | None:
        if desk is not None and desk not in n.desks:
            return None
        return notification_payload(n, web.rules().by_id.get(n.rule_id))

    body = stream(web.feed, cursor, render, heartbeat_s=web.heartbeat_s,
                  max_age_s=web.stream_max_age_s)
    response = Response(stream_with_context(body), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache, no-transform"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


@bp.get("/api/v1/silences")
def api_silences() -> Response:
    with deps().registry.session() as s:
        found = active_silences(s, deps().now())
    return jsonify([silence_json(x) for x in found])


# --- actions ---------------------------------------------------------------------------------

def _act(alert_id: str, make: Callable[[dict[str, Any], str, datetime],
                                       Callable[[EngineState], Evaluation]]
         ) -> Response | tuple[Response, int]:
    alert = load_alert(deps().registry, alert_id)
    if alert is None:
        return json_error(404, "unknown_alert", f"no alert {alert_id!r}")
    denied = not_your_desk(alert)
    if denied is not None:
        return denied
    try:
        body = body_of()
        who = actor(body)
        now = deps().now()
        AlertStore(deps().registry, "web").act(make(body, who, now), now)
    except BadRequest as exc:
        return json_error(400, "invalid_body", str(exc))
    except AlertActionError as exc:
        return json_error(409, "not_possible", str(exc))
    return done({"ok": True, "id": alert_id})


@bp.post("/api/v1/alerts/<alert_id>/acknowledge")
def api_acknowledge(alert_id: str) -> Response | tuple[Response, int]:
    return _act(alert_id, lambda b, who, now: functools.partial(
        actions.acknowledge, alert_id=alert_id, who=who, note=text(b, "note"), now=now))


@bp.post("/api/v1/alerts/<alert_id>/assign")
def api_assign(alert_id: str) -> Response | tuple[Response, int]:
    return _act(alert_id, lambda b, who, now: functools.partial(
        actions.assign, alert_id=alert_id, who=who,
        assignee=text(b, "assignee", required=True, limit=100), now=now))


@bp.post("/api/v1/alerts/<alert_id>/note")
def api_note(alert_id: str) -> Response | tuple[Response, int]:
    return _act(alert_id, lambda b, who, now: functools.partial(
        actions.add_note, alert_id=alert_id, who=who, note=text(b, "note", required=True),
        now=now))


@bp.post("/api/v1/alerts/<alert_id>/resolve")
def api_resolve(alert_id: str) -> Response | tuple[Response, int]:
    rules = _web().rules()
    return _act(alert_id, lambda b, who, now: functools.partial(
        actions.resolve_alert, rules, alert_id=alert_id, who=who, note=text(b, "note"),
        now=now))


@bp.post("/api/v1/alerts/<alert_id>/silence")
def api_silence_alert(alert_id: str) -> Response | tuple[Response, int]:
    """Silence this alert's subject and rule for ``duration`` (e.g. ``4h``)."""
    alert = load_alert(deps().registry, alert_id)
    if alert is None:
        return json_error(404, "unknown_alert", f"no alert {alert_id!r}")
    denied = not_your_desk(alert)
    if denied is not None:
        return denied
    matchers = {"subject": alert.subject.key, "rule": alert.rule_id}
    return _silence(matchers, alert_id)


@bp.post("/api/v1/silences")
def api_add_silence() -> Response | tuple[Response, int]:
    """``matchers``: label -> glob, e.g. ``{"kelurahan": "Beji Timur", "area": "camera"}``."""
    try:
        matchers = body_of().get("matchers")
        if not isinstance(matchers, dict) or not matchers or not all(
                isinstance(k, str) and isinstance(v, str) and k and v
                for k, v in matchers.items()):
            raise BadRequest("matchers must be a non-empty object of label: glob strings")
    except BadRequest as exc:
        return json_error(400, "invalid_body", str(exc))
    return _silence(matchers, None)


def _silence(matchers: dict[str, str], alert_id: str | None) -> Response | tuple[Response, int]:
    try:
        body = body_of()
        who, reason = actor(body), text(body, "reason", required=True, limit=500)
        duration = body.get("duration")
        if not isinstance(duration, str) or not SILENCE_DURATION.fullmatch(duration):
            raise BadRequest("give 'duration' as a whole number and a unit (s, m, h or d), "
                             "e.g. '4h'")
        try:
            seconds = parse_duration(duration)
        except ValueError as exc:  # digits enough to be infinite
            raise BadRequest(str(exc)) from exc
        if not MIN_SILENCE_S <= seconds <= MAX_SILENCE_S:
            raise BadRequest("a silence lasts from 1 minute to 30 days")
    except BadRequest as exc:
        return json_error(400, "invalid_body", str(exc))
    now = deps().now()
    silence = Silence(secrets.token_hex(8), tuple(sorted(matchers.items())), reason, who, now,
                      now + timedelta(seconds=seconds))
    store = AlertStore(deps().registry, "web")
    store.add_silence(silence)
    if alert_id is not None:
        event = AlertEvent(f"{alert_id}:silenced:{silence.id}", alert_id, "silenced", now, who,
                           f"{reason} ({display_wib(silence.ends_at)})")
        store.save(Evaluation(EngineState(), events=(event,)), now)
    return done({"ok": True, "silence": silence_json(silence)})


@bp.post("/api/v1/silences/<silence_id>/expire")
def api_expire_silence(silence_id: str) -> Response | tuple[Response, int]:
    try:
        actor(body_of())
    except BadRequest as exc:
        return json_error(400, "invalid_body", str(exc))
    AlertStore(deps().registry, "web").expire_silence(silence_id[:64], deps().now())
    return done({"ok": True, "id": silence_id})
