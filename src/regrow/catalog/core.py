"""The engine, sessions and shared checks under every part of the :class:`Catalog`.

:class:`CatalogCore` owns the engine. Reads run in a session on a plain (deferred) transaction;
writes run through :meth:`CatalogCore._write`: one short write transaction (``BEGIN IMMEDIATE``
on SQLite) that commits everything or nothing, retried when concurrent PostgreSQL writers
race for the same unique value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from regrow.catalog import checks, db
from regrow.catalog.models import Base, Run, Schema, Snapshot
from regrow.errors import ConfigError, NotFound

__all__ = ["ROWS_COVERED_SINCE", "CatalogCore", "now"]

T = TypeVar("T")
_RETRIES = 5  # attempts when concurrent PostgreSQL writers race for the same unique value
#: The schema revision from which audit events cover the rows they record as
#: :mod:`regrow.catalog.coverage` hashes them: a catalog upgraded from an older revision gets
#: one ``audit.baseline`` event covering its existing rows. A migration that changes the
#: columns of a covered table sets this to its own revision (their rows hash differently).
ROWS_COVERED_SINCE = "0006"


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class CatalogCore:
    """The catalog's engine and transactions; the public methods live in the mixins."""

    def __init__(self, url: str, *, upgrade: bool = True, create: bool = True) -> None:
        self.url = url
        #: Who acts when a method is given no ``actor``: set by the :class:`~regrow.Workspace`
        #: to the identity it resolved; None falls back to ``$REGROW_ACTOR``, then the login.
        self.actor: str | None = None
        if not create and upgrade:
            _refuse_missing_file(url)  # before connecting, which would make the file
        self._engine = db.create_engine_for(url)
        self._writer = db.writer(self._engine)
        try:
            if upgrade:
                before = db.current_revision(self._engine)
                if before is None and not create:
                    raise _empty(self._engine.url)
                db.upgrade(self._engine)
                if before is not None and before < ROWS_COVERED_SINCE:
                    self._baseline_audit()
        except BaseException:
            self._engine.dispose()
            raise

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def dialect(self) -> str:
        """The database kind: ``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    def close(self) -> None:
        """Close every pooled database connection."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def shown_url(self) -> str:
        """The catalog's URL with its password masked (``***``), to print."""
        return str(self._engine.url.render_as_string(hide_password=True))

    def __repr__(self) -> str:
        return f"Catalog({self.shown_url!r})"

    # -- internals ----------------------------------------------------------------------

    def _baseline_audit(self) -> None:
        """Cover the rows of a catalog written before the audit chain covered rows.

        Runs once, right after the upgrade from such a catalog (see
        :func:`regrow.catalog.audit.baseline`, which is idempotent and race-safe).
        """
        from regrow.catalog import audit  # audit builds on this module

        self._write(lambda session: audit.baseline(session))

    def _who(self, actor: str | None) -> str:
        """The actor of a write: ``actor``, else this catalog's :attr:`actor`, else the
        environment's (see :func:`regrow.catalog.checks.actor`)."""
        return checks.actor(actor if actor is not None else self.actor)

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self._engine) as session:
            yield session

    def _write(self, work: Callable[[Session], T], *, retry_on: Sequence[str] = ()) -> T:
        """Run ``work`` in one write transaction; retry when a named constraint lost a race.

        Only PostgreSQL can lose such races (SQLite's write lock serializes writers), e.g.
        two writers numbering a new version of the same system at the same time.
        """
        for attempt in range(_RETRIES):
            try:
                with Session(self._writer, expire_on_commit=False) as session, session.begin():
                    return work(session)
            except IntegrityError as exc:
                if attempt + 1 == _RETRIES or not any(name in str(exc.orig) for name in retry_on):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _id_in(
        self, column: InstrumentedAttribute[str], ids: Sequence[str]
    ) -> sa.ColumnElement[bool]:
        """``column IN ids``; on PostgreSQL ``column = ANY(:ids)``, one array parameter.

        Keeps a lookup of thousands of ids one short statement (no thousands of parameters).
        """
        if self.dialect == "postgresql":
            return column == sa.any_(sa.bindparam(None, list(ids), type_=ARRAY(sa.String)))
        return column.in_(ids)

    def _insert(self, model: type[Base]) -> Any:
        dialect = postgresql if self.dialect == "postgresql" else sqlite
        return dialect.insert(model)

    def _schema(self, session: Session, schema_id: str) -> Schema:
        query = sa.select(Schema).where(Schema.id == schema_id).order_by(Schema.created_at)
        row = session.scalars(query.limit(1)).first()
        if row is None:
            raise NotFound(
                "schema",
                schema_id,
                hint="register it with register_schema(); list a dataset's schemas with "
                "schema_versions(name)",
            )
        return row

    def _run(self, session: Session, run_id: str) -> Run:
        row = session.get(Run, run_id)
        if row is None:
            raise NotFound("run", run_id, hint="pass the full id of a recorded run")
        return row

    def _check_refs(self, session: Session, *, run_id: str | None, snapshot_id: str | None) -> None:
        if run_id is not None:
            self._run(session, run_id)
        if snapshot_id is not None and session.get(Snapshot, snapshot_id) is None:
            raise NotFound("snapshot", snapshot_id, hint="pass the full id of a stored snapshot")


def _refuse_missing_file(url: str) -> None:
    """Refuse an SQLite catalog file that does not exist (see :func:`_empty`)."""
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError, TypeError):
        return  # create_engine_for names what is wrong with it (a port that is no number)
    path = parsed.database
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite and path and path != ":memory:" and not Path(path).exists():
        raise _empty(parsed, missing=True)


def _empty(url: sa.URL, *, missing: bool = False) -> ConfigError:
    """The error for opening an existing workspace whose catalog URL finds no catalog: a
    misspelt database or schema name (PostgreSQL would create the schema and migrate it, and
    the workspace would read as empty), or a deleted SQLite file."""
    shown = url.render_as_string(hide_password=True)
    where = "database file" if url.get_backend_name() == "sqlite" else "database or schema"
    return ConfigError(
        f"the catalog at {shown!r} "
        + ("does not exist" if missing else f"is empty: no regrow catalog is in that {where}"),
        hint="check the workspace's catalog URL ([catalog] url in its config.toml, or "
        "$REGROW_CATALOG_URL): a misspelt name finds an empty one; to start a new catalog "
        "there, `regrow init DIR --catalog-url URL` creates it",
    )
