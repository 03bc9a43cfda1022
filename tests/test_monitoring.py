"""Workspace.monitor: drift against each member's own reference, impact, stored reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from regrow import Ensemble, Member, System, Workspace
from regrow.demo import make_window
from regrow.errors import DataQualityWarning, PlanError


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


def test_an_evaluation_snapshot_with_a_null_still_serves_as_the_estimates_reference(
    ws: Workspace,
) -> None:
    """A user's trial: one null in a column a LogisticRegression member reads, in the rows a
    version was evaluated on, made every later monitor (and `regrow watch` cycle) fail with
    the member's NaN error; those rows are set aside, as they are in a window."""
    reference = ws.snapshot(make_window(3000, start="2026-01-01", days=90, seed=0), name="ref")
    version = ws.train(build(), reference).version
    holdout = make_window(1500, start="2026-04-01", days=30, seed=5)
    holdout.loc[3, "monthly_fee"] = np.nan
    holdout.loc[7, "churned"] = np.nan
    with pytest.warns(DataQualityWarning, match="1 null"):
        stored = ws.snapshot(holdout, name="holdout")
    ws.evaluate(version.ref, stored)
    later = make_window(1200, start="2026-07-01", days=30, seed=1)
    result = ws.monitor(version.ref, later.drop(columns="churned"))
    assert any("held-out rows of snapshot holdout" in n for n in result.notes)
    assert result.signals is not None
    assert result.signals.estimates is not None
    assert result.signals.estimates.reference_rows == 1498


def _shared_input(rows: int, seed: int, moved: bool) -> pd.DataFrame:
    """Two members share ``s``; in the moved world ``s`` shifts and alpha's effect flips."""
    rng = np.random.default_rng(seed)
    f = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows),
                      "s": rng.normal(2.0 if moved else 0.0, 1.0, rows)})  # fmt: skip
    f["y"] = (-2 if moved else 2) * f.a + 0.3 * f.s**2 + f.b + 0.3 * rng.normal(size=rows)
    return f


def test_each_members_impact_is_measured_against_the_data_it_was_trained_on(
    tmp_path: Path,
) -> None:
    # After alpha was refitted on the moved world, s has drifted from beta's training data
    # (the old world) but not from alpha's. Impact drew every drifted column back from one
    # reference, the version's own (the window alpha learnt from): beta's loss, raised by
    # the shift of s, read as unchanged, and beta was no candidate.
    from regrow.plan.actions import Refit

    system = System("sys", target="y", task="regression", components=[
        Member("alpha", LinearRegression(), inputs=["a", "s"]),
        Member("beta", LinearRegression(), inputs=["b", "s"]),
        Ensemble("combine", weights={"alpha": 1.0, "beta": 1.0}, method="stack"),
    ])  # fmt: skip
    with Workspace.init(tmp_path / "ws") as ws:
        v1 = ws.train(system, ws.snapshot(_shared_input(3000, 1, False), name="old"))
        ws.snapshot(_shared_input(1500, 2, True), name="moved")
        v2 = ws.apply(v1.version.ref, "moved", [Refit("alpha")], approve=True).result.version
        later = ws.snapshot(_shared_input(1500, 4, True), name="later")
        result = ws.monitor(v2.ref, later.id, record=False)
    impacts = {i.component: i for i in result.impacts}
    assert impacts["beta"].candidate
    assert impacts["beta"].impact > 1.0
    assert not impacts["alpha"].candidate


def test_drift_only_a_slice_shows_is_summarised_apart_from_the_whole_windows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # "drifted" listed a column that drifted in one slice alone, and the alerts did not
    from tests.test_cli_monitor import _shown

    def frame(rows: int, seed: int, shift: float) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        group = rng.choice(["a", "b"], rows, p=[0.01, 0.99])
        f = pd.DataFrame({"x": rng.normal(size=rows), "g": group})
        f.loc[f["g"] == "a", "x"] += shift
        f["y"] = f["x"] + 0.1 * rng.normal(size=rows)
        return f

    system = System("sys", target="y", task="regression",
                    components=[Member("m", LinearRegression(), inputs=["x"])])  # fmt: skip
    with Workspace.init(tmp_path / "ws") as ws:
        version = ws.train(system, ws.snapshot(frame(8000, 1, 0.0), name="ref",
                                               slices={"a": "g == 'a'"})).version  # fmt: skip
        window = ws.snapshot(frame(3000, 8, 2.0), name="w", slices={"a": "g == 'a'"})
        summary = ws.monitor(version.ref, window.id, record=False).summary()
    assert summary["drifted"] == []
    assert summary["drifted_in_slices"] == {"a": ["x"]}
    assert "drifted: none (in slice a: x only)" in _shown(capsys, {"summary": summary})
