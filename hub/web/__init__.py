"""The hub's web app: the room's fleet view and the JSON API (Flask application factory).

Nothing happens at import time: ``create_app`` builds everything, ``run_web`` serves it.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask, Response
from flask.json.provider import DefaultJSONProvider
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from hub.influx import InfluxClient, InfluxConfig
from hub.logs import init_request_ids
from hub.media.store import MediaStore
from hub.registry.db import Registry, open_registry
from hub.settings import HubSettings, load_settings
from hub.web.deps import EXTENSION_KEY, WebDeps, deps
from hub.web.security_setup import init_security

__all__ = ["close_app", "create_app", "make_web_server", "run_web"]

log = logging.getLogger(__name__)
access_log = logging.getLogger("hub.web.access")

# Only our own files: no CDN, no inline script (the page's data is an inert JSON block).
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _registry_from(settings: HubSettings) -> Registry:
    url = settings.resolved_database_url()
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return open_registry(url, create=True)


def _influx_from(settings: HubSettings) -> InfluxClient:
    return InfluxClient(InfluxConfig(
        url=settings.influx_url.rstrip("/"),
        database=settings.influx_db,
        username=settings.influx_username,
        password=settings.influx_password.get_secret_value(),
        token=settings.influx_token.get_secret_value(),
        timeout_s=settings.influx_timeout_s,
    ))


def _media_from(settings: HubSettings) -> MediaStore | None:
    """The store the ingest writes to (same folder and limits); the web app only reads it."""
    try:
        return MediaStore(settings.data_dir / "media", settings.media_max_bytes,
                          settings.media_max_age_s)
    except OSError as exc:
        log.warning("media store %s unusable, snapshots will not be served: %s",
                    settings.data_dir / "media", exc)
        return None


def _security_headers(response: Response) -> Response:
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def create_app(
    settings: HubSettings | None = None,
    *,
    registry: Registry | None = None,
    influx: InfluxClient | None = None,
    media: MediaStore | None = None,
    test_config: dict[str, Any] | None = None,
) -> Flask:
    """Build the app. Registry and InfluxDB clients not given are built from ``settings``
    (loaded from ``DCOR_*`` / ``DCOR_HUB_CONFIG`` when None) and closed by ``close_app``.
    The media store not given is built from ``settings`` when there are settings.

    ``test_config`` updates ``app.config``; its ``DCOR_NOW`` (a callable returning an aware
    UTC datetime) replaces the clock that device states are computed against.
    """
    from hub.web import alerts as alerts_bp
    from hub.web import api, configpush, devicepage, mapview, metrics, openapi, views, wall
    from hub.web import media as media_bp
    from hub.web.errors import init_errors
    from hub.web.i18n import init_i18n

    if settings is None and (registry is None or influx is None):
        settings = load_settings()
    app = Flask(__name__)
    init_request_ids(app)  # first: every later hook's log lines carry the request id
    secret = settings.secret_key.get_secret_value() if settings is not None else ""
    app.config.update(SECRET_KEY=secret or secrets.token_hex(32))
    if isinstance(app.json, DefaultJSONProvider):
        app.json.sort_keys = False  # keep the documented field order of API answers
    if test_config:
        app.config.update(test_config)

    owned: list[Registry | InfluxClient] = []
    if registry is None:
        assert settings is not None
        registry = _registry_from(settings)
        owned.append(registry)
    if influx is None:
        assert settings is not None
        influx = _influx_from(settings)
        owned.append(influx)
    if media is None and settings is not None:
        media = _media_from(settings)
    web_deps = WebDeps(registry=registry, influx=influx, owned=owned, media=media)
    if callable(app.config.get("DCOR_NOW")):
        web_deps.now = app.config["DCOR_NOW"]
    app.extensions[EXTENSION_KEY] = web_deps
    # First: its guard must run before any other request hook.
    init_security(app, settings, registry)

    init_i18n(app)
    init_errors(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(media_bp.bp)
    alerts_bp.init_app(app, settings)
    wall.init_app(app)  # the wall and the fleet stream (the map and device pages use it)
    app.register_blueprint(mapview.bp)
    app.register_blueprint(devicepage.bp)
    configpush.init_app(app, settings)
    app.register_blueprint(metrics.bp)
    app.after_request(_security_headers)
    return app


def close_app(app: Flask) -> None:
    """Close the clients the factory built itself (not those passed in)."""
    d = deps(app)
    for client in reversed(d.owned):
        client.close()
    d.owned.clear()


class _RequestHandler(WSGIRequestHandler):
    """Access lines go to our logger at debug level instead of werkzeug's own stderr
    handler: the CLI decides what is printed."""

    def log(self, type: str, message: str, *args: Any) -> None:
        level = logging.WARNING if type == "error" else logging.DEBUG
        access_log.log(level, "%s " + message, self.address_string(), *args)


def make_web_server(settings: HubSettings, app: Flask | None = None) -> BaseWSGIServer:
    """A bound, threaded WSGI server (``server.server_port`` is the real port when
    ``web_port`` is 0); call ``serve_forever()`` and, from another thread, ``shutdown()``."""
    app = app or create_app(settings)
    return make_server(settings.web_host, settings.web_port, app, threaded=True,
                       request_handler=_RequestHandler)


def run_web(
    settings: HubSettings,
    *,
    on_ready: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve until ``stop`` is set (or KeyboardInterrupt). ``on_ready`` receives the URL once
    the socket is bound, so the CLI can print it; nothing is printed here."""
    app = create_app(settings)
    server = make_web_server(settings, app)
    host = settings.web_host if ":" not in settings.web_host else f"[{settings.web_host}]"
    url = f"http://{host}:{server.server_port}/"
    if stop is not None:
        def _stop_when_asked() -> None:
            stop.wait()
            server.shutdown()

        threading.Thread(target=_stop_when_asked, name="dcor.web:stop", daemon=True).start()
    log.info("serving the hub web app on %s", url)
    if on_ready is not None:
        on_ready(url)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        close_app(app)
