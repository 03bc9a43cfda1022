"""Runs and evaluations."""

from __future__ import annotations

from typing import Any

import pytest

from regrow.catalog import Catalog
from regrow.errors import CatalogError, ConfigError, NotFound, VersionNotFound


def start(catalog: Catalog, system: str = "churn", **kw: Any) -> Any:
    values: dict[str, Any] = {
        "system": system,
        "kind": "update",
        "seed": 42,
        "environment": {"python": "3.11", "packages": {"numpy": "2.0"}},
        "params": {"parent": None, "budget": 3},
    }
    values.update(kw)
    return catalog.start_run(**values)


def test_start_and_finish_a_run(catalog: Catalog, build: Any) -> None:
    run = start(catalog)
    assert (run.status, run.finished_at, run.summary, run.version_id) == ("running", None, {}, None)
    assert run.environment == {"python": "3.11", "packages": {"numpy": "2.0"}}
    version = build.version("churn", run_id=run.id)
    done = catalog.finish_run(
        run.id, status="succeeded", summary={"trained": ["model"]}, version_id=version.id
    )
    assert (done.status, done.version_id, done.error) == ("succeeded", version.id, None)
    assert done.summary == {"trained": ["model"]}
    assert done.finished_at is not None
    assert done.finished_at >= done.started_at
    assert catalog.get_run(run.id) == done
    [finish, begin] = catalog.audit_events(subject=f"run:{run.id}")
    assert (begin.action, finish.action) == ("run.start", "run.finish")
    assert finish.payload["status"] == "succeeded"


def test_a_failed_run_keeps_its_error(catalog: Catalog) -> None:
    run = start(catalog)
    failed = catalog.finish_run(run.id, status="failed", summary={}, error="ValueError: boom")
    assert (failed.status, failed.error) == ("failed", "ValueError: boom")


def test_a_run_finishes_once(catalog: Catalog) -> None:
    run = start(catalog)
    catalog.finish_run(run.id, status="failed", summary={})
    with pytest.raises(CatalogError, match=f"run {run.id} already finished with status 'failed'"):
        catalog.finish_run(run.id, status="succeeded", summary={})
    assert catalog.get_run(run.id).status == "failed"


def test_finish_run_checks_its_arguments(catalog: Catalog, build: Any) -> None:
    run = start(catalog)
    other = build.version("fraud")
    with pytest.raises(ConfigError, match="'status' must be one of 'succeeded', 'failed'"):
        catalog.finish_run(run.id, status="done", summary={})
    with pytest.raises(NotFound, match="unknown run 'nope'"):
        catalog.finish_run("nope", status="failed", summary={})
    with pytest.raises(VersionNotFound, match="unknown version 'nope'"):
        catalog.finish_run(run.id, status="succeeded", summary={}, version_id="nope")
    with pytest.raises(CatalogError, match="not a version of the run's system 'churn'"):
        catalog.finish_run(run.id, status="succeeded", summary={}, version_id=other.id)
    assert catalog.get_run(run.id).status == "running"


def test_list_runs_newest_first(catalog: Catalog) -> None:
    runs = [start(catalog), start(catalog, "fraud"), start(catalog)]
    assert catalog.list_runs() == runs[::-1]
    assert catalog.list_runs("churn") == [runs[2], runs[0]]
    assert catalog.list_runs(limit=1) == [runs[2]]


def test_bad_run_arguments(catalog: Catalog) -> None:
    with pytest.raises(ConfigError, match="'seed' must be a 64-bit integer"):
        start(catalog, seed=2**64)
    with pytest.raises(ConfigError, match="'environment' must be a mapping"):
        start(catalog, environment=None)
    assert catalog.list_runs() == []


def test_evaluations(catalog: Catalog, build: Any) -> None:
    snapshot = build.snapshot("sales")
    base = build.version("churn")
    cand = build.version("churn", parent=base)
    evaluation = catalog.add_evaluation(
        candidate_id=cand.id,
        baseline_id=base.id,
        snapshot_id=snapshot.id,
        metric="auc",
        results={"candidate": 0.91, "baseline": 0.88, "slices": {"big": [0.9, 0.87]}},
        verdict="blessed",
        reasons=["better overall", "no slice worse"],
    )
    assert evaluation.reasons == ("better overall", "no slice worse")
    assert evaluation.results["slices"] == {"big": [0.9, 0.87]}
    second = catalog.add_evaluation(
        candidate_id=base.id,
        baseline_id=None,
        snapshot_id=snapshot.id,
        metric="auc",
        results={},
        verdict="none",
        reasons=(),
    )
    assert catalog.list_evaluations() == [second, evaluation]
    assert catalog.list_evaluations(cand.id) == [evaluation]
    [event] = catalog.audit_events(subject="version:churn:v2", limit=1)
    assert (event.action, event.payload["verdict"]) == ("evaluation.create", "blessed")


def test_evaluations_check_their_references(catalog: Catalog, build: Any) -> None:
    snapshot = build.snapshot("sales")
    version = build.version("churn")
    good: dict[str, Any] = {
        "candidate_id": version.id,
        "baseline_id": None,
        "snapshot_id": snapshot.id,
        "metric": "auc",
        "results": {},
        "verdict": "rejected",
        "reasons": ["worse"],
    }
    with pytest.raises(VersionNotFound, match="unknown version 'x'"):
        catalog.add_evaluation(**{**good, "candidate_id": "x"})
    with pytest.raises(VersionNotFound, match="unknown version 'y'"):
        catalog.add_evaluation(**{**good, "baseline_id": "y"})
    with pytest.raises(NotFound, match="unknown snapshot 'z'"):
        catalog.add_evaluation(**{**good, "snapshot_id": "z"})
    with pytest.raises(ConfigError, match="'verdict' must be one of 'blessed', 'rejected', 'none'"):
        catalog.add_evaluation(**{**good, "verdict": "ok"})
    with pytest.raises(ConfigError, match="'reasons' must be a sequence of strings"):
        catalog.add_evaluation(**{**good, "reasons": "worse"})
    assert catalog.list_evaluations() == []
