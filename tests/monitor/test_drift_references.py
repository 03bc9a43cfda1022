"""A system whose members were trained on different snapshots: each drift report names the
reference it compared the window with."""

from __future__ import annotations

from pathlib import Path

from sklearn.linear_model import LogisticRegression

from regrow import Ensemble, Member, System, Workspace
from regrow.demo import make_window


def test_each_drift_report_names_its_reference_after_a_partial_update(tmp_path: Path) -> None:
    system = System("churn", target="churned", components=[
        Member("account", LogisticRegression(), inputs=["tenure_months", "monthly_fee"]),
        Member("geo", LogisticRegression(), inputs=["distance_km", "network_quality"]),
        Ensemble("ensemble", weights={"account": 1, "geo": 1}),
    ])  # fmt: skip
    with Workspace.init(tmp_path / "ws") as ws:
        reference = ws.snapshot(make_window(2000, start="2026-01-01", days=90, seed=0), name="ref")
        v1 = ws.train(system, reference).version
        later = make_window(1500, start="2026-07-01", days=30, seed=2)
        v2 = ws.update(v1.ref, ws.snapshot(later.iloc[:1000], name="recent"), components=["geo"])
        result = ws.monitor(v2.version.ref, later.iloc[1000:])
        single = ws.monitor(v1.ref, later.iloc[1000:])
    labels = {r["reference"]: {f["column"] for f in r["features"]}
              for r in result.to_dict()["drift"]}  # fmt: skip
    assert labels == {
        "ref (account)": {"tenure_months", "monthly_fee"},
        "recent (geo)": {"distance_km", "network_quality"},
    }
    # One reference: every row was compared with it, nothing to tell apart.
    assert [r["reference"] for r in single.to_dict()["drift"]] == [None]
