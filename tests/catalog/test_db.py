"""Engines: URLs, SQLite settings and transactions, opening and upgrading catalogs."""

from __future__ import annotations

import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any

import alembic.command
import pytest
import sqlalchemy as sa

from regrow.catalog import Catalog
from regrow.catalog.db import HEAD_REVISION, create_engine_for, current_revision, upgrade, writer
from regrow.errors import CatalogError, ConfigError, MissingDependency


def test_sqlite_settings(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path}/c.db")
    try:
        with engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        engine.dispose()
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": 1,
        "foreign_keys": 1,
        "busy_timeout": 30000,
    }


def test_sqlite_creates_the_database_folder(tmp_path: Path) -> None:
    with Catalog(f"sqlite:///{tmp_path}/a/b/catalog.db") as catalog:
        assert catalog.dialect == "sqlite"
        assert repr(catalog) == f"Catalog('sqlite:///{tmp_path}/a/b/catalog.db')"
    assert (tmp_path / "a" / "b" / "catalog.db").is_file()


def test_reads_begin_deferred_and_writes_begin_immediate(tmp_path: Path, capture_sql: Any) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path}/c.db")
    try:
        with capture_sql() as seen:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            with writer(engine).begin() as conn:
                conn.exec_driver_sql("SELECT 1")
        assert [s for s in seen if s.startswith("BEGIN")] == ["BEGIN", "BEGIN IMMEDIATE"]
    finally:
        engine.dispose()


def test_a_write_transaction_holds_the_lock_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    engine = create_engine_for(f"sqlite:///{path}")
    try:
        with writer(engine).begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        with writer(engine).begin():
            other = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                assert other.execute("SELECT count(*) FROM t").fetchone() == (0,)  # reads go on
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
            finally:
                other.close()
    finally:
        engine.dispose()


def test_in_memory_catalog(capture_sql: Any) -> None:
    with Catalog("sqlite://") as catalog:
        catalog.audit("a.b", "s", {})
        assert catalog.verify_audit() == 1


@pytest.mark.parametrize("url", ["not a url", "://nothing", ""])
def test_unparsable_urls_are_named(url: str) -> None:
    with pytest.raises(ConfigError, match="cannot parse catalog URL") as info:
        create_engine_for(url)
    assert repr(url) in str(info.value)
    assert "sqlite:///" in str(info.value)


def test_unsupported_databases_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"unsupported catalog database 'mysql'.*runs on SQLite"):
        create_engine_for("mysql://user:secret@host/db")
    with pytest.raises(ConfigError) as info:
        create_engine_for("mysql://user:secret@host/db")
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@localhost/db",
        "postgres://u@localhost/db",
        "postgresql+psycopg://u@localhost/db",
    ],
)
def test_postgres_urls_use_psycopg_3(url: str) -> None:
    engine = create_engine_for(url)
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        assert engine.dialect.name == "postgresql"
        assert engine.pool.size() == 5  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_missing_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingDependency, match=r"pip install 'regrow\[postgres\]'") as info:
        create_engine_for("postgresql://u@localhost/db")
    assert isinstance(info.value, ImportError)


def test_opening_an_upgraded_catalog_skips_alembic(
    empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = alembic.command.upgrade

    def spy(config: Any, revision: str, **kw: Any) -> None:
        calls.append(revision)
        real(config, revision, **kw)

    monkeypatch.setattr(alembic.command, "upgrade", spy)
    Catalog(empty_url).close()
    assert calls == ["head"]
    with Catalog(empty_url) as catalog:
        assert catalog.list_systems() == []
    assert calls == ["head"]


def test_upgrade_false_leaves_an_empty_database_alone(empty_url: str) -> None:
    Catalog(empty_url, upgrade=False).close()
    engine = create_engine_for(empty_url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == HEAD_REVISION
        with engine.connect() as conn:
            head = conn.execute(sa.text("SELECT id, seq, hash FROM audit_head")).one()
        assert tuple(head) == (1, 0, "0" * 64)
    finally:
        engine.dispose()


def test_a_catalog_from_a_newer_regrow_is_refused(empty_url: str) -> None:
    Catalog(empty_url).close()
    engine = create_engine_for(empty_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(CatalogError, match=r"schema revision '9999'.*newer regrow"):
            Catalog(empty_url)
        with engine.connect() as conn:
            assert (
                conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "9999"
            )
    finally:
        engine.dispose()


def test_concurrent_openers_of_a_new_catalog_all_succeed(empty_url: str) -> None:
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def open_it() -> None:
        barrier.wait()
        try:
            Catalog(empty_url).close()
        except BaseException as exc:  # collected and checked below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Catalog(empty_url) as catalog:
        assert catalog.verify_audit() == 0
