"""Wires the hub's security into the app factory: users and sessions, the audit log, the
enrollment service, and the auth, account, admin and enrollment blueprints.

From ``HubSettings`` in production; ``test_config`` may set ``DCOR_ENROLLMENT`` (a ready
``EnrollmentService``), ``DCOR_ANONYMOUS_VIEWER``, ``DCOR_COOKIE_SECURE`` and
``DCOR_LOGIN_DISABLED`` (tests of other areas only: every request then acts as an admin and
CSRF is not checked; it cannot be set from settings or the environment).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from hub.broker.admin import BrokerEndpoint, DynsecAdmin
from hub.registry.db import Registry
from hub.security.audit import AuditLog
from hub.security.store import SecurityStore
from hub.settings import HubSettings
from hub.web.auth import SecurityDeps, init_auth

log = logging.getLogger(__name__)

# Flipped only by the test suite's conftest for tests of other areas (they call the app
# without logging in); nothing in the hub sets it, and no setting or variable reaches it.
TESTS_WITHOUT_LOGIN = False


def build_enrollment(settings: HubSettings, registry: Registry) -> Any:
    """The enrollment service: with broker credentials and TLS when ``init-hub`` material is
    present and ``device_broker_host`` is set; otherwise plain bundles for an anonymous
    loopback broker (development)."""
    from provisioning.hubinit import HubMaterial
    from provisioning.service import EnrollmentService

    material = HubMaterial(settings.resolved_security_dir())
    if material.ready() and settings.device_broker_host:
        admin = DynsecAdmin(BrokerEndpoint(
            settings.mqtt_host, settings.mqtt_port, settings.broker_admin_username,
            material.admin_password(), settings.mqtt_tls_ca_file))
        return EnrollmentService(registry, admin, material, settings.device_broker_host,
                                 settings.device_broker_port)
    log.warning("no hub security material in %s (or no device_broker_host): enrollment "
                "hands out bundles without broker credentials", material.folder)
    return EnrollmentService(registry, None, None,
                             settings.device_broker_host or settings.mqtt_host,
                             settings.mqtt_port)


def init_security(app: Flask, settings: HubSettings | None, registry: Registry) -> None:
    from hub.web import admin, login, provision_api

    cfg = app.config
    enrollment = cfg.get("DCOR_ENROLLMENT")
    if enrollment is None and settings is not None:
        enrollment = build_enrollment(settings, registry)
    deps = SecurityDeps(
        store=SecurityStore(registry),
        audit=AuditLog(registry),
        enrollment=enrollment,
        anonymous_viewer=bool(cfg.get("DCOR_ANONYMOUS_VIEWER",
                                      settings.web_anonymous_viewer if settings else False)),
        login_disabled=bool(cfg.get("DCOR_LOGIN_DISABLED", TESTS_WITHOUT_LOGIN)),
        proxy_hops=settings.web_proxy_hops if settings else 0,
    )
    secure = bool(cfg.get("DCOR_COOKIE_SECURE",
                          settings.web_cookie_secure if settings else True))
    init_auth(app, deps, cookie_secure=secure)
    app.register_blueprint(login.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(provision_api.bp)
