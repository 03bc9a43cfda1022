"""The audit chain covers the rows it records: tampering with any covered row is detected.

Every covered table (:data:`regrow.catalog.coverage.COVERED`) of a catalog holding rows of
every kind is tampered with by plain SQL (one column altered, a row deleted, a fake row
inserted, two rows' contents swapped), each time in a transaction rolled back afterwards, and
verification must fail naming the table, the row and the recording event. Also: untampered
workloads verify, deletions recorded as such, the baseline of a catalog written before rows
were covered, and the tamper figure of ``benchmarks/governance_tamper.py`` on a small n.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import alembic.command
import pytest
import sqlalchemy as sa
from alembic.config import Config
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from regrow._hashing import canonical_json, hash_json
from regrow.catalog import Catalog, audit
from regrow.catalog.core import now
from regrow.catalog.coverage import COVERED
from regrow.catalog.db import MIGRATIONS, create_engine_for, writer
from regrow.catalog.models import (
    AliasMove,
    Approval,
    Base,
    Experiment,
    Identity,
    PolicyRecord,
    Rollout,
    Token,
)
from regrow.errors import AuditChainBroken
from regrow.testing import create_postgres_schema, drop_postgres_schema

BENCH = Path(__file__).parents[2] / "benchmarks" / "governance_tamper.py"
PG_URL = os.environ.get("REGROW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("governance_tamper", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _bench()


# -- a catalog holding at least two rows of every covered table -------------------------------


def record(catalog: Catalog, row: Base, action: str) -> None:
    """Insert ``row`` and its covering event, as the governance writers do."""
    table = row.__table__.name  # type: ignore[attr-defined]

    def write(session: Session) -> None:
        session.add(row)
        session.flush()
        key = tuple(getattr(row, c) for c in COVERED[table].key)
        audit.append(
            session,
            actor="tester",
            action=action,
            subject=f"{table}:{key[0]}",
            payload={},
            rows=[(table, key if len(key) > 1 else key[0])],
        )

    catalog._write(write)


def fill(catalog: Catalog) -> None:
    """Two or more rows in every covered table, written through the catalog's API."""
    snapshots = []
    for n, name in enumerate(("sales", "sales", "costs")):
        schema = catalog.register_schema(name, {"columns": {"x": "float"}, "n": n})
        snapshots.append(
            catalog.add_snapshot(
                id=hash_json(["snapshot", n]), name=name, schema_id=schema.id, rows=10 + n,
                columns=("x",), column_hashes={"x": "a" * 64}, artifact="c" * 64,
                time_column=None, slices={"big": "x > 1"}, profile={"x": {"mean": 1.5 + n}},
            )
        )  # fmt: skip
    run = catalog.start_run(system="churn", kind="train", seed=1, environment={"py": "3.11"},
                            params={"lr": 0.1}, lease_seconds=30, holder={"host": "h"})  # fmt: skip
    versions = []
    for n in range(3):
        component = catalog.add_component_version(
            system="churn", component="model", kind="member", fingerprint=hash_json(["fp", n]),
            parts={"recipe": n}, artifact="d" * 64, run_id=run.id, snapshot_id=snapshots[0].id,
            seed=7, train_seconds=0.25 + n, info={"bytes": 100 + n},
        )  # fmt: skip
        versions.append(
            catalog.add_system_version(
                system="churn", manifest={"model": component.id}, spec={"n": n},
                run_id=run.id, snapshot_id=snapshots[0].id, note=f"v{n + 1}",
                parent_id=versions[-1].id if versions else None,
            )
        )  # fmt: skip
    catalog.finish_run(
        run.id, status="succeeded", summary={"trained": 3}, version_id=versions[0].id
    )
    catalog.start_run(system="churn", kind="update", seed=2, environment={}, params={})
    for n, (candidate, baseline) in enumerate(((versions[1], versions[0]), (versions[2], None))):
        catalog.add_evaluation(
            candidate_id=candidate.id, baseline_id=baseline.id if baseline else None,
            snapshot_id=snapshots[1].id, metric="auc", results={"auc": 0.8 + n / 10},
            verdict=("blessed", "none")[n], reasons=[f"reason {n}"],
        )  # fmt: skip
        catalog.add_monitor_report(
            version_id=candidate.id, snapshot_id=snapshots[2].id,
            summary={"drifted": n}, report={"columns": ["x"][:n]},
        )  # fmt: skip
        plan = catalog.add_plan(
            id=hash_json(["plan", n]), system="churn", version_id=candidate.id,
            window_id=snapshots[2].id, body={"summary": {"refit": n}},
        )  # fmt: skip
    catalog.move_plan(plan.id, expected="proposed", status="running", run_id=run.id)
    catalog.move_alias("churn", "champion", versions[0].id, reason="first")
    catalog.move_alias("churn", "champion", versions[1].id, reason="better")
    catalog.move_alias("churn", "challenger", versions[2].id, reason="try it")
    stamp = now()
    for n, who in enumerate(("ana", "bo")):
        record(catalog, Identity(name=who, role=("admin", "approver")[n], created_at=stamp,
                                 created_by="tester", revoked_at=None), "identity.add")  # fmt: skip
        record(catalog, Token(id=f"tok{n}", identity=who, hash=f"salted${n}", label=f"ci {n}",
                              created_at=stamp, created_by="tester",
                              revoked_at=stamp if n else None), "token.create")  # fmt: skip
        approval = Approval(system="churn", alias="champion", version_id=versions[n].id,
                            approver=who, note=f"ok {n}", at=stamp)  # fmt: skip
        record(catalog, approval, "approval.add")
        record(catalog, PolicyRecord(id=hash_json(["policy", n]), body={"gates": {"n": n}},
                                     source=f"policy{n}.toml", actor=who, created_at=stamp),
               "policy.record")  # fmt: skip
        record(catalog, Experiment(
            id=f"exp{n}", kind="plan", system="churn", subject_id=f"plan{n}",
            version_id=versions[n].id, candidate_id=None, evaluation_id=None, actor=who,
            rationale=[f"why {n}"], expected={"auc": 0.9}, contingency="roll back",
            tags=["t", str(n)], actual={"auc": 0.91} if n else None,
            created_at=stamp, updated_at=stamp,
        ), "experiment.create")  # fmt: skip
        record(catalog, Rollout(
            id=f"roll{n}", system="churn", alias="champion", mode="split",
            stable_id=versions[0].id, candidate_id=versions[1].id,
            state=("progressing", "rolled_back")[n], step=n, steps=[0.05, 0.5, 1.0],
            min_requests=100, params={"tolerance": 0.02}, evidence={"n": n} if n else None,
            holds=n, revision=1 + n, reason=f"why {n}", actor=who, created_at=stamp,
            step_started_at=stamp, updated_at=stamp,
        ), "rollout.start")  # fmt: skip


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def filled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """An engine on a catalog that :func:`fill` filled (once per module and database)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('filled')}/catalog.db"
        schema = None
    else:
        request.getfixturevalue("postgres_admin")  # skips (or fails in CI) without a server
        schema, url = create_postgres_schema(PG_URL)
    try:
        with Catalog(url) as catalog:
            catalog.actor = "tester"
            fill(catalog)
        engine = create_engine_for(url)
        yield engine
        engine.dispose()
    finally:
        if schema is not None:
            drop_postgres_schema(PG_URL, schema)


@pytest.fixture
def tampering(filled: Engine) -> Iterator[sa.Connection]:
    """A connection in a transaction free of foreign keys, rolled back after the test."""
    with filled.connect() as conn:
        conn.begin()
        bench.free_foreign_keys(conn)
        yield conn
        conn.rollback()


def broken(conn: sa.Connection) -> str:
    """The message verification fails with on ``conn`` (fails the test if it passes)."""
    message = bench.detects(conn)
    assert message is not None, "the tampering was not detected"
    return str(message)


def rows_of(conn: sa.Connection, table: str) -> list[dict[str, Any]]:
    cover = COVERED[table]
    return [dict(r) for r in conn.execute(sa.select(cover.table).order_by(*cover.key)).mappings()]


def key_text(table: str, row: dict[str, Any]) -> str:
    """How a message names the row: its key as canonical JSON."""
    return canonical_json(COVERED[table].key_of(row))


TABLES = list(COVERED)


# -- every covered table, every kind of tampering ---------------------------------------------


def test_the_filled_catalog_verifies_and_fills_every_covered_table(filled: Engine) -> None:
    with filled.connect() as conn:
        assert bench.detects(conn) is None
        short = [t for t in TABLES if len(rows_of(conn, t)) < 2]
    assert short == []


@pytest.mark.parametrize("table", TABLES)
def test_altering_any_covered_column_is_detected(tampering: sa.Connection, table: str) -> None:
    cover = COVERED[table]
    row = rows_of(tampering, table)[-1]
    rng = random.Random(table)
    for column in (c for c in cover.columns if c not in cover.key):
        with tampering.begin_nested() as savepoint:
            new = bench.altered(tampering, cover, row, column, rng)
            tampering.execute(
                sa.update(cover.table).where(*bench._is(cover, row)).values({column: new})
            )
            message = broken(tampering)
            assert message.startswith(
                f"{table} row {key_text(table, row)} was altered after audit event seq "
            ), column
            savepoint.rollback()


@pytest.mark.parametrize("table", TABLES)
def test_a_deleted_row_is_detected(tampering: sa.Connection, table: str) -> None:
    cover = COVERED[table]
    row = rows_of(tampering, table)[0]
    tampering.execute(sa.delete(cover.table).where(*bench._is(cover, row)))
    message = broken(tampering)
    assert message.startswith(f"{table} row {key_text(table, row)} is missing (deleted); audit ")


@pytest.mark.parametrize("table", TABLES)
def test_an_inserted_row_is_detected(tampering: sa.Connection, table: str) -> None:
    cover = COVERED[table]
    fake = bench.fake_row(tampering, cover, rows_of(tampering, table)[0], random.Random(1))
    tampering.execute(sa.insert(cover.table).values(fake))
    message = broken(tampering)
    assert message.startswith(
        f"{table} row {key_text(table, fake)} is not recorded by any audit event (inserted"
    )


@pytest.mark.parametrize("table", TABLES)
def test_two_swapped_rows_are_detected(tampering: sa.Connection, table: str) -> None:
    cover = COVERED[table]
    pair = bench._differing_pair(cover, rows_of(tampering, table), random.Random(2))
    assert pair is not None
    a, b = pair
    keys = set(cover.key)
    tampering.execute(sa.delete(cover.table).where(*bench._is(cover, a)))
    tampering.execute(sa.delete(cover.table).where(*bench._is(cover, b)))
    tampering.execute(sa.insert(cover.table).values({c: (a if c in keys else b)[c] for c in a}))
    tampering.execute(sa.insert(cover.table).values({c: (b if c in keys else a)[c] for c in b}))
    message = broken(tampering)
    assert f"{table} row " in message
    assert "was altered after" in message
    assert "1 more problem after it" in message  # both rows are named as altered


def test_the_issues_example_an_edited_move_reason(tampering: sa.Connection) -> None:
    tampering.execute(sa.update(AliasMove).where(AliasMove.id == 2).values(reason="nothing"))
    message = broken(tampering)
    assert re.match(r"alias_moves row 2 was altered after audit event seq \d+ \(alias\.move\) ",
                    message)  # fmt: skip


def test_the_oldest_problem_is_named_first(tampering: sa.Connection) -> None:
    moves = rows_of(tampering, "alias_moves")
    tampering.execute(sa.update(AliasMove).where(AliasMove.id == moves[-1]["id"]).values(actor="x"))
    tampering.execute(sa.update(AliasMove).where(AliasMove.id == moves[0]["id"]).values(actor="x"))
    message = broken(tampering)
    assert message.startswith(f"alias_moves row {moves[0]['id']} was altered")
    assert "(1 more problem after it)" in message


def test_volatile_run_columns_are_not_covered(tampering: sa.Connection) -> None:
    runs = COVERED["runs"].table
    tampering.execute(
        sa.update(runs).values(heartbeat_at=now(), holder={"pid": 2}, lease_seconds=9)
    )
    assert bench.detects(tampering) is None


# -- the append contract -------------------------------------------------------------------


def test_append_refuses_uncovered_tables_missing_rows_and_bad_keys(catalog: Catalog) -> None:
    catalog.register_schema("sales", {"columns": {}})

    def attempt(rows: list[Any]) -> None:
        def write(session: Session) -> None:
            audit.append(session, actor="a", action="x.y", subject="s", payload={}, rows=rows)

        catalog._write(write)

    with pytest.raises(ValueError, match="table 'profiles' is not covered"):
        attempt([("profiles", "x")])
    with pytest.raises(ValueError, match="runs row 'nope' does not exist"):
        attempt([("runs", "nope")])
    with pytest.raises(ValueError, match=r"schemas keys are \(name, version\), got 'sales'"):
        attempt([("schemas", "sales")])
    with pytest.raises(ValueError, match="recorded as deleted but still exists"):
        attempt([("schemas", ("sales", 1), None)])
    assert [e.action for e in catalog.audit_events()] == ["schema.create"]
    assert catalog.verify_audit() == 1


def test_a_recorded_deletion_verifies_and_a_resurrection_does_not(
    catalog: Catalog, raw: Engine
) -> None:
    schema = catalog.register_schema("sales", {"columns": {}})

    def delete(session: Session) -> None:
        session.execute(sa.delete(COVERED["schemas"].table))
        audit.append(session, actor="a", action="schema.drop", subject="schema:sales",
                     payload={}, rows=[("schemas", ("sales", 1), None)])  # fmt: skip

    catalog._write(delete)
    [event] = catalog.audit_events(limit=1)
    assert event.payload["covers"] == [{"table": "schemas", "key": ["sales", 1], "hash": None}]
    assert catalog.verify_audit() == 2
    with raw.begin() as conn:
        conn.execute(
            sa.insert(COVERED["schemas"].table).values(
                name="sales", version=1, id=schema.id, spec={"columns": {}}, created_at=now()
            )
        )
    with pytest.raises(
        AuditChainBroken, match=r'schemas row \["sales",1\] exists, but audit event'
    ):
        catalog.verify_audit()


def test_every_covering_event_carries_the_row_hashes(catalog: Catalog) -> None:
    fill(catalog)
    covering = [e for e in catalog.audit_events(limit=1000) if "covers" in e.payload]
    tables = {c["table"] for e in covering for c in e.payload["covers"]}
    assert tables == set(COVERED)
    assert all(len(c["hash"]) == 64 for e in covering for c in e.payload["covers"])


def test_verify_reads_one_snapshot_while_writers_write(catalog: Catalog, build: Any) -> None:
    v1, v2 = build.version(), build.version()
    catalog.move_alias("churn", "champion", v1.id)
    stop = threading.Event()
    errors: list[BaseException] = []

    def mover() -> None:
        try:
            i = 0
            while not stop.is_set():
                i += 1
                catalog.move_alias("churn", "champion", (v1, v2)[i % 2].id, reason=str(i))
        except BaseException as exc:  # collected and checked below
            errors.append(exc)

    thread = threading.Thread(target=mover)
    thread.start()
    try:
        for _ in range(15):
            catalog.verify_audit()
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert catalog.verify_audit() > 15


# -- catalogs written before rows were covered -----------------------------------------------


def old_catalog(url: str) -> None:
    """A catalog as regrow wrote it at schema revision 0005: rows, events without covers."""
    engine = create_engine_for(url)
    try:
        with writer(engine).begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            alembic.command.upgrade(config, "0005")
        t = {name: cover.table for name, cover in COVERED.items()}
        stamp = now()
        with Session(writer(engine)) as session, session.begin():
            conn = session.connection()
            conn.execute(sa.insert(t["schemas"]).values(
                name="sales", version=1, id="s" * 64, spec={}, created_at=stamp))  # fmt: skip
            conn.execute(sa.insert(Base.metadata.tables["components"]).values(
                system="churn", name="m", kind="member", created_at=stamp))  # fmt: skip
            conn.execute(sa.insert(t["component_versions"]).values(
                id="c1", system="churn", component="m", kind="member", fingerprint="f" * 64,
                parts={}, artifact=None, run_id=None, snapshot_id=None, seed=1,
                train_seconds=0.5, info={}, created_at=stamp))  # fmt: skip
            for n in (1, 2):
                conn.execute(sa.insert(t["system_versions"]).values(
                    id=f"v{n}", system="churn", number=n, parent_id=None, manifest={"m": "c1"},
                    spec={}, run_id=None, snapshot_id=None, note="", created_at=stamp))  # fmt: skip
                conn.execute(sa.insert(t["alias_moves"]).values(
                    system="churn", alias="champion", from_version_id=None if n == 1 else "v1",
                    to_version_id=f"v{n}", revision=n, actor="old", reason=f"move {n}",
                    at=stamp))  # fmt: skip
                audit.append(session, actor="old", action="alias.move",
                             subject="alias:churn@champion", payload={"to": f"v{n}"})  # fmt: skip
            conn.execute(sa.insert(t["aliases"]).values(
                system="churn", name="champion", version_id="v2", revision=2,
                updated_at=stamp))  # fmt: skip
    finally:
        engine.dispose()


def test_an_old_catalog_gets_one_baseline_on_upgrade(empty_url: str) -> None:
    old_catalog(empty_url)
    with Catalog(empty_url) as catalog:
        [baseline, *_] = catalog.audit_events(limit=1)
        assert (baseline.seq, baseline.action, baseline.actor) == (3, "audit.baseline", "regrow")
        assert baseline.payload["since"] == "0006"
        assert baseline.payload["rows"] == {
            "aliases": 1, "alias_moves": 2, "component_versions": 1, "schemas": 1,
            "system_versions": 2,
        }  # fmt: skip
        assert catalog.verify_audit() == 3
    with Catalog(empty_url) as catalog:  # opening again adds nothing
        assert catalog.verify_audit() == 3
    engine = create_engine_for(empty_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.update(AliasMove).where(AliasMove.id == 1).values(reason="edited"))
    finally:
        engine.dispose()
    with (
        Catalog(empty_url) as catalog,
        pytest.raises(
            AuditChainBroken,
            match=r"alias_moves row 1 was altered after audit event seq 3 \(audit\.baseline\)",
        ),
    ):
        catalog.verify_audit()


def test_concurrent_openers_of_an_old_catalog_write_one_baseline(empty_url: str) -> None:
    old_catalog(empty_url)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            barrier.wait()
            Catalog(empty_url).close()
        except BaseException as exc:  # collected and checked below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Catalog(empty_url) as catalog:
        actions = [e.action for e in catalog.audit_events()]
        assert actions == ["audit.baseline", "alias.move", "alias.move"]
        assert catalog.verify_audit() == 3


def test_a_new_catalog_has_no_baseline(empty_url: str) -> None:
    with Catalog(empty_url) as catalog:
        assert catalog.audit_events() == []
        assert catalog.verify_audit() == 0


# -- the figure -----------------------------------------------------------------------------


def test_the_tamper_figure_on_a_demo_workspace() -> None:
    detected, n = bench.tamper_trials(n=30, seed=3)
    assert (detected, n) == (30, 30)


def test_regrow_audit_verify_names_the_tampered_row(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from regrow import Workspace
    from regrow.testing import run_cli

    home = str(tmp_path / "ws")
    with Workspace.init(home) as ws:
        ws.identity  # noqa: B018 -- the OS user, its first identity, may read it from the CLI
        ws.catalog.actor = "tester"
        fill(ws.catalog)
    code, out, _ = run_cli(capsys, "audit", "--verify", "--home", home)
    assert code == 0
    assert "audit chain verified" in out
    engine = create_engine_for(f"sqlite:///{home}/catalog.db")
    try:
        with engine.begin() as conn:
            conn.execute(sa.update(AliasMove).where(AliasMove.id == 2).values(reason="edited"))
    finally:
        engine.dispose()
    code, out, _ = run_cli(capsys, "audit", "--verify", "--home", home)
    assert code == 1
    assert "audit chain BROKEN: alias_moves row 2 was altered after audit event seq" in out
    code, out, _ = run_cli(capsys, "audit", "--verify", "--json", "--home", home)
    assert code == 1
    report = json.loads(out)
    assert report["verified"] is False
    assert report["broken"].startswith("alias_moves row 2 was altered")
