"""Boundary adapters leave the old shape alone, bridge the new one exactly, refuse bad data and
bad configuration with regrow errors that name the column and the value, and round-trip as
JSON with a stable digest."""

from __future__ import annotations

import json
import operator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from regrow.data.adapters import (
    ADAPTER_KINDS,
    Adapter,
    Adapters,
    Cast,
    Default,
    Derived,
    MapCategories,
    Rename,
    adapter_from_dict,
)
from regrow.errors import ConfigError, DataError, RegrowError


def raises(error: type[RegrowError], *fragments: str, call: Any) -> str:
    """Run ``call`` and check it raises ``error`` naming every fragment, with a hint."""
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert info.value.hint, f"no hint on {message!r}"
    return message


# -- Rename ---------------------------------------------------------------------------------


def test_rename_leaves_the_old_shape_as_the_same_frame() -> None:
    frame = pd.DataFrame({"plan": ["pro"], "tier": ["gold"]})
    assert Rename("plan", source="tier").apply(frame) is frame


def test_rename_feeds_the_source_column_under_the_new_name() -> None:
    frame = pd.DataFrame({"tier": ["pro", "free"], "age": [1, 2]})
    out = Rename("plan", source="tier").apply(frame)
    assert out.columns.tolist() == ["plan", "age"]
    pd.testing.assert_series_equal(out["plan"], frame["tier"], check_names=False)
    assert frame.columns.tolist() == ["tier", "age"]  # the caller's frame is untouched


def test_rename_without_either_column_names_the_source_and_lists_the_columns() -> None:
    message = raises(
        DataError,
        "no column 'tier'",
        "rename adapter of 'plan'",
        "['age']",
        call=lambda: Rename("plan", source="tier").apply(pd.DataFrame({"age": [1]})),
    )
    assert "fix the adapter or the data" in message


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"column": "", "source": "tier"}, "a rename's column must be a non-empty column name"),
        ({"column": "plan", "source": ""}, "the source of the rename to 'plan'"),
        ({"column": "plan"}, "the source of the rename to 'plan'"),
        ({"column": 3, "source": "tier"}, "(got 3)"),
        ({"column": "plan", "source": "plan"}, "rename of 'plan' to itself"),
    ],
)
def test_rename_refuses_bad_configuration(kwargs: dict[str, Any], fragment: str) -> None:
    raises(ConfigError, fragment, call=lambda: Rename(**kwargs))


# -- Cast: bridging -------------------------------------------------------------------------


def test_cast_to_int_of_integral_floats_equals_the_original_int_column() -> None:
    original = pd.Series([31, 45, -2, 0], name="age")
    out = Cast("age", "int").apply(pd.DataFrame({"age": original.astype("float64")}))
    assert out["age"].dtype == np.int64
    pd.testing.assert_series_equal(out["age"], original)


@given(st.lists(st.integers(min_value=-(2**52), max_value=2**52), max_size=20))
def test_cast_to_int_round_trips_any_whole_float(values: list[int]) -> None:
    original = pd.Series(values, name="n", dtype="int64")
    out = Cast("n", "int").apply(pd.DataFrame({"n": original.astype("float64")}))
    pd.testing.assert_series_equal(out["n"], original)


@pytest.mark.parametrize(
    ("dtype", "values"),
    [
        ("int", pd.Series([1, 2], dtype="int64")),
        ("int", pd.Series([1, 2], dtype="int32")),
        ("float", pd.Series([1.5, np.nan])),
        ("bool", pd.Series([True, False])),
        ("string", pd.Series(["a", None])),
    ],
)
def test_cast_leaves_a_column_of_the_type_as_the_same_frame(dtype: str, values: pd.Series) -> None:
    frame = pd.DataFrame({"x": values})
    assert Cast("x", dtype).apply(frame) is frame


@pytest.mark.parametrize(
    ("dtype", "values", "expected"),
    [
        ("int", ["31", "45"], pd.Series([31, 45])),
        ("int", [True, False], pd.Series([1, 0])),
        ("int", pd.array([3, 4], dtype="Int64"), pd.Series([3, 4])),
        ("float", [1, 2], pd.Series([1.0, 2.0])),
        ("float", ["1.5", None], pd.Series([1.5, np.nan])),
        ("float", pd.array([1.5, None], dtype="Float64"), pd.Series([1.5, np.nan])),
        ("float", np.array([0.5, 2.0], dtype="float32"), pd.Series([0.5, 2.0])),
        ("bool", [1.0, 0.0], pd.Series([True, False])),
        ("bool", ["1", "0"], pd.Series([True, False])),
        ("string", [1, 22], pd.Series(["1", "22"], dtype=object)),
        ("string", [1.5, np.nan], pd.Series(["1.5", np.nan], dtype=object)),
        ("string", pd.Categorical(["a", None]), pd.Series(["a", np.nan], dtype=object)),
    ],
)
def test_cast_bridges_to_exact_values_and_dtype(
    dtype: str, values: Any, expected: pd.Series
) -> None:
    frame = pd.DataFrame({"x": values, "other": range(len(values))})
    out = Cast("x", dtype).apply(frame)
    pd.testing.assert_series_equal(out["x"], expected, check_names=False)
    assert out.columns.tolist() == ["x", "other"]
    assert frame["x"].dtype != out["x"].dtype  # the caller's frame is untouched


def test_cast_range_allows_values_on_the_bounds() -> None:
    frame = pd.DataFrame({"age": [0.0, 130.0]})
    assert Cast("age", "int", min=0, max=130).apply(frame)["age"].tolist() == [0, 130]


# -- Cast: refusals -------------------------------------------------------------------------


def test_cast_refuses_a_missing_column() -> None:
    raises(
        DataError,
        "no column 'age'",
        "cast adapter of 'age'",
        call=lambda: Cast("age", "int").apply(pd.DataFrame({"b": [1]})),
    )


def test_cast_to_int_refuses_a_fraction_naming_column_and_value() -> None:
    raises(
        DataError,
        "column 'age': 1 value is not a whole number (31.5), so cast to int cannot bridge it",
        "the cast adapter of 'age'",
        call=lambda: Cast("age", "int").apply(pd.DataFrame({"age": [1.0, 31.5]})),
    )


def test_cast_counts_and_shows_at_most_three_distinct_examples() -> None:
    frame = pd.DataFrame({"x": [0.5, 1.5, 2.5, 3.5, 4.5, 0.5, 7.0]})
    raises(
        DataError,
        "6 values are not whole numbers (0.5, 1.5, 2.5, ... (2 more))",
        call=lambda: Cast("x", "int").apply(frame),
    )


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_cast_to_int_refuses_infinity(value: float) -> None:
    raises(
        DataError,
        "is not a whole number",
        repr(value),
        call=lambda: Cast("x", "int").apply(pd.DataFrame({"x": [1.0, value]})),
    )


def test_cast_to_int_refuses_floats_beyond_int64_instead_of_wrapping() -> None:
    raises(
        DataError,
        "column 'x': 1 value outside the int64 range (1e+20)",
        call=lambda: Cast("x", "int").apply(pd.DataFrame({"x": [1.0, 1e20]})),
    )


@pytest.mark.parametrize(
    ("kwargs", "values", "fragment"),
    [
        ({"max": 130}, [31.0, 200.0], "1 value outside the cast's range max=130 (200.0)"),
        ({"min": 0}, [-1, 5, -3], "2 values outside the cast's range min=0 (-1, -3)"),
        ({"min": 0, "max": 1.5}, [2.0], "outside the cast's range min=0, max=1.5 (2.0)"),
        ({"max": 130}, ["31", "200"], "1 value outside the cast's range max=130 ('200')"),
        ({"max": 130}, pd.array([200, None], dtype="Int64"), "max=130 (200)"),
    ],
)
def test_cast_refuses_values_outside_its_range(
    kwargs: dict[str, Any], values: Any, fragment: str
) -> None:
    message = raises(
        DataError,
        "column 'age'",
        fragment,
        "widen the cast's range",
        call=lambda: Cast("age", "int", **kwargs).apply(pd.DataFrame({"age": values})),
    )
    assert "so cast to int cannot bridge it" in message


@pytest.mark.parametrize("dtype", ["int", "float", "bool"])
def test_cast_to_a_number_refuses_a_stray_string(dtype: str) -> None:
    raises(
        DataError,
        "column 'age': 1 value is not a number ('abc')",
        f"cast to {dtype}",
        call=lambda: Cast("age", dtype).apply(pd.DataFrame({"age": ["1", "abc", None]})),
    )


def test_cast_reports_several_stray_strings() -> None:
    raises(
        DataError,
        "2 values are not numbers ('n/a', '?')",
        call=lambda: Cast("x", "float").apply(pd.DataFrame({"x": ["n/a", "1", "?"]})),
    )


@pytest.mark.parametrize(
    ("dtype", "values", "fragment"),
    [
        ("int", [1.0, np.nan, np.nan], "column 'x': 2 null values cannot be cast to int"),
        ("int", pd.array([1, None], dtype="Int64"), "column 'x': 1 null value cannot be cast"),
        ("int", ["1", None], "1 null value cannot be cast to int"),
        ("bool", [1.0, None], "column 'x': 1 null value cannot be cast to bool"),
    ],
)
def test_cast_refuses_nulls_and_hints_at_a_default(dtype: str, values: Any, fragment: str) -> None:
    message = raises(
        DataError, fragment, call=lambda: Cast("x", dtype).apply(pd.DataFrame({"x": values}))
    )
    assert "declare a Default adapter for 'x' before the cast" in message


def test_cast_to_bool_refuses_numbers_other_than_0_and_1() -> None:
    raises(
        DataError,
        "column 'x': 1 value is not 0 or 1 (2.0), so cast to bool",
        call=lambda: Cast("x", "bool").apply(pd.DataFrame({"x": [1.0, 2.0]})),
    )


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"column": "age", "dtype": "integer"}, "cast of 'age': unknown dtype 'integer'"),
        ({"column": "age", "dtype": "int", "min": 5, "max": 1}, "min 5 is above max 1"),
        ({"column": "age", "dtype": "int", "min": "0"}, "min must be a number (got '0')"),
        ({"column": "age", "dtype": "int", "max": True}, "max must be a number (got True)"),
        ({"column": "", "dtype": "int"}, "a cast's column must be a non-empty column name"),
    ],
)
def test_cast_refuses_bad_configuration(kwargs: dict[str, Any], fragment: str) -> None:
    raises(ConfigError, fragment, call=lambda: Cast(**kwargs))


def test_cast_unknown_dtype_hint_lists_the_dtypes() -> None:
    message = raises(ConfigError, call=lambda: Cast("age", "object"))
    assert "use one of int, float, bool, string" in message


# -- Default --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "dtype"),
    [(1, np.int64), (2.5, np.float64), (True, np.bool_), ("none", None)],
)
def test_default_adds_a_missing_column_of_the_value_type(value: Any, dtype: Any) -> None:
    frame = pd.DataFrame({"b": [1, 2, 3]})
    out = Default("a", value).apply(frame)
    assert out["a"].tolist() == [value] * 3
    if dtype is not None:
        assert out["a"].dtype == dtype
    else:
        assert pd.api.types.is_string_dtype(out["a"])
    assert "a" not in frame.columns


def test_default_on_an_empty_frame_keeps_the_value_type() -> None:
    out = Default("seats", 1).apply(pd.DataFrame({"b": pd.Series([], dtype="int64")}))
    assert len(out) == 0
    assert out["seats"].dtype == np.int64


def test_default_leaves_a_column_without_nulls_as_the_same_frame() -> None:
    frame = pd.DataFrame({"a": [1.5, 2.0]})
    assert Default("a", 0).apply(frame) is frame


def test_default_fills_nulls_of_a_float_column_and_keeps_it_float() -> None:
    frame = pd.DataFrame({"a": [1.5, np.nan, 3.0]})
    out = Default("a", 0).apply(frame)
    pd.testing.assert_series_equal(out["a"], pd.Series([1.5, 0.0, 3.0], name="a"))
    assert frame["a"].isna().sum() == 1  # the caller's frame is untouched


def test_default_fills_nulls_of_an_integral_float_column_with_an_int() -> None:
    out = Default("a", 7).apply(pd.DataFrame({"a": [1.0, None]}))
    assert out["a"].dtype == np.float64
    assert out["a"].tolist() == [1.0, 7.0]


def test_default_fills_nulls_of_a_string_column() -> None:
    out = Default("plan", "none").apply(pd.DataFrame({"plan": ["pro", None, np.nan]}))
    assert out["plan"].tolist() == ["pro", "none", "none"]
    assert pd.api.types.is_string_dtype(out["plan"])


def test_default_fills_a_nullable_int_column() -> None:
    out = Default("n", 0).apply(pd.DataFrame({"n": pd.array([4, None], dtype="Int64")}))
    assert out["n"].tolist() == [4, 0]


def test_default_then_cast_bridges_nulls_to_int() -> None:
    out = Adapters([Default("x", 0), Cast("x", "int")]).apply(pd.DataFrame({"x": [2.0, None]}))
    pd.testing.assert_series_equal(out["x"], pd.Series([2, 0], name="x"))


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (None, "the default of 'a' has no value"),
        (float("nan"), "the default of 'a' has no value"),
        ([1], "must be a number, a string or a bool (got list)"),
        (pd.Timestamp("2024-01-01"), "(got Timestamp)"),
    ],
)
def test_default_refuses_a_missing_or_unstorable_value(value: Any, fragment: str) -> None:
    raises(ConfigError, fragment, call=lambda: Default("a", value))


def test_default_without_a_value_is_refused() -> None:
    message = raises(ConfigError, "has no value", call=lambda: Default("seats"))
    assert "Default('seats', 1)" in message


# -- MapCategories --------------------------------------------------------------------------

PLANS = ("free", "gold", "other")


def test_map_categories_maps_then_sends_unseen_values_to_the_unseen_category() -> None:
    adapter = MapCategories("plan", {"gold+": "gold"}, known=PLANS, unseen="other")
    frame = pd.DataFrame({"plan": ["gold+", "free", "team", None, "gold"]})
    out = adapter.apply(frame)
    assert out["plan"].tolist()[:3] == ["gold", "free", "other"]
    assert pd.isna(out["plan"].iloc[3])  # nulls stay null
    assert out["plan"].iloc[4] == "gold"
    assert frame["plan"].tolist()[0] == "gold+"


def test_map_categories_with_only_a_mapping_leaves_other_values() -> None:
    out = MapCategories("plan", {"gold+": "gold"}).apply(pd.DataFrame({"plan": ["gold+", "x"]}))
    assert out["plan"].tolist() == ["gold", "x"]


@pytest.mark.parametrize(
    "values",
    [
        ["free", "gold", None],
        pd.Categorical(["free", "gold", None]),
        pd.Categorical(["free", None], categories=["free", "gold", "team"]),
    ],
)
def test_map_categories_leaves_known_values_as_the_same_frame(values: Any) -> None:
    frame = pd.DataFrame({"plan": values})
    adapter = MapCategories("plan", {"gold+": "gold"}, known=PLANS, unseen="other")
    assert adapter.apply(frame) is frame


def test_map_categories_on_a_categorical_with_nulls() -> None:
    frame = pd.DataFrame({"plan": pd.Categorical(["gold+", None, "team", "free", None])})
    adapter = MapCategories("plan", {"gold+": "gold"}, known=PLANS, unseen="other")
    out = adapter.apply(frame)["plan"]
    assert out.iloc[[0, 2, 3]].tolist() == ["gold", "other", "free"]
    assert out.isna().tolist() == [False, True, False, False, True]


def test_map_categories_refuses_a_missing_column() -> None:
    adapter = MapCategories("plan", {"a": "b"})
    raises(
        DataError,
        "no column 'plan' for the category mapping adapter",
        call=lambda: adapter.apply(pd.DataFrame({"tier": ["a"]})),
    )


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"mapping": {"gold+": "platinum"}, "known": PLANS, "unseen": "other"}, "'platinum'"),
        ({"known": PLANS, "unseen": "team"}, "maps unseen values to 'team'"),
        ({"known": PLANS}, "needs both known and unseen, or neither"),
        ({"mapping": {"a": "b"}, "unseen": "b"}, "needs both known and unseen, or neither"),
        ({}, "the category mapping of 'plan' maps nothing"),
        ({"mapping": {"a": 1}}, "must map strings to strings (got {'a': 1})"),
        ({"mapping": ["a", "b"]}, "must map strings to strings"),
    ],
)
def test_map_categories_refuses_bad_configuration(kwargs: dict[str, Any], fragment: str) -> None:
    raises(
        ConfigError,
        "the category mapping of 'plan'",
        fragment,
        call=lambda: MapCategories("plan", **kwargs),
    )


def test_map_categories_to_an_unknown_category_names_it_and_the_known_ones() -> None:
    message = raises(
        ConfigError,
        "maps to 'platinum', which is not a known category",
        call=lambda: MapCategories("plan", {"a": "platinum", "b": "gold"}, PLANS, "other"),
    )
    assert "['free', 'gold', 'other']" in message


def test_map_categories_stores_mapping_and_known_sorted() -> None:
    known = ["other", "gold", "free"]
    adapter = MapCategories("plan", {"z": "gold", "a": "free"}, known=known, unseen="other")  # type: ignore[arg-type]
    assert list(adapter.mapping) == ["a", "z"]
    assert adapter.known == ("free", "gold", "other")


# -- Derived --------------------------------------------------------------------------------


def test_derived_computes_the_column_with_a_function_path() -> None:
    frame = pd.DataFrame({"a": [3.0, 5.0], "b": [4.0, 12.0]})
    out = Derived("hyp", "numpy:hypot", inputs=("a", "b")).apply(frame)
    pd.testing.assert_series_equal(out["hyp"], pd.Series([5.0, 13.0], name="hyp"))
    assert "hyp" not in frame.columns


def test_derived_accepts_the_function_itself_and_stores_its_path() -> None:
    adapter = Derived("ratio", operator.truediv, version=2, inputs=["a", "b"])  # type: ignore[arg-type]
    assert adapter.function == f"{operator.truediv.__module__}:truediv"
    assert adapter.inputs == ("a", "b")
    assert adapter.resolve() is operator.truediv
    out = adapter.apply(pd.DataFrame({"a": [1, 3], "b": [2, 4]}, index=[10, 20]))
    pd.testing.assert_series_equal(
        out["ratio"], pd.Series([0.5, 0.75], index=[10, 20], name="ratio")
    )


def test_derived_resolves_a_dotted_qualname() -> None:
    adapter = Derived("s", "numpy:char.upper", inputs="a")  # type: ignore[arg-type]
    assert adapter.inputs == ("a",)
    assert adapter.resolve() is np.char.upper


def test_derived_leaves_a_frame_that_has_the_column_as_the_same_frame() -> None:
    frame = pd.DataFrame({"total": [1]})  # the inputs need not even be there
    assert Derived("total", "numpy:add", inputs=("a", "b")).apply(frame) is frame


def test_derived_refuses_a_missing_input() -> None:
    raises(
        DataError,
        "no column 'b' for the derived adapter of 'total'",
        call=lambda: Derived("total", "numpy:add", inputs=("a", "b")).apply(
            pd.DataFrame({"a": [1]})
        ),
    )


def test_derived_turns_a_failing_function_into_a_data_error_naming_the_column() -> None:
    frame = pd.DataFrame({"a": ["x", "y"], "b": [1, 2]})
    message = raises(
        DataError,
        "derived column 'ratio': ",
        "truediv (version 3) failed: TypeError",
        "check its inputs ['a', 'b']",
        call=lambda: Derived("ratio", "operator:truediv", version=3, inputs=("a", "b")).apply(
            frame
        ),
    )
    assert "ratio" in message


@pytest.mark.parametrize(
    ("function", "fragment"),
    [
        ("numpy:unique", "numpy:unique returned 2 values for 3 rows"),
        ("numpy:sum", "numpy:sum returned an array of shape () for 3 rows"),
    ],
)
def test_derived_refuses_a_result_that_is_not_one_value_per_row(
    function: str, fragment: str
) -> None:
    raises(
        DataError,
        "derived column 'r'",
        fragment,
        call=lambda: Derived("r", function, inputs=("a",)).apply(pd.DataFrame({"a": [1, 1, 2]})),
    )


def _nested() -> Any:
    def inner(a: Any) -> Any:
        return a

    return inner


def _in_main(a: Any) -> Any:
    return a


_in_main.__module__ = "__main__"


@pytest.mark.parametrize(
    ("function", "fragment"),
    [
        (lambda a: a, "is not a module-level function"),
        (_nested(), "is not a module-level function"),
        (_in_main, "_in_main is defined in __main__, which serving cannot import"),
        (42, "42 is not a module-level function"),
        ("numpy.add", "function 'numpy.add' is not 'module:name'"),
        ("", "function '' is not 'module:name'"),
    ],
)
def test_derived_refuses_a_function_serving_cannot_import(function: Any, fragment: str) -> None:
    raises(
        ConfigError, "derived column 'r'", fragment, call=lambda: Derived("r", function, 1, ("a",))
    )


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("regrow_no_such_module:f", "cannot import 'regrow_no_such_module:f'"),
        ("operator:no_such_function", "cannot import 'operator:no_such_function'"),
        ("math:pi", "'math:pi' is not callable"),
    ],
)
def test_derived_with_a_bad_path_is_refused_when_resolved(path: str, fragment: str) -> None:
    adapter = Derived("r", path, inputs=("a",))
    frame = pd.DataFrame({"a": [1.0]})
    raises(ConfigError, "derived column 'r'", fragment, call=adapter.resolve)
    raises(ConfigError, fragment, call=lambda: adapter.apply(frame))
    # a bad path is configuration, not dirty rows: lenient mode does not swallow it
    raises(ConfigError, fragment, call=lambda: Adapters([adapter]).apply(frame, problems=[]))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"version": True}, "version must be an int (got True)"),
        ({"version": "1"}, "version must be an int (got '1')"),
        ({"inputs": ()}, "derived column 'r' names no inputs"),
        ({"inputs": ("a", "")}, "an input must be a non-empty column name"),
    ],
)
def test_derived_refuses_bad_configuration(kwargs: dict[str, Any], fragment: str) -> None:
    raises(
        ConfigError, fragment, call=lambda: Derived("r", "numpy:add", **{"inputs": "a", **kwargs})
    )


# -- Adapters: applying ---------------------------------------------------------------------


def _boundary() -> Adapters:
    return Adapters(
        [
            Rename("plan", source="tier"),
            MapCategories("plan", {"gold+": "gold"}, known=PLANS, unseen="other"),
            Default("seats", 1),
            Cast("age", "int", min=0, max=130),
            Derived("age_per_seat", "operator:truediv", inputs=("age", "seats")),
        ]
    )


def test_adapters_leave_the_old_shape_as_the_same_frame() -> None:
    frame = pd.DataFrame(
        {
            "plan": ["free", "gold"],
            "seats": [1, 2],
            "age": [30, 40],
            "age_per_seat": [30.0, 20.0],
        }
    )
    assert _boundary().apply(frame) is frame
    problems: list[str] = []
    assert _boundary().apply(frame, problems=problems) is frame
    assert problems == []


def test_adapters_bridge_the_new_shape_in_order() -> None:
    frame = pd.DataFrame({"tier": ["gold+", "team"], "age": [30.0, 40.0]})
    out = _boundary().apply(frame)
    expected = pd.DataFrame(
        {
            "plan": ["gold", "other"],
            "age": [30, 40],
            "seats": [1, 1],
            "age_per_seat": [30.0, 40.0],
        }
    )
    pd.testing.assert_frame_equal(out, expected, check_dtype=False)
    assert out["age"].dtype == np.int64
    assert out["seats"].dtype == np.int64
    assert frame.columns.tolist() == ["tier", "age"]
    assert frame["age"].dtype == np.float64


def test_adapters_raise_the_first_data_error_without_problems() -> None:
    frame = pd.DataFrame({"tier": ["free"], "age": [31.5]})
    raises(
        DataError,
        "column 'age': 1 value is not a whole number (31.5)",
        call=lambda: _boundary().apply(frame),
    )


def test_lenient_mode_skips_the_defeated_adapter_and_records_why() -> None:
    frame = pd.DataFrame({"tier": ["gold+"], "age": [31.5]})
    problems: list[str] = []
    out = _boundary().apply(frame, problems=problems)
    assert problems == [
        "cast adapter skipped: column 'age': 1 value is not a whole number (31.5), "
        "so cast to int cannot bridge it"
    ]
    assert out["age"].tolist() == [31.5]  # the cast was skipped
    assert out["plan"].tolist() == ["gold"]  # the others ran
    assert out["age_per_seat"].tolist() == [31.5]


def test_lenient_mode_collects_every_problem_in_order() -> None:
    adapters = Adapters([Rename("plan", source="tier"), Cast("age", "int"), Default("n", 0)])
    problems = ["earlier"]
    out = adapters.apply(pd.DataFrame({"age": ["x"]}), problems=problems)
    assert problems[0] == "earlier"
    assert problems[1].startswith("rename adapter skipped: the data has no column 'tier'")
    assert problems[2].startswith("cast adapter skipped: column 'age': 1 value is not a number")
    assert len(problems) == 3
    assert out.columns.tolist() == ["age", "n"]


def test_empty_adapters_return_the_frame_itself() -> None:
    frame = pd.DataFrame({"a": [1]})
    assert Adapters().apply(frame) is frame
    assert not Adapters()
    assert len(Adapters.from_list(None)) == 0


# -- Adapters: the collection ---------------------------------------------------------------


def test_adapters_are_a_sequence_and_accept_stored_dicts() -> None:
    adapters = Adapters([{"kind": "rename", "column": "plan", "source": "tier"}, Default("n", 0)])
    assert len(adapters) == 2
    assert adapters[0] == Rename("plan", source="tier")
    assert list(adapters) == [Rename("plan", source="tier"), Default("n", 0)]
    assert isinstance(adapters[:1], tuple)
    assert "Rename(column='plan', source='tier')" in repr(adapters)


@pytest.mark.parametrize(
    "items",
    [
        [Rename("a", source="x"), Rename("a", source="y")],
        [Rename("a", source="x"), Default("a", 1)],
        [Default("a", 1), Derived("a", "numpy:add", inputs=("b", "c"))],
        [Default("a", 1), Default("a", 2)],
    ],
)
def test_adapters_refuse_two_producers_of_one_column(items: list[Adapter]) -> None:
    raises(ConfigError, "column 'a' has two adapters that produce it", call=lambda: Adapters(items))


def test_adapters_allow_a_produced_column_to_be_cast_and_mapped() -> None:
    adapters = Adapters(
        [
            Rename("a", source="x"),
            Cast("a", "string"),
            MapCategories("a", {"1": "one"}),
            Cast("a", "string"),
        ]
    )
    assert adapters.apply(pd.DataFrame({"x": [1, 2]}))["a"].tolist() == ["one", "2"]


@pytest.mark.parametrize("item", [5, "rename", None])
def test_adapters_refuse_what_is_not_an_adapter(item: Any) -> None:
    raises(ConfigError, "unknown adapter", call=lambda: Adapters([item]))


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (["plan", "age"], ["age", "tier"]),  # rename then map: the source is needed
        (["seats"], []),  # a default's column is read when present, filled when not
        (["age_per_seat"], ["age"]),  # derived needs its inputs; seats has a default
        (["age", "other"], ["age", "other"]),  # a cast needs its own column
        ([], []),
    ],
)
def test_sources_walk_the_adapters_backwards(columns: list[str], expected: list[str]) -> None:
    assert _boundary().sources(columns) == expected


def test_sources_follow_a_derived_input_back_through_a_rename() -> None:
    adapters = Adapters(
        [
            Rename("b", source="old_b"),
            Cast("b", "float"),
            Derived("r", "operator:truediv", inputs=("a", "b")),
        ]
    )
    assert adapters.sources(["r"]) == ["a", "old_b"]
    assert adapters.sources(["r", "b"]) == ["a", "old_b"]


def test_touching_keeps_the_adapters_of_the_columns_in_order() -> None:
    touching = _boundary().touching(["plan", "age"])
    assert [type(a) for a in touching] == [Rename, MapCategories, Cast]
    assert len(_boundary().touching(["nothing"])) == 0


def test_describe_gives_one_line_per_adapter() -> None:
    assert _boundary().describe() == [
        "rename   'tier' → 'plan'",
        "map      'plan': 'gold+' → 'gold', unseen → 'other'",
        "default  'seats' = 1 where missing or null",
        "cast     'age' to int (min=0, max=130)",
        "derived  'age_per_seat' = operator:truediv(age, seats) v1",
    ]
    assert Cast("a", "float").describe() == "cast     'a' to float"


# -- JSON round trip and digest -------------------------------------------------------------

names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=8)
numbers = st.one_of(st.none(), st.integers(-(10**6), 10**6), st.floats(-1e6, 1e6, allow_nan=False))


@st.composite
def renames(draw: st.DrawFn) -> Rename:
    column = draw(names)
    return Rename(column, source=draw(names.filter(lambda s: s != column)))


@st.composite
def casts(draw: st.DrawFn) -> Cast:
    low, high = draw(numbers), draw(numbers)
    if low is not None and high is not None and low > high:
        low, high = high, low
    return Cast(draw(names), draw(st.sampled_from(["int", "float", "bool", "string"])), low, high)


defaults = st.builds(
    Default,
    names,
    st.one_of(
        st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), names
    ),
)


@st.composite
def mappings(draw: st.DrawFn) -> MapCategories:
    known = draw(st.none() | st.lists(names, min_size=1, max_size=4, unique=True))
    targets = st.sampled_from(known) if known else names
    mapping = draw(st.dictionaries(names, targets, min_size=0 if known else 1, max_size=4))
    unseen = draw(st.sampled_from(known)) if known else None
    return MapCategories(draw(names), mapping, tuple(known) if known else None, unseen)


deriveds = st.builds(
    Derived,
    names,
    st.sampled_from(["numpy:add", "operator:truediv", "numpy:hypot"]),
    st.integers(-5, 100),
    st.lists(names, min_size=1, max_size=3).map(tuple),
)
adapters = st.one_of(renames(), casts(), defaults, mappings(), deriveds)


@given(adapters)
def test_every_adapter_round_trips_through_json(adapter: Adapter) -> None:
    stored = json.loads(json.dumps(adapter.to_dict()))
    assert stored["kind"] == adapter.kind
    back = adapter_from_dict(stored)
    assert back == adapter
    assert type(back) is type(adapter)
    assert back.to_dict() == adapter.to_dict()
    assert back.describe() == adapter.describe()


@given(st.lists(adapters, max_size=5))
def test_adapters_round_trip_through_json_with_a_stable_digest(items: list[Adapter]) -> None:
    producers = [a.column for a in items if isinstance(a, Rename | Derived | Default)]
    if len(producers) != len(set(producers)):
        return  # two producers of one column are refused (tested above)
    original = Adapters(items)
    back = Adapters.from_list(json.loads(json.dumps(original.to_list())))
    assert back == original
    assert hash(back) == hash(original)
    assert back.digest() == original.digest() == Adapters(items).digest()
    assert len(original.digest()) == 12


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (Rename("a", source="x"), Rename("b", source="x")),
        (Rename("a", source="x"), Rename("a", source="y")),
        (Cast("a", "int"), Cast("b", "int")),
        (Cast("a", "int"), Cast("a", "float")),
        (Cast("a", "int", min=0), Cast("a", "int", min=1)),
        (Cast("a", "int", max=9), Cast("a", "int", max=10)),
        (Cast("a", "int", min=0), Cast("a", "int", min=0.0)),  # stored differently
        (Default("a", 1), Default("b", 1)),
        (Default("a", 1), Default("a", 2)),
        (Default("a", 1), Default("a", True)),
        (Default("a", 1), Default("a", "1")),
        (MapCategories("a", {"x": "y"}), MapCategories("b", {"x": "y"})),
        (MapCategories("a", {"x": "y"}), MapCategories("a", {"x": "z"})),
        (MapCategories("a", {"x": "y"}), MapCategories("a", {"w": "y"})),
        (
            MapCategories("a", known=("p", "q"), unseen="p"),
            MapCategories("a", known=("p", "r"), unseen="p"),
        ),
        (
            MapCategories("a", known=("p", "q"), unseen="p"),
            MapCategories("a", known=("p", "q"), unseen="q"),
        ),
        (Derived("r", "numpy:add", 1, ("a", "b")), Derived("s", "numpy:add", 1, ("a", "b"))),
        (Derived("r", "numpy:add", 1, ("a", "b")), Derived("r", "numpy:subtract", 1, ("a", "b"))),
        (Derived("r", "numpy:add", 1, ("a", "b")), Derived("r", "numpy:add", 2, ("a", "b"))),
        (Derived("r", "numpy:add", 1, ("a", "b")), Derived("r", "numpy:add", 1, ("b", "a"))),
    ],
)
def test_digest_changes_when_any_field_changes(before: Adapter, after: Adapter) -> None:
    one, other = Adapters([before]), Adapters([after])
    assert one.digest() != other.digest()
    assert one != other


def test_digest_depends_on_order() -> None:
    a, b = Rename("plan", source="tier"), Cast("age", "int")
    assert Adapters([a, b]).digest() != Adapters([b, a]).digest()
    assert Adapters([a, b]).digest() == Adapters([a, b]).digest()


def test_adapter_kinds_name_every_adapter() -> None:
    assert {
        "rename": Rename,
        "cast": Cast,
        "default": Default,
        "category mapping": MapCategories,
        "derived": Derived,
    } == ADAPTER_KINDS


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"kind": "drop", "column": "a"}, "unknown adapter 'drop'"),
        ({"column": "a"}, "unknown adapter None"),
        ({"kind": ["rename"], "column": "a"}, "unknown adapter ['rename']"),
        ("rename", "unknown adapter 'rename'"),
    ],
)
def test_adapter_from_dict_refuses_an_unknown_kind(data: Any, fragment: str) -> None:
    message = raises(ConfigError, fragment, call=lambda: adapter_from_dict(data))
    assert "use one of cast, category mapping, default, derived, rename" in message


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"kind": "cast", "column": "a", "bogus": 1}, "unexpected keyword argument 'bogus'"),
        ({"kind": "rename", "source": "x"}, "missing 1 required positional argument: 'column'"),
        ({"kind": "cast", "column": "a", "dtype": "decimal"}, "unknown dtype 'decimal'"),
    ],
)
def test_adapter_from_dict_refuses_bad_fields(data: dict[str, Any], fragment: str) -> None:
    raises(ConfigError, fragment, call=lambda: adapter_from_dict(data))


def test_adapter_from_dict_hint_lists_the_fields() -> None:
    message = raises(ConfigError, call=lambda: adapter_from_dict({"kind": "rename", "to": "b"}))
    assert "the fields of a rename adapter are ['column', 'source']" in message
