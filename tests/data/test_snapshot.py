"""prepare_snapshot validates and encodes data into an id, hashes, Parquet and a profile."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from regrow.data import (
    ColumnSchema,
    Schema,
    apply_slice,
    column_hash,
    prepare_snapshot,
    profile_table,
    read_parquet,
)
from regrow.errors import DataError, SchemaError, SliceError


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = 50
    return pd.DataFrame(
        {
            "at": pd.date_range("2024-01-01", periods=rows, freq="h"),
            "country": rng.choice(["FR", "DE", "IT"], size=rows),
            "age": rng.integers(18, 90, size=rows),
            "spend": rng.normal(50, 10, size=rows).round(2),
            "churned": rng.random(rows) < 0.3,
        }
    )


def test_the_same_data_gets_the_same_id_from_every_source(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    sources = [
        frame,
        pl.from_pandas(frame),
        pa.Table.from_pandas(frame),
        pa.Table.from_pandas(frame).to_batches(max_chunksize=7),  # re-chunked, below
        tmp_path / "d.csv",
        tmp_path / "d.parquet",
    ]
    sources[3] = pa.Table.from_batches(sources[3])  # type: ignore[arg-type]
    snaps = [prepare_snapshot(source, time_column="at") for source in sources]
    assert len({s.id for s in snaps}) == 1
    assert all(s.column_hashes == snaps[0].column_hashes for s in snaps)
    assert all(s.parquet == snaps[0].parquet for s in snaps)


def test_changing_one_value_changes_only_that_column_hash(frame: pd.DataFrame) -> None:
    before = prepare_snapshot(frame)
    changed = frame.copy()
    changed.loc[3, "spend"] += 1
    after = prepare_snapshot(changed)
    assert after.id != before.id
    differing = [c for c in frame.columns if after.column_hashes[c] != before.column_hashes[c]]
    assert differing == ["spend"]


def test_names_order_and_time_column_are_part_of_the_id(frame: pd.DataFrame) -> None:
    base = prepare_snapshot(frame)
    renamed = prepare_snapshot(frame.rename(columns={"spend": "amount"}))
    assert renamed.id != base.id
    assert renamed.column_hashes["amount"] == base.column_hashes["spend"]
    reordered = prepare_snapshot(frame[list(reversed(frame.columns))])
    assert reordered.id != base.id
    assert reordered.column_hashes == base.column_hashes
    assert prepare_snapshot(frame, time_column="at").id != base.id


def test_the_snapshot_holds_a_canonical_table_its_parquet_and_its_profile(
    frame: pd.DataFrame,
) -> None:
    snap = prepare_snapshot(frame, time_column="at", slices={"fr": "country == 'FR'"})
    assert snap.rows == len(frame) == snap.table.num_rows
    assert snap.columns == tuple(frame.columns) == snap.schema.names
    assert snap.schema["country"].dtype == "category"
    assert snap.table.schema.field("country").type == pa.large_string()
    assert read_parquet(snap.parquet).equals(snap.table)
    assert snap.parquet == prepare_snapshot(frame, time_column="at").parquet
    profile = profile_table(frame)
    profile["columns"]["country"]["dtype"] = "category"  # as the schema says
    assert snap.profile == profile
    json.dumps(snap.profile, allow_nan=False)
    assert snap.slices == {"fr": "country == 'FR'"}
    assert snap.time_column == "at"


def test_column_hashes_are_the_column_hash_of_each_column_as_its_schema_dtype(
    frame: pd.DataFrame,
) -> None:
    snap = prepare_snapshot(frame)
    for column in snap.schema.columns:
        expected = column_hash(snap.table.column(column.name), dtype=column.dtype)
        assert snap.column_hashes[column.name] == expected
        assert column_hash(frame[column.name], dtype=column.dtype) == expected


def test_nothing_is_written(
    frame: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    prepare_snapshot(frame, time_column="at", slices={"old": "age > 60"})
    assert os.listdir(tmp_path) == []


def test_a_declared_schema_is_enforced(frame: pd.DataFrame) -> None:
    declared = Schema.infer(frame).to_dict()
    declared["columns"][2]["max"] = 30  # age
    with pytest.raises(SchemaError, match=r"column 'age': \d+ values outside min=\d+, max=30"):
        prepare_snapshot(frame, schema=declared)
    with pytest.raises(SchemaError, match="missing column\\(s\\): 'extra'"):
        prepare_snapshot(frame, schema=Schema.infer(frame.assign(extra=1)))
    with pytest.raises(SchemaError, match="expected a Schema or a dict \\(got a str\\)"):
        prepare_snapshot(frame, schema="age:int")  # type: ignore[arg-type]


def test_a_declared_schema_orders_and_casts_the_columns() -> None:
    schema = Schema((ColumnSchema("x", "float"), ColumnSchema("n", "int")))
    snap = prepare_snapshot(pd.DataFrame({"n": [1, 2], "x": [3, 4]}), schema=schema)
    assert snap.columns == ("x", "n")
    assert snap.table.column("x").type == pa.float64()
    assert snap.schema is schema


def test_an_empty_frame_is_refused(frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="the data has no rows \\(columns: 'at', 'country'"):
        prepare_snapshot(frame.iloc[:0])


@pytest.mark.parametrize(
    ("time_column", "pattern"),
    [
        ("when", r"time column 'when' is not a column of the data; pick one of 'at'"),
        ("age", r"time column 'age' is 'int', not 'datetime'.*unit=\"s\""),
    ],
)
def test_a_bad_time_column_is_named(frame: pd.DataFrame, time_column: str, pattern: str) -> None:
    with pytest.raises(DataError, match=pattern):
        prepare_snapshot(frame, time_column=time_column)


def test_a_time_column_with_nulls_is_refused(frame: pd.DataFrame) -> None:
    frame.loc[[1, 4], "at"] = pd.NaT
    with pytest.raises(DataError, match="time column 'at' has 2 null value\\(s\\)"):
        prepare_snapshot(frame, time_column="at")


@pytest.mark.parametrize(
    ("slices", "pattern"),
    [
        ({"vip": "spend >"}, r"slice 'vip' \('spend >'\) does not apply to the data: SyntaxError"),
        ({"x": "region == 'EU'"}, r"slice 'x' .*UndefinedVariableError: name 'region'"),
        ({"x": "@threshold < age"}, r"slice 'x' .*local variable 'threshold'"),
        (
            {"x": "age + 1"},
            r"slice 'x' \('age \+ 1'\) is not a True/False condition on each "
            r"row \(got a int64 column\)",
        ),
        (
            {"x": "y=age"},
            r"slice 'x' \('y=age'\) is not a True/False condition .*got a DataFrame\)",
        ),
        ({"x": ""}, r"slice 'x' has no expression \(got ''\)"),
        ({"x": 3}, r"slice 'x' has no expression \(got 3\)"),
        ({"": "age > 1"}, r"slice names must be non-empty strings \(got ''\)"),
        (["age > 1"], r"slices must be a mapping of name to expression \(got a list\)"),
    ],
)
def test_bad_slices_are_named(frame: pd.DataFrame, slices: object, pattern: str) -> None:
    with pytest.raises(SliceError, match=pattern) as caught:
        prepare_snapshot(frame, slices=slices)  # type: ignore[arg-type]
    assert caught.value.hint is not None
    assert "e.g." in caught.value.hint


def test_apply_slice_selects_rows(frame: pd.DataFrame) -> None:
    selected = apply_slice(frame, "fr_adults", "country == 'FR' and age >= 30")
    expected = frame[(frame.country == "FR") & (frame.age >= 30)]
    pd.testing.assert_frame_equal(selected, expected)


def test_read_parquet_reads_columns(frame: pd.DataFrame) -> None:
    snap = prepare_snapshot(frame)
    assert read_parquet(snap.parquet, columns=["age"]).column_names == ["age"]
    assert read_parquet(snap.parquet, columns="age").column_names == ["age"]  # type: ignore[arg-type]
    with pytest.raises(DataError, match="no column\\(s\\) 'nope' in the Parquet data"):
        read_parquet(snap.parquet, columns=["age", "nope"])


def test_read_parquet_refuses_what_is_not_parquet() -> None:
    with pytest.raises(DataError, match="the 5 bytes given are not a readable Parquet file"):
        read_parquet(b"hello")
    with pytest.raises(DataError, match="read_parquet expects bytes \\(got a str\\)"):
        read_parquet("d.parquet")  # type: ignore[arg-type]


def test_a_large_snapshot_is_hashed_and_profiled_on_threads() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({f"c{i}": rng.normal(size=60_000) for i in range(5)})
    snap = prepare_snapshot(frame)
    sequential = prepare_snapshot(frame.iloc[:30_000])
    assert len(set(snap.column_hashes.values())) == 5
    assert snap.id != sequential.id
    assert snap.profile["columns"]["c0"]["count"] == 60_000
