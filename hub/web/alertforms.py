"""Request bodies of the alert console's actions: fields, who acts, where to go after.

Bodies are JSON objects, or plain forms (no script): then the answer is a redirect to the
form's ``next`` (a local path only).
"""

from __future__ import annotations

from typing import Any

from flask import Response, g, jsonify, redirect, request, url_for

from hub.alerts.model import Alert, Silence
from hub.web.errors import json_error
from hub.web.timefmt import time_json


class BadRequest(ValueError):
    """The body does not fit the action; the message says what is missing."""


def body_of() -> dict[str, Any]:
    data: Any = request.get_json(silent=True) if request.is_json else request.form.to_dict()
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    if not all(isinstance(v, str | dict) for v in data.values()):
        raise BadRequest("every value must be a string (matchers: an object)")
    return data


def text(body: dict[str, Any], key: str, required: bool = False, limit: int = 2000) -> str:
    """The field stripped; refused when it is not a string or longer than ``limit`` as sent
    (what openapi.yaml promises), so a refused action never half-happens."""
    value = body.get(key, "")
    if not isinstance(value, str):
        raise BadRequest(f"{key!r} must be a string")
    if len(value) > limit:
        raise BadRequest(f"{key!r} is at most {limit} characters")
    value = value.strip()
    if required and not value:
        raise BadRequest(f"give {key!r}")
    return value


def signed_in() -> Any:
    """The logged-in person the guard of ``hub.web.auth`` put on ``g``, or None."""
    who = getattr(g, "principal", None)
    return who if getattr(who, "via", "") in ("session", "token") else None


def actor(body: dict[str, Any]) -> str:
    """Who acts: the logged-in person; without logins, the name the operator typed."""
    who = signed_in()
    if who is not None:
        return str(who.username)
    return text(body, "by", required=True, limit=100)


def not_your_desk(alert: Alert) -> tuple[Response, int] | None:
    who = signed_in()
    if who is None or who.role != "operator" or who.desk in alert.desks:
        return None
    return json_error(403, "other_desk", f"this alert is routed to {', '.join(alert.desks)}; "
                      f"you sit at {who.desk or 'no desk'}")


def done(payload: dict[str, Any]) -> Response:
    if request.is_json:
        return jsonify(payload)
    target = request.form.get("next", "")
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("alerts.console")
    return redirect(target, code=303)  # type: ignore[return-value]


def silence_json(s: Silence) -> dict[str, Any]:
    return {"id": s.id, "matchers": dict(s.matchers), "reason": s.reason,
            "created_by": s.created_by, "starts_at": time_json(s.starts_at),
            "ends_at": time_json(s.ends_at)}
