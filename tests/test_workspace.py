"""End to end through the Python API: train, reuse, partial update, status, lineage, aliases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from regrow import Ensemble, Member, System, Transform, Workspace
from regrow.demo import make_window
from regrow.errors import (
    AliasConflict,
    ConfigError,
    DataError,
    RunError,
    SystemSpecError,
    VersionNotFound,
    WorkspaceNotFound,
)


def build(c_geo: float = 1.0) -> System:
    return System(
        "churn",
        target="churned",
        components=[
            Transform(
                "usage_scaled", StandardScaler(), inputs=["sessions_per_week", "support_calls"]
            ),
            Transform("region_onehot", OneHotEncoder(sparse_output=False), inputs=["region"]),
            Member("account", LogisticRegression(), inputs=["tenure_months", "monthly_fee"]),
            Member("usage", LogisticRegression(), inputs=["usage_scaled"]),
            Member(
                "geo",
                LogisticRegression(C=c_geo),
                inputs=["distance_km", "network_quality", "region_onehot"],
            ),
            Ensemble("ensemble", weights={"account": 1, "usage": 1, "geo": 1}),
        ],
    )


@pytest.fixture
def ws(tmp_path: Path):  # type: ignore[no-untyped-def]
    with Workspace.init(tmp_path / "ws") as workspace:
        yield workspace


@pytest.fixture
def history() -> pd.DataFrame:
    return make_window(3000, start="2026-01-01", days=90, seed=1)


def test_rerun_with_nothing_changed_trains_nothing(ws: Workspace, history: pd.DataFrame) -> None:
    snap = ws.snapshot(history, name="customers")
    first = ws.train(build(), snap, workers=1)
    assert first.trained == ["usage_scaled", "region_onehot", "account", "usage", "geo", "ensemble"]
    again = ws.train(build(), snap, workers=1)
    assert again.trained == []
    assert not again.created_version
    assert again.version.id == first.version.id


def test_parameter_change_retrains_only_that_member_and_what_depends_on_it(
    ws: Workspace, history: pd.DataFrame
) -> None:
    snap = ws.snapshot(history, name="customers")
    v1 = ws.train(build(), snap, workers=1).version
    v2 = ws.train(build(c_geo=0.1), snap, workers=1)
    assert v2.trained == ["geo", "ensemble"]
    assert v2.components["geo"].causes == ("parameters",)
    assert v2.components["ensemble"].causes == ("upstream",)
    shared = {n for n in v1.manifest if v1.manifest[n] == v2.version.manifest[n]}
    assert shared == {"usage_scaled", "region_onehot", "account", "usage"}
    assert v2.version.parent_id == v1.id


def test_changing_one_feature_group_retrains_only_its_readers(
    ws: Workspace, history: pd.DataFrame
) -> None:
    snap = ws.snapshot(history, name="customers")
    ws.train(build(), snap, workers=1)
    moved = history.assign(distance_km=history["distance_km"] * 1.5)
    result = ws.train(build(), ws.snapshot(moved, name="customers"), workers=1)
    assert result.trained == ["geo", "ensemble"]
    assert result.components["geo"].causes == ("data",)


def test_partial_update_reuses_untouched_components(ws: Workspace, history: pd.DataFrame) -> None:
    snap = ws.snapshot(history, name="customers")
    v1 = ws.train(build(), snap, workers=1).version
    later = make_window(1500, start="2026-07-01", days=30, seed=2, expanded=True)
    recent = ws.snapshot(later, name="recent")
    result = ws.update(v1.ref, recent, components=["geo"], workers=1)
    assert result.trained == ["geo", "ensemble"]
    assert result.reused == ["usage_scaled", "region_onehot", "account", "usage"]
    assert result.components["geo"].snapshot_id == recent.id
    assert result.version.ref == "churn:v2"
    # The rebuilt system predicts with the new member.
    model = ws.load("churn:v2")
    assert model.predict_proba(later).shape == (len(later), 2)


def test_update_of_a_transform_retrains_its_downstream_members(
    ws: Workspace, history: pd.DataFrame
) -> None:
    v1 = ws.train(build(), ws.snapshot(history, name="customers"), workers=1).version
    recent = ws.snapshot(make_window(800, start="2026-07-01", days=9, seed=3), name="recent")
    result = ws.update(v1.ref, recent, components=["usage_scaled"], workers=1)
    assert result.trained == ["usage_scaled", "usage", "ensemble"]
    assert result.components["usage"].causes == ("upstream",)


def test_status_names_the_causes(ws: Workspace, history: pd.DataFrame) -> None:
    snap = ws.snapshot(history, name="customers")
    v1 = ws.train(build(), snap, workers=1).version
    fresh = ws.status(v1.ref)
    assert all(s.fresh for s in fresh)
    stale = {s.name: s for s in ws.status(v1.ref, system=build(c_geo=3.0))}
    assert stale["geo"].causes == ("parameters",)
    assert stale["geo"].details["parameters"]["C"] == [1.0, 3.0]
    assert stale["ensemble"].causes == ("upstream",)
    assert stale["account"].fresh
    moved = ws.snapshot(
        history.assign(support_calls=history["support_calls"] + 1), name="customers"
    )
    by_data = {s.name: s for s in ws.status(v1.ref, snapshot=moved)}
    assert by_data["usage_scaled"].causes == ("data",)
    assert by_data["usage"].causes == ("data", "upstream")
    assert by_data["geo"].fresh


def test_an_edited_system_file_is_a_parameter_change_not_code(
    tmp_path: Path, history: pd.DataFrame
) -> None:
    module = tmp_path / "my_models.py"
    source = (
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.preprocessing import StandardScaler\n"
        "from regrow import Member, System, Transform\n"
        "def build():\n"
        "    return System('m', target='churned', components=[\n"
        "        Transform('other', StandardScaler(), inputs=['monthly_fee']),\n"
        "        Member('only', LogisticRegression(), inputs=['tenure_months', 'other'])])\n"
    )
    module.write_text(source)

    def load() -> Any:
        import importlib.util

        spec = importlib.util.spec_from_file_location("my_models", module)
        assert spec
        assert spec.loader
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod.build()

    with Workspace.init(tmp_path / "ws") as ws:
        v = ws.train(load(), ws.snapshot(history, name="c"), workers=1).version
        module.write_text(source.replace("LogisticRegression()", "LogisticRegression(C=2.0)", 1))
        rows = {s.name: s for s in ws.status(v.ref, system=load())}
        assert rows["only"].causes == ("parameters",)
        assert rows["only"].details["parameters"]["C"] == [1.0, 2.0]
        assert rows["other"].fresh  # the file changed; what `other` runs did not
        assert all(s.fresh for s in ws.status(v.ref))  # no code of the user's is reached


def test_lineage_names_snapshots_runs_and_reasons(ws: Workspace, history: pd.DataFrame) -> None:
    v1 = ws.train(build(), ws.snapshot(history, name="customers"), workers=1).version
    recent = ws.snapshot(make_window(900, start="2026-07-01", days=9, seed=4), name="recent")
    v2 = ws.update(v1.ref, recent, components=["geo"], workers=1).version
    report = ws.lineage(v2.ref)
    assert [p["version"] for p in report["parents"]] == ["churn:v1"]
    comps = {c["name"]: c for c in report["components"]}
    assert comps["geo"]["action"] == "trained"
    assert comps["geo"]["snapshot"] == recent.id
    assert comps["account"]["action"] == "reused"
    assert comps["account"]["origin"]["version"] == v1.id
    assert report["run"]["environment"]["python"]
    assert {s["name"] for s in report["snapshots"]} == {"customers", "recent"}
    assert comps["geo"]["seed"] != comps["account"]["seed"]


def test_promote_and_rollback_keep_the_history(ws: Workspace, history: pd.DataFrame) -> None:
    snap = ws.snapshot(history, name="customers")
    v1 = ws.train(build(), snap, workers=1).version
    v2 = ws.train(build(c_geo=0.5), snap, workers=1).version
    ws.promote(v1.ref, reason="first", force=True)  # the admin's override: see test_promotion
    moved = ws.promote(v2.ref, reason="better", force=True)
    assert moved.revision == 2
    with pytest.raises(AliasConflict):
        ws.promote(v1.ref, expected_revision=1)
    back = ws.rollback("churn", reason="regression")
    assert back.version_id == v1.id
    history_rows = ws.catalog.alias_history("churn", "champion")
    assert [m.reason for m in history_rows] == ["regression", "better", "first"]
    assert ws.catalog.get_system_version("churn@champion").id == v1.id
    assert ws.catalog.verify_audit() >= 3


def test_evaluate_blesses_a_better_candidate(ws: Workspace) -> None:
    old = make_window(3000, start="2026-01-01", days=90, seed=5)
    new = make_window(3000, start="2026-07-01", days=30, seed=6, expanded=True)
    v1 = ws.train(build(), ws.snapshot(old, name="c"), workers=1).version
    v2 = ws.update(
        v1.ref, ws.snapshot(new.iloc[:2000], name="recent"), components=["geo"], workers=1
    ).version
    holdout = ws.snapshot(new.iloc[2000:], name="holdout", slices={"north": "region == 'north'"})
    record, result = ws.evaluate(v2.ref, holdout, baseline=v1.ref)
    assert result.verdict == "blessed", result.reasons
    assert result.candidate > result.baseline  # type: ignore[operator]
    assert result.delta_ci is not None
    assert result.delta_ci[0] > 0
    assert "north" in result.slices
    assert ws.catalog.list_evaluations(candidate_id=v2.id)[0].id == record.id
    with pytest.raises(ConfigError, match="is the candidate churn:v1 itself"):
        ws.evaluate(v1.ref, holdout, baseline=v1.ref)  # every difference would be 0


def test_failed_component_fails_the_run_and_resume_reuses_finished_work(
    ws: Workspace, history: pd.DataFrame
) -> None:
    snap = ws.snapshot(history, name="customers")
    broken = build().replace(
        Member("geo", LogisticRegression(solver="nonsense"), inputs=["distance_km"])
    )
    with pytest.raises(RunError, match="component 'geo' failed"):
        ws.train(broken, snap, workers=1)
    assert ws.catalog.list_system_versions("churn") == []
    failed = ws.catalog.list_runs("churn")[0]
    assert failed.status == "failed"
    assert "geo" in (failed.error or "")
    fixed = ws.train(build(), snap, workers=1)
    assert "account" in fixed.reused
    assert "geo" in fixed.trained


def test_parallel_workers_give_the_same_fingerprints(tmp_path: Path, history: pd.DataFrame) -> None:
    with Workspace.init(tmp_path / "a") as a, Workspace.init(tmp_path / "b") as b:
        ra = a.train(build(), a.snapshot(history, name="c"), workers=1)
        rb = b.train(build(), b.snapshot(history, name="c"), workers=2)
    assert {n: o.fingerprint for n, o in ra.components.items()} == {
        n: o.fingerprint for n, o in rb.components.items()
    }


def test_bad_input_is_refused_and_leaves_nothing(ws: Workspace, history: pd.DataFrame) -> None:
    snap = ws.snapshot(history, name="customers")
    bad = build().replace(Member("geo", LogisticRegression(), inputs=["distance_kms"]))
    with pytest.raises(SystemSpecError, match="did you mean 'distance_km'"):
        ws.train(bad, snap)
    with pytest.raises(ConfigError, match=r"workers must be (an integer )?>= 1"):
        ws.train(build(), snap, workers=0)
    with pytest.raises(VersionNotFound):
        ws.update("churn:v7", snap, components=["geo"])
    with pytest.raises(DataError):
        ws.snapshot(pd.DataFrame(), name="empty")
    assert ws.catalog.list_runs("churn") == []
    assert len(ws.catalog.list_snapshots()) == 1
    v1 = ws.train(build(), snap, workers=1).version
    with pytest.raises(SystemSpecError, match="names no component"):
        ws.update(v1.ref, snap, components=[])
    with pytest.raises(SystemSpecError, match="did you mean 'geo'"):
        ws.update(v1.ref, snap, components=["gep"])
    assert [r.status for r in ws.catalog.list_runs("churn")] == ["succeeded"]


def test_open_without_a_workspace_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceNotFound, match="regrow init"):
        Workspace.open(tmp_path / "nowhere")


def test_status_with_changed_inputs_names_the_parameters(
    ws: Workspace, history: pd.DataFrame
) -> None:
    v1 = ws.train(build(), ws.snapshot(history, name="customers"), workers=1).version
    wider = build().replace(
        Member(
            "account",
            LogisticRegression(),
            inputs=["tenure_months", "monthly_fee", "region_onehot"],
        )
    )
    rows = {s.name: s for s in ws.status(v1.ref, system=wider)}
    assert rows["account"].causes == ("parameters", "data", "upstream")
    assert rows["account"].details["inputs"][1][-1] == "region_onehot"
    assert rows["geo"].fresh


def test_rerunning_an_old_configuration_returns_its_version(
    ws: Workspace, history: pd.DataFrame
) -> None:
    snap = ws.snapshot(history, name="customers")
    v1 = ws.train(build(), snap, workers=1).version
    ws.train(build(c_geo=0.2), snap, workers=1)
    back = ws.train(build(), snap, workers=1)
    assert back.trained == []
    assert not back.created_version
    assert back.version.id == v1.id
    assert len(ws.catalog.list_system_versions("churn")) == 2


def test_update_accepts_a_single_component_name(ws: Workspace, history: pd.DataFrame) -> None:
    v1 = ws.train(build(), ws.snapshot(history, name="customers"), workers=1).version
    recent = ws.snapshot(make_window(500, start="2026-07-01", days=5, seed=9), name="recent")
    assert ws.update(v1.ref, recent, components="geo", workers=1).trained == ["geo", "ensemble"]


def test_components_fitted_by_a_failed_run_are_reported_with_their_causes(
    ws: Workspace, history: pd.DataFrame
) -> None:
    old = ws.snapshot(history, name="customers")
    ws.train(build(), old, workers=1)
    new = ws.snapshot(make_window(800, start="2026-04-01", days=9, seed=8), name="customers")
    broken = build().replace(Member("geo", LogisticRegression(C=-1.0), inputs=["distance_km"]))
    with pytest.raises(RunError):
        ws.train(broken, new, workers=1)
    result = ws.train(build(), new, workers=1)
    report = {c["name"]: c for c in ws.lineage(result.version.ref)["components"]}
    resumed = [n for n, o in result.components.items() if o.action == "reused"]
    assert resumed, "the failed run fitted some components first"
    for name in resumed:
        assert report[name]["why"] == ["data"]
