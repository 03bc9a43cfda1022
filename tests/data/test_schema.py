"""Schemas are declared, inferred, checked against data, compared, and round-trip as dicts."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from regrow.data import ColumnSchema, Schema, SchemaDiff
from regrow.data.schema import DTYPES
from regrow.errors import SchemaError


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [31, 45, 27, 31],
            "score": [0.5, None, 1.5, 2.0],
            "plan": ["pro", "free", "free", "pro"],
            "email": ["a@x", "b@x", "c@x", "d@x"],
            "active": [True, False, True, True],
            "at": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]),
        }
    )


# -- declaring ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"name": "", "dtype": "int"}, r"a column name must be a non-empty string \(got ''\)"),
        ({"name": "a", "dtype": "integer"}, r"column 'a': unknown dtype 'integer'; use one of"),
        ({"name": "a", "dtype": "int", "nullable": "yes"}, r"'nullable' must be true or false"),
        ({"name": "a", "dtype": "string", "min": 1}, r"'min' applies to int, float and datetime"),
        ({"name": "a", "dtype": "int", "max": 1.5}, r"'max' must be a 64-bit int .*got 1\.5"),
        ({"name": "a", "dtype": "int", "max": 2**64}, r"'max' must be a 64-bit int"),
        ({"name": "a", "dtype": "int", "min": True}, r"'min' must be a 64-bit int .*bool"),
        ({"name": "a", "dtype": "float", "min": float("nan")}, r"'min' must be a number"),
        ({"name": "a", "dtype": "datetime", "min": "2024"}, r"'min' must be a datetime"),
        ({"name": "a", "dtype": "int", "min": 5, "max": 1}, r"min 5 is greater than max 1"),
        (
            {
                "name": "a",
                "dtype": "datetime",
                "min": datetime(2024, 1, 1),
                "max": datetime(2024, 1, 2, tzinfo=UTC),
            },
            r"cannot be compared; give both bounds a time zone, or neither",
        ),
        ({"name": "a", "dtype": "string", "categories": ("x",)}, r"'categories' applies to"),
        ({"name": "a", "dtype": "category", "categories": "xy"}, r"must be a list of strings"),
        ({"name": "a", "dtype": "category", "categories": (1, 2)}, r"must be a list of strings"),
        ({"name": "a", "dtype": "category", "categories": ("x", "x")}, r"duplicate categories 'x'"),
    ],
)
def test_invalid_columns_are_refused_naming_the_value(kwargs: dict[str, Any], pattern: str) -> None:
    with pytest.raises(SchemaError, match=pattern):
        ColumnSchema(**kwargs)


def test_category_lists_become_tuples() -> None:
    column = ColumnSchema("c", "category", categories=["a", "b"])  # type: ignore[arg-type]
    assert column.categories == ("a", "b")


def test_duplicate_columns_are_refused() -> None:
    with pytest.raises(SchemaError, match="duplicate column\\(s\\) in the schema: 'a'"):
        Schema((ColumnSchema("a", "int"), ColumnSchema("a", "float")))


def test_a_schema_holds_only_column_schemas() -> None:
    with pytest.raises(SchemaError, match="holds ColumnSchema objects \\(got 'a'\\)"):
        Schema(("a",))  # type: ignore[arg-type]


def test_lookup_by_name() -> None:
    schema = Schema([ColumnSchema("a", "int"), ColumnSchema("b", "bool")])  # type: ignore[arg-type]
    assert schema.columns[1] is schema["b"]
    assert "a" in schema
    assert "z" not in schema
    assert schema.names == ("a", "b")
    with pytest.raises(KeyError, match="no column 'z' in the schema; columns: a, b"):
        schema["z"]


# -- dicts ------------------------------------------------------------------------------------


def test_from_dict_applies_defaults_and_parses_bounds() -> None:
    schema = Schema.from_dict(
        {
            "columns": [
                {"name": "a", "dtype": "int"},
                {"name": "t", "dtype": "datetime", "min": date(2024, 1, 1), "max": "2024-02-01"},
                {"name": "x", "dtype": "float", "min": "-inf", "max": 3},
            ]
        }
    )
    assert schema["a"].nullable is True
    assert schema["t"].min == datetime(2024, 1, 1)
    assert schema["t"].max == datetime(2024, 2, 1)
    assert schema["x"].min == float("-inf")
    assert schema.to_dict()["columns"][2] == {
        "name": "x",
        "dtype": "float",
        "nullable": True,
        "min": "-inf",
        "max": 3,
    }


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ([], r"a schema dict needs a 'columns' list \(got \[\]\)"),
        ({"cols": []}, r"needs a 'columns' list"),
        ({"columns": [], "version": 2}, r"unknown schema key\(s\) 'version'"),
        ({"columns": ["age"]}, r"a schema column must be a mapping \(got 'age'\)"),
        ({"columns": [{"name": "a"}]}, r"has no 'dtype'"),
        ({"columns": [{"dtype": "int"}]}, r"has no 'name'"),
        ({"columns": [{"name": "a", "dtype": "int", "maxx": 3}]}, r"column 'a': unknown key"),
        (
            {"columns": [{"name": "t", "dtype": "datetime", "min": "yesterday"}]},
            r"column 't': 'min' is not an ISO-8601 datetime \(got 'yesterday'\)",
        ),
        ({"columns": [{"name": "a", "dtype": "int", "min": "0"}]}, r"'min' must be a 64-bit int"),
    ],
)
def test_bad_dicts_are_refused_naming_the_key_or_value(spec: Any, pattern: str) -> None:
    with pytest.raises(SchemaError, match=pattern):
        Schema.from_dict(spec)


def test_coerce_accepts_a_schema_or_a_dict_only() -> None:
    schema = Schema((ColumnSchema("a", "int"),))
    assert Schema.coerce(schema) is schema
    assert Schema.coerce(schema.to_dict()) == schema
    with pytest.raises(SchemaError, match="expected a Schema or a dict \\(got a list\\)"):
        Schema.coerce([])  # type: ignore[arg-type]


_names = st.text(min_size=1, max_size=8)
_ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_floats = st.floats(allow_nan=False)
_datetimes = st.datetimes(timezones=st.sampled_from([None, UTC]))


@st.composite
def columns(draw: st.DrawFn, name: str) -> ColumnSchema:
    dtype = draw(st.sampled_from(DTYPES))
    nullable = draw(st.booleans())
    if dtype in ("int", "float", "datetime"):
        values = {"int": _ints, "float": _floats, "datetime": _datetimes}[dtype]
        if dtype == "datetime":  # both bounds naive or both aware
            tz = draw(st.sampled_from([None, UTC]))
            values = st.datetimes().map(lambda d: d.replace(tzinfo=tz))
        bounds = sorted(draw(st.lists(values, min_size=2, max_size=2)))
        lo = draw(st.sampled_from([bounds[0], None]))
        hi = draw(st.sampled_from([bounds[1], None]))
        return ColumnSchema(name, dtype, nullable, min=lo, max=hi)
    if dtype == "category":
        categories = draw(st.none() | st.lists(st.text(), unique=True).map(tuple))
        return ColumnSchema(name, dtype, nullable, categories=categories)
    return ColumnSchema(name, dtype, nullable)


schemas = st.lists(_names, unique=True, max_size=6).flatmap(
    lambda names: st.tuples(*(columns(n) for n in names)).map(Schema)
)


@given(schemas)
def test_schemas_round_trip_through_json(schema: Schema) -> None:
    text = json.dumps(schema.to_dict(), allow_nan=False)
    assert Schema.from_dict(json.loads(text)) == schema


# -- inference ------------------------------------------------------------------------------


def test_infer_describes_the_data(frame: pd.DataFrame) -> None:
    schema = Schema.infer(frame)
    assert schema == Schema(
        (
            ColumnSchema("age", "int", nullable=False, min=27, max=45),
            ColumnSchema("score", "float", nullable=True, min=0.5, max=2.0),
            ColumnSchema("plan", "category", nullable=False, categories=("free", "pro")),
            ColumnSchema("email", "string", nullable=False),
            ColumnSchema("active", "bool", nullable=False),
            ColumnSchema(
                "at",
                "datetime",
                nullable=False,
                min=datetime(2024, 1, 1),
                max=datetime(2024, 1, 4),
            ),
        )
    )
    schema.validate(frame)


def test_infer_respects_max_categories(frame: pd.DataFrame) -> None:
    assert Schema.infer(frame, max_categories=1)["plan"].dtype == "string"
    with pytest.raises(SchemaError, match="max_categories must be a non-negative int"):
        Schema.infer(frame, max_categories="5")  # type: ignore[arg-type]


def test_pandas_categoricals_are_categories_however_many() -> None:
    frame = pd.DataFrame({"c": pd.Categorical([str(i) for i in range(100)])})
    assert Schema.infer(frame)["c"].categories == tuple(sorted(str(i) for i in range(100)))


def test_all_null_columns_are_nullable_strings_and_empty_frames_have_no_bounds() -> None:
    schema = Schema.infer(pd.DataFrame({"o": [None, None], "x": [float("nan")] * 2}))
    assert schema["o"] == ColumnSchema("o", "string", nullable=True)
    assert schema["x"] == ColumnSchema("x", "float", nullable=True)
    empty = Schema.infer(pa.table({"n": pa.array([], pa.int64()), "s": pa.array([], pa.string())}))
    assert empty["n"] == ColumnSchema("n", "int", nullable=False)
    assert empty["s"] == ColumnSchema("s", "string", nullable=False)


def test_nanosecond_bounds_are_widened_to_contain_the_data() -> None:
    table = pa.table({"t": pa.array([1_500, 2_500], pa.timestamp("ns", tz="UTC"))})
    column = Schema.infer(table)["t"]
    assert column.min == datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    assert column.max == datetime(1970, 1, 1, 0, 0, 0, 3, tzinfo=UTC)
    Schema((column,)).validate(table)


# -- validation -----------------------------------------------------------------------------


def test_validate_lists_every_violation(frame: pd.DataFrame) -> None:
    schema = Schema.infer(frame)
    bad = frame.drop(columns=["email"]).assign(
        age=[31, 200, -1, 31],
        score=["a", "b", "c", "d"],
        plan=["pro", "team", "team", "gold"],
        active=[True, None, None, True],
        at=pd.to_datetime(["2023-12-31", "2024-01-02", "2024-01-03", "2024-01-04"]),
        extra=1,
    )
    with pytest.raises(SchemaError) as caught:
        schema.validate(bad)
    message = str(caught.value)
    assert message.startswith("the data does not match the schema (7 problems):")
    for line in [
        "- missing column(s): 'email'",
        "- unexpected column(s): 'extra'",
        "- column 'age': 2 values outside min=27, max=45 (smallest -1, largest 200)",
        "- column 'score': expected dtype 'float', found 'string' (Arrow large_string)",
        "- column 'plan': 3 values not among the declared categories: 'team' (2 rows), "
        "'gold' (1 row)",
        "- column 'active': 2 null values but the schema says it is not nullable",
        "- column 'at': 1 value outside min=2024-01-01T00:00:00, max=2024-01-04T00:00:00 "
        "(smallest 2023-12-31T00:00:00, largest 2023-12-31T00:00:00)",
    ]:
        assert line in message
    assert message.endswith("(Schema.infer(data) shows what the data looks like)")


def test_extra_columns_can_be_allowed(frame: pd.DataFrame) -> None:
    Schema.infer(frame[["age"]]).validate(frame, allow_extra=True)


def test_unknown_categories_are_capped_in_the_message() -> None:
    schema = Schema((ColumnSchema("c", "category", categories=()),))
    with pytest.raises(SchemaError, match=r"7 values not among .* and 2 more"):
        schema.validate(pd.DataFrame({"c": list("abcdefg")}))


@pytest.mark.parametrize(
    ("declared", "data"),
    [
        ("float", pa.array([1, 2])),
        ("string", pa.array(["a"]).dictionary_encode()),
        ("category", pa.array(["a"])),
        ("datetime", pa.array([None, None])),
        ("int", pa.array([None, None])),
    ],
)
def test_compatible_data_types_are_accepted(declared: str, data: pa.Array) -> None:
    Schema((ColumnSchema("c", declared),)).validate(pa.table({"c": data}))


def test_only_minimum_or_only_maximum() -> None:
    with pytest.raises(SchemaError, match=r"1 value outside min=0 \(smallest -2"):
        Schema((ColumnSchema("x", "float", min=0),)).validate(pd.DataFrame({"x": [1.5, -2.0]}))
    Schema((ColumnSchema("x", "float", max=2),)).validate(pd.DataFrame({"x": [1.5, None]}))


def test_conform_orders_and_casts_to_the_schema() -> None:
    schema = Schema(
        (
            ColumnSchema("f", "float"),
            ColumnSchema("c", "category"),
            ColumnSchema("t", "datetime"),
        )
    )
    data = pa.table(
        {
            "t": pa.array([None], pa.null()),
            "c": pa.array(["x"]).dictionary_encode(),
            "f": [1],
            "z": [True],
        }
    )
    table = schema.conform(data, allow_extra=True)
    assert table.schema == pa.schema(
        [
            ("f", pa.float64()),
            ("c", pa.large_string()),
            ("t", pa.timestamp("us")),
            ("z", pa.bool_()),
        ]
    )


# -- comparing ------------------------------------------------------------------------------


def test_compare_reports_added_removed_and_changed_columns() -> None:
    old = Schema(
        (
            ColumnSchema("a", "int", min=0, max=10),
            ColumnSchema("b", "category", categories=("x", "y")),
            ColumnSchema("gone", "bool"),
        )
    )
    new = Schema(
        (
            ColumnSchema("a", "int", nullable=False, min=0, max=20),
            ColumnSchema("b", "category", categories=("y", "z")),
            ColumnSchema("new", "float"),
        )
    )
    diff = old.compare(new)
    assert [c.name for c in diff.added] == ["new"]
    assert [c.name for c in diff.removed] == ["gone"]
    assert diff.changed == {"a": (old["a"], new["a"]), "b": (old["b"], new["b"])}
    assert not diff.compatible
    assert str(diff) == (
        "incompatible schema change:\n"
        "  + 'new' (float)\n"
        "  - 'gone' (bool)\n"
        "  ~ 'a': no longer nullable; range [0, 10] → [0, 20]\n"
        "  ~ 'b': categories added 'z'; categories removed 'x'"
    )


def test_a_dtype_change_is_incompatible_and_an_addition_is_not() -> None:
    old = Schema((ColumnSchema("a", "int"),))
    assert not old.compare(Schema((ColumnSchema("a", "float"),))).compatible
    widened = old.compare(
        {"columns": [{"name": "a", "dtype": "int"}, {"name": "b", "dtype": "int"}]}
    )
    assert widened.compatible
    assert not widened.unchanged


def test_equal_schemas_have_no_change() -> None:
    schema = Schema((ColumnSchema("a", "category"),))
    diff = schema.compare(schema)
    assert diff == SchemaDiff()
    assert diff.unchanged
    assert diff.compatible
    assert str(diff) == "no schema change"
    assert diff.changes == ()


def test_category_restrictions_are_described() -> None:
    free = ColumnSchema("c", "category")
    closed = ColumnSchema("c", "category", categories=("a",))
    reordered = ColumnSchema("c", "category", categories=("a", "b"))
    assert Schema((free,)).compare(Schema((closed,))).changes == (
        "~ 'c': categories now restricted to 'a'",
    )
    assert Schema((closed,)).compare(Schema((free,))).changes == (
        "~ 'c': categories no longer restricted",
    )
    swapped = ColumnSchema("c", "category", categories=("b", "a"))
    assert Schema((reordered,)).compare(Schema((swapped,))).changes == (
        "~ 'c': categories reordered",
    )
