"""Profiles match an independent numpy/pandas computation and are always plain JSON."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from regrow.data import profile_table
from regrow.data.profile import QUANTILES, quantiles
from regrow.errors import DataError


def as_json(profile: dict[str, Any]) -> Any:
    return json.loads(json.dumps(profile, allow_nan=False))


@pytest.mark.parametrize("rows", [7, 300_000])  # the second runs the threaded path
def test_numeric_statistics_match_numpy(rows: int) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(3, 2, size=rows)
    x[rng.random(rows) < 0.1] = np.nan
    n = rng.integers(-50, 50, size=rows)
    profile = profile_table(pd.DataFrame({"x": x, "n": n}))
    assert profile == as_json(profile)
    assert profile["rows"] == rows
    for name, values in (("x", x[~np.isnan(x)]), ("n", n)):
        stats = profile["columns"][name]
        assert stats["count"] == len(values)
        assert stats["nulls"] == rows - len(values)
        assert stats["null_rate"] == pytest.approx((rows - len(values)) / rows)
        assert stats["mean"] == pytest.approx(np.mean(values), rel=1e-12)
        assert stats["std"] == pytest.approx(np.std(values, ddof=1), rel=1e-12)
        assert stats["min"] == values.min()
        assert stats["max"] == values.max()
        expected = np.quantile(values, QUANTILES)
        assert list(stats["quantiles"]) == [str(q) for q in QUANTILES]
        assert list(stats["quantiles"].values()) == pytest.approx(expected, rel=1e-12)
    assert isinstance(profile["columns"]["n"]["min"], int)
    assert profile["columns"]["n"]["dtype"] == "int"


@given(hnp.arrays(np.float64, st.integers(1, 60), elements=st.floats(-1e6, 1e6)))
def test_quantiles_equal_numpy(values: np.ndarray[Any, Any]) -> None:
    qs = [0.0, *QUANTILES, 1.0]
    assert quantiles(values, qs) == list(np.quantile(values, qs))


def test_categorical_statistics_match_pandas() -> None:
    rng = np.random.default_rng(3)
    values = pd.Series(rng.choice([f"v{i:02d}" for i in range(30)], size=1_000))
    values[::17] = None
    profile = profile_table(pd.DataFrame({"s": values}))
    stats = profile["columns"]["s"]
    counts = values.value_counts()  # drops nulls
    expected = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    assert stats["dtype"] == "string"
    assert stats["distinct"] == values.nunique()
    assert stats["top"] == [{"value": v, "count": c} for v, c in expected]
    assert stats["other"] == counts.sum() - sum(c for _, c in expected)
    assert stats["nulls"] == values.isna().sum()


def test_ties_are_broken_by_value_and_bools_and_categories_are_counted() -> None:
    frame = pd.DataFrame(
        {
            "s": ["b", "a", "c", "a", "b"],
            "flag": [True, None, False, True, True],
            "cat": pd.Categorical(["x", "y", "x", "x", None]),
        }
    )
    columns = profile_table(frame)["columns"]
    assert columns["s"]["top"] == [
        {"value": "a", "count": 2},
        {"value": "b", "count": 2},
        {"value": "c", "count": 1},
    ]
    assert columns["flag"] | {"top": None} == {
        "dtype": "bool",
        "count": 4,
        "nulls": 1,
        "null_rate": 0.2,
        "distinct": 2,
        "top": None,
        "other": 0,
    }
    assert columns["flag"]["top"] == [{"value": True, "count": 3}, {"value": False, "count": 1}]
    assert columns["cat"]["dtype"] == "category"
    assert columns["cat"]["top"] == [{"value": "x", "count": 3}, {"value": "y", "count": 1}]


def test_many_distinct_values_keep_the_top_twenty() -> None:
    values = [f"id{i:04d}" for i in range(500)] + ["id0007"] * 3
    stats = profile_table(pa.table({"id": values}))["columns"]["id"]
    assert stats["distinct"] == 500
    assert stats["top"][0] == {"value": "id0007", "count": 4}
    assert [t["value"] for t in stats["top"][1:]] == [f"id{i:04d}" for i in range(20) if i != 7]
    assert stats["other"] == len(values) - 4 - 19


def test_datetime_columns_report_their_range() -> None:
    frame = pd.DataFrame({"t": pd.to_datetime(["2024-03-01 10:00", None, "2024-01-01 00:00"])})
    stats = profile_table(frame)["columns"]["t"]
    assert stats == {
        "dtype": "datetime",
        "count": 2,
        "nulls": 1,
        "null_rate": pytest.approx(1 / 3),
        "min": "2024-01-01T00:00:00",
        "max": "2024-03-01T10:00:00",
    }


def test_all_null_columns_have_none_for_every_statistic() -> None:
    frame = pd.DataFrame(
        {"x": [np.nan, np.nan], "o": [None, None], "t": pd.to_datetime([None, None])}
    )
    columns = as_json(profile_table(frame))["columns"]
    assert columns["x"] == {
        "dtype": "float",
        "count": 0,
        "nulls": 2,
        "null_rate": 1.0,
        "mean": None,
        "std": None,
        "min": None,
        "max": None,
        "quantiles": {str(q): None for q in QUANTILES},
    }
    assert columns["o"] == {"dtype": None, "count": 0, "nulls": 2, "null_rate": 1.0}
    assert columns["t"]["min"] is None
    assert columns["t"]["max"] is None


def test_an_empty_table_profiles_without_errors() -> None:
    table = pa.table(
        {
            "x": pa.array([], pa.float64()),
            "s": pa.array([], pa.string()),
            "b": pa.array([], pa.bool_()),
        }
    )
    profile = as_json(profile_table(table))
    assert profile["rows"] == 0
    assert profile["columns"]["x"]["null_rate"] is None
    assert profile["columns"]["x"]["mean"] is None
    assert profile["columns"]["s"] | {"null_rate": 0} == {
        "dtype": "string",
        "count": 0,
        "nulls": 0,
        "null_rate": 0,
        "distinct": 0,
        "top": [],
        "other": 0,
    }


def test_a_single_value_has_no_std_and_infinities_become_none() -> None:
    columns = profile_table(pd.DataFrame({"one": [1.0, None], "inf": [1.0, np.inf]}))["columns"]
    assert columns["one"]["std"] is None
    assert columns["one"]["quantiles"]["0.5"] == 1.0
    assert columns["inf"]["mean"] is None
    assert columns["inf"]["max"] is None
    assert columns["inf"]["min"] == 1.0
    json.dumps(columns, allow_nan=False)


def test_only_the_requested_columns_are_profiled() -> None:
    frame = pd.DataFrame({"a": [1], "b": [2], "c": [3]})
    assert list(profile_table(frame, columns=["c", "a"])["columns"]) == ["c", "a"]
    with pytest.raises(DataError, match="cannot profile unknown column\\(s\\) 'z'; the table has"):
        profile_table(frame, columns=["a", "z"])
