"""Run leases and fit leases, on SQLite and PostgreSQL (the catalog contract suite)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from regrow.catalog import Catalog
from regrow.catalog.core import now
from regrow.errors import CatalogError, ConfigError

FP = "a" * 64


def _run(catalog: Catalog, lease: int = 30) -> str:
    run = catalog.start_run(system="s", kind="train", seed=0, environment={}, params={})
    catalog.leases.hold_run(run.id, lease_seconds=lease, holder={"host": "h", "pid": 7})
    return run.id


def _age(engine: Engine, run_id: str, seconds: int) -> None:
    """Make ``run_id`` look as if its last heartbeat (and its fit leases) were long ago."""
    past = now() - timedelta(seconds=seconds)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE runs SET heartbeat_at = :t WHERE id = :r"), {"t": past, "r": run_id}
        )
        conn.execute(
            sa.text("UPDATE fit_leases SET expires_at = :t WHERE run_id = :r"),
            {"t": past, "r": run_id},
        )


def test_a_held_fingerprint_is_not_taken_by_another_live_run(catalog: Catalog) -> None:
    first, second = _run(catalog), _run(catalog)
    assert catalog.leases.acquire(first, {FP: ("s", "m")}) == {FP}
    assert catalog.leases.acquire(second, {FP: ("s", "m")}) == set()
    assert catalog.leases.acquire(first, {FP: ("s", "m")}) == {FP}  # its own: still its
    assert catalog.leases.holders([FP])[FP].run_id == first
    assert catalog.leases.release(first) == 1
    assert catalog.leases.acquire(second, {FP: ("s", "m")}) == {FP}


def test_a_dead_runs_leases_lapse_and_are_taken_over(catalog: Catalog, raw: Engine) -> None:
    dead, alive = _run(catalog, lease=5), _run(catalog)
    catalog.leases.acquire(dead, {FP: ("s", "m")}, lease_seconds=5)
    assert catalog.get_run(dead).state() == "running"
    _age(raw, dead, 60)
    assert catalog.get_run(dead).state() == "abandoned"
    assert [r.id for r in catalog.leases.abandoned()] == [dead]
    assert catalog.leases.acquire(alive, {FP: ("s", "m")}) == {FP}


def test_a_heartbeat_keeps_the_run_and_its_leases_alive(catalog: Catalog, raw: Engine) -> None:
    run, other = _run(catalog, lease=5), _run(catalog)
    catalog.leases.acquire(run, {FP: ("s", "m")}, lease_seconds=5)
    _age(raw, run, 60)
    assert catalog.leases.heartbeat(run) is True
    assert catalog.get_run(run).state() == "running"
    assert catalog.leases.acquire(other, {FP: ("s", "m")}) == set()


def test_abandon_marks_the_run_drops_its_leases_and_is_audited(catalog: Catalog) -> None:
    run = _run(catalog)
    catalog.leases.acquire(run, {FP: ("s", "m")})
    record = catalog.leases.abandon(run, reason="its lease lapsed")
    assert (record.status, record.state()) == ("abandoned", "abandoned")
    assert record.holder == {"host": "h", "pid": 7}
    assert catalog.leases.holders([FP]) == {}
    assert catalog.leases.heartbeat(run) is False
    events = [e for e in catalog.audit_events() if e.action == "run.abandon"]
    assert events[0].payload["holder"] == {"host": "h", "pid": 7}
    with pytest.raises(CatalogError, match="not running"):
        catalog.leases.abandon(run, reason="again")
    with pytest.raises(CatalogError, match="already finished"):
        catalog.finish_run(run, status="failed", summary={})


def test_only_one_of_many_racing_runs_takes_a_fingerprint(catalog: Catalog) -> None:
    runs = [_run(catalog) for _ in range(6)]
    taken: list[str] = []
    lock = threading.Lock()

    def take(run_id: str) -> None:
        if catalog.leases.acquire(run_id, {FP: ("s", "m"), "b" * 64: ("s", "n")}):
            with lock:
                taken.append(run_id)

    threads = [threading.Thread(target=take, args=(r,)) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    holders = catalog.leases.holders([FP, "b" * 64])
    assert len({h.run_id for h in holders.values()}) == 1  # both went to one run, in one write
    assert taken == [holders[FP].run_id]


def test_bad_lease_lengths_are_refused(catalog: Catalog) -> None:
    run = catalog.start_run(system="s", kind="train", seed=0, environment={}, params={})
    with pytest.raises(ConfigError, match="lease_seconds"):
        catalog.leases.hold_run(run.id, lease_seconds=0)
    with pytest.raises(ConfigError, match="lease_seconds"):
        catalog.leases.acquire(run.id, {FP: ("s", "m")}, lease_seconds=-3)


def test_runs_from_before_leases_stay_running(catalog: Catalog) -> None:
    run = catalog.start_run(system="s", kind="train", seed=0, environment={}, params={})
    assert run.state() == "running"
    assert catalog.leases.abandoned() == []


def test_a_run_leased_from_its_first_write_is_abandoned_if_killed_at_once(
    catalog: Catalog, raw: Engine
) -> None:
    # A kill between recording the run and starting its heartbeat thread: the lease is
    # already in the row, so the run still lapses to abandoned (it used to stay running).
    run = catalog.start_run(
        system="s", kind="train", seed=0, environment={}, params={},
        lease_seconds=5, holder={"host": "h", "pid": 9},
    )  # fmt: skip
    assert (run.heartbeat_at, run.lease_seconds, run.holder) == (
        run.started_at,
        5,
        {"host": "h", "pid": 9},
    )
    _age(raw, run.id, 60)
    assert [r.id for r in catalog.leases.abandoned()] == [run.id]
