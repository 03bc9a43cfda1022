"""Cost accounting (#18): every task's usage recorded, the [costs] profile, `regrow costs`."""

from __future__ import annotations

import gc
import json
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from regrow import Ensemble, Member, System, Transform, Workspace
from regrow.config import Config
from regrow.costs import BACKENDS, CostProfile, Meter, Rates, TaskUsage, cost_report
from regrow.demo import make_window
from regrow.errors import ConfigError, NotFound, RunError
from regrow.plan.actions import Refit
from regrow.testing import run_cli


def build(c: float = 1.0) -> System:
    return System(
        "churn",
        target="churned",
        components=[
            Transform("scaled", StandardScaler(), inputs=["sessions_per_week", "support_calls"]),
            Member("account", LogisticRegression(), inputs=["tenure_months", "monthly_fee"]),
            Member("usage", LogisticRegression(C=c), inputs=["scaled"]),
            Ensemble("ensemble", weights={"account": 1, "usage": 1}),
        ],
    )


@pytest.fixture
def ws(tmp_path: Path):  # type: ignore[no-untyped-def]
    with Workspace.init(tmp_path / "ws") as workspace:
        yield workspace


@pytest.fixture
def history() -> pd.DataFrame:
    return make_window(2000, start="2026-01-01", days=60, seed=1)


def _usage(ws: Workspace, version_manifest: dict[str, str]) -> dict[str, dict[str, Any]]:
    versions = ws.catalog.get_component_versions(version_manifest.values())
    return {v.component: v.info["usage"] for v in versions.values()}


# -- step 1: every task records what it used ---------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "worker-processes"])
def test_every_trained_component_records_cpu_wall_memory_rows_and_no_gpu(
    ws: Workspace, history: pd.DataFrame, workers: int
) -> None:
    snap = ws.snapshot(history, name="customers")
    result = ws.train(build(), snap, workers=workers)
    usage = _usage(ws, result.version.manifest)
    assert set(usage) == {"scaled", "account", "usage", "ensemble"}
    for name, u in usage.items():
        assert u["cpu_seconds"] > 0, name
        assert u["wall_seconds"] > 0, name
        assert u["gpu_seconds"] == 0, name
        assert u["peak_memory_bytes"] >= 0, name
        # the rows it trained on: the snapshot's, none for weights fixed by hand
        assert u["rows"] == (0 if name == "ensemble" else snap.rows), name
    assert result.components["account"].usage is not None
    assert result.components["account"].usage.rows == snap.rows


def test_the_run_summary_totals_the_usage_of_what_it_trained(
    ws: Workspace, history: pd.DataFrame
) -> None:
    snap = ws.snapshot(history, name="customers")
    ws.train(build(), snap, workers=1)
    second = ws.train(build(c=0.1), snap, workers=1)  # refits usage (and the ensemble)
    summary = ws.catalog.get_run(second.run.id).summary["usage"]
    assert summary["backend"] == "local"
    assert set(summary["components"]) == {"usage", "ensemble"} == set(second.trained)
    parts = summary["components"].values()
    assert summary["cpu_seconds"] == pytest.approx(sum(p["cpu_seconds"] for p in parts), abs=1e-5)
    assert summary["rows"] == snap.rows
    assert summary["peak_memory_bytes"] == max(p["peak_memory_bytes"] for p in parts)


def test_a_failed_run_still_records_what_its_finished_tasks_used(
    ws: Workspace, history: pd.DataFrame
) -> None:
    snap = ws.snapshot(history, name="customers")
    bad = System(
        "churn",
        target="churned",
        components=[
            Member("account", LogisticRegression(), inputs=["tenure_months"]),
            Member("broken", LogisticRegression(C=-1.0), inputs=["monthly_fee"]),
            Ensemble("ensemble", weights={"account": 1, "broken": 1}),
        ],
    )
    with pytest.raises(RunError, match="broken"):
        ws.train(bad, snap, workers=1)
    (run,) = ws.catalog.list_runs("churn")
    assert run.status == "failed"
    assert set(run.summary["usage"]["components"]) == {"account"}
    assert run.summary["usage"]["rows"] == snap.rows
    # a failure is no stop: it was recorded under "interrupted" by its exception's name
    assert run.summary["interrupted"] is False
    (shown,) = cost_report(ws.catalog, "churn").runs
    assert shown.status == "failed"


def _ctrl_c_at_the_second_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the second LogisticRegression fit raise KeyboardInterrupt, as Ctrl-C would."""
    fit = LogisticRegression.fit
    fitted = 0

    def stop_after_one(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal fitted
        fitted += 1
        if fitted > 1:
            raise KeyboardInterrupt
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(LogisticRegression, "fit", stop_after_one)


def test_a_run_stopped_by_ctrl_c_is_shown_interrupted_not_failed(
    ws: Workspace, history: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `regrow costs` said "plan (failed)" for a run the user stopped, which resumes
    snap = ws.snapshot(history, name="customers")
    _ctrl_c_at_the_second_fit(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        ws.train(build(), snap, workers=1)
    monkeypatch.undo()
    (run,) = ws.catalog.list_runs("churn")
    assert run.status == "failed"  # as recorded: the next run resumes it
    assert run.summary["interrupted"] is True
    assert run.summary["exception"] == "KeyboardInterrupt"
    (shown,) = cost_report(ws.catalog, "churn").runs
    assert shown.status == "interrupted"


def test_a_run_stopped_in_a_task_counts_the_cpu_that_task_had_spent(
    ws: Workspace, history: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fit stopped by Ctrl-C near its end showed 0 CPU seconds in `regrow costs`: only
    finished tasks were counted, and the stopped one had cost its CPU too."""
    snap = ws.snapshot(history, name="customers")

    def busy_then_stopped(self: Any, *args: Any, **kwargs: Any) -> Any:
        deadline = time.process_time() + 0.3
        while time.process_time() < deadline:  # CPU a long fit spends before the stop
            pass
        raise KeyboardInterrupt

    monkeypatch.setattr(LogisticRegression, "fit", busy_then_stopped)
    with pytest.raises(KeyboardInterrupt):
        ws.train(build(), snap, workers=1)
    monkeypatch.undo()
    (run,) = ws.catalog.list_runs("churn")
    usage = run.summary["usage"]
    assert usage["unfinished"]["cpu_seconds"] >= 0.3
    assert usage["cpu_seconds"] >= 0.3
    (shown,) = cost_report(ws.catalog, "churn").runs
    assert shown.cpu_seconds >= 0.3
    priced = cost_report(ws.catalog, "churn", profile=CostProfile(local=Rates(cpu_hour=3600.0)))
    money = priced.runs[0].money
    assert money is not None
    assert money >= 0.3  # 1 money unit per CPU second


def test_the_meter_sees_memory_the_task_holds() -> None:
    gc.collect()  # garbage freed during the task would lower the resident set it is measured on
    meter = Meter()
    block = np.ones(40_000_000)  # 320 MB, touched
    usage = meter.stop(rows=7)
    assert block.sum() == 40_000_000
    # Resident-set figures move by what the rest of the process frees or maps meanwhile (in CI
    # an xdist worker once read 299 MB here): the test asks that the block is seen, not its byte.
    assert 250_000_000 <= usage.peak_memory_bytes < 400_000_000
    assert usage.rows == 7
    assert usage.gpu_seconds == 0


@pytest.mark.skipif(
    "torch" not in sys.modules and not __import__("importlib").util.find_spec("torch"),
    reason="needs torch",
)
def test_the_meter_counts_gpu_seconds_only_for_work_on_cuda() -> None:
    import torch

    meter = Meter()
    torch.ones(1000) @ torch.ones(1000)
    assert meter.stop(rows=0).gpu_seconds == 0  # torch on the CPU
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the GPU half needs one")
    meter = Meter()
    (torch.ones(1000, device="cuda") * 2).sum().item()
    usage = meter.stop(rows=0)
    assert usage.gpu_seconds == usage.wall_seconds > 0


# -- step 2: the [costs] profile ------------------------------------------------------------------


def _config(home: Path, text: str) -> Config:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('[catalog]\nurl = "sqlite:///catalog.db"\n' + text)
    return Config.load(home)


def test_no_costs_section_prices_nothing(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "")
    assert cfg.costs == CostProfile()
    assert not cfg.costs.priced


def test_prices_apply_to_every_backend_unless_its_own_table_sets_them(tmp_path: Path) -> None:
    cfg = _config(
        tmp_path,
        '[costs]\ncurrency = "EUR"\ncpu_hour = 0.04\nmemory_gb_hour = 0.01\n'
        "[costs.ray]\ncpu_hour = 0.06\ngpu_hour = 2\n",
    )
    assert cfg.costs.currency == "EUR"
    assert cfg.costs.rates("local") == Rates(cpu_hour=0.04, memory_gb_hour=0.01)
    assert cfg.costs.rates("ray") == Rates(cpu_hour=0.06, gpu_hour=2.0, memory_gb_hour=0.01)


def test_a_written_profile_reads_back_the_same(tmp_path: Path) -> None:
    profile = CostProfile("USD", Rates(0.04, 0.0, 0.01), Rates(0.06, 2.5, 0.01))
    Config(home=tmp_path, costs=profile).write()
    assert Config.load(tmp_path).costs == profile
    assert "[costs]" not in Config(home=tmp_path / "plain").write().read_text()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'currency = "EUR"\ncpu_hour = -1',
            r"\[costs\] cpu_hour .* must be a number >= 0 \(got -1\)",
        ),
        ('currency = "EUR"\ngpu_hour = "2"', r"gpu_hour .* must be a number >= 0 \(got '2'\)"),
        ('currency = "EUR"\ncpu_hour = true', r"must be a number >= 0 \(got True\)"),
        ('currency = "EUR"\ncpu_hour = inf', r"must be a number >= 0 \(got inf\)"),
        ('currency = "EUR"\ncpu_hours = 1', r"unknown key\(s\) \['cpu_hours'\] in \[costs\]"),
        ('currency = "EUR"\n[costs.dask]\ncpu_hour = 1', r"unknown key\(s\) \['dask'\]"),
        ('currency = "EUR"\n[costs.ray]\nram = 1', r"unknown key\(s\) \['ram'\] in \[costs.ray\]"),
        ('currency = "EUR"\nray = 1', r"\[costs.ray\] .* must be a table \(got 1\)"),
        ('currency = ""', r"currency .* must be a non-empty string"),
        ("cpu_hour = 0.04", r"sets prices but no currency"),
    ],
)
def test_a_bad_costs_section_is_refused_naming_the_value(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        _config(tmp_path, "[costs]\n" + text + "\n")
    assert caught.value.hint


def test_every_mistake_of_a_costs_section_is_named_at_once(tmp_path: Path) -> None:
    # only the first was: the others came one per try
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, '[costs]\ncurency = "EUR"\ncpu_hour = -1\ngpu_hour = "x"\n')
    said = caught.value.message
    assert said.startswith("3 mistakes in ")
    for part in ("unknown key(s) ['curency'] in [costs]", "cpu_hour must be a number >= 0 "
                 "(got -1)", "gpu_hour must be a number >= 0 (got 'x')"):  # fmt: skip
        assert part in said, part
    assert "did you mean 'currency'?" in (caught.value.hint or "")
    with pytest.raises(ConfigError, match="2 mistakes in \\[costs\\]"):
        CostProfile.parse({"cpu_hour": -1, "gpu_hour": "x", "currency": "EUR"})


def test_the_profile_prices_the_backends_the_runner_has() -> None:
    from regrow.run.backends import BACKENDS as RUNNER_BACKENDS

    assert BACKENDS == RUNNER_BACKENDS


def test_money_is_cpu_gpu_and_memory_hours_at_the_backends_prices() -> None:
    profile = CostProfile("EUR", ray=Rates(cpu_hour=3.6, gpu_hour=36.0, memory_gb_hour=7.2))
    usage = TaskUsage(cpu_seconds=100, wall_seconds=50, gpu_seconds=10, peak_memory_bytes=2 * 10**9)
    # 100/3600*3.6 + 10/3600*36 + 2 GB * 50/3600 h * 7.2
    assert profile.money("ray", usage) == pytest.approx(0.1 + 0.1 + 0.2)
    assert profile.money("local", usage) == 0


# -- step 3/4: the report and `regrow costs` -------------------------------------------------------


def _priced(ws: Workspace) -> None:
    """Price the workspace at 1 EUR per CPU second, so money is the CPU seconds."""
    path = ws.home / "config.toml"
    path.write_text(path.read_text() + '\n[costs]\ncurrency = "EUR"\ncpu_hour = 3600\n')


def test_cost_report_gives_each_run_its_figures_and_money(
    ws: Workspace, history: pd.DataFrame
) -> None:
    snap = ws.snapshot(history, name="customers")
    first = ws.train(build(), snap, workers=1)
    profile = CostProfile("EUR", local=Rates(cpu_hour=3600.0))
    report = cost_report(ws.catalog, "churn", profile=profile)
    (run,) = report.runs
    assert run.run == first.run.id
    assert run.kind == "train"
    assert run.backend == "local"
    assert run.trained == ("scaled", "account", "usage", "ensemble")
    assert run.rows == 3 * snap.rows
    assert run.money == pytest.approx(run.cpu_seconds, abs=1e-5)
    assert report.totals()["money"] == pytest.approx(run.cpu_seconds, abs=1e-5)
    assert cost_report(ws.catalog, "churn").runs[0].money is None  # no prices: no money
    with pytest.raises(NotFound, match="churnn"):
        cost_report(ws.catalog, "churnn")


def _old_run(ws: Workspace) -> str:
    """A run recorded the way runs were before cost accounting (no ``usage``)."""
    run = ws.catalog.start_run(system="churn", kind="train", seed=0, environment={}, params={})
    summary = {"trained": ["m"], "seconds": 2.0, "cpu_seconds": 1.5}
    return ws.catalog.finish_run(run.id, status="succeeded", summary=summary).id


def test_runs_recorded_before_cost_accounting_show_cpu_and_wall_only(ws: Workspace) -> None:
    run_id = _old_run(ws)
    profile = CostProfile("EUR", local=Rates(cpu_hour=3600.0, gpu_hour=1.0))
    (old,) = cost_report(ws.catalog, "churn", profile=profile).runs
    assert old.run == run_id
    assert (old.cpu_seconds, old.wall_seconds, old.money) == (1.5, 2.0, 1.5)
    assert (old.gpu_seconds, old.peak_memory_bytes, old.rows, old.backend) == (None,) * 4


def test_a_plan_run_shows_each_actions_estimate_next_to_its_actual_cpu(
    ws: Workspace, history: pd.DataFrame
) -> None:
    snap = ws.snapshot(history, name="customers")
    v1 = ws.train(build(), snap, workers=1).version
    window = ws.snapshot(make_window(800, start="2026-03-01", days=20, seed=2), name="recent")
    done = ws.apply(v1.ref, window, [Refit("account")], approve=True, workers=1)
    report = cost_report(ws.catalog, "churn")
    plan_run = report.runs[0]
    assert plan_run.kind == "plan"
    assert plan_run.plan == done.record.id
    assert plan_run.estimated_cpu_seconds == pytest.approx(done.estimated_cpu_seconds)
    refit, *others = plan_run.actions
    assert (refit.action, refit.component) == ("refit", "account")
    assert refit.estimated_cpu_seconds == pytest.approx(done.plan.actions[0].cost.cpu_seconds)
    assert refit.actual_cpu_seconds == pytest.approx(
        done.result.components["account"].cpu_seconds, abs=1e-5
    )
    assert [(a.action, a.component) for a in others] == [(None, "ensemble")]
    totals = report.totals()
    assert totals["plan_runs"] == 1
    assert totals["actual_cpu_seconds"] == pytest.approx(plan_run.cpu_seconds)


def test_a_plan_stopped_and_run_again_counts_its_estimate_once(
    ws: Workspace,
    history: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each try of a plan carries the plan's estimate: the totals added them up ("estimated
    8.28 CPU s, actual 4.22" for a plan estimated at 4.1 and run twice)."""
    snap = ws.snapshot(history, name="customers")
    v1 = ws.train(build(), snap, workers=1).version
    window = ws.snapshot(make_window(800, start="2026-03-01", days=20, seed=2), name="recent")
    _ctrl_c_at_the_second_fit(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        ws.apply(v1.ref, window, [Refit("account"), Refit("usage")], approve=True, workers=1)
    monkeypatch.undo()
    (plan,) = ws.catalog.list_plans("churn")
    done = ws.run_plan(plan.id, approve=True, workers=1)
    totals = cost_report(ws.catalog, "churn").totals()
    assert (totals["plan_runs"], totals["plans"]) == (2, 1)
    assert totals["estimated_cpu_seconds"] == pytest.approx(done.estimated_cpu_seconds)
    code, out, err = run_cli(capsys, "costs", "--system", "churn", "--home", str(ws.home))
    assert code == 0, err
    assert "(2 runs of 1 plan(s): a plan run again after a stop is estimated once" in out


def test_regrow_costs_prints_the_runs_the_plan_estimates_and_the_totals(
    ws: Workspace, history: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    snap = ws.snapshot(history, name="customers")
    v1 = ws.train(build(), snap, workers=1).version
    window = ws.snapshot(make_window(800, start="2026-03-01", days=20, seed=2), name="recent")
    ws.apply(v1.ref, window, [Refit("account")], approve=True, workers=1)
    _priced(ws)
    code, out, err = run_cli(capsys, "costs", "--system", "churn", "--home", str(ws.home))
    assert code == 0, err
    assert "EUR" in out
    assert "train" in out
    assert "plan" in out
    assert "estimated vs actual" in out
    assert "total: 2 run(s), 6 component(s) trained" in out
    assert "plan runs: estimated" in out


def test_regrow_costs_json_and_since(
    ws: Workspace, history: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    snap = ws.snapshot(history, name="customers")
    ws.train(build(), snap, workers=1)
    second = ws.train(build(c=0.1), snap, workers=1)
    home = ("--home", str(ws.home))
    code, out, err = run_cli(capsys, "costs", "--system", "churn", "--json", *home)
    assert code == 0, err
    data = json.loads(out)
    assert [r["kind"] for r in data["runs"]] == ["train", "train"]
    assert data["currency"] is None
    assert data["totals"]["runs"] == 2
    assert data["totals"]["cpu_seconds"] == pytest.approx(
        sum(r["cpu_seconds"] for r in data["runs"])
    )
    assert data["totals"]["money"] is None
    # --since keeps the runs started at or after it
    since = second.run.started_at.isoformat()
    code, out, err = run_cli(
        capsys, "costs", "--system", "churn", "--since", since, "--json", *home
    )
    assert code == 0, err
    assert [r["run"] for r in json.loads(out)["runs"]] == [second.run.id]
    until = (second.run.started_at - timedelta(microseconds=1)).isoformat()
    code, out, _ = run_cli(capsys, "costs", "--system", "churn", "--until", until, "--json", *home)
    assert [r["run"] for r in json.loads(out)["runs"]] != [second.run.id]
    assert len(json.loads(out)["runs"]) == 1
    code, out, _ = run_cli(capsys, "costs", "--system", "churn", "--since", "1h", *home)
    assert code == 0
    assert "total: 2 run(s)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--system", "churnn"], "churnn"),
        (["--system", "churn", "--since", "yesterday"], "cannot read --since 'yesterday'"),
        (["--system", "churn", "--since", "2099-01-01"], "is not before --until"),
    ],
)
def test_regrow_costs_errors_name_the_value_without_a_traceback(
    ws: Workspace, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    _old_run(ws)
    code, out, err = run_cli(capsys, "costs", *args, "--home", str(ws.home))
    assert code == 2
    assert message in err
    assert "hint:" in err
    assert "Traceback" not in out + err


def test_regrow_costs_without_runs_says_so(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    _old_run(ws)
    home = ("--home", str(ws.home))
    code, out, _ = run_cli(capsys, "costs", "--system", "churn", "--until", "2020-01-01", *home)
    assert code == 0
    assert "churn: no run started from the first run to 2020-01-01 00:00:00 UTC" in out


def test_the_watch_costs_count_a_run_steps_cpu_beyond_what_the_run_fitted(
    ws: Workspace, history: pd.DataFrame
) -> None:
    """A trial: `regrow costs` "in all" was below the cycles' own CPU by the run step's
    reading and recording, which the run's row (its fitted components) does not count and
    the watch line subtracted with the rest of the step."""
    ws.train(build(), ws.snapshot(history, name="customers"), workers=1)
    watches = ws.catalog.watches
    lease = watches.acquire("churn", holder="w", seconds=60)
    cycle = watches.start_cycle("churn", "champion", holder=lease.holder, window_key="day-1")
    body = {
        "cost": {"cpu_seconds": 3.0, "wall_seconds": 3.5},
        "step_cpu_seconds": {"monitor": 1.5, "run": 1.2, "evaluate": 0.2},
        "run": {"id": "r", "candidate": "churn:v2", "actual_cpu_seconds": 0.4},
    }
    watches.finish(cycle.id, holder=lease.holder, state="done", body=body)
    watch = cost_report(ws.catalog, "churn").watch
    assert watch is not None
    # the 0.4 CPU s the run fitted is in the run's own row: the rest of the cycle is here
    assert watch.cpu_seconds == pytest.approx(2.6)
    assert watch.steps["run (besides fitting)"] == pytest.approx(0.8)
    assert sum(watch.steps.values()) == pytest.approx(2.6, abs=1e-3)
