"""Who may call what (pure): permissions per role and the permission of every endpoint.

Every endpoint must be classified, here or with ``@requires`` on its view; one that is not
is treated as admin-only (fail closed), and ``tests/security/test_route_matrix.py`` fails
until it is classified.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Final, TypeVar

F = TypeVar("F", bound=Callable[..., object])


class Perm(StrEnum):
    PUBLIC = "public"  # no login: the login page, static files, the supervisor's health check
    VIEW = "view"  # fleet page and read API
    VIEW_MEDIA = "view_media"  # snapshots and clips (audited)
    ACCOUNT = "account"  # one's own account page, logout, one's own tokens
    ALERT_ACT = "alert_act"  # acknowledge / assign / resolve alerts (operators: own desk)
    ENROLL = "enroll"  # enroll and replace boxes
    CHECK = "check"  # report an on-site check
    REVOKE = "revoke"  # revoke a box
    CONFIG_PUSH = "config_push"  # push configuration and models
    ADMIN = "admin"  # users, the audit log


ROLES: Final = ("operator", "technician", "admin")
# "viewer" is the anonymous wall screen, only when the hub allows it.
ROLE_PERMS: Final[dict[str, frozenset[Perm]]] = {
    "": frozenset(),
    "viewer": frozenset({Perm.VIEW, Perm.VIEW_MEDIA}),
    "operator": frozenset({Perm.VIEW, Perm.VIEW_MEDIA, Perm.ACCOUNT, Perm.ALERT_ACT}),
    "technician": frozenset({Perm.VIEW, Perm.VIEW_MEDIA, Perm.ACCOUNT, Perm.ENROLL,
                             Perm.CHECK}),
    "admin": frozenset(Perm) - {Perm.PUBLIC},
}

# Endpoints of blueprints this module does not own, by name.
ENDPOINTS: Final[dict[str, Perm]] = {
    "static": Perm.PUBLIC,
    "fleet.healthz": Perm.PUBLIC,
    "fleet.fleet": Perm.VIEW,
    "api.devices": Perm.VIEW,
    "api.device": Perm.VIEW,
    "api.ingest_stats": Perm.VIEW,
    # The API's description: no secret in it, and tools fetch it before they have a token.
    "openapi.spec": Perm.PUBLIC,
    "media.media_file": Perm.VIEW_MEDIA,
    "media.device_media": Perm.VIEW_MEDIA,
    # Prometheus scrapes with an admin's bearer token (or anonymously with the wall screen).
    "metrics.metrics": Perm.VIEW,
    "alerts.console": Perm.VIEW,
    "alerts.console_rows": Perm.VIEW,
    "alerts.alert_page": Perm.VIEW,
    "alerts.api_list": Perm.VIEW,
    "alerts.api_detail": Perm.VIEW,
    "alerts.api_stream": Perm.VIEW,
    "alerts.api_silences": Perm.VIEW,
    "alerts.api_acknowledge": Perm.ALERT_ACT,
    "alerts.api_assign": Perm.ALERT_ACT,
    "alerts.api_note": Perm.ALERT_ACT,
    "alerts.api_resolve": Perm.ALERT_ACT,
    "alerts.api_silence_alert": Perm.ALERT_ACT,
    "alerts.api_add_silence": Perm.ALERT_ACT,
    "alerts.api_expire_silence": Perm.ALERT_ACT,
    # The room's views: wall, map, device pages; uploading map boundaries is an admin's.
    "wall.wall": Perm.VIEW,
    "wall.fleet_stream": Perm.VIEW,
    "map.map_page": Perm.VIEW,
    "map.upload_boundaries": Perm.ADMIN,
    "map.remove_boundaries": Perm.ADMIN,
    "device.device_page": Perm.VIEW,
    "device.device_history": Perm.VIEW,
}

ATTR: Final = "_dcor_permission"


def requires(perm: Perm) -> Callable[[F], F]:
    """Declare a view's permission next to it."""
    def mark(view: F) -> F:
        setattr(view, ATTR, perm)
        return view

    return mark


def permission_of(endpoint: str | None, view: object | None) -> Perm | None:
    """The declared permission; None when the endpoint is not classified."""
    declared = getattr(view, ATTR, None)
    if isinstance(declared, Perm):
        return declared
    return ENDPOINTS.get(endpoint or "")


def allowed(role: str, perm: Perm | None) -> bool:
    if perm is None:
        return role == "admin"  # fail closed
    return perm is Perm.PUBLIC or perm in ROLE_PERMS.get(role, frozenset())
