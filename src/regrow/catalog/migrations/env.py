"""Alembic environment of the catalog.

The catalog runs migrations through :func:`regrow.catalog.db.upgrade`, which passes an open
connection (inside its transaction) as ``config.attributes["connection"]``. Run from the
``alembic`` command line instead, the database URL comes from ``REGROW_CATALOG_URL`` (or
``sqlalchemy.url`` in the ini file) and the engine from :func:`create_engine_for`.
"""

from __future__ import annotations

import os

from alembic import context
from alembic.config import Config
from sqlalchemy.engine import Connection

from regrow.catalog.db import create_engine_for, writer
from regrow.catalog.models import Base
from regrow.errors import ConfigError

target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    """Run the pending migrations on ``connection``."""
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


def main(config: Config) -> None:
    """Migrate the given connection, or the database named by the environment."""
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    if context.is_offline_mode():
        raise ConfigError(
            "offline (--sql) migrations are not supported for the regrow catalog",
            hint="run the migration against a database",
        )
    url = os.environ.get("REGROW_CATALOG_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise ConfigError(
            "no catalog database to migrate",
            hint="set REGROW_CATALOG_URL, e.g. REGROW_CATALOG_URL=sqlite:///.regrow/catalog.db",
        )
    engine = create_engine_for(url)
    try:
        with writer(engine).connect() as connection:
            run_on(connection)
            connection.commit()
    finally:
        engine.dispose()


try:
    _config: Config | None = context.config
except AttributeError:  # imported outside Alembic (e.g. by doctest collection): do nothing
    _config = None
if _config is not None:
    main(_config)
