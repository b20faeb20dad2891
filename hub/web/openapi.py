"""``GET /api/v1/openapi.json``: the JSON API described in OpenAPI 3.0 (public: see policy.py).

Hand-written in ``openapi.yaml`` beside this module (the answers' shapes are documented
there, not inferred); ``tests/ops/test_openapi.py`` checks that every ``/api/`` route of the
app is in it and runs schemathesis against a live hub.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Final

import yaml
from flask import Blueprint, Response, jsonify

SPEC_PATH: Final = Path(__file__).with_name("openapi.yaml")

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")


@functools.cache
def load_spec() -> dict[str, Any]:
    """The document, parsed once per process."""
    spec: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    return spec


@bp.get("/openapi.json")
def spec() -> Response:
    from edge_agent import __version__

    body = {k: v for k, v in load_spec().items() if not k.startswith("x-shared")}
    body["info"] = {**body["info"], "version": __version__}
    return jsonify(body)
