"""``planning.data: recent+reference``: an update learns from the window and the version's
training rows that came before it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regrow import Workspace
from regrow.plan.actions import Refit
from regrow.plan.policy import Policy
from regrow.plan_runs import _retained
from regrow.testing import run_cli

from .conftest import build_system, make

RETAINING = Policy.from_dict({"planning": {"data": "recent+reference", "retained_rows": 1000}})


def _days(first: int, last: int) -> pd.DataFrame:
    """One row a day from ``first`` to ``last`` (inclusive), shuffled; ``day`` says which."""
    days = np.random.default_rng(first).permutation(np.arange(first, last + 1))
    ts = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(days, unit="D")
    return pd.DataFrame({"ts": ts, "day": days})


def test_retained_rows_are_older_than_the_window_in_time_order() -> None:
    # The version was trained on days 0-9; the window holds days 5-12: days 5-9 are in both.
    kept = _retained(_days(0, 9), _days(5, 12), "ts", rows=0)
    assert kept["day"].tolist() == [0, 1, 2, 3, 4]
    assert _retained(_days(0, 9), _days(5, 12), "ts", rows=3)["day"].tolist() == [2, 3, 4]


def test_retained_rows_without_comparable_times_are_the_newest_as_stored() -> None:
    reference = pd.DataFrame({"day": range(10)})
    assert _retained(reference, reference, None, rows=4)["day"].tolist() == [6, 7, 8, 9]
    naive = _days(0, 9).assign(ts=lambda f: f["ts"].dt.tz_localize(None))
    window = _days(5, 12)  # aware times: they cannot be compared with naive ones
    assert len(_retained(naive, window, "ts", rows=0)) == 10


def test_an_update_learns_from_the_window_and_the_retained_rows(
    trained: tuple[Workspace, str, Path],
) -> None:
    ws, v1, _ = trained
    plan = ws.plan(v1, "alpha-changed", policy=RETAINING)
    assert plan.actions, plan.rationale
    assert plan.data["mode"] == "recent+reference"
    assert plan.data["retained_rows"] == 1000
    ran = ws.run_plan(plan, approve=True)
    data = ws.catalog.get_snapshot(ran.result.run.params["snapshot"])
    assert data.rows == 1600 + 1000
    assert data.name.endswith("-retained")


def test_a_plan_by_hand_learns_from_the_retained_rows_too(
    trained: tuple[Workspace, str, Path],
) -> None:
    ws, v1, _ = trained
    ran = ws.apply(v1, "quiet", [Refit("beta")], policy=RETAINING, approve=True)
    assert ran.plan.data == {"mode": "recent+reference", "window_rows": 1600,
                             "retained_rows": 1000}  # fmt: skip
    assert ws.catalog.get_snapshot(ran.result.run.params["snapshot"]).rows == 1600 + 1000


def test_the_default_policy_learns_from_the_window(trained: tuple[Workspace, str, Path]) -> None:
    ws, v1, _ = trained
    plan = ws.plan(v1, "alpha-changed", record=False)
    assert plan.data["mode"] == "recent"
    assert plan.data["retained_rows"] == 0


def test_regrow_plan_says_what_the_update_learns_from(
    trained: tuple[Workspace, str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, v1, home = trained
    policy = tmp_path / "policy.yaml"
    policy.write_text("planning:\n  data: recent+reference\n  retained_rows: 1000\n")
    code, out, err = run_cli(
        capsys, "plan", "--version", v1, "--window", "alpha-changed", "--policy", str(policy),
        "--home", str(home),
    )  # fmt: skip
    assert code == 0, err
    assert (
        "data: the window's 1,600 rows and up to 1,000 of the version's training rows older "
        "than them (planning.data: recent+reference)"
    ) in " ".join(out.split())
    code, out, err = run_cli(
        capsys, "plan", "--version", v1, "--window", "alpha-changed", "--home", str(home)
    )
    assert code == 0, err
    assert "data:" not in out


def test_an_update_with_retained_rows_is_monitored_against_its_window(tmp_path: Path) -> None:
    # The window's a1 moved (and alpha's effect with it): the refit learns the new world from
    # the window, with 1,000 older rows beside it. A later window from the same new world must
    # not read as drifted from the update: the retained rows are from before the move.
    def moved(rows: int, seed: int) -> pd.DataFrame:
        frame = make(rows, seed, frozenset({"alpha"}))
        return frame.assign(a1=frame["a1"] + 1.5)

    with Workspace.init(tmp_path) as ws:
        v1 = ws.train(build_system(), ws.snapshot(make(4000, 1), name="old"))
        ws.snapshot(moved(1600, 2), name="moved")
        ran = ws.apply(v1.version.ref, "moved", [Refit("alpha")], policy=RETAINING, approve=True)
        v2 = ran.result.version.ref
        data = ws.catalog.get_snapshot(ran.result.run.params["snapshot"])
        assert data.rows == 1600 + 1000
        later = ws.snapshot(moved(1600, 3), name="later")

        def drifted(ref: str) -> tuple[set[str], bool | None]:
            result = ws.monitor(ref, later.id, record=False)
            columns = {d.column for r in result.drift for d in r.drifted}
            return columns, result.multivariate_drifted

        assert drifted(v1.version.ref) == ({"a1"}, True)
        assert drifted(v2) == (set(), False)  # the multivariate check too
