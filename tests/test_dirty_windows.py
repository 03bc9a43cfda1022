"""Dirty windows are data, not crashes: `regrow monitor` and `regrow plan` on 19 kinds of bad
window, through the CLI as a user runs it. Each either reports (exit 0) and names the column,
or refuses with an `error:` line naming it (exit 2); never a traceback. A refused window leaves
nothing behind; a reported one is stored as `churn-window`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest

from regrow import Workspace
from regrow.demo import build_system, make_window
from regrow.testing import run_cli as _run


class Kind(NamedTuple):
    write: Callable[[pd.DataFrame, Path], None]
    monitor: tuple[int, str]  # exit code, text the output must hold (the column, mostly)
    plan: tuple[int, str]


def _csv(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[pd.DataFrame, Path], None]:
    def write(frame: pd.DataFrame, path: Path) -> None:
        change(frame.copy()).to_csv(path, index=False)

    return write


def _set(column: str, value: object, rows: slice | list[int] = [5, 10, 20]) -> Callable:  # noqa: B006
    def change(d: pd.DataFrame) -> pd.DataFrame:
        d[column] = d[column].astype(object) if isinstance(value, str) else d[column]
        d.loc[rows, column] = value
        return d

    return change


def _duplicated(frame: pd.DataFrame, path: Path) -> None:
    lines = frame.to_csv(index=False).splitlines()
    lines[0] = lines[0].replace("support_calls", "monthly_fee")
    path.write_text("\n".join(lines) + "\n")


KINDS: dict[str, Kind] = {
    # nulls a gradient-boosted member takes: reported, the plan keeps every row
    "nulls in a boosted member's feature": Kind(
        _csv(_set("monthly_fee", np.nan)), (0, "monthly_fee"), (0, "monthly_fee")
    ),
    # nulls a LogisticRegression cannot take: those rows are set aside, and said so
    "nulls in a logistic member's feature": Kind(
        _csv(_set("support_calls", np.nan)), (0, "cannot take"), (0, "set aside 3")
    ),
    "an all-null feature": Kind(
        _csv(lambda d: d.assign(monthly_fee=np.nan)), (0, "monthly_fee"), (2, "monthly_fee")
    ),
    "nulls in a categorical feature": Kind(
        _csv(_set("contract", np.nan)), (0, "contract"), (0, "contract")
    ),
    "a string in a numeric column": Kind(
        _csv(_set("monthly_fee", "abc", [7])), (0, "'abc'"), (0, "monthly_fee")
    ),
    "a numeric column entirely strings": Kind(
        _csv(lambda d: d.assign(monthly_fee="x" + d.monthly_fee.astype(str))),
        (0, "monthly_fee"),
        (2, "monthly_fee"),
    ),
    "a missing feature column": Kind(
        _csv(lambda d: d.drop(columns=["monthly_fee"])), (0, "monthly_fee"), (2, "monthly_fee")
    ),
    "a renamed column": Kind(
        _csv(lambda d: d.rename(columns={"monthly_fee": "fee"})), (0, "renamed?"), (2, "rename")
    ),
    "an extra column": Kind(
        _csv(lambda d: d.assign(promo_code="spring")), (0, "promo_code"), (0, "promo_code")
    ),
    "an unseen category": Kind(
        _csv(_set("region", "mars", list(range(0, 600, 20)))), (0, "'mars'"), (0, "region")
    ),
    "unseen categories in too many rows": Kind(
        _csv(_set("region", "mars", slice(0, 300))), (0, "region"), (2, "max_unusable_share")
    ),
    "an empty slice": Kind(
        _csv(lambda d: d.assign(contract=d.contract.replace("monthly", "annual"))),
        (0, "monthly_contracts"),
        (0, "contract"),
    ),
    "nulls in the target": Kind(_csv(_set("churned", np.nan)), (0, "churned"), (0, "churned")),
    "only the header": Kind(_csv(lambda d: d.iloc[:0]), (2, "no rows"), (2, "no rows")),
    "one row": Kind(_csv(lambda d: d.iloc[:1]), (0, "monthly_fee"), (0, "1 labelled")),
    "infinite values": Kind(
        _csv(_set("distance_km", np.inf, [3, 4])), (0, "distance_km"), (0, "distance_km")
    ),
    "no target column": Kind(
        _csv(lambda d: d.drop(columns=["churned"])), (0, "churned"), (0, "churned")
    ),
    "a time column of strings": Kind(
        _csv(lambda d: d.assign(ts="yesterday")), (0, "'ts'"), (0, "'ts'")
    ),
    "duplicated column names": Kind(_duplicated, (2, "monthly_fee"), (2, "monthly_fee")),
    # every label one class: monitored (the impact's fallback loss models crashed), refused
    # by the planner (an update learnt from it predicts that class alone)
    "labels all one class": Kind(
        _csv(lambda d: d.assign(churned=0)), (0, "distance_km"), (2, "all 0: an update learnt")
    ),
}


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, pd.DataFrame]:
    """The demo system (smaller boosted members) trained on 2,000 rows and promoted; a clean
    window of 1,200 rows from the drifted regime."""
    home = tmp_path_factory.mktemp("dirty-windows")
    system = build_system(0)
    for name in ("account", "geo"):
        system[name].estimator.set_params(max_iter=40)
    with Workspace.init(home) as ws:
        history = make_window(2000, start="2026-01-01", days=181, seed=0)
        slices = {"monthly_contracts": "contract == 'monthly'"}
        ref = ws.snapshot(history, name="customers", time_column="ts", slices=slices)
        ws.promote(ws.train(system, ref).version.ref, "champion", force=True, reason="setup")
    window = make_window(1200, start="2026-07-01", days=61, seed=1, expanded=True)
    return str(home), window


def _stored(home: str) -> tuple[int, int, int]:
    with Workspace.open(home) as ws:
        windows = len(ws.catalog.list_snapshots("churn-window"))
        reports = len(ws.catalog.list_monitor_reports(limit=1000))
        plans = len(ws.catalog.list_plans(limit=1000))
    return windows, reports, plans


@pytest.mark.parametrize("command", ["monitor", "plan"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_bad_window_is_reported_or_refused_never_a_traceback(
    champion: tuple[str, pd.DataFrame],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    command: str,
) -> None:
    home, window = champion
    path = tmp_path / "window.csv"
    KINDS[kind].write(window, path)
    code, text = getattr(KINDS[kind], command)
    before = _stored(home)
    got, out, err = _run(
        capsys, command, "--version", "churn@champion", "--window", str(path), "--home", home
    )
    shown = " ".join((out + err).split())  # rich wraps long lines
    assert "Traceback" not in out + err
    assert got == code, shown
    assert text in shown
    after = _stored(home)
    if code == 2:
        assert "error:" in err
        assert after == before  # no window, report or plan left behind
    else:
        assert after[1] == before[1] + 1  # the report (a plan records the monitor's too)
        with Workspace.open(home) as ws:
            assert ws.catalog.list_snapshots("churn-window")  # the window, stored once checked
