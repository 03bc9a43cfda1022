"""Labelled performance: values equal scikit-learn's, intervals cover them, groups are right."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, mean_absolute_error, roc_auc_score

from regrow import Ensemble, Member, System, Workspace
from regrow.demo import make_window
from regrow.errors import DataError, SliceError
from regrow.model import FittedSystem
from regrow.monitor.performance import (
    metric_interval,
    performance_report,
    weighted_auc,
    weighted_metric,
)


def _train(tmp: Path, system: System, frame: pd.DataFrame) -> FittedSystem:
    ws = Workspace.init(tmp / "ws")
    snap = ws.snapshot(frame, name="d")
    return ws.load(ws.train(system, snap, workers=1).version.ref)


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> tuple[FittedSystem, pd.DataFrame]:
    system = System(
        "churn",
        target="churned",
        components=[
            Member("account", LogisticRegression(), inputs=["tenure_months", "monthly_fee"]),
            Member("geo", LogisticRegression(), inputs=["distance_km", "network_quality"]),
            Ensemble("ensemble", weights={"account": 1.0, "geo": 1.0}),
        ],
    )
    train = make_window(1500, start="2024-01-01", days=60, seed=1)
    model = _train(tmp_path_factory.mktemp("perf"), system, train)
    return model, make_window(1200, start="2024-03-01", days=28, seed=2)


def test_values_equal_sklearn_for_members_and_system(
    churn: tuple[FittedSystem, pd.DataFrame],
) -> None:
    model, frame = churn
    y = frame["churned"].to_numpy()
    outs = model.member_outputs(frame)
    report = performance_report(model, frame, n_boot=50)
    for member, out in outs.items():
        row = report.get(member)
        assert row.value == pytest.approx(roc_auc_score(y, out[:, 1]), abs=1e-12)
        assert row.low < row.value < row.high
        assert row.n == len(frame)
    system = report.get("churn")
    assert system.kind == "system"
    assert system.value == pytest.approx(roc_auc_score(y, model.predict_proba(frame)[:, 1]))
    for name, fn in [("accuracy", accuracy_score), ("log_loss", log_loss)]:
        row = performance_report(model, frame, metric=name, n_boot=20).get("geo")
        p = outs["geo"]
        expected = fn(y, p.argmax(axis=1)) if name == "accuracy" else fn(y, p)
        assert row.value == pytest.approx(expected, abs=1e-12)


def test_components_of_a_group_are_measured_on_the_same_resamples(
    churn: tuple[FittedSystem, pd.DataFrame],
) -> None:
    # Paired intervals: two members with the same outputs get the same interval in every
    # group (the weights are drawn once per group, not once per component).
    model, frame = churn
    outs = model.member_outputs(frame)
    twins = {**outs, "geo": outs["account"]}
    report = performance_report(
        model, frame, n_boot=50, time_column="ts", outputs=lambda rows: twins
    )
    groups = {(r.scope, r.group) for r in report.rows}
    assert len(groups) > 1
    for scope, group in groups:
        rows = {r.component: r for r in report.rows if (r.scope, r.group) == (scope, group)}
        assert (rows["geo"].low, rows["geo"].high) == (rows["account"].low, rows["account"].high)


def test_bootstrap_interval_matches_the_sampling_spread_of_auc() -> None:
    # the 95% interval is about +-1.96 analytic standard errors (Hanley-McNeil) wide
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    score = rng.normal(size=2000) + y
    value, low, high = metric_interval("roc_auc", y, score, n_boot=400)
    a = value
    n1, n0 = y.sum(), (1 - y).sum()
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = np.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0))
    assert value == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert (high - low) == pytest.approx(2 * 1.96 * se, rel=0.2)


def test_weighted_metrics_equal_sklearn_sample_weights() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    score = np.round(rng.uniform(size=500), 2)  # ties
    w = rng.poisson(1.0, 500).astype(float)
    assert weighted_auc(score, y, w) == pytest.approx(roc_auc_score(y, score, sample_weight=w))
    assert weighted_metric("log_loss", y, score, w) == pytest.approx(
        log_loss(y, score, sample_weight=w)
    )
    values = rng.normal(size=500)
    assert weighted_metric("mae", values, values + score, w) == pytest.approx(
        mean_absolute_error(values, values + score, sample_weight=w)
    )
    multi_y = rng.integers(0, 3, 500)
    proba = rng.dirichlet([1, 1, 1], 500)
    assert weighted_metric("roc_auc", multi_y, proba) == pytest.approx(
        roc_auc_score(multi_y, proba, multi_class="ovr")
    )
    assert weighted_metric("log_loss", multi_y, proba) == pytest.approx(log_loss(multi_y, proba))


def test_slices_and_weekly_windows_partition_rows(
    churn: tuple[FittedSystem, pd.DataFrame],
) -> None:
    model, frame = churn
    slices = {"monthly": "contract == 'monthly'"}
    report = performance_report(model, frame, slices=slices, time_column="ts", freq="W", n_boot=30)
    monthly = frame[frame["contract"] == "monthly"]
    row = report.get("geo", "slice", "monthly")
    assert row.n == len(monthly)
    expected = roc_auc_score(monthly["churned"], model.member_outputs(monthly)["geo"][:, 1])
    assert row.value == pytest.approx(expected)
    windows = [r for r in report.rows if r.scope == "window" and r.component == "geo"]
    assert len(windows) >= 4
    assert sum(r.n for r in windows) == len(frame)
    d = json.loads(json.dumps(report.to_dict()))
    assert d["metric"] == "roc_auc"
    assert d["interval"].startswith("Poisson bootstrap")
    assert len(report.to_frame()) == len(report.rows)


def test_unlabelled_rows_are_counted_not_scored(churn: tuple[FittedSystem, pd.DataFrame]) -> None:
    model, frame = churn
    frame = frame.astype({"churned": "float"})
    frame.loc[:99, "churned"] = np.nan
    report = performance_report(model, frame, n_boot=10)
    assert (report.n_rows, report.n_unlabelled) == (len(frame) - 100, 100)


def test_bad_inputs_raise_clear_errors(churn: tuple[FittedSystem, pd.DataFrame]) -> None:
    model, frame = churn
    with pytest.raises(DataError, match="no target column"):
        performance_report(model, frame.drop(columns="churned"))
    with pytest.raises(SliceError, match="nope"):
        performance_report(model, frame, slices={"nope": "no_such_column > 1"})
    with pytest.raises(DataError, match="not a datetime"):
        performance_report(model, frame, time_column="tenure_months")
    with pytest.raises(DataError, match="never saw"):
        performance_report(model, frame.assign(churned=frame["churned"] + 5))


def test_regression_rmse_per_member(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    frame["y"] = frame["a"] + 0.5 * frame["b"] + rng.normal(size=400) * 0.1
    system = System(
        "reg",
        target="y",
        task="regression",
        components=[Member("m", LinearRegression(), inputs=["a", "b"])],
    )
    model = _train(tmp_path, system, frame)
    report = performance_report(model, frame, n_boot=50)
    pred = model.predict(frame)
    row = report.get("m")
    assert row.metric == "rmse"
    assert row.value == pytest.approx(float(np.sqrt(np.mean((frame["y"] - pred) ** 2))))
    assert row.low < row.value < row.high
