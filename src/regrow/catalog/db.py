"""Engines for the catalog database, and schema migrations.

:func:`create_engine_for` turns a catalog URL into a configured SQLAlchemy engine:

* **SQLite** (``sqlite:///path/catalog.db``; the folder is created): WAL journal,
  ``synchronous=NORMAL``, foreign keys on, a 30 s busy timeout. regrow emits ``BEGIN`` itself
  (the pysqlite recipe in SQLAlchemy's SQLite docs): reads use a deferred ``BEGIN`` and never
  block, writes use ``BEGIN IMMEDIATE`` (on engines from :func:`writer`) so two writers queue
  for the lock up front instead of deadlocking on a read-to-write lock upgrade.
  ``sqlite://`` is an in-memory catalog on one shared connection, for single-threaded tests.
* **PostgreSQL** (``postgresql://`` or ``postgresql+psycopg://``): psycopg 3, pre-ping, a pool
  of 5 (+10 overflow) connections.

:func:`upgrade` brings the schema to the newest migration. It first reads the current
revision (one query, without importing Alembic) and returns at once when the database is
already there, so opening a workspace stays fast. On PostgreSQL, a schema that the URL selects
(``?options=-csearch_path%3Dteam``) but that does not exist yet is created first; if the
user may not create it, the error says so and how to fix it.

>>> engine = create_engine_for("sqlite://")
>>> upgrade(engine)
>>> current_revision(engine) == HEAD_REVISION
True
>>> engine.dispose()
"""

from __future__ import annotations

import re
import sqlite3
import time
import zlib
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from regrow.catalog.migrations import HEAD_REVISION
from regrow.errors import CatalogError, ConfigError, MissingDependency

__all__ = ["HEAD_REVISION", "create_engine_for", "current_revision", "upgrade", "writer"]

#: Execution option that makes a SQLite transaction start with ``BEGIN IMMEDIATE``.
IMMEDIATE = "regrow_begin_immediate"

BUSY_TIMEOUT_S = 30.0
VERSION_TABLE = "alembic_version"
MIGRATIONS = Path(__file__).parent / "migrations"
URL_HINT = "use e.g. 'sqlite:///.regrow/catalog.db' or 'postgresql://user:password@host:5432/db'"


def create_engine_for(url: str) -> Engine:
    """A configured engine for the catalog at ``url`` (see the module docstring).

    Raises :class:`~regrow.errors.ConfigError` for a URL that does not parse or names an
    unsupported database, and :class:`~regrow.errors.MissingDependency` when PostgreSQL is
    asked for without psycopg installed.
    """
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return _postgres_engine(parsed)


def writer(engine: Engine) -> Engine:
    """A view of ``engine`` whose transactions are write transactions.

    On SQLite they start with ``BEGIN IMMEDIATE``; on PostgreSQL this changes nothing.
    The view shares the pool of ``engine``.
    """
    return engine.execution_options(**{IMMEDIATE: True})


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at, or None for an empty database.

    Read from Alembic's version table directly: importing Alembic to ask it would cost more
    than the query.
    """
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return None
        heads = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return heads[0] if len(heads) == 1 else None


def upgrade(engine: Engine) -> None:
    """Migrate the catalog schema to the newest revision; a no-op when it is already there.

    The migration runs in one write transaction (schema changes are transactional on both
    databases): a failure leaves the schema as it was. Concurrent openers are serialized by
    SQLite's write lock, or by an advisory lock on PostgreSQL. A database at a revision this
    regrow does not know (written by a newer regrow) raises
    :class:`~regrow.errors.CatalogError` and is left untouched.
    """
    current = current_revision(engine)
    if current == HEAD_REVISION:
        return
    if current is None and engine.dialect.name == "postgresql":
        _create_selected_schema(engine)
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    if current is not None:
        try:
            ScriptDirectory(str(MIGRATIONS)).get_revision(current)
        except CommandError:
            raise CatalogError(
                f"the catalog database is at schema revision {current!r}, which this version "
                "of regrow does not know (it was written by a newer regrow)",
                hint="upgrade regrow: pip install -U regrow",
            ) from None
    with writer(engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            lock_id = zlib.crc32(b"regrow.catalog.upgrade")
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError) as exc:
        shown = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)  # no password in the message
        raise ConfigError(f"cannot parse catalog URL {shown!r}", hint=URL_HINT) from exc
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgres", "postgresql"):
        return parsed.set(drivername=f"postgresql+{driver or 'psycopg'}")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise ConfigError(
                f"unsupported SQLite driver {parsed.drivername!r} in catalog URL "
                f"{parsed.render_as_string(hide_password=True)!r}",
                hint="use the standard driver: 'sqlite:///path/to/catalog.db'",
            )
        return parsed
    raise ConfigError(
        f"unsupported catalog database {backend!r} in URL "
        f"{parsed.render_as_string(hide_password=True)!r}",
        hint=f"the catalog runs on SQLite or PostgreSQL; {URL_HINT}",
    )


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or "mode=memory" in database
    kwargs: dict[str, Any] = {}
    if in_memory:
        # One connection shared by every user: the only way to see one in-memory database.
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    else:
        if not url.query.get("uri") and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"connect_args": {"timeout": BUSY_TIMEOUT_S}}
    engine = sa.create_engine(url, **kwargs)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    assert isinstance(dbapi_connection, sqlite3.Connection)
    # Take transaction control away from the sqlite3 module; _sqlite_on_begin emits BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() not in ("wal", "memory"):
            _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switch a database to WAL (once: the mode is stored in the file).

    The switch needs an exclusive lock and SQLite does not wait for it through the busy
    handler, so concurrent first openers of a new database retry here instead.
    """
    deadline, delay = time.monotonic() + BUSY_TIMEOUT_S, 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def _sqlite_on_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(IMMEDIATE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _postgres_engine(url: URL) -> Engine:
    if url.get_driver_name() == "psycopg":
        try:
            import psycopg  # noqa: F401 (only checking that it is installed)
        except ImportError as exc:
            raise MissingDependency("psycopg", "postgres") from exc
    try:
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    except ImportError:  # another driver named in the URL (postgresql+psycopg2://)
        raise ConfigError(
            f"the catalog URL {url.render_as_string(hide_password=True)!r} asks for the "
            f"PostgreSQL driver {url.get_driver_name()!r}, which is not installed",
            hint="leave the driver out ('postgresql://user@host:5432/db') to use psycopg 3, "
            "which pip install 'regrow[postgres]' installs",
        ) from None
    except ArgumentError as exc:  # a driver SQLAlchemy does not know (NoSuchModuleError)
        raise ConfigError(
            f"unknown PostgreSQL driver {url.get_driver_name()!r} in catalog URL "
            f"{url.render_as_string(hide_password=True)!r}",
            hint="leave the driver out: 'postgresql://user@host:5432/db' (psycopg 3)",
        ) from exc


def _create_selected_schema(engine: Engine) -> None:
    """Create the schema a PostgreSQL URL's ``search_path`` selects, if it does not exist.

    PostgreSQL creates tables in the first schema of the ``search_path`` that exists; when
    none does, the first migration would fail with "no schema has been selected to create
    in". The first schema named (other than ``$user``) is created instead, or a
    :class:`~regrow.errors.ConfigError` says why it cannot be.
    """
    with engine.connect() as conn:
        if conn.execute(sa.text("SELECT current_schema()")).scalar() is not None:
            return
        path = str(conn.execute(sa.text("SHOW search_path")).scalar() or "")
    names = [n for n in _search_path(path) if n != "$user"]
    shown = engine.url.render_as_string(hide_password=True)
    if not names:
        raise ConfigError(
            f"the catalog URL {shown!r} selects no schema (search_path {path!r})",
            hint="name one in the URL, e.g. ?options=-csearch_path%3Dregrow",
        )
    schema = names[0]
    try:
        with writer(engine).begin() as conn:
            quoted = conn.dialect.identifier_preparer.quote_identifier(schema)
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
    except IntegrityError:  # created by a concurrent opener meanwhile
        return
    except DBAPIError as exc:
        raise ConfigError(
            f"the schema {schema!r} that the catalog URL {shown!r} selects does not exist, "
            f"and creating it failed: {exc.orig}",
            hint=f'create it as a user who may (CREATE SCHEMA "{schema}"), or name an existing '
            "schema in the URL: ?options=-csearch_path%3DNAME",
        ) from exc


def _search_path(text: str) -> list[str]:
    """The schema names of a ``SHOW search_path`` value, as PostgreSQL reads them.

    >>> _search_path('"$user", public')
    ['$user', 'public']
    >>> _search_path('Team,"My ""x"" schema"')
    ['team', 'My "x" schema']
    """
    names = []
    for match in re.finditer(r'\s*("(?:[^"]|"")*"|[^,]+?)\s*(?:,|$)', text):
        item = match.group(1)
        if item.startswith('"'):
            names.append(item[1:-1].replace('""', '"'))
        elif item:
            names.append(item.lower())
    return names
