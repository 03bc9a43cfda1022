"""Profiles: exact moments and counts, the sketch within its bound, merge, JSON round trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regrow.errors import DataError, SliceError
from regrow.monitor.profile import (
    DISTINCT_CAP,
    TOP_K,
    Profile,
    merge,
    merge_columns,
    profile_column,
)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


def test_numeric_profile_matches_numpy() -> None:
    x = np.random.default_rng(0).normal(size=1000)
    p = profile_column("x", pa.array(x))
    assert p.count == 1000
    assert p.nulls == 0
    assert p.mean == pytest.approx(x.mean())
    assert p.std == pytest.approx(x.std(ddof=1))
    assert (p.min, p.max) == (x.min(), x.max())
    assert p.rank_error == 0.0  # 1,000 values fit the sketch exactly


def test_sketch_quantiles_are_within_the_stated_rank_error() -> None:
    x = np.random.default_rng(1).normal(size=100_000)
    p = profile_column("x", pa.array(x))
    assert 0 < p.rank_error < 0.001
    kll = p.kll()
    assert kll is not None
    grid = np.linspace(-3, 3, 61)
    sketch_cdf = np.asarray(kll.get_cdf(grid, inclusive=True))[:-1]
    exact = np.searchsorted(np.sort(x), grid, side="right") / x.size
    assert np.abs(sketch_cdf - exact).max() <= p.rank_error


def test_nan_and_none_count_as_null() -> None:
    p = Profile.of(pd.DataFrame({"x": [1.0, np.nan, None, 3.0]}))
    assert (p["x"].count, p["x"].nulls, p["x"].null_rate) == (2, 2, 0.5)


def test_all_null_column_has_no_statistics() -> None:
    p = profile_column("x", pa.array([None, None], pa.float64()))
    assert p.count == 0
    assert math.isnan(p.mean)
    assert p.sketch is None


def test_categorical_profile_counts_values() -> None:
    p = Profile.of(pd.DataFrame({"c": ["b", "a", "b", None], "flag": [True, False, True, True]}))
    assert p["c"].counts == (("b", 2), ("a", 1))
    assert (p["c"].distinct, p["c"].complete, p["c"].nulls) == (2, True, 1)
    assert p["flag"].kind == "categorical"
    assert p["flag"].counts[0] == ("true", 3)


def test_category_dtype_is_categorical() -> None:
    p = Profile.of(pd.DataFrame({"c": pd.Categorical(["x", "y", "x"])}))
    assert p["c"].kind == "categorical"
    assert p["c"].counts == (("x", 2), ("y", 1))


def test_many_categories_keep_top_k_and_other() -> None:
    values = [f"v{i}" for i in range(DISTINCT_CAP + 10)] + ["v0"] * 5
    p = profile_column("c", pa.array(values))
    assert not p.complete
    assert len(p.counts) == TOP_K
    assert p.counts[0] == ("v0", 6)
    assert p.other + sum(c for _, c in p.counts) == len(values)
    assert p.distinct == DISTINCT_CAP + 10


def test_slices_are_profiled() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
    p = Profile.of(frame, slices={"a": "c == 'a'"})
    assert p.slices["a"]["x"].count == 2
    assert p.slices["a"]["c"].counts == (("a", 2),)


def test_bad_slice_raises_slice_error() -> None:
    with pytest.raises(SliceError, match="nope"):
        Profile.of(pd.DataFrame({"x": [1.0]}), slices={"nope": "missing > 1"})


def test_unknown_column_names_the_columns() -> None:
    with pytest.raises(DataError, match=r"'y'.*'x'"):
        Profile.of(pd.DataFrame({"x": [1.0]}))["y"]


def test_json_round_trip() -> None:
    frame = pd.DataFrame({"x": np.arange(10.0), "c": list("ababababab"), "n": [None] * 10})
    p = Profile.of(frame, slices={"low": "x < 5"})
    text = json.dumps(p.to_dict())
    assert Profile.from_dict(json.loads(text)) == p


def test_merge_of_halves_equals_whole_within_sketch_error() -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x": rng.normal(size=60_000), "c": rng.choice(list("abc"), 60_000)})
    whole = Profile.of(frame)
    merged = merge(Profile.of(frame.iloc[:25_000]), Profile.of(frame.iloc[25_000:]))
    a, b = merged["x"], whole["x"]
    assert (a.count, a.min, a.max) == (b.count, b.min, b.max)
    assert a.mean == pytest.approx(b.mean, abs=1e-12)
    assert a.m2 == pytest.approx(b.m2)
    ka, kb = a.kll(), b.kll()
    assert ka is not None
    assert kb is not None
    grid = np.linspace(-3, 3, 31)
    exact = np.searchsorted(np.sort(frame["x"].to_numpy()), grid, side="right") / len(frame)
    assert np.abs(np.asarray(ka.get_cdf(grid, inclusive=True))[:-1] - exact).max() <= a.rank_error
    assert merged["c"].counts == whole["c"].counts


def test_merge_refuses_different_columns() -> None:
    with pytest.raises(DataError, match="different columns"):
        merge(Profile.of(pd.DataFrame({"x": [1.0]})), Profile.of(pd.DataFrame({"y": [1.0]})))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(finite, st.none()), min_size=0, max_size=40),
    st.lists(st.one_of(finite, st.none()), min_size=0, max_size=40),
)
def test_numeric_merge_is_profile_of_union(a: list[float | None], b: list[float | None]) -> None:
    pa_, pb = (
        profile_column("x", pa.array(a, pa.float64())),
        profile_column("x", pa.array(b, pa.float64())),
    )
    whole = profile_column("x", pa.array(a + b, pa.float64()))
    merged = merge_columns(pa_, pb)
    assert (merged.count, merged.nulls) == (whole.count, whole.nulls)
    if whole.count:
        assert (merged.min, merged.max) == (whole.min, whole.max)
        assert merged.mean == pytest.approx(whole.mean, rel=1e-9, abs=1e-6)
        assert merged.m2 == pytest.approx(whole.m2, rel=1e-6, abs=1e-3)
        km, kw = merged.kll(), whole.kll()
        assert km is not None
        assert kw is not None
        qs = [0.0, 0.25, 0.5, 0.75, 1.0]
        assert km.get_quantiles(qs) == kw.get_quantiles(qs)  # exact below the sketch's capacity


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from("abcde"), st.none()), max_size=40),
    st.lists(st.one_of(st.sampled_from("abcdef"), st.none()), max_size=40),
)
def test_categorical_merge_is_profile_of_union(a: list[str | None], b: list[str | None]) -> None:
    whole = profile_column("c", pa.array(a + b, pa.string()))
    merged = merge_columns(
        profile_column("c", pa.array(a, pa.string())), profile_column("c", pa.array(b, pa.string()))
    )
    assert merged == whole


def test_derived_values_are_built_once_per_profile_object_and_never_travel() -> None:
    import pickle
    from dataclasses import replace

    p = profile_column("x", pa.array([1.0, 2.0, 3.0]))
    calls: list[str] = []

    def build(c: object) -> list[str]:
        calls.append("built")
        return calls

    assert p.derived("k", build) is p.derived("k", build)
    assert calls == ["built"]
    assert "_derived" not in pickle.loads(pickle.dumps(p)).__dict__
    assert "_derived" not in replace(p, name="y").__dict__
    assert p == profile_column("x", pa.array([1.0, 2.0, 3.0]))  # the memo is not compared
    assert "_derived" not in json.dumps(p.to_dict())
