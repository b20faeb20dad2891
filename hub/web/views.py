"""The room's pages: the fleet view at ``/``, and ``/healthz`` for the process supervisor."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, render_template
from flask_babel import get_translations
from flask_babel import gettext as _

from hub.web.data import load_devices, registry_ok
from hub.web.deps import deps
from hub.web.fleet import ABSENT, BUCKETS, device_row, group_rows, total_counts
from hub.web.i18n import current_language
from hub.web.media import media_url
from hub.web.timefmt import display_wib

bp = Blueprint("fleet", __name__)

REFRESH_S = 5
# The same msgids as the template's ngettext(), so one translation serves both.
DEVICE_COUNT = ("%(num)d device", "%(num)d devices")
# The same msgid as the template's thumbnail alt text; the script fills in the placeholders.
SNAPSHOT_ALT = "Latest snapshot of camera %(camera)s on %(device)s, %(time)s"


def state_labels() -> dict[str, str]:
    """Visible names of device states and group buckets, in the request's language."""
    return {
        "online": _("Online"),
        "stale": _("Late"),
        "offline": _("Offline"),
        "unknown": _("Unknown"),
        "decommissioned": _("Decommissioned"),
        "degraded": _("Degraded"),
    }


def column_labels() -> list[str]:
    return [_("Device"), _("State"), _("Last seen (WIB)"), _("CPU"), _("Memory"), _("Disk"),
            _("Temperature"), _("Outbox"), _("Clock synced")]


def js_strings() -> dict[str, Any]:
    """What the refresh script needs to draw the tables in the page's language."""
    t = get_translations()
    return {
        "states": state_labels(),
        "columns": column_labels(),
        "yes": _("yes"),
        "no": _("no"),
        "absent": ABSENT,
        "unknownPlace": _("Not recorded"),
        "district": _("District"),
        "subDistrict": _("Sub-district"),
        "byState": _("Devices by state"),
        "empty": _("No devices enrolled yet."),
        # Unformatted: the script fills in the numbers.
        "deviceOne": t.ngettext(DEVICE_COUNT[0], DEVICE_COUNT[1], 1),
        "deviceMany": t.ngettext(DEVICE_COUNT[0], DEVICE_COUNT[1], 2),
        "dataAsOf": t.gettext("Data as of %(time)s"),
        "snapshotAlt": t.gettext(SNAPSHOT_ALT),
        "noSnapshot": _("No snapshot yet"),
        "cameras": _("Cameras"),
        "refreshFailed": _("Refresh failed, retrying"),
    }


@bp.get("/")
def fleet() -> str:
    d = deps()
    now = d.now()
    lang = current_language()
    rows = [device_row(r, now, locale=lang, yes=_("yes"), no=_("no"), media_url=media_url)
            for r in load_devices(d.registry)]
    groups = group_rows(rows)
    return render_template(
        "fleet.html",
        groups=groups,
        totals=total_counts(groups),
        device_count=len(rows),
        buckets=BUCKETS,
        labels=state_labels(),
        columns=column_labels(),
        js_strings=js_strings(),
        generated_at=display_wib(now),
        refresh_s=REFRESH_S,
    )


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    ok = registry_ok(deps().registry)
    return jsonify({"status": "ok" if ok else "degraded", "registry": ok}), 200 if ok else 503
