"""`regrow predict`: batch scoring of a file on the serving path."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from regrow import Workspace
from regrow.testing import run_cli


@pytest.fixture(scope="module")
def expected(module_serve_home: Path, shop_rows: Callable[..., pd.DataFrame]) -> pd.DataFrame:
    """Rows to score, with what shop:v1 itself predicts for them."""
    rows = shop_rows(20, 3)
    with Workspace.open(module_serve_home) as ws:
        model = ws.load("shop:v1")
    inputs = rows[["age", "income", "plan"]]
    rows["want"] = model.predict(inputs)
    rows["want_1"] = model.predict_proba(inputs)[:, 1]
    return rows


@pytest.mark.parametrize(("suffix", "ref"), [(".csv", "shop:v1"), (".parquet", "shop@champion")])
def test_a_table_is_scored_and_keeps_its_columns(
    module_serve_home: Path,
    expected: pd.DataFrame,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    suffix: str,
    ref: str,
) -> None:
    source, out = tmp_path / f"rows{suffix}", tmp_path / f"scored{suffix}"
    rows = expected.drop(columns=["want", "want_1"])
    rows.to_csv(source, index=False) if suffix == ".csv" else rows.to_parquet(source)
    code, _, err = run_cli(capsys, "predict", ref, str(source), "-o", str(out),
                           "--home", str(module_serve_home))  # fmt: skip
    assert code == 0, err
    assert f"scored 20 rows with shop:v1 -> {out}" in err
    scored = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert list(scored.columns) == [*rows.columns, "predict", "proba__0", "proba__1"]
    assert scored["predict"].tolist() == expected["want"].tolist()
    np.testing.assert_allclose(scored["proba__1"], expected["want_1"])


def test_a_json_request_is_answered_like_the_server_answers_it(
    module_serve_home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    infer_body: Callable[..., dict[str, Any]],
    expected: pd.DataFrame,
) -> None:
    source, out = tmp_path / "request.json", tmp_path / "response.json"
    source.write_text(json.dumps(infer_body(20, seed=3, request_id="batch-1")))
    code, _, err = run_cli(capsys, "predict", "shop:v1", str(source), "-o", str(out),
                           "--home", str(module_serve_home))  # fmt: skip
    assert code == 0, err
    body = json.loads(out.read_text())
    assert (body["model_name"], body["id"]) == ("shop", "batch-1")
    assert body["parameters"] == {"system_version": "shop:v1"}
    predict, proba = body["outputs"]
    assert predict["data"] == expected["want"].tolist()
    np.testing.assert_allclose(np.reshape(proba["data"], (20, 2))[:, 1], expected["want_1"])


def test_missing_values_in_a_file_are_nulls(
    module_serve_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, out = tmp_path / "gaps.csv", tmp_path / "out.csv"
    source.write_text("age,income,plan\n30,,pro\n,20.5,\n")
    code, _, err = run_cli(capsys, "predict", "shop:v1", str(source), "-o", str(out),
                           "--home", str(module_serve_home))  # fmt: skip
    # the logistic regression refuses NaN: the error names the empty cells and their rows,
    # with a hint for a file (not the server's metadata endpoint), and no traceback
    assert code == 2
    # rows count from 0, as `regrow monitor` counts them (it said rows 2 and 1)
    assert "empty values (rows count from 0): 'age' in 1 row(s) (rows 1)" in err
    assert "'income' in 1 row(s) (rows 0)" in err
    assert "Default adapter" in err
    assert "/v2/models" not in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["shop:v1", "{rows}", "-o", "{tmp}/out.txt"], "cannot tell the format of the output"),
        (["shop:v1", "{tmp}/none.csv", "-o", "{tmp}/o.csv"], "no such file"),
        (["shop:v9", "{rows}", "-o", "{tmp}/o.csv"], "unknown version 'shop:v9'"),
        (["shop:v1", "{narrow}", "-o", "{tmp}/o.csv"], "lacks input column(s) ['plan']"),
    ],
)
def test_bad_arguments_are_errors_with_a_hint(
    module_serve_home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    rows, narrow = tmp_path / "rows.csv", tmp_path / "narrow.csv"
    rows.write_text("age,income,plan\n30,1.5,pro\n")
    narrow.write_text("age,income\n30,1.5\n")
    filled = [a.format(rows=rows, narrow=narrow, tmp=tmp_path) for a in args]
    code, _, err = run_cli(capsys, "predict", *filled, "--home", str(module_serve_home))
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_text_inputs_that_look_like_numbers_stay_text_in_a_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    from regrow import Member, System, Transform

    rows = pd.DataFrame({"code": ["01", "02", "03"] * 20, "y": [0, 1, 1] * 20})
    with Workspace.init(tmp_path / "ws") as ws:
        system = System("codes", target="y", components=[
            Transform("onehot", OneHotEncoder(), inputs=["code"]),
            Member("m", LogisticRegression(), inputs=["onehot"]),
        ])  # fmt: skip
        ws.train(system, ws.snapshot(rows, name="codes"))
        want = ws.load("codes:v1").predict(rows[["code"]].head(3)).tolist()
    rows.head(3).to_csv(tmp_path / "codes.csv", index=False)  # 01, 02, 03 as written
    out, home = str(tmp_path / "out.csv"), str(tmp_path / "ws")
    code, _, err = run_cli(capsys, "predict", "codes:v1", str(tmp_path / "codes.csv"),
                           "-o", out, "--home", home)  # fmt: skip
    assert code == 0, err
    scored = pd.read_csv(tmp_path / "out.csv", dtype={"code": str})
    assert scored["code"].tolist() == ["01", "02", "03"]
    assert scored["predict"].tolist() == want
