"""The hub's logs: the shared formatter (``edge_agent.logs``, stdlib only) plus, in the web app,
a request id on every line and in every answer.

The id comes from the ``X-Request-ID`` header when the proxy sets a sane one (nginx:
``proxy_set_header X-Request-ID $request_id``, so nginx's and the hub's lines share it), else
it is made here; the answer carries it back, so an operator can quote it. JSON lines of a
request also carry ``device`` when the route names one.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from edge_agent.logs import resolve_format, setup_logging

if TYPE_CHECKING:
    from flask import Flask
    from werkzeug.wrappers import Response

REQUEST_ID_HEADER: Final = "X-Request-ID"
_SANE_ID: Final = re.compile(r"[A-Za-z0-9._-]{8,64}")
access_log = logging.getLogger("dcor.hub.access")


def log_context() -> Mapping[str, Any]:
    """Fields of the current request for every log line (empty outside a request)."""
    from flask import g, has_request_context, request

    if not has_request_context():
        return {}
    out: dict[str, Any] = {"request_id": g.get("request_id")}
    device = (request.view_args or {}).get("device_id")
    if isinstance(device, str):
        out["device"] = device[:63]
    return out


def setup_hub_logging(level: str, fmt: str | None, service: str) -> None:
    """Configure the process's logs; ``fmt`` None means ``$DCOR_LOG_FORMAT`` or text. Only the
    web app's lines look for a request (ingest and alerts never import Flask for it)."""
    web = service.endswith("-web")
    setup_logging(level, resolve_format(fmt), fields={"service": service},
                  context=log_context if web else None)


def _start() -> None:
    from flask import g, request

    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex
    g.request_t0 = time.monotonic()


def _finish(response: Response) -> Response:
    from flask import g, request

    rid = g.get("request_id")
    if rid:
        response.headers[REQUEST_ID_HEADER] = rid
    status = response.status_code
    # 5xx are logged with their traceback by the error handler; refusals are worth a line;
    # the fleet page's polling is not.
    level = logging.WARNING if status >= 500 else (
        logging.INFO if status >= 400 else logging.DEBUG)
    if access_log.isEnabledFor(level):
        t0 = g.get("request_t0")
        access_log.log(level, "%s %s %d", request.method, request.path, status, extra={
            "method": request.method, "path": request.path, "status": status,
            "ms": round((time.monotonic() - t0) * 1000, 1) if t0 is not None else None,
            "user": getattr(g.get("principal"), "username", None)})
    return response


def init_request_ids(app: Flask) -> None:
    """Register first, so even the security guard's lines carry the id."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)
