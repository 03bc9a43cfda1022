"""The cost model's estimates: a run on a handful of rows must not set the rate of big ones."""

from __future__ import annotations

import statistics
from pathlib import Path

import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from regrow import Ensemble, Member, System, Transform, Workspace
from regrow.demo import make_window
from regrow.plan.actions import FullRetrain, Refit
from regrow.plan.costs import CostModel, learned_costs, prior_rate

GBM = "sklearn.ensemble.HistGradientBoostingClassifier"


def build() -> System:
    return System(
        "churn",
        target="churned",
        components=[
            Transform("scaled", StandardScaler(), inputs=["sessions_per_week", "support_calls"]),
            Member("linear", LogisticRegression(), inputs=["tenure_months", "monthly_fee"]),
            Member("gbm", HistGradientBoostingClassifier(max_iter=50), inputs=["scaled"]),
            Member(
                "forest",
                RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0),
                inputs=["tenure_months", "scaled"],
            ),
            Ensemble("ensemble", weights={"linear": 1, "gbm": 1, "forest": 1}),
        ],
    )


def test_a_three_row_training_run_leaves_the_estimate_of_a_normal_retrain_alone(
    tmp_path: Path,
) -> None:
    # A user trial: 1.51 CPU s estimated for a plan after an 8k-row training run, 238.79 once
    # the system had also been trained on 3 rows (their CPU, mostly set-up, read as per row).
    history = make_window(3000, start="2026-01-01", days=60, seed=1)
    with Workspace.init(tmp_path / "ws") as ws:
        system = build()
        ws.train(system, ws.snapshot(history, name="customers"))
        before = FullRetrain("*").estimate(learned_costs(ws.catalog, system), system, 3000)
        tiny = pd.concat([history[history.churned == 0][:2], history[history.churned == 1][:1]])
        ws.train(system, ws.snapshot(tiny, name="tiny"))
        costs = learned_costs(ws.catalog, system)
        after = FullRetrain("*").estimate(costs, system, 3000)
        assert costs.observations("gbm") == 2  # the tiny run is in the history
        assert before.cpu_seconds / 1.5 < after.cpu_seconds < before.cpu_seconds * 1.5
        refit = Refit("gbm").estimate(costs, system, 3000)
        assert refit.basis == (
            "1 earlier fit run(s) of gbm with these parameters (1 more on under 300 rows left out)"
        )


def test_the_trials_history_estimates_a_full_size_fit_from_the_full_size_run() -> None:
    # the trial's HistGradientBoosting member: 4.87 CPU s on 8,000 rows, 0.30 on 3
    model = CostModel()
    model.observe("gbm", GBM, "fit", rows=8000, cpu_seconds=4.868)
    before = model.estimate("gbm", GBM, "fit", rows=8000).cpu_seconds
    model.observe("gbm", GBM, "fit", rows=3, cpu_seconds=0.299)
    after = model.estimate("gbm", GBM, "fit", rows=8000)
    assert after.cpu_seconds == pytest.approx(before, rel=1e-9)
    assert after.basis == "1 earlier fit run(s) of gbm (1 more on under 800 rows left out)"
    # many small runs do not outvote one of the size estimated either
    for _ in range(20):
        model.observe("gbm", GBM, "fit", rows=50, cpu_seconds=0.3)
    assert model.estimate("gbm", GBM, "fit", rows=8000).cpu_seconds == pytest.approx(before)


def test_only_tiny_runs_leave_an_estimate_near_the_prior_not_their_rate_times_the_rows() -> None:
    model = CostModel()
    model.observe("gbm", GBM, "fit", rows=3, cpu_seconds=0.299)
    est = model.estimate("gbm", GBM, "fit", rows=8000)
    naive = (0.299 - 0.02) / 3 * 8000  # 744 s: the 3 rows' rate
    assert est.cpu_seconds < 0.01 * naive
    assert prior_rate(GBM) < est.rate < 10 * prior_rate(GBM)  # the prior, nudged up
    assert est.basis == "1 earlier fit run(s) of gbm, all on under 800 rows: mostly the prior"
    # twenty such runs are worth no more than the largest of them
    for _ in range(20):
        model.observe("gbm", GBM, "fit", rows=3, cpu_seconds=0.299)
    assert model.estimate("gbm", GBM, "fit", rows=8000).cpu_seconds == pytest.approx(
        est.cpu_seconds
    )
    # ... and they are whole runs for an estimate of their own size
    assert model.estimate("gbm", GBM, "fit", rows=3).cpu_seconds == pytest.approx(
        0.02 + 3 * ((0.299 - 0.02) / 3 * 21 + prior_rate(GBM)) / 22
    )


@pytest.mark.parametrize(
    "runs",
    [
        [(1000, 0.9), (1200, 1.1), (800, 0.7), (1000, 0.8)],
        [(5000, 3.0), (4000, 2.1)],
        [(400, 0.3), (3000, 2.4), (2500, 1.7)],
    ],
)
def test_runs_of_comparable_size_keep_the_median_of_their_rates(
    runs: list[tuple[int, float]],
) -> None:
    model = CostModel()
    for rows, cpu in runs:
        model.observe("gbm", GBM, "fit", rows=rows, cpu_seconds=cpu)
    median = statistics.median((cpu - 0.02) / rows for rows, cpu in runs)
    rate = (median * len(runs) + prior_rate(GBM)) / (len(runs) + 1)
    est = model.estimate("gbm", GBM, "fit", rows=3000)
    assert est.cpu_seconds == pytest.approx(0.02 + rate * 3000, rel=1e-9)
    assert est.basis == f"{len(runs)} earlier fit run(s) of gbm"


def test_an_update_scaled_from_fits_is_not_scaled_from_a_tiny_fit() -> None:
    model = CostModel()
    model.observe("gbm", GBM, "fit", rows=8000, cpu_seconds=4.868)
    before = model.estimate("gbm", GBM, "continue", rows=8000).cpu_seconds
    model.observe("gbm", GBM, "fit", rows=3, cpu_seconds=0.299)
    after = model.estimate("gbm", GBM, "continue", rows=8000)
    assert after.basis == "fits of gbm, scaled"
    assert after.cpu_seconds == pytest.approx(before, rel=1e-9)
