"""Alembic's entry point: run the revisions against ``sqlalchemy.url`` (set by
``hub.registry.migrations.alembic_config``) or, from the ``alembic`` command line, against
``DCOR_DATABASE_URL``."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from hub.registry.migrations import all_metadata

config = context.config
url = config.get_main_option("sqlalchemy.url") or os.environ.get("DCOR_DATABASE_URL", "")
if not url:
    raise SystemExit("set DCOR_DATABASE_URL to the registry's SQLAlchemy URL")
metadata = all_metadata()


def run() -> None:
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True,
                          render_as_batch=url.startswith("sqlite"))
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            # Batch mode lets later ALTERs work on SQLite (it copies the table).
            context.configure(connection=connection, target_metadata=metadata,
                              render_as_batch=url.startswith("sqlite"), compare_type=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


run()
