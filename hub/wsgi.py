"""The web app for a WSGI server: ``gunicorn 'hub.wsgi:create()'``.

A factory, not a module-level ``app``: importing this module does nothing. Settings come from
``DCOR_HUB_CONFIG`` / ``DCOR_*`` (hub.settings), the log format from ``DCOR_LOG_FORMAT`` and
the level from ``DCOR_LOG_LEVEL``. Each gunicorn worker calls it once (no ``--preload``: every
worker needs its own database pool and alert feed thread).
"""

from __future__ import annotations

import os

from flask import Flask


def create() -> Flask:
    from hub.logs import setup_hub_logging
    from hub.settings import load_settings
    from hub.web import create_app

    setup_hub_logging(os.environ.get("DCOR_LOG_LEVEL", "INFO"), None, "dcor-hub-web")
    return create_app(load_settings())
