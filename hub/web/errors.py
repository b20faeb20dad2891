"""Errors: JSON for the API (``{"error": {"status", "code", "message"}}``), HTML elsewhere."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)

API_PREFIX = "/api/"


def json_error(status: int, code: str, message: str, **extra: Any) -> tuple[Response, int]:
    body = {"error": {"status": status, "code": code, "message": message, **extra}}
    return jsonify(body), status


def _wants_json() -> bool:
    return request.path.startswith(API_PREFIX) or request.path == "/healthz"


def _http_error(exc: HTTPException) -> Response | tuple[Response, int] | HTTPException:
    if not _wants_json():
        return exc
    status = exc.code or 500
    code = (exc.name or "error").lower().replace(" ", "_")
    return json_error(status, code, exc.description or exc.name or "error")


def _unexpected(exc: Exception) -> Response | tuple[Response, int] | HTTPException:
    log.exception("unhandled error on %s %s", request.method, request.path)
    if not _wants_json():
        return InternalServerError()
    return json_error(500, "internal_server_error",
                      "the hub failed to answer; the error is in its log")


def init_errors(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
