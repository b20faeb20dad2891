"""Alembic migrations of the registry schema, and how to run them.

``dcor-hub migrate`` (``upgrade_head``) brings any database, SQLite or PostgreSQL, to the
newest revision. The schema is the metadata of every module that declares tables on
``hub.registry.models.Base``; ``all_metadata`` imports them, so the migrations, the
``alembic`` command line (``[tool.alembic]`` in pyproject.toml) and the sync test see the
same tables. Changing a table means adding a revision:
``DCOR_DATABASE_URL=... alembic revision --autogenerate -m "what changed"``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine

SCRIPT_LOCATION = Path(__file__).parent
# Every module that puts tables on the registry's Base.
TABLE_MODULES = ("hub.registry.models", "hub.alerts.tables", "hub.security.models",
                 "hub.rollout.tables")


def all_metadata() -> MetaData:
    """The registry's metadata with every hub table registered on it."""
    for name in TABLE_MODULES:
        importlib.import_module(name)
    from hub.registry.models import Base

    return Base.metadata


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_head(url: str) -> None:
    """Apply every revision the database lacks (creates all tables on an empty one)."""
    command.upgrade(alembic_config(url), "head")


def current_revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
