"""What a new user met trying the CLI on a system and data of their own: each test is one thing
a command said wrong (or left out)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from regrow import Ensemble, Member, System, Workspace
from regrow.cli import _app
from regrow.demo import make_window
from regrow.errors import DataError, DataQualityWarning, PolicyError
from regrow.plan.actions import Refit
from regrow.plan.policy import Policy
from regrow.plan_runs import manual_plan
from regrow.testing import run_cli as run


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables and messages as wide as their text, so each is on one line."""
    monkeypatch.setattr(_app.out, "width", 250)
    monkeypatch.setattr(_app.err, "width", 250)


def _trained(path: Path) -> Workspace:
    """A workspace with churn:v1 (two logistic members: they refuse empty cells) trained on
    600 rows with one slice, and a later window ``later`` of 400 rows."""
    system = System("churn", target="churned", components=[
        Member("account", LogisticRegression(), inputs=["tenure_months", "monthly_fee"]),
        Member("geo", LogisticRegression(), inputs=["distance_km", "network_quality"]),
        Ensemble("ensemble", weights={"account": 1, "geo": 1}),
    ])  # fmt: skip
    ws = Workspace.init(path)
    reference = ws.snapshot(make_window(600, start="2026-01-01", days=90, seed=0),
                            name="customers", time_column="ts",
                            slices={"long": "tenure_months > 24"})  # fmt: skip
    ws.train(system, reference)
    ws.snapshot(make_window(400, start="2026-04-01", days=14, seed=1), name="later")
    return ws


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`_trained`, with churn:v2 (geo refitted on ``later``) and a labelled snapshot
    ``holdout`` that defines no slices."""
    path = tmp_path_factory.mktemp("trial-fixes") / "ws"
    with _trained(path) as ws:
        ws.apply("churn:v1", "later", [Refit("geo")], approve=True)
        ws.snapshot(make_window(400, start="2026-05-01", days=14, seed=2), name="holdout")
    return path


# -- 1. Ctrl-C once the run is recorded -------------------------------------------------------


def test_ctrl_c_after_the_run_was_recorded_says_what_it_made_not_to_run_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # it said "interrupted; finished components are kept: run again to resume", and running
    # again said "error: plan ... ran already"
    with _trained(tmp_path / "ws") as ws:
        plan = manual_plan(ws._services(), "churn:v1", "later", [Refit("geo")])

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C while the run's table is printed

    monkeypatch.setattr("regrow.cli.plans.show_run", interrupted)
    h = ("--home", str(tmp_path / "ws"))
    code, out, err = run(capsys, "run", plan.id[:12], "--approve", *h)
    assert code == 130
    assert err.strip() == (
        f"interrupted after the run finished: plan {plan.id[:12]} made churn:v2 "
        f"(`regrow plans show {plan.id[:12]}`)"
    )
    assert "Traceback" not in out + err
    code, out, _ = run(capsys, "plans", "show", plan.id[:12], *h)
    assert "status: executed" in out


def test_ctrl_c_before_the_run_ends_still_says_running_again_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with _trained(tmp_path / "ws") as ws:
        plan = manual_plan(ws._services(), "churn:v1", "later", [Refit("geo")])

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("regrow.plan_runs.execute", interrupted)
    code, _, err = run(capsys, "run", plan.id[:12], "--home", str(tmp_path / "ws"))
    assert code == 130
    assert err.strip() == _app.INTERRUPTED
    # running again says it resumes (it only listed the components it reused)
    monkeypatch.undo()
    code, out, err = run(capsys, "run", plan.id[:12], "--home", str(tmp_path / "ws"))
    assert code == 0, err
    assert f"resuming plan {plan.id[:12]}, interrupted at " in out
    assert "the components its run finished then are reused" in out
    code, out, _ = run(capsys, "run", plan.id[:12], "--home", str(tmp_path / "ws"))
    assert "resuming" not in out  # ran already: refused, and not "resuming"


def test_ctrl_c_while_the_run_is_recorded_waits_till_the_plan_says_what_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real SIGINT in the write that marks the plan executed left it "running" for ever:
    # running it again was refused ("is 'running', not proposed or failed"), and nothing
    # said it had made churn:v2.
    ws = _trained(tmp_path / "ws")
    plan = manual_plan(ws._services(), "churn:v1", "later", [Refit("geo")])
    move = ws.catalog.move_plan

    def pressed_while_recording(plan_id: str, **kwargs: Any) -> Any:
        if kwargs["status"] == "executed":
            signal.raise_signal(signal.SIGINT)
        return move(plan_id, **kwargs)

    monkeypatch.setattr(ws.catalog, "move_plan", pressed_while_recording)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            ws.run_plan(plan.id)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handed back
    finally:
        signal.signal(signal.SIGINT, previous)
    record = ws.catalog.get_plan(plan.id)
    assert record.status == "executed"
    assert ws.catalog.get_system_version(record.result_version_id or "").ref == "churn:v2"
    (experiment,) = ws.catalog.experiments.list(system="churn")
    assert experiment.candidate_id == record.result_version_id
    ws.close()


# -- 2. predict counts rows as the other commands do ------------------------------------------


def test_predict_counts_rows_from_0_like_monitor_and_says_so(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # it said "rows 4, 11" for the cells `regrow monitor` calls rows 3, 10
    rows = make_window(20, start="2026-06-01", days=5, seed=3)
    rows.loc[[3, 10], "monthly_fee"] = np.nan
    source = tmp_path / "gaps.csv"
    rows.to_csv(source, index=False)
    code, _, err = run(capsys, "predict", "churn:v1", str(source), "-o", str(tmp_path / "o.csv"),
                       "--home", str(home))  # fmt: skip
    assert code == 2
    assert (
        "cannot score rows with empty values (rows count from 0): 'monthly_fee' in 2 row(s) "
        "(rows 3, 10)"
    ) in err
    with Workspace.open(home) as ws:
        check = ws.monitor("churn:v1", rows, record=False).quality
    assert check is not None
    (found,) = [f for f in check.findings if f.column == "monthly_fee"]
    assert found.examples == (3, 10)  # what monitor's table shows


# -- 3. a window too small for the multivariate checks is not judged ---------------------------


def test_a_window_too_small_for_every_multivariate_check_is_not_judged_not_undrifted(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the stored summary said multivariate_drifted: false for 5 rows
    with Workspace.open(home) as ws:
        result = ws.monitor("churn:v1", make_window(5, start="2026-06-01", days=1, seed=4))
    assert result.signals is not None
    assert [m.rows for m in result.signals.multivariate if m.chunk is None]  # they ran
    assert result.multivariate_drifted is None
    assert result.record is not None
    assert result.record.summary["multivariate_drifted"] is None
    _, out, _ = run(capsys, "monitor", "list", "--home", str(home))
    (row,) = [line for line in out.splitlines() if result.record.id[:12] in line]
    assert " too few " in row


def test_an_external_models_window_too_small_for_the_checks_is_not_judged() -> None:
    from regrow.monitor.external import monitor_predictions

    reference, window = _predictions(400, 0), _predictions(5, 1)
    result = monitor_predictions(reference, window, prediction="pred", score="p1", target="y")
    assert result.to_dict()["summary"]["multivariate_drifted"] is None


def _predictions(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(0, 1, n), rng.normal(0, 1, n)
    p = 1 / (1 + np.exp(-(x1 + x2)))
    return pd.DataFrame({"x1": x1, "x2": x2, "p1": p, "pred": (p >= 0.5).astype(int),
                         "y": (rng.uniform(size=n) < p).astype(int)})  # fmt: skip


# -- 5. wording ---------------------------------------------------------------------------------


def test_one_slice_taken_from_the_training_snapshot_is_named_in_the_singular(home: Path) -> None:
    # "slices long are those of the snapshot ..."
    with Workspace.open(home) as ws:
        _, comparison = ws.evaluate("churn:v2", "holdout", baseline="churn:v1")
    assert comparison.notes[0] == (
        "slice long comes from the snapshot churn:v1 was trained on (the evaluation snapshot "
        "defines none)"
    )


@pytest.mark.parametrize("problem", ["empty cells", "missing column"])
def test_evaluate_refuses_rows_it_cannot_score_speaking_of_the_snapshot_and_evaluate(
    home: Path, problem: str
) -> None:
    # it spoke of "the window" and of what "the plan" does
    rows = make_window(400, start="2026-05-01", days=14, seed=5)
    name = f"gappy-{problem.split()[0]}"
    with Workspace.open(home) as ws:
        if problem == "empty cells":
            rows.loc[:99, "monthly_fee"] = np.nan
            with pytest.warns(DataQualityWarning, match="monthly_fee"):
                ws.snapshot(rows, name=name)
        else:
            ws.snapshot(rows.drop(columns="monthly_fee"), name=name)
        with pytest.raises(DataError) as info:
            ws.evaluate("churn:v1", name)
    said = f"{info.value.message}\n{info.value.hint}"
    assert "window" not in said
    assert "plan" not in said
    assert "evaluat" in said
    if problem == "empty cells":
        assert "churn:v1 cannot score 100 of the snapshot's 400 rows (25.0%; an evaluation " \
               "leaves out at most 5%): 'monthly_fee'" in said  # fmt: skip
    else:
        assert "'monthly_fee': the column is missing from the snapshot" in said


def test_an_unknown_alert_metric_close_to_a_known_one_gets_the_list_in_the_hint() -> None:
    # the hint said "name a metric of the list" with no list
    with pytest.raises(PolicyError) as info:
        Policy.default().monitoring_with({"rocauc": {"min": 0.8}})
    assert "did you mean 'roc_auc'?" in info.value.message
    assert info.value.hint is not None
    assert "classification: roc_auc, accuracy, log_loss" in info.value.hint
    assert "regression: rmse, mae" in info.value.hint


def test_a_score_that_is_no_number_is_named_by_column_row_and_value() -> None:
    # "2 rows have a missing or non-numeric score (first at row 1)"
    from regrow.monitor.external import monitor_predictions

    reference, window = _predictions(400, 0), _predictions(200, 1)
    window["p1"] = window["p1"].astype(str)  # as a CSV column with text in it reads
    window.loc[4, "p1"], window.loc[9, "p1"] = "abc", None
    with pytest.raises(DataError) as info:
        monitor_predictions(reference, window, prediction="pred", score="p1", target="y")
    assert info.value.message == (
        "2 row(s) of the window have a missing or non-numeric score (rows count from 0): "
        "'p1' in 2 row(s) (the first, row 4: 'abc')"
    )


# -- 6. experiments list names the metric of each gain ----------------------------------------


def test_experiments_list_labels_each_gain_with_its_metric(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # "+0.0777" (log_loss, planning) next to "+0.188" (roc_auc, evaluation), unlabelled
    with Workspace.open(home) as ws:
        v1, v2 = (ws.catalog.get_system_version(r).id for r in ("churn:v1", "churn:v2"))
        ws.catalog.experiments.add(
            kind="rollout", system="churn", subject_id="rollout-gains", contingency="keep v1",
            version_id=v1, candidate_id=v2,
            expected={"gain": 0.0777, "gain_interval": [0.05, 0.1], "loss": "log_loss"},
        )  # fmt: skip
        ws.evaluate("churn:v2", "holdout", baseline="churn:v1")  # its actual
    code, out, err = run(capsys, "experiments", "list", "--kind", "rollout", "--home", str(home))
    assert code == 0, err
    assert "+0.0777 log_loss" in out
    assert " roc_auc" in out.split("+0.0777 log_loss")[1].splitlines()[0]


def test_a_window_given_as_a_file_is_stored_with_the_files_path_as_its_source(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `regrow snapshot show` of the stored window said "source: pyarrow.Table"
    path = tmp_path / "w.parquet"
    make_window(50, start="2026-06-01", days=5, seed=6).to_parquet(path)
    with Workspace.open(home) as ws:
        result = ws.monitor("churn:v1", path)
        info = ws.catalog.describe_snapshot(result.window.id)
    assert info["source"] == str(path.resolve())
