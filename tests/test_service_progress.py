"""Monitor, plan, run and evaluate report their long steps and say where the time went; large
windows are sampled for attribution and the probes, and the plan says which sample it used;
the multivariate check runs only when its answer can change the plan."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from regrow import Ensemble, Member, System, Workspace
from regrow.plan.policy import Policy
from regrow.progress import Step
from regrow.run.runner import RunEvent

CALM = Policy.from_dict({"escalation": {"unexplained_drift": "ignore"}})


def make(rows: int, seed: int, *, shift: float = 0.0, flip: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(rows, 4)), columns=["a1", "a2", "b1", "b2"])
    df["a1"] += shift
    df["y"] = (-2.0 if flip else 2.0) * df.a1 + df.a2 + df.b1 - df.b2
    df["y"] += 0.5 * rng.normal(size=rows)
    return df


def build() -> System:
    return System(
        "lin",
        target="y",
        task="regression",
        components=[
            Member("all", LinearRegression(), inputs=["a1", "a2", "b1", "b2"]),
            Member("half", LinearRegression(), inputs=["a1", "a2"]),
            Ensemble("combine", weights={"all": 1.0, "half": 0.0}),
        ],
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, str]]:
    with Workspace.init(tmp_path_factory.mktemp("progress")) as ws:
        yield ws, ws.train(build(), ws.snapshot(make(3000, 1), name="old")).version.ref


def _names(events: list[Any]) -> list[str]:
    return list(dict.fromkeys(e.name for e in events if isinstance(e, Step)))


def test_monitor_reports_its_steps_and_stores_their_seconds(trained: Any) -> None:
    ws, v1 = trained
    events: list[Any] = []
    result = ws.monitor(v1, make(900, 2, shift=0.8), progress=events.append)
    assert _names(events) == [
        "load", "data quality", "drift", "impact", "performance", "multivariate", "estimates",
        "record",
    ]  # fmt: skip
    for name in _names(events):
        states = [e.state for e in events if e.name == name]
        assert states[0] == "start"
        assert states[-1] == "done"
    impact = [e for e in events if e.name == "impact" and e.state == "advance"]
    assert impact
    assert impact[-1].done == impact[-1].total
    assert set(result.timings) == set(_names(events))
    assert all(v >= 0 for v in result.timings.values())
    stored = ws.catalog.list_monitor_reports(result.version.id)[0]
    assert "drift" in ws.catalog.get_monitor_report(stored.id).report["timings"]


def test_a_large_window_is_sampled_and_the_plan_says_so(trained: Any) -> None:
    ws, v1 = trained
    window = ws.snapshot(make(9_000, 3, shift=0.5, flip=True), name="big")
    events: list[Any] = []
    plan = ws.plan(v1, window, policy=CALM, progress=events.append)
    assert any(
        line.startswith("probes on 8,000 of the 9,000 labelled usable rows")
        for line in plan.rationale
    )
    assert any(
        line.startswith("impact is estimated on 4,000 of the 9,000") for line in plan.rationale
    )
    assert plan.diagnosis is not None
    assert plan.diagnosis["labelled_rows"] == 8_000
    assert {"load", "data quality", "drift", "impact", "probes", "record"} <= set(plan.timings)
    assert "multivariate check" not in plan.timings  # a feature drifted: it cannot change it
    assert ws.catalog.get_plan(plan.id).body["timings"]
    assert ws.plan(v1, window, policy=CALM, record=False).id == plan.id  # timings are no content


def test_the_multivariate_check_runs_only_when_it_can_change_the_plan(trained: Any) -> None:
    ws, v1 = trained
    quiet = ws.snapshot(make(900, 4), name="quiet")
    plan = ws.plan(v1, quiet, policy=CALM, record=False)
    assert not plan.escalated
    assert "multivariate check" in plan.timings
    assert "multivariate_auc" in plan.signals
    ignore = Policy.from_dict(
        {"escalation": {"unexplained_drift": "ignore", "unexplained_multivariate": "ignore"}}
    )
    skipped = ws.plan(v1, quiet, policy=ignore, record=False)
    assert "multivariate check" not in skipped.timings
    assert "multivariate_auc" not in skipped.signals


def test_a_run_reports_steps_and_run_events_and_evaluate_its_steps(trained: Any) -> None:
    ws, v1 = trained
    ws.snapshot(make(900, 5, flip=True), name="flipped")
    from regrow.plan.actions import Refit

    events: list[Any] = []
    ran = ws.apply(v1, "flipped", [Refit("all")], progress=events.append)
    assert "load" in _names(events)
    assert any(isinstance(e, RunEvent) and e.kind == "finished" for e in events)
    assert {"load", "training data", "run"} <= set(ran.timings)
    assert ws.catalog.get_plan(ran.plan.id).outcome["timings"]["run"] > 0
    events.clear()
    _, result = ws.evaluate(ran.result.version.ref, "flipped", baseline=v1, progress=events.append)
    assert _names(events) == ["load", "predict", "compare", "record"]
    assert set(result.timings) == set(_names(events))
