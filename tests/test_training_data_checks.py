"""Bad training data is named before it reaches scikit-learn (user trial findings).

A stray ``"1,234.5"`` made a numeric column text and training failed inside scikit-learn with
a hint about parameters; a 3-row snapshot trained a version without a word; a column gone
entirely null under an existing name was stored as a mere nullable change.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from regrow import Member, System, Transform, Workspace
from regrow.components.fitted import fit_component
from regrow.data.adapters import Cast
from regrow.errors import ComponentError, DataError, DataQualityWarning
from regrow.testing import run_cli

SYSTEM = """
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from regrow import Member, System, Transform

system = System("credit", target="churned", components=[
    Transform("num_scaled", make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()),
              inputs=["balance", "tenure"]),
    Member("m", LogisticRegression(), inputs=["num_scaled"]),
])
"""


def _system() -> System:
    scaled = make_pipeline(SimpleImputer(strategy="mean"), StandardScaler())
    return System(
        "credit",
        target="churned",
        components=[
            Transform("num_scaled", scaled, inputs=["balance", "tenure"]),
            Member("m", LogisticRegression(), inputs=["num_scaled"]),
        ],
    )


def _history(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "balance": rng.normal(1000, 300, rows).round(1),
            "tenure": rng.integers(0, 60, rows),
            "churned": rng.integers(0, 2, rows),
        }
    )


def _tiny() -> pd.DataFrame:
    """Three rows, both classes: what the trial trained a version on."""
    return _history(3).assign(churned=[0, 1, 0])


def _dirty(path: Path, stray: dict[int, str], *, seed: int = 0) -> Path:
    """A CSV of the history with ``stray`` text at those rows of ``balance``."""
    frame = _history(seed=seed)
    frame["balance"] = frame["balance"].astype(object)
    for row, value in stray.items():
        frame.loc[row, "balance"] = value
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace.init(tmp_path / "ws") as opened:
        yield opened


def _written(ws: Workspace) -> dict[str, Any]:
    """What a run leaves behind: runs, versions and fitted artifacts."""
    return {
        "runs": [r.id for r in ws.catalog.list_runs()],
        "versions": [v.ref for v in ws.catalog.list_system_versions()],
        "artifacts": sorted(p.name for p in (ws.home / "artifacts").rglob("*") if p.is_file()),
    }


# -- 1a: the snapshot warning says the column is stored as strings, and how to fix it ---------


def test_a_stray_value_warns_that_the_whole_column_is_stored_as_strings(
    ws: Workspace, tmp_path: Path
) -> None:
    path = _dirty(tmp_path / "dirty_hist.csv", {7: "1,234.5"})
    with pytest.warns(DataQualityWarning) as caught:
        ws.snapshot(path, name="credit")
    [line] = caught[0].message.notes  # type: ignore[union-attr]
    assert line.startswith("column 'balance': 1 value not numeric, read as strings ('1,234.5')")
    assert "the whole column is stored as strings" in line
    assert "remove the commas" in line
    assert ".str.replace(',', '')" in line


# -- 1b: train refuses numbers stored as text before anything is fitted -----------------------


def test_train_refuses_a_mostly_numeric_text_column_naming_it_its_rows_and_the_snapshot(
    ws: Workspace, tmp_path: Path
) -> None:
    path = _dirty(tmp_path / "dirty_hist.csv", {7: "1,234.5"})
    with pytest.warns(DataQualityWarning):
        snap = ws.snapshot(path, name="credit")
    before = _written(ws)
    with pytest.raises(DataError) as raised:
        ws.train(_system(), "credit")
    said = str(raised.value)
    assert f"snapshot 'credit' ({snap.id[:12]})" in said
    assert "column 'balance' (read by 'num_scaled')" in said
    assert "row 7: '1,234.5'" in said
    assert "nothing was fitted" in said
    assert "Cast('balance', 'string')" in said  # the way to read it as text on purpose
    assert _written(ws) == before  # no run, no version, no fitted artifact


def test_train_refuses_a_column_that_was_numeric_in_an_earlier_schema_of_the_name(
    ws: Workspace, tmp_path: Path
) -> None:
    ws.snapshot(_history(), name="credit")
    ws.train(_system(), "credit")
    # Mostly text now (no note flags it), but it was float: 120 values gone astray.
    path = _dirty(tmp_path / "broken.csv", dict.fromkeys(range(120), "unknown"), seed=1)
    with pytest.warns(DataQualityWarning, match="allowed schema change"):
        ws.snapshot(path, name="credit", allow_schema_change=True)
    before = _written(ws)
    with pytest.raises(DataError) as raised:
        ws.train(_system(), "credit")
    said = str(raised.value)
    assert "it was float in schema v1 of 'credit'" in said
    assert "120 values not numeric (row 0: 'unknown', row 1: 'unknown'" in said
    assert "and 115 more" in said
    assert _written(ws) == before


def test_update_refuses_numbers_stored_as_text_too(ws: Workspace, tmp_path: Path) -> None:
    ws.snapshot(_history(), name="credit")
    v1 = ws.train(_system(), "credit").version
    path = _dirty(tmp_path / "window.csv", {3: "oops", 9: "1,5"}, seed=2)
    with pytest.warns(DataQualityWarning):
        ws.snapshot(path, name="window")
    with pytest.raises(DataError, match=r"row 3: 'oops', row 9: '1,5'"):
        ws.update(v1.ref, "window", components=["num_scaled"])


def test_a_component_that_reads_the_column_as_text_by_its_own_cast_is_not_refused(
    ws: Workspace, tmp_path: Path
) -> None:
    path = _dirty(tmp_path / "codes.csv", {7: "A12"})
    with pytest.warns(DataQualityWarning):
        ws.snapshot(path, name="codes")
    system = System(
        "codes",
        target="churned",
        components=[
            Member(
                "m",
                make_pipeline(OneHotEncoder(handle_unknown="ignore"), LogisticRegression()),
                inputs=["balance"],
                adapters=[Cast("balance", "string")],
            )
        ],
    )
    assert ws.train(system, "codes").trained == ["m"]


def test_a_failed_fit_names_the_mostly_numeric_text_column_and_its_stray_values() -> None:
    # The fallback where no check ran first (a plan's run): the fit error names the cause.
    frame = _history(20)
    frame["balance"] = frame["balance"].astype(object)
    frame.loc[4, "balance"] = "1,234.5"
    scaled = make_pipeline(SimpleImputer(strategy="mean"), StandardScaler())
    spec = Transform("num_scaled", scaled, inputs=["balance", "tenure"])
    with pytest.raises(ComponentError) as raised:
        fit_component(spec, frame, target="churned", upstream={}, seed=0)
    said = str(raised.value)
    assert "column 'balance' is text, though most of its values are numbers" in said
    assert "row 4: '1,234.5'" in said
    assert "check its inputs and parameters" not in said


def test_the_cli_train_refuses_the_trial_snapshot_with_the_column_and_the_row(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "credit.py").write_text(SYSTEM)
    _dirty(tmp_path / "dirty_hist.csv", {7: "1,234.5"})
    home = ("--home", str(tmp_path / "ws"))
    assert run_cli(capsys, "init", str(tmp_path / "ws"))[0] == 0
    code, _, err = run_cli(
        capsys, "snapshot", "create", str(tmp_path / "dirty_hist.csv"), "--name", "credit", *home
    )
    assert code == 0
    assert "the whole column is stored as strings" in err
    code, _, err = run_cli(
        capsys, "train", f"{tmp_path / 'credit.py'}:system", "--snapshot", "credit", *home
    )
    assert code != 0
    assert "column 'balance'" in err
    assert "row 7: '1,234.5'" in err
    assert "Cannot use mean strategy" not in err  # refused before scikit-learn saw it


# -- 2: training on few rows warns, and trains ---------------------------------------------------


def test_training_on_a_three_row_snapshot_warns_with_the_rows_and_the_snapshot(
    ws: Workspace,
) -> None:
    snap = ws.snapshot(_tiny(), name="tiny")
    with pytest.warns(DataQualityWarning) as caught:
        result = ws.train(_system(), snap)
    [line] = caught[0].message.notes  # type: ignore[union-attr]
    assert line.startswith(f"snapshot 'tiny' ({snap.id[:12]}) has 3 rows to train on")
    assert "fewer than 50" in line
    assert "'m' reads 2" in line
    assert result.version.ref == "credit:v1"  # a warning, not a refusal
    assert caught[0].filename == __file__  # it points at the caller


def test_the_minimum_grows_with_the_columns_a_member_reads(ws: Workspace) -> None:
    wide = pd.DataFrame({f"x{i}": np.arange(60.0) * i for i in range(8)})
    wide["y"] = np.arange(60) % 2
    snap = ws.snapshot(wide, name="wide")
    system = System(
        "wide", target="y", components=[Member("m", LogisticRegression(), inputs=list(wide)[:8])]
    )
    with pytest.warns(DataQualityWarning, match="60 rows to train on, fewer than 80"):
        ws.train(system, snap)


def test_enough_rows_train_without_a_warning(ws: Workspace) -> None:
    snap = ws.snapshot(_history(60), name="enough")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ws.train(_system(), snap)


def test_the_cli_train_says_the_snapshot_is_small(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "credit.py").write_text(SYSTEM)
    _tiny().to_csv(tmp_path / "tiny.csv", index=False)
    home = ("--home", str(tmp_path / "ws"))
    assert run_cli(capsys, "init", str(tmp_path / "ws"))[0] == 0
    assert (
        run_cli(capsys, "snapshot", "create", str(tmp_path / "tiny.csv"), "--name", "t", *home)[0]
        == 0
    )
    code, out, err = run_cli(
        capsys, "train", f"{tmp_path / 'credit.py'}:system", "--snapshot", "t", *home
    )
    assert code == 0, err
    assert "credit:v1" in out
    assert "warning: snapshot 't' (" in err
    assert "has 3 rows to train on" in err
    assert "DataQualityWarning" not in err  # a line of its own, not Python's warning format


# -- 3: a column that went entirely null is named as a broken feed -----------------------------


def test_a_column_gone_entirely_null_under_a_name_is_named_as_a_broken_feed(
    ws: Workspace,
) -> None:
    first = ws.snapshot(_history(), name="n")
    emptied = _history(seed=1)
    emptied["tenure"] = np.nan
    with pytest.warns(DataQualityWarning) as caught:
        ws.snapshot(emptied, name="n")  # adaptable (the column became nullable): stored
    lines = caught[0].message.notes  # type: ignore[union-attr]
    assert lines[0] == (
        f"column 'tenure' is entirely null (200 of 200 rows), though snapshot "
        f"{first.id[:12]} of 'n' had 200 values in it: a broken feed? Fix the source and "
        "snapshot again; a model reads no value of 'tenure' from these rows"
    )
    assert not any(line.startswith("column 'tenure': 200 nulls") for line in lines)


def test_a_column_that_was_always_null_is_not_called_broken(ws: Workspace) -> None:
    never = _history()
    never["tenure"] = np.nan
    with pytest.warns(DataQualityWarning):
        ws.snapshot(never, name="n")
    with pytest.warns(DataQualityWarning) as caught:
        ws.snapshot(never.assign(balance=never["balance"] + 1), name="n")
    lines = caught[0].message.notes  # type: ignore[union-attr]
    assert not any("broken feed" in line for line in lines)
    assert "column 'tenure': 200 nulls (100.00%)" in lines
