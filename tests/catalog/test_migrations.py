"""The Alembic migrations create exactly the tables the models describe."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from regrow.catalog.db import MIGRATIONS, create_engine_for, current_revision, upgrade, writer
from regrow.catalog.migrations import HEAD_REVISION
from regrow.catalog.models import Base


def diffs(engine: sa.Engine, metadata: sa.MetaData) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def alembic_config(conn: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def test_head_revision_constant_matches_the_scripts() -> None:
    script = ScriptDirectory(str(MIGRATIONS))
    assert script.get_heads() == [HEAD_REVISION]


def test_migrated_schema_matches_the_models(empty_url: str) -> None:
    engine = create_engine_for(empty_url)
    try:
        upgrade(engine)
        assert diffs(engine, Base.metadata) == []
    finally:
        engine.dispose()


def test_the_comparison_would_see_a_difference(empty_url: str) -> None:
    engine = create_engine_for(empty_url)
    try:
        upgrade(engine)
        changed = sa.MetaData(naming_convention=Base.metadata.naming_convention)
        for table in Base.metadata.tables.values():
            table.to_metadata(changed)
        changed.tables["runs"].append_column(sa.Column("extra", sa.Integer()))
        found = diffs(engine, changed)
        assert [d[0] for d in found] == ["add_column"]
    finally:
        engine.dispose()


def test_downgrade_removes_everything_and_upgrade_restores_it(empty_url: str) -> None:
    engine = create_engine_for(empty_url)
    try:
        upgrade(engine)
        with writer(engine).begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == HEAD_REVISION
        assert diffs(engine, Base.metadata) == []
    finally:
        engine.dispose()


def test_upgrading_to_0006_marks_the_moves_old_rollbacks_made(empty_url: str) -> None:
    """Rollbacks made before alias moves had a kind replay as rollbacks, not as pushes."""
    from regrow.catalog import Catalog

    from .conftest import Builder

    with Catalog(empty_url) as catalog:
        version = Builder(catalog).version("churn").id
    engine = create_engine_for(empty_url)
    try:
        with writer(engine).begin() as conn:  # a 0005 catalog: alias moves without a kind
            command.downgrade(alembic_config(conn), "0005")
            conn.execute(
                sa.text(
                    "INSERT INTO audit_events (seq, at, actor, action, subject, payload, "
                    "prev_hash, hash) VALUES (900, :at, 'ana', 'alias.rollback', "
                    "'alias:churn@champion', :payload, '', '')"
                ),
                {"at": "2026-01-01 00:00:00+00:00", "payload": '{"revision": 3}'},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO alias_moves (system, alias, from_version_id, to_version_id, "
                    "revision, actor, reason, at) VALUES ('churn', 'champion', NULL, :v, :r, "
                    "'ana', '', '2026-01-01 00:00:00+00:00')"
                ),
                [{"r": r, "v": version} for r in (1, 2, 3)],
            )
        with writer(engine).begin() as conn:
            command.upgrade(alembic_config(conn), "0006")
        with engine.connect() as conn:
            kinds = conn.execute(
                sa.text("SELECT revision, kind FROM alias_moves ORDER BY revision")
            ).all()
        assert [tuple(k) for k in kinds] == [(1, "move"), (2, "move"), (3, "rollback")]
    finally:
        engine.dispose()
