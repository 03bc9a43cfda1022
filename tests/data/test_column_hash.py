"""Column hashes depend on the values and the dtype only: not the source, chunking or offsets."""

from __future__ import annotations

import itertools
from datetime import datetime

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regrow.data import column_hash
from regrow.errors import DataError, SchemaError

VALUES = {
    "int": [3, None, -7, 2**40],
    "float": [0.5, None, -1e300, 3.0],
    "bool": [True, None, False, True],
    "string": ["héllo", None, "", "a longer string"],
    "datetime": [datetime(2024, 1, 1), None, datetime(1999, 12, 31, 23, 59, 59, 5), None],
}

# pandas dtypes that hold these values without turning ints with nulls into floats
PANDAS_DTYPES = {
    "int": "Int64",
    "float": "float64",
    "bool": "boolean",
    "string": "str",
    "datetime": "datetime64[us]",
}


@pytest.mark.parametrize("dtype", sorted(VALUES))
def test_pandas_polars_and_arrow_columns_hash_alike(dtype: str) -> None:
    arrow = pa.array(VALUES[dtype])
    hashes = {
        column_hash(arrow),
        column_hash(pa.chunked_array([arrow[:1], arrow[1:]])),
        column_hash(pl.Series(VALUES[dtype]).to_arrow()),
        column_hash(pl.Series(VALUES[dtype])),
        column_hash(pd.Series(VALUES[dtype], dtype=PANDAS_DTYPES[dtype])),
        column_hash(VALUES[dtype], dtype=dtype),
    }
    assert len(hashes) == 1
    [digest] = hashes
    assert len(digest) == 64
    assert digest == digest.lower()


def test_the_dtype_is_part_of_the_hash() -> None:
    ints = pa.array([1, 2])
    assert column_hash(ints) != column_hash(ints, dtype="float")
    assert column_hash(ints, dtype="float") == column_hash(pa.array([1.0, 2.0]))
    strings = pa.array(["a", "b"])
    assert column_hash(strings) != column_hash(strings, dtype="category")
    assert column_hash(strings.dictionary_encode()) == column_hash(strings, dtype="category")


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (pa.array([None, "a"]), pa.array(["", "a"])),
        (pa.array(["ab", "c"]), pa.array(["a", "bc"])),
        (pa.array([None, 1]), pa.array([0, 1])),
        (pa.array([1, 2]), pa.array([2, 1])),
        (pa.array([1]), pa.array([1, 1])),
        (pa.array([False, None]), pa.array([False, False])),
        (
            pa.array([datetime(2024, 1, 1)]),
            pa.array([1_704_067_200_000_000_001], pa.timestamp("ns")),
        ),
    ],
)
def test_different_columns_hash_differently(left: pa.Array, right: pa.Array) -> None:
    assert column_hash(left) != column_hash(right)


def test_equal_values_hash_alike() -> None:
    assert column_hash(pa.array([0.0, np.nan])) == column_hash(pa.array([-0.0, None]))
    assert column_hash(pa.array([1, 2], pa.int8())) == column_hash(pa.array([1, 2]))
    seconds = pa.array([datetime(2024, 1, 1)], pa.timestamp("s"))
    assert column_hash(seconds) == column_hash(pa.array([datetime(2024, 1, 1)]))
    nanoseconds = pa.array([datetime(2024, 1, 1)], pa.timestamp("ns"))
    assert column_hash(nanoseconds) == column_hash(seconds)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(DataError, match="cannot hash a object as a column"):
        column_hash(object())
    with pytest.raises(SchemaError, match="unknown dtype 'text'"):
        column_hash(pa.array(["a"]), dtype="text")


@st.composite
def chunkings(draw: st.DrawFn) -> tuple[pa.Array, pa.ChunkedArray, pa.Array]:
    """An array, the same values re-chunked at random cuts, and the same values at an offset."""
    kind = draw(st.sampled_from(["int", "float", "string", "bool"]))
    element = {
        "int": st.integers(-(2**63), 2**63 - 1),
        "float": st.floats(allow_nan=False),
        "string": st.text(),
        "bool": st.booleans(),
    }[kind]
    values = draw(st.lists(st.none() | element, max_size=40))
    array = pa.array(values, type=None if values else pa.null())
    cuts = sorted(draw(st.lists(st.integers(0, len(values)), max_size=4)))
    bounds = [0, *cuts, len(values)]
    chunked = pa.chunked_array([array[a:b] for a, b in itertools.pairwise(bounds)], type=array.type)
    pad = draw(st.integers(1, 5))
    padded = pa.array([values[0] if values else None] * pad + values, type=array.type)
    return array, chunked, padded[pad:]


@settings(max_examples=60)
@given(chunkings())
def test_hashes_are_stable_under_rechunking_and_slicing(
    case: tuple[pa.Array, pa.ChunkedArray, pa.Array],
) -> None:
    array, chunked, sliced = case
    assert column_hash(array) == column_hash(chunked) == column_hash(sliced)
