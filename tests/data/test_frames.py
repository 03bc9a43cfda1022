"""to_arrow turns every accepted input into one canonical Arrow table; anything else is refused."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from regrow.data import to_arrow, to_pandas
from regrow.data.frames import logical_dtype, normalize_column
from regrow.errors import DataError


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "n": [1, 2, 3],
            "x": [0.5, np.nan, 2.0],
            "s": ["a", "b", None],
            "b": [True, False, True],
            "t": pd.to_datetime(["2024-01-01 00:00", "2024-01-02 12:00", "2024-01-03 00:00"]),
        }
    )


EXPECTED = pa.schema(
    [
        ("n", pa.int64()),
        ("x", pa.float64()),
        ("s", pa.large_string()),
        ("b", pa.bool_()),
        ("t", pa.timestamp("us")),
    ]
)


def test_pandas_polars_arrow_csv_and_parquet_give_the_same_table(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    frame.to_parquet(tmp_path / "d.pq")
    inputs = [
        frame,
        pl.from_pandas(frame),
        pa.Table.from_pandas(frame),
        tmp_path / "d.csv",
        str(tmp_path / "d.parquet"),
        tmp_path / "d.pq",
    ]
    tables = [to_arrow(data) for data in inputs]
    for table in tables:
        assert table.schema == EXPECTED
        assert table.schema.metadata is None
        assert table.equals(tables[0])
    assert tables[0].column("x").to_pylist() == [0.5, None, 2.0]


def test_the_default_pandas_index_is_dropped(frame: pd.DataFrame) -> None:
    table = to_arrow(frame.iloc[[2, 0]])
    assert table.column_names == list(frame.columns)


def test_a_named_pandas_index_becomes_a_column_again(frame: pd.DataFrame) -> None:
    table = to_arrow(frame.set_index("n"))
    assert table.column_names == ["n", "x", "s", "b", "t"]
    assert table.column("n").to_pylist() == [1, 2, 3]


def test_a_named_index_clashing_with_a_column_is_refused() -> None:
    frame = pd.DataFrame({"a": [1]}, index=pd.Index([0], name="a"))
    with pytest.raises(DataError, match=r"index level\(s\) \['a'\] clash"):
        to_arrow(frame)


def test_a_pandas_index_written_to_parquet_is_dropped(tmp_path: Path) -> None:
    pd.DataFrame({"a": [1, 2]}, index=[5, 7]).to_parquet(tmp_path / "i.parquet")
    assert to_arrow(tmp_path / "i.parquet").column_names == ["a"]


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (pa.array([1, 2], pa.int8()), pa.int64()),
        (pa.array([1, 2], pa.uint32()), pa.int64()),
        (pa.array([1.5], pa.float32()), pa.float64()),
        (pa.array(np.array([1.5], np.float16())), pa.float64()),
        (pa.array(["a"], pa.string()), pa.large_string()),
        (pa.array(["a"], pa.string_view()), pa.large_string()),
        (pa.array(["a"]).dictionary_encode(), pa.dictionary(pa.int32(), pa.large_string())),
        (pa.array([1, 2, 1]).dictionary_encode(), pa.int64()),
        (pa.array([date(2024, 1, 1)]), pa.timestamp("us")),
        (pa.array([1_000], pa.timestamp("s")), pa.timestamp("us")),
        (pa.array([1_001], pa.timestamp("ns", tz="Europe/Paris")), pa.timestamp("ns", tz="UTC")),
        (pa.array([1_000_000], pa.timestamp("ms", tz="Asia/Tokyo")), pa.timestamp("us", tz="UTC")),
        (pa.array([None, None]), pa.null()),
    ],
)
def test_columns_take_their_canonical_type(array: pa.Array, expected: pa.DataType) -> None:
    assert normalize_column(array).type == expected


def test_nanoseconds_are_kept_when_they_carry_digits() -> None:
    column = normalize_column(pa.array([1, 2_000], pa.timestamp("ns")))
    assert column.type == pa.timestamp("ns")
    assert column.cast(pa.int64()).to_pylist() == [1, 2_000]


def test_nan_becomes_null_whatever_the_input(frame: pd.DataFrame) -> None:
    polars = pl.DataFrame({"x": [1.0, float("nan"), None]})
    assert to_arrow(polars).column("x").to_pylist() == [1.0, None, None]
    arrow = pa.table({"x": pa.array([float("nan"), 1.0], pa.float32())})
    assert to_arrow(arrow).column("x").to_pylist() == [None, 1.0]


def test_time_zone_aware_timestamps_are_converted_to_utc() -> None:
    frame = pd.DataFrame({"t": pd.to_datetime(["2024-01-01 02:00"]).tz_localize("Europe/Paris")})
    [value] = to_arrow(frame).column("t").to_pylist()
    assert value == datetime(2024, 1, 1, 1, 0, tzinfo=UTC)


def test_polars_categoricals_and_field_metadata() -> None:
    frame = pl.DataFrame({"c": ["x", "y", "x"]}, schema={"c": pl.Categorical})
    table = to_arrow(frame)
    assert table.schema.field("c").type == pa.dictionary(pa.int32(), pa.large_string())
    assert table.schema.field("c").metadata is None
    assert table.column("c").to_pylist() == ["x", "y", "x"]


def test_chunks_are_combined() -> None:
    table = pa.Table.from_batches([pa.record_batch({"a": [1]}), pa.record_batch({"a": [2, 3]})])
    assert to_arrow(table).column("a").num_chunks == 1


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ([1, 2], r"cannot turn a builtins\.list into a table; pass a pandas DataFrame"),
        ({"a": [1]}, r"builtins\.dict"),
        (np.zeros((2, 2)), r"numpy\.ndarray"),
        (pl.DataFrame({"a": [1]}).lazy(), r"polars LazyFrame.*frame\.collect\(\)"),
        (pl.Series("a", [1]), r"polars Series.*to_frame\(\)"),
    ],
)
def test_unsupported_inputs_are_named_with_what_is_accepted(data: object, pattern: str) -> None:
    with pytest.raises(DataError, match=pattern):
        to_arrow(data)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(DataError, match=f"no such file: '{path}'"):
        to_arrow(path)


def test_an_unsupported_suffix_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"unsupported file type '\.json'.*\.csv, \.parquet"):
        to_arrow(tmp_path / "data.json")


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"not parquet")
    with pytest.raises(DataError, match=f"cannot read '{path}'"):
        to_arrow(path)


def test_zero_columns_are_refused() -> None:
    with pytest.raises(DataError, match="the data has no columns"):
        to_arrow(pd.DataFrame())


def test_duplicate_column_names_are_named() -> None:
    table = pa.table([pa.array([1]), pa.array([2]), pa.array([3])], names=["a", "b", "a"])
    with pytest.raises(DataError, match="duplicate column names: 'a'"):
        to_arrow(table)
    with pytest.raises(DataError, match="duplicate column names: 'x'"):
        to_arrow(pd.DataFrame([[1, 2]], columns=["x", "x"]))


def test_non_string_column_names_are_named() -> None:
    with pytest.raises(DataError, match=r"non-empty strings \(got 0, a int\)"):
        to_arrow(pd.DataFrame({0: [1]}))
    with pytest.raises(DataError, match=r"got '', a str"):
        to_arrow(pa.table({"": [1]}))


def test_unsupported_column_types_name_the_column() -> None:
    with pytest.raises(DataError, match=r"column 'l' has Arrow type list<item: int64>"):
        to_arrow(pa.table({"l": [[1], [2]]}))


def test_unsigned_overflow_names_the_column() -> None:
    with pytest.raises(DataError, match=r"column 'u' cannot be converted from uint64 to int64"):
        to_arrow(pa.table({"u": pa.array([2**64 - 1], pa.uint64())}))


def test_mixed_object_columns_are_refused() -> None:
    with pytest.raises(DataError, match="cannot convert the pandas DataFrame to Arrow"):
        to_arrow(pd.DataFrame({"m": [1, "a", 2.5]}))


def test_to_pandas_round_trips(frame: pd.DataFrame) -> None:
    back = to_pandas(to_arrow(frame))
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)


def test_to_pandas_refuses_anything_but_a_table(frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="expects a pyarrow Table \\(got a DataFrame\\)"):
        to_pandas(frame)  # type: ignore[arg-type]


def test_logical_dtype_of_each_canonical_type() -> None:
    assert [logical_dtype(f.type) for f in EXPECTED] == [
        "int",
        "float",
        "string",
        "bool",
        "datetime",
    ]
    assert logical_dtype(pa.dictionary(pa.int32(), pa.large_string())) == "category"
    assert logical_dtype(pa.null()) is None
    with pytest.raises(DataError, match="Arrow type binary has no regrow dtype"):
        logical_dtype(pa.binary())
