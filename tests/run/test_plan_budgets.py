"""The policy's budgets in CPU seconds, GPU seconds and money (#18): a plan estimated over one is
refused before anything runs, with the numbers; a run over one stops and resumes when run again;
a plan shows what it used next to its estimate."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from regrow import Ensemble, Member, System, Transform, Workspace
from regrow.demo import make_window
from regrow.errors import PlanError, RunError
from regrow.plan.actions import Refit
from regrow.plan.plan import Plan
from regrow.plan.policy import Policy
from regrow.run.backends import LocalBackend
from regrow.run.budget import RunBudget, estimate_plan
from regrow.run.tasks import TaskResult, TaskSpec
from regrow.testing import run_cli


def build() -> System:
    return System(
        "churn",
        target="churned",
        components=[
            Transform("scaled", StandardScaler(), inputs=["sessions_per_week", "support_calls"]),
            Member("account", LogisticRegression(), inputs=["tenure_months", "monthly_fee"]),
            Member("usage", LogisticRegression(), inputs=["scaled"]),
            Ensemble("ensemble", weights={"account": 1, "usage": 1}),
        ],
    )


class GpuBackend(LocalBackend):
    """The local backend whose tasks report one GPU second each, as the meter reports the
    seconds a task held a CUDA device (this machine may have none)."""

    def run(self, tasks: Sequence[TaskSpec]) -> Iterator[tuple[TaskSpec, object]]:  # type: ignore[override]
        for task, outcome in super().run(tasks):
            if isinstance(outcome, TaskResult):
                outcome = replace(outcome, usage=replace(outcome.usage, gpu_seconds=1.0))
            yield task, outcome


@pytest.fixture
def trained(tmp_path: Path) -> Iterator[tuple[Workspace, str, str]]:
    """A workspace with churn:v1 trained, a window of recent rows, and 1 EUR per CPU second."""
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(make_window(1500, start="2026-01-01", days=60, seed=1), name="old")
        v1 = ws.train(build(), snap, workers=1).version
        window = ws.snapshot(make_window(600, start="2026-03-01", days=20, seed=2), name="recent")
        home = ws.home
    path = home / "config.toml"
    path.write_text(path.read_text() + '\n[costs]\ncurrency = "EUR"\ncpu_hour = 3600\n')
    with Workspace.open(home) as priced:
        yield priced, v1.ref, window.id


def _written(ws: Workspace) -> tuple[int, int, int]:
    """Runs, system versions and snapshots in the catalog."""
    return (
        len(ws.catalog.list_runs("churn")),
        len(ws.catalog.list_system_versions("churn")),
        len(ws.catalog.list_snapshots()),
    )


def test_a_plan_over_cpu_and_money_budgets_is_refused_with_both_numbers_writing_nothing(
    trained: tuple[Workspace, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    ws, v1, window = trained
    ws.set_policy(Policy.from_dict({"budgets": {"max_cpu_seconds": 1e-6, "max_cost": 1e-7}}))
    before = _written(ws)
    with pytest.raises(PlanError) as refused:
        ws.apply(v1, window, [Refit("account"), Refit("usage")], workers=1)
    said = refused.value.message
    assert re.search(
        r"needs approval \(estimated [0-9.]+ CPU s \(budgets.max_cpu_seconds 1e-06\) and "
        r"EUR [0-9.]+ \(budgets.max_cost 1e-07\)\)",
        said,
    ), said
    assert "--approve" in (refused.value.hint or "")
    assert _written(ws) == before  # no run record, no version, no derived snapshot
    (plan,) = ws.catalog.list_plans("churn")
    assert plan.status == "proposed"

    code, out, err = run_cli(capsys, "run", plan.id[:12], "--home", str(ws.home))
    assert code != 0
    assert "budgets.max_cost 1e-07" in err + out
    assert "Traceback" not in err + out
    assert _written(ws) == before

    code, out, err = run_cli(capsys, "plans", "show", plan.id[:12], "--home", str(ws.home))
    assert code == 0, err
    assert "over the workspace's budgets: estimated" in out
    assert "EUR" in out
    # no action's kind needs approval, the plan's budget does: not "approval: no" beside it
    assert re.search(r"│ budg(et|…) +│$", out, re.MULTILINE), out  # cut short at 80 columns


def test_a_plan_over_the_budget_of_the_policy_it_was_made_with_says_so_with_the_numbers(
    trained: tuple[Workspace, str, str],
) -> None:
    """The workspace's policy has room; the plan was made under a stricter one (`regrow watch
    --policy FILE`): the refusal names that policy's budget and the estimate, not only "the
    policy it was made with"."""
    ws, v1, window = trained
    strict = Policy.from_dict({"budgets": {"max_cpu_seconds": 1e-6}})
    with pytest.raises(PlanError):
        ws.apply(v1, window, [Refit("account")], workers=1, policy=strict)
    (plan,) = ws.catalog.list_plans("churn")
    with pytest.raises(PlanError) as refused:
        ws.run_plan(plan.id, workers=1)
    said = refused.value.message
    assert re.search(
        r"needs approval \(estimated [0-9.]+ CPU s \(budgets.max_cpu_seconds 1e-06\) under the "
        rf"policy it was made with, {strict.id}\)",
        said,
    ), said


def test_an_approver_runs_a_plan_over_budget_and_sees_estimated_vs_actual_cost(
    trained: tuple[Workspace, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    ws, v1, window = trained
    ws.set_policy(Policy.from_dict({"budgets": {"max_cpu_seconds": 1e-6, "max_cost": 1e-7}}))
    with pytest.raises(PlanError):
        ws.apply(v1, window, [Refit("account"), Refit("usage")], workers=1)
    plan = ws.catalog.list_plans("churn")[0]
    ran = ws.run_plan(plan.id, approve=True, workers=1)  # the budgets it crossed are lifted
    assert ran.result.trained == ["account", "usage", "ensemble"]
    assert ran.currency == "EUR"
    assert ran.estimated_cost == pytest.approx(ran.estimated_cpu_seconds, rel=1e-4)  # 1 EUR/s
    assert ran.actual_cost == pytest.approx(ran.actual_cpu_seconds, abs=1e-4)
    outcome = ws.catalog.get_plan(plan.id).outcome
    assert outcome["currency"] == "EUR"
    assert outcome["actual_cost"] == pytest.approx(ran.actual_cost, abs=1e-5)
    assert outcome["actual_gpu_seconds"] == 0.0

    code, out, err = run_cli(capsys, "plans", "show", plan.id[:12], "--home", str(ws.home))
    assert code == 0, err
    assert re.search(r"CPU [0-9.]+ s \(estimated [0-9.]+ s\); EUR [0-9.]+ \(estimated EUR", out)


def test_a_run_over_its_gpu_budget_stops_and_running_the_plan_again_resumes(
    trained: tuple[Workspace, str, str],
) -> None:
    ws, v1, window = trained
    ws.set_policy(Policy.from_dict({"budgets": {"max_gpu_seconds": 1.5}}))
    with pytest.raises(RunError) as stopped:
        ws.apply(v1, window, [Refit("account"), Refit("usage")], workers=1, backend=GpuBackend())
    assert (
        "run stopped over its budget: the 2 component(s) it fitted used 2.00 GPU s, over 1.5 "
        "GPU s (budgets.max_gpu_seconds); 1 left: ensemble"
    ) in stopped.value.message
    assert "run it again to resume" in (stopped.value.hint or "")
    plan = ws.catalog.list_plans("churn")[0]
    assert plan.status == "failed"
    assert len(ws.catalog.list_system_versions("churn")) == 1  # no version from half a run

    ran = ws.run_plan(plan.id, workers=1, backend=GpuBackend())
    assert ran.result.reused == ["scaled", "account", "usage"]  # what the stopped run fitted
    assert ran.result.trained == ["ensemble"]
    assert ran.actual_gpu_seconds == 1.0

    # Now the components have GPU history: the next plan's estimate counts GPU seconds, and
    # a plan estimated over the GPU budget is refused before it runs.
    ws.set_policy(Policy.from_dict({"budgets": {"max_gpu_seconds": 0.5}}))
    v2 = ran.result.version.ref
    with pytest.raises(PlanError, match=r"estimated 1 GPU s \(budgets.max_gpu_seconds 0.5\)"):
        ws.apply(v2, window, [Refit("account")], workers=1, backend=GpuBackend())


def test_the_gpu_estimate_is_learned_per_row_from_the_components_gpu_history(
    trained: tuple[Workspace, str, str],
) -> None:
    ws, v1, window = trained
    ws.apply(v1, window, [Refit("usage")], workers=1, backend=GpuBackend())
    bigger = ws.snapshot(make_window(1200, start="2026-04-01", days=20, seed=3), name="bigger")
    ws.set_policy(Policy.from_dict({"budgets": {"max_gpu_seconds": 1.5}}))
    with pytest.raises(PlanError):
        ws.apply(v1, bigger, [Refit("usage")], workers=1)
    plan = Plan.from_dict(ws.catalog.list_plans("churn")[0].body)
    estimate = estimate_plan(ws.catalog, plan, ws.config.costs, "local")
    assert estimate.gpu_seconds == pytest.approx(2.0)  # 1 GPU s on 600 rows, now 1,200 rows
    assert estimate.money == pytest.approx(estimate.cpu_seconds)  # no GPU price set
    assert estimate.notes == ()


def test_a_gpu_fit_on_a_handful_of_rows_does_not_set_the_rate_of_a_large_one(
    trained: tuple[Workspace, str, str],
) -> None:
    """1 GPU s on 40 rows is set-up, not 0.025 GPU s a row: the median of the rates put a
    1,200-row fit at 16 GPU s, where the 600-row fit says 2 (as the CPU estimate pools)."""
    ws, v1, window = trained
    ws.apply(v1, window, [Refit("usage")], workers=1, backend=GpuBackend())
    few = ws.snapshot(make_window(40, start="2026-03-25", days=2, seed=4), name="few")
    ws.apply(v1, few, [Refit("usage")], workers=1, backend=GpuBackend())
    bigger = ws.snapshot(make_window(1200, start="2026-04-01", days=20, seed=3), name="bigger")
    ws.set_policy(Policy.from_dict({"budgets": {"max_gpu_seconds": 1.5}}))
    with pytest.raises(PlanError):
        ws.apply(v1, bigger, [Refit("usage")], workers=1)
    plan = Plan.from_dict(ws.catalog.list_plans("churn")[0].body)
    estimate = estimate_plan(ws.catalog, plan, ws.config.costs, "local")
    assert estimate.gpu_seconds == pytest.approx(2.0)


def test_max_cost_without_prices_is_ignored_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(make_window(1500, start="2026-01-01", days=60, seed=1), name="old")
        v1 = ws.train(build(), snap, workers=1).version
        window = ws.snapshot(make_window(600, start="2026-03-01", days=20, seed=2), name="recent")
        ws.set_policy(Policy.from_dict({"budgets": {"max_cost": 1e-9}}))
        ran = ws.apply(v1.ref, window, [Refit("account")], workers=1)
        note = "budgets.max_cost 1e-09 is ignored: no price is configured"
        assert any(n.startswith(note) for n in ran.notes)
        assert ran.estimated_cost is None
        assert ran.actual_cost is None
        code, out, err = run_cli(
            capsys, "plans", "show", ran.record.id[:12], "--home", str(ws.home)
        )
    assert code == 0, err
    assert f"note: {note}" in out
    assert "EUR" not in out


def test_the_default_policy_sets_no_gpu_or_money_budget_and_keeps_its_id() -> None:
    default = Policy.default()
    assert default.budgets.max_gpu_seconds is None
    assert default.budgets.max_cost is None
    assert "max_cost" not in default.to_dict()["budgets"]  # unset limits do not change the id
    assert Policy.from_dict(default.to_dict()).id == default.id
    capped = Policy.from_dict({"budgets": {"max_cost": 0.3, "max_gpu_seconds": 60}})
    assert capped.to_dict()["budgets"]["max_cost"] == 0.3
    assert Policy.from_dict(capped.to_dict()) == capped
    assert capped.id != default.id


@pytest.mark.parametrize(
    ("budgets", "said"),
    [
        ({"max_cost": 0}, "budgets.max_cost: Input should be greater than 0 (got 0)"),
        ({"max_gpu_seconds": -1}, "budgets.max_gpu_seconds: Input should be greater than 0"),
        ({"max_cost": "cheap"}, "budgets.max_cost: Input should be a valid number"),
    ],
)
def test_a_bad_budget_is_refused_naming_the_key_and_value(
    budgets: dict[str, object], said: str
) -> None:
    from regrow.errors import PolicyError

    with pytest.raises(PolicyError, match=re.escape(said)):
        Policy.from_dict({"budgets": budgets})


def test_a_torch_member_without_gpu_history_is_estimated_at_zero_gpu_seconds_with_a_note(
    tmp_path: Path,
) -> None:
    pytest.importorskip("torch")
    from regrow.components.torch import MLP, TorchClassifier

    net = TorchClassifier(MLP(hidden=(4,)), epochs=1, random_state=0)
    system = System(
        "netted",
        target="churned",
        components=[
            Member("account", LogisticRegression(), inputs=["tenure_months", "monthly_fee"]),
            Member("net", net, inputs=["tenure_months", "monthly_fee"]),
            Ensemble("ensemble", weights={"account": 1, "net": 1}),
        ],
    )
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(make_window(400, start="2026-01-01", days=30, seed=1), name="old")
        v1 = ws.train(system, snap, workers=1).version
        plan = Plan("netted", v1.ref, v1.id, snap.id, (Refit("net"), Refit("account")))
        estimate = estimate_plan(ws.catalog, plan, ws.config.costs, "local")
    assert estimate.gpu_seconds == 0.0
    note = (
        "no GPU history for net: estimated at 0 GPU s; budgets.max_gpu_seconds holds while running"
    )
    assert estimate.notes == (note,)
    unlimited = RunBudget.of(Policy.default().budgets, ws.config.costs, "local")
    assert unlimited.notes_on(estimate) == ()  # no GPU limit: nothing to say about the GPU
    limited = Policy.from_dict({"budgets": {"max_gpu_seconds": 100}}).budgets
    assert RunBudget.of(limited, ws.config.costs, "local").notes_on(estimate) == (note,)
