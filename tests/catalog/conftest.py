"""Fixtures of the catalog contract suite: every test runs on SQLite and on PostgreSQL.

SQLite: a copy, in ``tmp_path``, of a migrated template file. PostgreSQL: the server at
``REGROW_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``); each
test module gets a fresh schema
``regrow_t_<random>`` through the connection's ``search_path`` (dropped afterwards), emptied
before each test; tests of migrations get a fresh schema of their own (``empty_url``). When the
server is unreachable the PostgreSQL tests are skipped on a laptop but fail when ``CI`` is set.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from regrow._hashing import hash_json
from regrow.catalog import Catalog, SnapshotRecord, SystemVersionRecord
from regrow.catalog.audit import GENESIS_HASH
from regrow.catalog.db import create_engine_for
from regrow.catalog.models import AuditHead, Base
from regrow.testing import create_postgres_schema, drop_postgres_schema

PG_URL = os.environ.get("REGROW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def _actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGROW_ACTOR", "tester")


@pytest.fixture(scope="module")
def postgres_module_catalog(postgres_admin: Engine) -> Iterator[tuple[str, Engine]]:
    """A migrated PostgreSQL schema for one test module: its URL and an engine on it."""
    schema, url = create_postgres_schema(PG_URL)
    Catalog(url).close()
    engine = create_engine_for(url)
    yield url, engine
    engine.dispose()
    drop_postgres_schema(PG_URL, schema)


def _empty_postgres_catalog(engine: Engine) -> None:
    """Delete every row a test left, and reset the audit chain (the schema stays)."""
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL lock_timeout = '10s'"))
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY"))
        conn.execute(sa.insert(AuditHead).values(id=1, seq=0, hash=GENESIS_HASH))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite catalog file, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "catalog.db"
    Catalog(f"sqlite:///{path}").close()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a migrated catalog database holding nothing, once per database kind.

    SQLite: a copy of a migrated template file. PostgreSQL: the test module's schema, with
    every row of the previous test deleted.
    """
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "workspace" / "catalog.db"
        path.parent.mkdir()
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    url, engine = request.getfixturevalue("postgres_module_catalog")
    _empty_postgres_catalog(engine)
    return str(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database (no tables), once per database kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/workspace/catalog.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    """An open, migrated catalog."""
    with Catalog(catalog_url) as opened:
        yield opened


@pytest.fixture
def raw(catalog_url: str) -> Iterator[Engine]:
    """A plain engine on the catalog's database, for looking under the hood."""
    engine = create_engine_for(catalog_url)
    yield engine
    engine.dispose()


def count_rows(engine: Engine, table: str) -> int:
    """The number of rows in ``table``."""
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


@pytest.fixture
def rows() -> Any:
    """``rows(engine, table)``: count the rows of a table."""
    return count_rows


class Builder:
    """Creates valid catalog content with little ceremony."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._n = 0

    def snapshot(self, name: str = "sales", **overrides: Any) -> SnapshotRecord:
        """A new snapshot (with its schema) named ``name``."""
        self._n += 1
        schema = self.catalog.register_schema(name, {"columns": {"x": "float", "y": "int"}})
        values: dict[str, Any] = {
            "id": hash_json({"snapshot": self._n, "name": name}),
            "name": name,
            "schema_id": schema.id,
            "rows": 100 + self._n,
            "columns": ("x", "y"),
            "column_hashes": {"x": "a" * 64, "y": "b" * 64},
            "artifact": "c" * 64,
            "time_column": None,
            "slices": {"big": "x > 10"},
            "profile": {"x": {"mean": 1.5}, "n": self._n},
        }
        values.update(overrides)
        return self.catalog.add_snapshot(**values)

    def components(
        self, system: str = "churn", names: tuple[str, ...] = ("scaler", "model"), tag: str = "a"
    ) -> dict[str, str]:
        """A manifest of freshly added component versions: {name: component version id}."""
        manifest = {}
        for name in names:
            record = self.catalog.add_component_version(
                system=system,
                component=name,
                kind="member" if name == "model" else "transform",
                fingerprint=hash_json([system, name, tag]),
                parts={"recipe": name, "tag": tag},
                artifact=None,
                run_id=None,
                snapshot_id=None,
                seed=7,
                train_seconds=0.5,
            )
            manifest[name] = record.id
        return manifest

    def version(
        self,
        system: str = "churn",
        *,
        parent: SystemVersionRecord | None = None,
        tag: str | None = None,
        **overrides: Any,
    ) -> SystemVersionRecord:
        """A new system version whose components are tagged ``tag`` (unique by default)."""
        self._n += 1
        values: dict[str, Any] = {
            "system": system,
            "manifest": self.components(system, tag=tag or f"t{self._n}"),
            "spec": {"components": ["scaler", "model"]},
            "parent_id": parent.id if parent else None,
            "run_id": None,
            "snapshot_id": None,
        }
        values.update(overrides)
        return self.catalog.add_system_version(**values)


@pytest.fixture
def build(catalog: Catalog) -> Builder:
    """A :class:`Builder` on the test's catalog."""
    return Builder(catalog)


@contextmanager
def statements(engine_class: type[Engine] = Engine) -> Iterator[list[str]]:
    """Capture every SQL statement any engine executes inside the block."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine_class, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine_class, "before_cursor_execute", record)


@pytest.fixture
def capture_sql() -> Any:
    """``with capture_sql() as seen:`` collects the SQL statements run in the block."""
    return statements
