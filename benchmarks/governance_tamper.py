"""Tampering with covered catalog rows: is every single-row change detected?

A small demo-like workspace is built through the Workspace API (``regrow.demo.run_demo`` on
small windows: snapshots, schemas, component and system versions, runs, a monitoring report,
a plan, an evaluation, alias moves, an identity, a token, approvals, an experiment; then a
rollback). Each of ``n`` trials then applies ONE random tampering, by plain SQL on the
catalog's database, to a random covered table (:data:`regrow.catalog.coverage.COVERED`, among
those holding rows):

- **alter**: one covered column of one row gets another value of its type;
- **delete**: one row is deleted;
- **insert**: a plausible fake row (a copy of a real one under a new key, unique columns
  made unique) is inserted;
- **swap**: two rows exchange every non-key column (their contents are swapped).

Foreign keys do not get in the way (deferred on SQLite, ``session_replication_role =
replica`` on PostgreSQL: what someone with the database's credentials can do). The check is
``regrow.catalog.audit.verify`` on the same connection; the transaction is then rolled back,
so every trial starts from the untampered catalog. A trial is *detected* when verification
raises :class:`~regrow.errors.AuditChainBroken`, and *named* when its message names the
tampered table.

``--scale N`` also times a verification of a catalog of about N events (alias moves and
runs written through the catalog API).

Run: ``python benchmarks/governance_tamper.py [--trials 200] [--seed 0] [--postgres URL]
[--scale 20000]``; prints a table, then one JSON line ``{"tamper_detected": "k/n", ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import sqlalchemy as sa
from sqlalchemy.orm import Session

from regrow.catalog import audit
from regrow.catalog.coverage import COVERED, Coverage
from regrow.catalog.db import create_engine_for
from regrow.errors import AuditChainBroken

KINDS = ("alter", "delete", "insert", "swap")


# -- the workspace --------------------------------------------------------------------------


def build_workspace(home: Path, url: str | None = None) -> str:
    """Build the demo-like workspace at ``home`` (its catalog at ``url``); its catalog URL."""
    from regrow import Workspace
    from regrow.demo import run_demo

    with Workspace.init(home, catalog_url=url) as ws:
        result = run_demo(ws, rows=1200, new_rows=900, workers=1)
        if result.promoted:
            ws.rollback("churn", "champion", reason="benchmark: back to v1")
        return ws.config.resolved_catalog_url()


# -- tampering ------------------------------------------------------------------------------


def tamper(conn: sa.Connection, kind: str, cover: Coverage, rng: random.Random) -> str | None:
    """Apply one tampering of ``kind`` to ``cover``'s table; what was done, or None when
    the table does not allow it (too few rows, or no two rows that differ)."""
    table = cover.table
    rows = [dict(r) for r in conn.execute(sa.select(table)).mappings()]
    if not rows:
        return None
    if kind == "alter":
        row = rng.choice(rows)
        column = rng.choice(cover.columns)
        new = altered(conn, cover, row, column, rng)
        conn.execute(sa.update(table).where(*_is(cover, row)).values({column: new}))
        return f"{table.name}.{column} of {_key(cover, row)}"
    if kind == "delete":
        row = rng.choice(rows)
        conn.execute(sa.delete(table).where(*_is(cover, row)))
        return f"{table.name} {_key(cover, row)} deleted"
    if kind == "insert":
        fake = fake_row(conn, cover, rng.choice(rows), rng)
        conn.execute(sa.insert(table).values(fake))
        return f"{table.name} {_key(cover, fake)} inserted"
    if kind == "swap":
        pair = _differing_pair(cover, rows, rng)
        if pair is None:
            return None
        a, b = pair
        conn.execute(sa.delete(table).where(*_is(cover, a)))
        conn.execute(sa.delete(table).where(*_is(cover, b)))
        keys = set(cover.key)
        conn.execute(sa.insert(table).values({c: (a if c in keys else b)[c] for c in a}))
        conn.execute(sa.insert(table).values({c: (b if c in keys else a)[c] for c in b}))
        return f"{table.name} {_key(cover, a)} <-> {_key(cover, b)} swapped"
    raise ValueError(f"unknown tampering {kind!r} (one of {', '.join(KINDS)})")


def altered(
    conn: sa.Connection, cover: Coverage, row: Mapping[str, Any], column: str, rng: random.Random
) -> Any:
    """Another plausible value for ``row[column]``; a fresh one where it must be unique."""
    unique = {c.name for con in cover.table.constraints
              if isinstance(con, sa.UniqueConstraint | sa.PrimaryKeyConstraint)
              for c in con.columns}  # fmt: skip
    if column in unique:
        return fresh_value(conn, cover.table.c[column], row[column], rng)
    return other_value(row[column], cover.table.c[column], rng)


def other_value(value: Any, column: sa.Column[Any], rng: random.Random) -> Any:
    """Another plausible value for ``column`` than ``value``."""
    if value is None:
        kind = _python_type(column)
        return {
            int: 1,
            float: 1.5,
            datetime: datetime.fromisoformat("2026-01-01T00:00:00+00:00"),
            dict: {"tampered": True},
            list: ["tampered"],
        }.get(kind, "tampered")
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rng.randint(1, 9)
    if isinstance(value, float):
        return value + rng.choice((-1, 1)) * (abs(value) * 0.01 + 0.001)
    if isinstance(value, datetime):
        return value + timedelta(seconds=rng.randint(1, 3600))
    if isinstance(value, dict):
        changed = dict(value)
        if changed and rng.random() < 0.5:
            changed.pop(rng.choice(sorted(changed)))
        else:
            changed["tampered"] = rng.randint(0, 99)
        return changed
    if isinstance(value, list):
        return [*value, "tampered"] if not value or rng.random() < 0.5 else value[:-1]
    if isinstance(value, str):
        if not value:
            return "x"
        i = rng.randrange(len(value))
        return value[:i] + ("0" if value[i] != "0" else "1") + value[i + 1 :]
    raise TypeError(f"cannot alter a {type(value).__name__} in {column}")


def fake_row(
    conn: sa.Connection, cover: Coverage, template: Mapping[str, Any], rng: random.Random
) -> dict[str, Any]:
    """A copy of ``template`` under a new key, with its unique columns made unique."""
    table = cover.table
    fake = dict(template)
    unique = {
        next(c.name for c in con.columns if c.name not in cover.key)
        for con in table.constraints
        if isinstance(con, sa.UniqueConstraint)
    }
    for name in (*cover.key, *sorted(unique)):
        fake[name] = fresh_value(conn, table.c[name], fake[name], rng)
    return fake


def fresh_value(conn: sa.Connection, column: sa.Column[Any], value: Any, rng: random.Random) -> Any:
    """A value for ``column`` like ``value`` that no row holds (for keys and unique columns)."""
    if isinstance(value, int):
        top = conn.execute(sa.select(sa.func.max(column))).scalar_one()
        return int(top) + rng.randint(1, 1000)
    length = getattr(column.type, "length", None) or 255
    fresh = uuid.UUID(int=rng.getrandbits(128)).hex
    return fresh if len(value) + 6 > length else f"{value}-{fresh[:5]}"


def _differing_pair(
    cover: Coverage, rows: list[dict[str, Any]], rng: random.Random
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    hashed = [c for c in cover.columns if c not in cover.key]
    for _ in range(20):
        if len(rows) < 2:
            return None
        a, b = rng.sample(rows, 2)
        if any(a[c] != b[c] for c in hashed):
            return a, b
    return None


def _is(cover: Coverage, row: Mapping[str, Any]) -> list[sa.ColumnElement[bool]]:
    return [cover.table.c[c] == row[c] for c in cover.key]


def _key(cover: Coverage, row: Mapping[str, Any]) -> str:
    return "/".join(str(row[c])[:12] for c in cover.key)


def _python_type(column: sa.Column[Any]) -> type:
    kind = column.type
    if isinstance(kind, sa.types.TypeDecorator):
        kind = kind.impl_instance
    try:
        return kind.python_type
    except NotImplementedError:
        return str


def free_foreign_keys(conn: sa.Connection) -> None:
    """Let this transaction break foreign keys (it is rolled back before they are checked)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
    else:
        conn.execute(sa.text("PRAGMA defer_foreign_keys = ON"))


def detects(conn: sa.Connection) -> str | None:
    """The message of the :class:`AuditChainBroken` verification raises on ``conn``, or None."""
    with Session(bind=conn) as session:
        try:
            audit.verify(session)
        except AuditChainBroken as exc:
            return exc.message
    return None


# -- the trials ------------------------------------------------------------------------------


def tamper_trials(n: int = 200, seed: int = 0, url: str | None = None) -> tuple[int, int]:
    """Build the workspace (a temporary SQLite one, or on the empty PostgreSQL ``url``) and
    run ``n`` single-row tamperings on it; return (detected, n)."""
    detected, trials, _ = _trials(n, seed, url)
    return detected, trials


def _trials(n: int, seed: int, url: str | None) -> tuple[int, int, dict[str, Any]]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="regrow-tamper-") as tmp:
        catalog_url = build_workspace(Path(tmp) / "ws", url)
        engine = create_engine_for(catalog_url)
        try:
            return _run_trials(engine, n, rng)
        finally:
            engine.dispose()


def _run_trials(engine: sa.Engine, n: int, rng: random.Random) -> tuple[int, int, dict[str, Any]]:
    with engine.connect() as conn:
        clean = detects(conn)
        conn.rollback()
        if clean is not None:
            raise AssertionError(f"the untampered catalog does not verify: {clean}")
        counts = {
            name: conn.execute(sa.select(sa.func.count()).select_from(c.table)).scalar_one()
            for name, c in COVERED.items()
        }
        conn.rollback()
    tables = [name for name, count in counts.items() if count]
    detected = named = 0
    by_kind: Counter[str] = Counter()
    by_table: Counter[str] = Counter()
    missed: list[str] = []
    seconds: list[float] = []
    for _ in range(n):
        with engine.connect() as conn:
            while True:
                kind, table = rng.choice(KINDS), rng.choice(tables)
                conn.begin()
                free_foreign_keys(conn)
                what = tamper(conn, kind, COVERED[table], rng)
                if what is not None:
                    break
                conn.rollback()
            t0 = time.perf_counter()
            message = detects(conn)
            seconds.append(time.perf_counter() - t0)
            conn.rollback()
        by_kind[kind] += 1
        by_table[table] += 1
        if message is None:
            missed.append(f"{kind}: {what}")
            continue
        detected += 1
        named += table in message
    figures = {
        "named": f"{named}/{n}",
        "kinds": dict(sorted(by_kind.items())),
        "tables": dict(sorted(by_table.items())),
        "covered_rows": sum(counts.values()),
        "empty_tables": sorted(name for name, count in counts.items() if not count),
        "verify_ms_median": round(statistics.median(seconds) * 1000, 2) if seconds else None,
        "missed": missed[:10],
    }
    return detected, n, figures


# -- verification at scale ---------------------------------------------------------------------


def verify_at_scale(events: int, url: str | None = None) -> dict[str, Any]:
    """Seconds to verify a catalog of about ``events`` events (alias moves and runs)."""
    from regrow.catalog import Catalog

    with (
        tempfile.TemporaryDirectory(prefix="regrow-verify-") as tmp,
        Catalog(url or f"sqlite:///{tmp}/catalog.db") as catalog,
    ):
        system = "bench"
        ids = [
            catalog.add_system_version(
                system=system,
                manifest={
                    "m": catalog.add_component_version(
                        system=system, component="m", kind="member",
                        fingerprint=f"{i:064x}", parts={}, artifact=None, run_id=None,
                        snapshot_id=None, seed=0, train_seconds=0.1,
                    ).id
                },
                spec={}, parent_id=None, run_id=None, snapshot_id=None,
            ).id
            for i in range(2)
        ]  # fmt: skip
        t0 = time.perf_counter()
        while catalog.audit_events(limit=1)[0].seq < events:
            for i in range(50):
                catalog.move_alias(system, "champion", ids[i % 2], reason=f"move {i}")
            run = catalog.start_run(system=system, kind="bench", seed=0, environment={},
                                    params={})  # fmt: skip
            catalog.finish_run(run.id, status="succeeded", summary={"moves": 50})
        written = time.perf_counter() - t0
        t0 = time.perf_counter()
        verified = catalog.verify_audit()
        seconds = time.perf_counter() - t0
    return {"events": verified, "verify_s": round(seconds, 3), "write_s": round(written, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--postgres", metavar="URL", help="an empty PostgreSQL database/schema")
    parser.add_argument("--scale", type=int, default=0, help="also time verify on ~N events")
    args = parser.parse_args()
    t0 = time.perf_counter()
    detected, n, figures = _trials(args.trials, args.seed, args.postgres)
    print(f"{'tampering':<10} {'trials':>7}")
    for kind, count in figures["kinds"].items():
        print(f"{kind:<10} {count:>7}")
    print(f"detected {detected}/{n}, named the table {figures['named']}")
    for line in figures["missed"]:
        print(f"  missed: {line}")
    result: dict[str, Any] = {
        "tamper_detected": f"{detected}/{n}",
        **figures,
        "database": "postgresql" if args.postgres else "sqlite",
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if args.scale:
        result["scale"] = verify_at_scale(args.scale)
        print(f"verify of {result['scale']['events']} events: {result['scale']['verify_s']} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
