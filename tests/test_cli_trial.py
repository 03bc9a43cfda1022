"""What a new user met trying monitor, plan, run, evaluate and promote on messy data of their
own: each test is one thing the CLI printed that read wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

from regrow import Ensemble, Member, System, Workspace
from regrow.cli import _app
from regrow.demo import make_window
from regrow.errors import RunError
from regrow.testing import run_cli as run


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables as wide as their rows, so a cell's text is on one line."""
    monkeypatch.setattr(_app.out, "width", 250)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trial") / "ws"
    system = System("churn", target="churned", components=[
        Member("account", LogisticRegression(), inputs=["tenure_months", "monthly_fee"]),
        Member("geo", LogisticRegression(), inputs=["distance_km", "network_quality"]),
        Ensemble("ensemble", weights={"account": 1, "geo": 1}),
    ])  # fmt: skip
    with Workspace.init(path) as ws:
        reference = ws.snapshot(make_window(600, start="2026-01-01", days=90, seed=0),
                                name="customers", time_column="ts")  # fmt: skip
        ws.train(system, reference)
    later = make_window(400, start="2026-04-01", days=14, seed=1, expanded=True)
    later.head(5).to_csv(path.parent / "five.csv", index=False)
    later.drop(columns=["churned"]).to_csv(path.parent / "unlabelled.csv", index=False)
    other = make_window(400, start="2026-05-01", days=14, seed=2, expanded=True)
    # labels on 60 rows: too few for the probes, so broad drift escalates before them
    few = other.assign(churned=other["churned"].where(other.index < 60))
    few.to_csv(path.parent / "few-labels.csv", index=False)
    more = make_window(400, start="2026-06-01", days=14, seed=3, expanded=True)
    more.assign(churned=more["churned"].where(more.index < 60)).to_csv(
        path.parent / "few-labels2.csv", index=False
    )
    (path.parent / "eager.yaml").write_text("escalation:\n  max_drifted_share: 0.01\n")
    return path


def _shown(capsys: pytest.CaptureFixture[str], report: dict[str, object]) -> str:
    from regrow.cli._monitor_show import show_report

    capsys.readouterr()
    show_report(report)
    return capsys.readouterr().out


def test_the_verdict_line_names_columns_and_members_not_a_python_list(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # it read "drifted: ['errors', 'latency_ms']; ...; members to update: ['net']"
    summary = {"rows": 2000, "drifted": ["errors", "latency_ms"], "candidates": ["net"],
               "multivariate_drifted": True, "alerts": 2}  # fmt: skip
    out = _shown(capsys, {"summary": summary})
    assert "drifted: errors, latency_ms; multivariate drift: yes" in out
    assert "members to update: net" in out
    assert "['" not in out
    sliced = _shown(capsys, {"summary": {**summary, "drifted_in_slices": {"north": ["age"]}}})
    assert "drifted: errors, latency_ms (in slice north: age only)" in sliced
    none = _shown(capsys, {"summary": {**summary, "drifted": [], "candidates": []}})
    assert "drifted: none;" in none
    assert "members to update: none" in none


@pytest.mark.parametrize(
    ("outside", "said"),
    [
        (["accuracy"], "the realised accuracy falls outside its estimated band:"),
        (["f1", "accuracy"], "the realised f1, accuracy fall outside their estimated bands:"),
    ],
)
def test_one_metric_outside_its_band_is_said_in_the_singular(
    capsys: pytest.CaptureFixture[str], outside: list[str], said: str
) -> None:
    # it read "the realised accuracy fall outside their estimated bands"
    warnings = [f"realised {m} 0.5 lies outside the estimated band" for m in outside]
    estimates = {"method": "cbpe", "rows": [{"chunk": None, "metric": "accuracy", "value": 0.7,
                 "low": 0.6, "high": 0.8, "reference": 0.7, "realised": 0.5}]}  # fmt: skip
    report = {"estimates": estimates,
              "calibration": {"calibration_drift": True, "warnings": warnings}}  # fmt: skip
    assert said in _shown(capsys, report)


def test_monitor_list_says_too_few_for_a_window_too_small_to_judge(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    # `regrow monitor` said "multivariate drift: 5 rows: too few to tell"; the list said "no"
    code, out, err = run(capsys, "monitor", "--version", "churn:v1", "--window",
                         str(home.parent / "five.csv"), "--home", str(home))  # fmt: skip
    assert code == 0, err
    assert "multivariate drift: 5 rows: too few to tell" in out
    code, out, err = run(capsys, "monitor", "list", "--home", str(home))
    assert code == 0, err
    row = next(line for line in out.splitlines() if "│ 5 " in line)
    assert [c.strip() for c in row.split("│")][6] == "too few"


def test_a_plan_that_failed_before_fitting_shows_its_error_not_dashes(
    capsys: pytest.CaptureFixture[str], home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a run that fails before fitting anything (here: the runner refuses at once);
    # `plans show` printed "outcome: -; CPU - s (estimated - s); error: ..."
    code, out, err = run(capsys, "plan", "--version", "churn:v1", "--window",
                         str(home.parent / "few-labels.csv"), "--policy",
                         str(home.parent / "eager.yaml"), "--home", str(home))  # fmt: skip
    assert code == 0, err
    assert "escalated to a full retrain" in out
    plan_id = out.split()[1]

    def refused(*args: object, **kwargs: object) -> None:
        raise RunError("the runner refused", hint="none")

    monkeypatch.setattr("regrow.plan_runs.execute", refused)
    code, _, err = run(capsys, "run", plan_id, "--approve", "--home", str(home))
    assert code == 2, err
    code, out, err = run(capsys, "plans", "show", plan_id, "--home", str(home))
    assert code == 0, err
    outcome = next(line for line in out.splitlines() if line.startswith("outcome:"))
    assert outcome.startswith("outcome: no version was made; error: ")
    assert " - s" not in outcome


def test_an_interrupted_plan_that_needs_approval_resumes_with_approve(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    # the status line said only "`regrow run PLAN` resumes": refused without --approve
    with Workspace.open(home) as ws:
        plan = ws.plan("churn:v1", str(home.parent / "few-labels2.csv"),
                       policy=home.parent / "eager.yaml")  # fmt: skip
        assert plan.needs_approval
        # what a run stopped by Ctrl-C records (regrow.plan_runs)
        ws.catalog.move_plan(plan.id, expected="proposed", status="failed",
                             outcome={"error": "interrupted", "interrupted": True})  # fmt: skip
    code, out, err = run(capsys, "plans", "show", plan.id, "--home", str(home))
    assert code == 0, err
    assert f"`regrow run {plan.id[:12]} --approve` resumes" in out
