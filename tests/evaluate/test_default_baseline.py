"""Which baseline an evaluation compares with, and that too few rows never bless a candidate
(so never clear a protected alias)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from regrow import Ensemble, Member, System, Transform, Workspace
from regrow.cli import _app
from regrow.demo import make_window
from regrow.errors import PromotionRefused
from regrow.evaluate.gates import Improvement, SliceRegression, scores_of
from regrow.testing import run_cli


def build() -> System:
    return System("churn", target="churned", components=[
        Transform("fee_scaled", StandardScaler(), inputs=["monthly_fee"]),
        Member("account", LogisticRegression(), inputs=["tenure_months", "fee_scaled"]),
        Member("geo", LogisticRegression(), inputs=["distance_km", "network_quality"]),
        Ensemble("ensemble", weights={"account": 1, "geo": 1}),
    ])  # fmt: skip


@pytest.fixture(scope="module")
def champion(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Workspace, dict[str, Any]]]:
    """churn:v1 holds churn@champion; churn:v2 refits geo on recent rows; a holdout and a
    three-row snapshot of the same period; bob may approve."""
    tmp: Path = tmp_path_factory.mktemp("baseline")
    later = make_window(1400, start="2026-07-01", days=30, seed=1, expanded=True)
    with Workspace.init(tmp / "ws") as ws:
        old = ws.snapshot(make_window(1200, start="2026-01-01", days=60, seed=0), name="old")
        v1 = ws.train(build(), old, workers=1).version
        v2 = ws.update(v1.ref, ws.snapshot(later.iloc[:700], name="recent"), components=["geo"],
                       workers=1).version  # fmt: skip
        holdout = later.iloc[700:]
        ws.snapshot(holdout, name="holdout")
        ws.snapshot(_three_rows_that_favour(ws, v2.ref, v1.ref, holdout), name="three")
        ws.promote(v1.ref, force=True, reason="the first champion")
        ws.catalog.identities.add("bob", "approver")
        _, token = ws.catalog.identities.create_token("bob")
        yield ws, {"v1": v1, "v2": v2, "bob": token}


def _three_rows_that_favour(
    ws: Workspace, candidate: str, baseline: str, rows: pd.DataFrame
) -> pd.DataFrame:
    """Three rows of both classes on each of which ``candidate``'s log loss is lower: every
    resample of them says the candidate is better (what blessed eta:v10 on three rows)."""
    y = rows["churned"].to_numpy()
    loss = {}
    for ref in (candidate, baseline):
        proba = scores_of(ws.load(ref), rows)
        p = proba[:, 1] if proba.ndim == 2 else proba
        loss[ref] = -np.log(np.where(y == 1, p, 1 - p))
    gain = loss[baseline] - loss[candidate]
    order = np.argsort(-gain)
    pick = [*order[y[order] == 1][:2], *order[y[order] == 0][:1]]
    assert (gain[pick] > 0).all()
    return rows.iloc[pick]


def test_three_rows_do_not_bless_so_the_champion_does_not_move(
    champion: tuple[Workspace, dict[str, Any]],
) -> None:
    ws, f = champion
    v1, v2 = f["v1"].ref, f["v2"].ref
    loose = [Improvement(min_rows=1), SliceRegression(min_rows=1)]
    _, before = ws.evaluate(v2, "three", baseline=v1, metric="log_loss", gates=loose)
    assert before.verdict == "blessed"  # what three rows said before rows were counted
    record, result = ws.evaluate(v2, "three", baseline=v1, metric="log_loss")
    assert result.rows == 3
    assert record.verdict == "none"
    for gate in result.gates:
        assert gate.status == "inconclusive"
        assert "3 rows: too few to tell; at least 30 are needed" in gate.why
    with Workspace.open(ws.home, token=f["bob"]) as bob:
        bob.approve(v2)
    with pytest.raises(PromotionRefused, match="blessed evaluation"):
        ws.promote(v2)
    assert ws.catalog.get_alias("churn", "champion").version_id == f["v1"].id


def test_without_a_baseline_the_champion_is_the_baseline(
    champion: tuple[Workspace, dict[str, Any]],
) -> None:
    ws, f = champion
    record, result = ws.evaluate(f["v2"].ref, "holdout")
    assert record.baseline_id == f["v1"].id
    assert record.results["baseline_ref"] == f["v1"].ref
    assert record.results["baseline_source"] == "churn@champion = churn:v1 (default)"
    assert result.baseline is not None
    assert result.gates[0].why != "no baseline to compare with"
    given, _ = ws.evaluate(f["v2"].ref, "holdout", baseline="churn@champion")
    assert given.results["baseline_source"] == "churn@champion = churn:v1"


def test_the_champion_itself_has_no_default_baseline(
    champion: tuple[Workspace, dict[str, Any]],
) -> None:
    ws, f = champion
    record, result = ws.evaluate(f["v1"].ref, "holdout")
    assert record.baseline_id is None
    assert result.baseline is None
    assert record.results["baseline_source"] == (
        "none (churn@champion is churn:v1 itself; name one with --baseline)"
    )
    assert result.gates[0].why == "no baseline to compare with"


def test_the_cli_says_which_baseline_it_chose(
    champion: tuple[Workspace, dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws, f = champion
    monkeypatch.setattr(_app.out, "width", 200)
    home = str(ws.home)
    code, out, err = run_cli(capsys, "evaluate", f["v2"].ref, "--snapshot", "holdout",
                             "--home", home)  # fmt: skip
    assert code == 0, err
    assert "baseline: churn@champion = churn:v1 (default)" in out.splitlines()
    assert "no baseline to compare with" not in out
    code, out, err = run_cli(capsys, "evaluate", f["v2"].ref, "--snapshot", "three",
                             "--baseline", f["v1"].ref, "--home", home)  # fmt: skip
    assert code == 0, err
    assert "baseline: churn:v1" in out.splitlines()
    assert "3 rows: too few to tell" in out
    assert "verdict: none" in out
