"""Helpers for testing code that uses regrow (and regrow itself).

``postgres_schema`` gives each test its own PostgreSQL schema, so catalog tests can share one
server without seeing each other's rows. ``run_cli`` runs the ``regrow`` command in-process,
as a user types it, and returns its exit status and output. ``routed_by`` is the rollout id
a server stamps on the rows it routes, for tests that write a prediction log themselves.
"""

from __future__ import annotations

import contextlib
import io
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

__all__ = [
    "create_postgres_schema",
    "drop_postgres_schema",
    "postgres_schema",
    "routed_by",
    "run_cli",
    "run_cli_captured",
]


class _Captured(Protocol):
    out: str
    err: str


class _Capture(Protocol):
    def readouterr(self) -> _Captured: ...


class _Workspace(Protocol):
    @property
    def catalog(self) -> Any: ...


def routed_by(ws: _Workspace, system: str) -> str:
    """The id of ``system``'s rollout under way (``""`` for none, or for several): what a
    server logs with the rows that rollout routes, and what its evidence reads."""
    active = ws.catalog.rollouts.list(system=system, active=True)
    return active[0].id if len(active) == 1 else ""


def run_cli(capsys: _Capture, *args: str) -> tuple[int, str, str]:
    """Run ``regrow ARGS`` in this process; return (exit status, stdout, stderr).

    ``capsys`` is pytest's fixture of that name: what the command printed is read from it.
    """
    from regrow.cli import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_cli_captured(*args: str) -> tuple[int, str, str]:
    """:func:`run_cli` without pytest's ``capsys``: what the command printed is read from
    standard output and error redirected to strings (in a fixture, or a thread).

    >>> code, out, err = run_cli_captured("--version")
    >>> code, out.startswith("regrow ")
    (0, True)
    """
    from regrow.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def create_postgres_schema(admin_url: str, *, prefix: str = "regrow_t_") -> tuple[str, str]:
    """Create a fresh schema on the server at ``admin_url``; return it and a catalog URL on it.

    The URL sets the connection's ``search_path`` to the schema, and turns off
    ``synchronous_commit`` (tests need no durability).
    """
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from regrow.catalog.db import create_engine_for

    schema = f"{prefix}{secrets.token_hex(6)}"
    engine = create_engine_for(admin_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    finally:
        engine.dispose()
    options = f"-csearch_path={schema} -csynchronous_commit=off"
    url = make_url(admin_url).update_query_dict({"options": options})
    return schema, url.render_as_string(hide_password=False)


def drop_postgres_schema(admin_url: str, schema: str) -> None:
    """Drop ``schema`` and everything in it."""
    import sqlalchemy as sa

    from regrow.catalog.db import create_engine_for

    engine = create_engine_for(admin_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        engine.dispose()


@contextmanager
def postgres_schema(admin_url: str) -> Iterator[str]:
    """A catalog URL on a fresh schema of ``admin_url``'s database, dropped on exit."""
    schema, url = create_postgres_schema(admin_url)
    try:
        yield url
    finally:
        drop_postgres_schema(admin_url, schema)
