"""A classifier's window whose labels are all one class: monitored without a traceback (the
impact falls back to loss models fitted on the reference, which need every column read), and
refused by the planner with what to check (an update learnt from it predicts that class)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from regrow import Ensemble, Member, System, Workspace
from regrow.demo import make_window
from regrow.testing import run_cli


def test_a_window_of_one_class_is_monitored_and_refused_by_the_planner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    system = System("shop", target="churned", components=[
        Member("acct", LogisticRegression(max_iter=300), inputs=["tenure_months", "monthly_fee"]),
        Member("geo", HistGradientBoostingClassifier(max_iter=30),
               inputs=["distance_km", "network_quality"]),
        Ensemble("ens", weights={"acct": 1.0, "geo": 1.0}),
    ])  # fmt: skip
    home = tmp_path / "ws"
    with Workspace.init(home) as ws:
        snap = ws.snapshot(make_window(2000, start="2026-01-01", days=60, seed=1), name="hist")
        ws.train(system, snap, workers=1)
        snapshots = len(ws.catalog.list_snapshots())
    window = make_window(1500, start="2026-07-01", days=30, seed=2, expanded=True)
    window.assign(churned=0).to_csv(tmp_path / "zeros.csv", index=False)
    h = ("--home", str(home))
    code, out, err = run_cli(capsys, "monitor", "--version", "shop:v1", "--window",
                             str(tmp_path / "zeros.csv"), *h)  # fmt: skip
    assert code == 0, err
    assert "Traceback" not in out + err
    code, _, err = run_cli(capsys, "plan", "--version", "shop:v1", "--window",
                           str(tmp_path / "zeros.csv"), *h)  # fmt: skip
    assert code == 2
    assert "has 1,500 labels in 'churned', all 0: an update learnt from it" in err
    assert "hint: check how the labels were joined" in err
    with Workspace.open(home) as ws:
        assert ws.catalog.list_plans() == []
        # the monitor stored its window; the refused plan stored nothing more
        assert len(ws.catalog.list_snapshots()) == snapshots + 1
