"""Visible names of the alert console, in the request's language (Flask-Babel)."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

from hub.alerts.rules import Desk
from hub.web.i18n import current_language

SILENCE_CHOICES = ("1h", "4h", "12h", "1d", "7d")


def status_labels() -> dict[str, str]:
    return {"pending": _("Pending"), "firing": _("Firing"), "acknowledged": _("Acknowledged"),
            "resolved": _("Resolved")}


def severity_labels() -> dict[str, str]:
    return {"info": _("Info"), "warning": _("Warning"), "critical": _("Critical")}


def state_filter_labels() -> dict[str, str]:
    return {"open": _("Open (firing or acknowledged)"),
            "active": _("Active (pending included)"), **status_labels(), "all": _("All")}


def event_labels() -> dict[str, str]:
    return {"firing": _("Fired"), "acknowledged": _("Acknowledged"), "assigned": _("Assigned"),
            "note": _("Note"), "resolved": _("Resolved"), "escalated": _("Escalated"),
            "flapping": _("Started flapping"), "flap_end": _("Stopped flapping"),
            "grouped": _("Joined a group alert"), "silenced": _("Silenced")}


def silence_labels() -> dict[str, str]:
    return {"1h": _("1 hour"), "4h": _("4 hours"), "12h": _("12 hours"), "1d": _("1 day"),
            "7d": _("7 days")}


def desk_name(desk: Desk) -> str:
    return desk.name_id if current_language() == "id" else desk.name_en


def js_strings() -> dict[str, Any]:
    """What alerts.js shows, already in the page's language."""
    return {
        "lang": current_language(),
        "live": _("Live: new alerts appear by themselves"),
        "reconnecting": _("Connection lost, reconnecting"),
        "saved": _("Saved"),
        "failed": _("Not saved: %(reason)s"),
        "needName": _("Enter your name first"),
        "refreshFailed": _("Refresh failed, retrying"),
    }
