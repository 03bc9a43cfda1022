"""Alembic migrations of the catalog schema.

:data:`HEAD_REVISION` names the newest revision so that opening a catalog can tell whether it
needs migrating without loading Alembic's script directory; a test checks it against the
scripts. To add a migration (after changing ``catalog/models.py``)::

    alembic -c src/regrow/catalog/migrations/alembic.ini revision -m "what changes"

then write the operations by hand (``--autogenerate`` against a database at head helps
draft them), set :data:`HEAD_REVISION` to the new revision id, and run the catalog tests on
SQLite and PostgreSQL.
"""

from __future__ import annotations

__all__ = ["HEAD_REVISION"]

HEAD_REVISION = "0010"
