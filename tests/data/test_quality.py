"""Data-quality notes name the column and count nulls, stray text and infinities."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from regrow.data import prepare_snapshot
from regrow.data.quality import quality_notes, replace_infinities


def test_nulls_are_counted_with_their_share() -> None:
    table = pa.table({"x": [1.0] * 5997 + [None] * 3, "y": [1] * 6000})
    [note] = quality_notes(table)
    assert (note.column, note.kind, note.count) == ("x", "nulls", 3)
    assert note.message == "column 'x': 3 nulls (0.05%)"


def test_a_tiny_share_is_not_rounded_to_zero() -> None:
    table = pa.table({"x": [1.0] * 99_999 + [None]})
    assert quality_notes(table)[0].message == "column 'x': 1 null (<0.01%)"


def test_stray_text_in_a_numeric_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("y\n" + "1.5\n" * 50 + 'oops\n"12,5"\n')
    snap = prepare_snapshot(path)
    assert snap.schema["y"].dtype in ("string", "category")
    [note] = [n for n in snap.notes if n.kind == "not_numeric"]
    assert note.count == 2
    assert note.message.startswith(
        "column 'y': 2 values not numeric, read as strings ('12,5', 'oops'): the whole column "
        "is stored as strings, so a model reads no number from it; clean the values in the "
        "source"
    )


def test_the_stray_text_note_says_how_to_fix_numbers_with_grouped_thousands() -> None:
    table = pa.table({"balance": ["12.5", "7", "1,234.5", "3"]})
    [note] = quality_notes(table)
    assert "the whole column is stored as strings" in note.message
    assert "'1,234.5' is a number with ',' grouping thousands: remove the commas" in note.message
    assert note.message.endswith(note.fix)


def test_a_text_column_gets_no_numeric_note() -> None:
    table = pa.table({"city": ["Paris", "Lyon", "12", "Nice"]})
    assert quality_notes(table) == []


def test_infinities_become_nulls_and_are_counted() -> None:
    table = pa.table({"x": [1.0, np.inf, -np.inf, np.inf], "n": [1, 2, 3, 4]})
    cleaned, [note] = replace_infinities(table)
    assert cleaned.column("x").to_pylist() == [1.0, None, None, None]
    assert note.message == "column 'x': 3 infinite values (inf, -inf) stored as nulls"
    _same, none = replace_infinities(pa.table({"x": [1.0, 2.0]}))
    assert none == []


def test_a_snapshot_with_infinities_raises_no_numpy_warning() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, np.inf, -np.inf, 5.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        snap = prepare_snapshot(frame)
    assert snap.table.column("x").null_count == 2
    assert [n.kind for n in snap.notes] == ["infinite", "nulls"]
    assert snap.profile["columns"]["x"]["max"] == 5.0


def test_notes_slice_rows_and_source_are_kept_in_the_stored_profile() -> None:
    frame = pd.DataFrame({"x": [1.0, None, 3.0], "c": ["a", "b", "a"]})
    snap = prepare_snapshot(frame, slices={"big": "x > 1", "none": "x > 99"})
    stored = snap.stored_profile()
    assert stored["slice_rows"] == {"big": 1, "none": 0}
    assert stored["source"] == "pandas.DataFrame"
    assert stored["notes"] == [
        {"column": "x", "kind": "nulls", "count": 1, "message": "column 'x': 1 null (33.33%)"}
    ]
    assert {k: stored[k] for k in ("rows", "columns")} == snap.profile
