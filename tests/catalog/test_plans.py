"""Plans in the catalog: stored once per content id, moved by compare-and-set, audited."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from regrow.catalog import Catalog
from regrow.errors import CatalogError, NotFound, VersionNotFound


def _plan(catalog: Catalog, build: Any, pid: str = "a" * 32) -> Any:
    version = build.version("churn")
    window = build.snapshot("window")
    return catalog.add_plan(
        id=pid,
        system="churn",
        version_id=version.id,
        window_id=window.id,
        body={"actions": [{"kind": "refit", "component": "geo"}], "summary": {"n": 1}},
    )


def test_a_plan_is_stored_once_and_found_by_prefix(catalog: Catalog, build: Any) -> None:
    plan = _plan(catalog, build)
    assert plan.status == "proposed"
    assert plan.run_id is None
    assert _plan(catalog, build) == plan  # same content id: the stored one
    assert catalog.get_plan("aaaaaa") == plan
    assert [p.id for p in catalog.list_plans("churn")] == [plan.id]
    assert catalog.list_plans("other") == []
    [event, *_] = catalog.audit_events(subject="version:churn:v1")
    assert event.action == "plan.create"
    with pytest.raises(NotFound, match="unknown plan 'bbbbbbbb'"):
        catalog.get_plan("bbbbbbbb")
    _plan(catalog, build, "a" * 31 + "b")
    with pytest.raises(NotFound, match="ambiguous"):
        catalog.get_plan("aaaaaa")


def test_status_moves_by_compare_and_set(catalog: Catalog, build: Any) -> None:
    plan = _plan(catalog, build)
    running = catalog.move_plan(plan.id, expected="proposed", status="running")
    assert running.status == "running"
    with pytest.raises(CatalogError, match="is 'running', not proposed"):
        catalog.move_plan(plan.id, expected="proposed", status="running")
    done = catalog.move_plan(
        plan.id, expected="running", status="executed", outcome={"actual_cpu_seconds": 1.5}
    )
    assert done.outcome == {"actual_cpu_seconds": 1.5}
    assert done.updated_at >= plan.updated_at
    with pytest.raises(ValueError, match="status"):
        catalog.move_plan(plan.id, expected="executed", status="vanished")
    actions = [e.action for e in catalog.audit_events(subject=f"plan:{plan.id}")]
    assert sorted(actions) == ["plan.executed", "plan.running"]
    assert catalog.verify_audit() > 0


def test_only_one_of_two_concurrent_runners_starts_a_plan(catalog: Catalog, build: Any) -> None:
    plan = _plan(catalog, build)
    wins: list[str] = []
    losses: list[str] = []

    def start() -> None:
        try:
            catalog.move_plan(plan.id, expected="proposed", status="running")
            wins.append("won")
        except CatalogError:
            losses.append("lost")

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(wins), len(losses)) == (1, 3)


def test_a_plan_needs_a_known_version_and_window(catalog: Catalog, build: Any) -> None:
    window = build.snapshot("window")
    with pytest.raises(VersionNotFound):
        catalog.add_plan(
            id="c" * 32, system="churn", version_id="f" * 32, window_id=window.id, body={}
        )
    version = build.version("churn")
    with pytest.raises(NotFound, match="snapshot"):
        catalog.add_plan(
            id="c" * 32, system="churn", version_id=version.id, window_id="e" * 64, body={}
        )
    assert catalog.list_plans() == []
