"""Workspace.monitor: drift against each member's own reference, impact, stored reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from regrow import Ensemble, Member, System, Workspace
from regrow.demo import make_window
from regrow.errors import PlanError


def build() -> System:
    return System(
        "churn",
        target="churned",
        components=[
            Member("account", LogisticRegression(), inputs=["tenure_months", "monthly_fee"]),
            Member("geo", LogisticRegression(), inputs=["distance_km", "network_quality"]),
            Ensemble("ensemble", weights={"account": 1, "geo": 1}),
        ],
    )


@pytest.fixture
def ws(tmp_path: Path):  # type: ignore[no-untyped-def]
    with Workspace.init(tmp_path / "ws") as workspace:
        yield workspace


def test_twenty_windows_without_drift_name_no_component(ws: Workspace) -> None:
    reference = ws.snapshot(make_window(4000, start="2026-01-01", days=90, seed=0), name="ref")
    version = ws.train(build(), reference).version
    for i in range(20):
        window = ws.snapshot(
            make_window(800, start="2026-04-01", days=7, seed=100 + i), name=f"w{i}"
        )
        result = ws.monitor(version.ref, window)
        assert result.candidates == [], (i, result.summary())
    assert len(ws.catalog.list_monitor_reports(version.id)) == 20


def test_drift_in_one_group_names_only_its_member(ws: Workspace) -> None:
    reference = ws.snapshot(make_window(4000, start="2026-01-01", days=90, seed=0), name="ref")
    version = ws.train(build(), reference).version
    window = ws.snapshot(
        make_window(1500, start="2026-07-01", days=30, seed=1, expanded=True), name="later"
    )
    result = ws.monitor(version.ref, window)
    assert set(result.drifted_columns) == {"distance_km", "network_quality"}
    assert result.candidates == ["geo"]
    stored = ws.catalog.get_monitor_report(result.record.id)  # type: ignore[union-attr]
    assert stored.summary["candidates"] == ["geo"]
    assert stored.report["impacts"]


def test_after_a_partial_update_each_member_is_compared_with_its_own_data(
    ws: Workspace,
) -> None:
    reference = ws.snapshot(make_window(4000, start="2026-01-01", days=90, seed=0), name="ref")
    v1 = ws.train(build(), reference).version
    later = make_window(3000, start="2026-07-01", days=30, seed=2, expanded=True)
    v2 = ws.update(v1.ref, ws.snapshot(later.iloc[:2000], name="recent"), components=["geo"])
    window = ws.snapshot(later.iloc[2000:], name="window")
    result = ws.monitor(v2.version.ref, window)
    # geo now knows the expanded regime, and account never read geography: nothing drifted.
    assert result.drifted_columns == []
    assert result.candidates == []


def test_a_window_of_rows_is_stored_only_once_the_check_succeeded(ws: Workspace) -> None:
    reference = ws.snapshot(make_window(2000, start="2026-01-01", days=90, seed=0), name="ref")
    version = ws.train(build(), reference).version
    later = make_window(1000, start="2026-07-01", days=30, seed=1, expanded=True)
    with pytest.raises(PlanError, match="'monthly_fee'"):
        ws.plan(version.ref, later.drop(columns=["monthly_fee"]))
    assert ws.catalog.list_snapshots("churn-window") == []
    assert ws.catalog.list_monitor_reports() == []
    result = ws.monitor(version.ref, later.drop(columns=["monthly_fee"]))
    assert [f.kind for f in result.quality.findings] == ["missing"]  # type: ignore[union-attr]
    (stored,) = ws.catalog.list_snapshots("churn-window")
    assert result.window == stored
    assert result.record is not None
    assert result.record.snapshot_id == stored.id


def test_a_plan_that_set_rows_aside_trains_on_the_usable_labelled_rows(ws: Workspace) -> None:
    reference = ws.snapshot(make_window(2000, start="2026-01-01", days=90, seed=0), name="ref")
    version = ws.train(build(), reference).version
    later = make_window(1200, start="2026-07-01", days=30, seed=1, expanded=True)
    later.loc[[3, 30, 300], "distance_km"] = np.nan  # geo, a LogisticRegression, cannot take them
    later["churned"] = later["churned"].astype(float)
    later.loc[[7], "churned"] = np.nan  # nor can any update learn from a row without a label
    plan = ws.plan(version.ref, later)
    assert plan.data["set_aside_rows"] == 3
    assert plan.rationale[0].startswith("set aside 3 of 1,200 rows")
    assert "geo" in plan.components
    ran = ws.run_plan(plan)
    trained_on = ws.catalog.get_snapshot(ran.result.run.params["snapshot"])
    assert trained_on.name == "churn-window-usable"
    assert trained_on.rows == 1196
    assert trained_on.parent_ids == (plan.window,)


def test_the_monitor_result_holds_every_signal_and_estimates_on_held_out_rows(
    ws: Workspace,
) -> None:
    from regrow.monitor.chunks import Chunking

    reference = ws.snapshot(make_window(3000, start="2026-01-01", days=90, seed=0), name="ref")
    version = ws.train(build(), reference).version
    later = make_window(1200, start="2026-07-01", days=30, seed=1, expanded=True)
    result = ws.monitor(version.ref, later.drop(columns="churned"), chunking=Chunking(count=3))
    assert any("in-sample" in n for n in result.notes)
    assert result.signals is not None
    assert result.signals.estimates is not None
    assert {r.chunk for r in result.signals.estimates.rows} == {
        None, "rows 0-399", "rows 400-799", "rows 800-1199"}  # fmt: skip
    assert result.multivariate_drifted
    assert len(result.chunk_drift) == 3
    assert result.to_dict()["fdr"]
    stored = ws.catalog.get_monitor_report(result.record.id)  # type: ignore[union-attr]
    assert stored.summary["alerts"] == len(stored.report["alerts"]) > 0
    holdout = ws.snapshot(make_window(1500, start="2026-04-01", days=30, seed=5), name="holdout")
    ws.evaluate(version.ref, holdout)
    again = ws.monitor(version.ref, later.drop(columns="churned"))
    assert any("held-out rows of snapshot holdout" in n for n in again.notes)
    assert again.signals is not None
    assert again.signals.estimates is not None
    assert again.signals.estimates.reference_rows == 1500
