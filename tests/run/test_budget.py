"""A run stops once its components used more than its budget (CPU seconds, GPU seconds, money),
and resumes when run again."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from regrow import Ensemble, Member, System, Workspace
from regrow.costs import CostProfile, Rates, TaskUsage
from regrow.errors import RunError
from regrow.plan.policy import Policy
from regrow.run.budget import PlanEstimate, RunBudget, check
from regrow.run.runner import ComponentOutcome, execute, full_bindings


def _system() -> System:
    forests = [
        Member(f"forest{i}", RandomForestClassifier(n_estimators=40), inputs=["a", "b"])
        for i in range(3)
    ]
    return System(
        "budgeted",
        target="y",
        components=[
            *forests,
            Member("linear", LogisticRegression(), inputs=["a", "b"]),
            Ensemble("all", [m.name for m in forests] + ["linear"]),
        ],
    )


def test_a_run_over_its_cpu_budget_stops_and_resumes_where_it_stopped(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 2))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": (x.sum(axis=1) > 0).astype(int)})
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(frame, name="d")
        system = _system()
        bindings = full_bindings(system, snap, 0)

        def run(budget: float | None) -> object:
            return execute(ws.catalog, ws.store, system, bindings, kind="train", run_seed=0,
                           parent=None, workers=1, cpu_budget=budget)  # fmt: skip

        expected = r"run stopped over its budget: the 1 component\(s\) it fitted used [0-9.]+ CPU s"
        with pytest.raises(RunError, match=expected + r", over 1e-09 CPU s") as stopped:
            run(1e-9)
        assert "run it again to resume" in (stopped.value.hint or "")
        failed = ws.catalog.list_runs("budgeted")[0]
        assert failed.status == "failed"
        assert ws.catalog.list_system_versions("budgeted") == []  # no version from half a run
        result = run(None)
        assert result.created_version  # type: ignore[attr-defined]
        reused = [n for n, o in result.components.items() if o.action == "reused"]  # type: ignore[attr-defined]
        assert len(reused) == 1  # the one component the stopped run finished


def test_a_run_over_its_money_budget_stops_naming_both_sums_and_resumes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 2))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": (x.sum(axis=1) > 0).astype(int)})
    # 1 EUR per CPU second: the first fit crosses EUR 1e-09, the CPU budget holds.
    budget = RunBudget(cpu_seconds=3600, money=1e-9, currency="EUR", rates=Rates(cpu_hour=3600))
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(frame, name="d")
        system = _system()
        bindings = full_bindings(system, snap, 0)
        with pytest.raises(RunError) as stopped:
            execute(ws.catalog, ws.store, system, bindings, kind="train", run_seed=0,
                    parent=None, workers=1, cpu_budget=budget)  # fmt: skip
        assert re.search(
            r"run stopped over its budget: the 1 component\(s\) it fitted used EUR [0-9.e-]+, "
            r"over EUR 1e-09 \(budgets.max_cost\); 4 left: ",
            stopped.value.message,
        ), stopped.value.message
        assert "CPU s" not in stopped.value.message  # only the budget crossed is named
        assert "budgets.max_cost" in (stopped.value.hint or "")
        result = execute(ws.catalog, ws.store, system, bindings, kind="train", run_seed=0,
                         parent=None, workers=1)  # fmt: skip
        assert len(result.reused) == 1


def _outcome(name: str, cpu: float, gpu: float) -> ComponentOutcome:
    usage = TaskUsage(cpu_seconds=cpu, gpu_seconds=gpu)
    return ComponentOutcome(name, "member", "trained", (), "v", "f", None, cpu, cpu, usage)


def test_check_names_every_budget_crossed_and_stops_only_with_work_left() -> None:
    budget = RunBudget(cpu_seconds=1, gpu_seconds=10, money=0.3, currency="EUR",
                       rates=Rates(cpu_hour=3600, gpu_hour=0))  # fmt: skip
    done = [_outcome("a", 0.75, 6.0), _outcome("b", 0.5, 6.0)]
    reused = replace(_outcome("c", 100.0, 100.0), action="reused")  # not spent by this run
    with pytest.raises(RunError) as stopped:
        check(budget, [*done, reused], ["d"])
    assert stopped.value.message == (
        "run stopped over its budget: the 2 component(s) it fitted used 1.25 CPU s, over 1 CPU s "
        "(budgets.max_cpu_seconds), and 12.00 GPU s, over 10 GPU s (budgets.max_gpu_seconds), "
        "and EUR 1.25, over EUR 0.30 (budgets.max_cost); 1 left: d"
    )
    check(budget, done, [])  # nothing left: the run ends, it is not stopped
    check(None, done, ["d"])
    check(RunBudget(), done, ["d"])
    with pytest.raises(RunError, match=r"used 1.25 CPU s, over 1 CPU s"):
        check(1.0, done, ["d"])  # CPU seconds alone, as before


def test_a_budget_without_prices_drops_max_cost_with_a_note_and_lifts_what_was_approved() -> None:
    budgets = Policy.from_dict({"budgets": {"max_cost": 0.3, "max_gpu_seconds": 5}}).budgets
    unpriced = RunBudget.of(budgets, CostProfile(), "local")
    assert unpriced.money is None
    assert unpriced.notes == (
        "budgets.max_cost 0.3 is ignored: no price is configured ([costs] in config.toml)",
    )
    priced = RunBudget.of(budgets, CostProfile("EUR", ray=Rates(gpu_hour=3.6)), "ray")
    assert (priced.money, priced.currency, priced.rates.gpu_hour) == (0.3, "EUR", 3.6)
    estimate = PlanEstimate(cpu_seconds=4000, gpu_seconds=100, money=0.1, currency="EUR")
    crossed = priced.crossed(estimate)
    assert [str(c) for c in crossed] == [
        "4,000 CPU s (budgets.max_cpu_seconds 3,600)",
        "100 GPU s (budgets.max_gpu_seconds 5)",
    ]
    lifted = priced.lifted(crossed)
    assert (lifted.cpu_seconds, lifted.gpu_seconds, lifted.money) == (None, None, 0.3)
