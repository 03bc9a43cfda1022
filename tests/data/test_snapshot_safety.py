"""A name's snapshots keep their shape: breaking changes are refused, dirty data is named.

The first three tests reproduce issue #10's report: a CSV missing a column, with strings in a
numeric column, or with NaN in the target was stored without a word under an existing name.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from regrow import Member, System, Workspace
from regrow.data import ColumnSchema, Schema
from regrow.data.schema_diff import dtype_accepts
from regrow.data.snapshot_safety import align_to, check_snapshot
from regrow.errors import DataError, DataQualityWarning, IncompatibleSchema, SchemaError

BASE = pd.DataFrame(
    {
        "spend": [12.5, 3.0, 8.25, 1.0, 7.5, 2.0],
        "plan": ["pro", "free", "free", "pro", "free", "pro"],
        "visits": [3, 1, 4, 1, 5, 9],
        "churned": [0, 1, 0, 1, 0, 1],
    }
)


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace.init(tmp_path / "ws") as opened:
        opened.snapshot(BASE, name="customers", target="churned")
        yield opened


def state(ws: Workspace) -> dict[str, Any]:
    """Everything a snapshot could leave behind: rows, schema versions, events, artifacts."""
    return {
        "snapshots": [s.id for s in ws.catalog.list_snapshots()],
        "schemas": [(s.name, s.version) for s in ws.catalog.schema_versions("customers")],
        "events": [e.seq for e in ws.catalog.audit_events(limit=1000)],
        "artifacts": sorted(p.name for p in (ws.home / "artifacts").rglob("*") if p.is_file()),
    }


def _stray_spend() -> pd.DataFrame:
    """BASE with a stray string in its numeric column ``spend`` (row 2: ``'oops'``)."""
    frame = BASE.astype({"spend": object})
    frame.loc[2, "spend"] = "oops"
    return frame


def refused(ws: Workspace, data: Any, pattern: str, **kwargs: Any) -> IncompatibleSchema:
    before = state(ws)
    with pytest.raises(IncompatibleSchema, match=pattern) as info:
        ws.snapshot(data, name="customers", **kwargs)
    assert state(ws) == before, "a refused snapshot left something behind"
    assert info.value.hint is not None
    assert "allow_schema_change=True" in info.value.hint
    assert isinstance(info.value, ValueError)
    return info.value


# -- issue #10: the three reports ---------------------------------------------------------


def test_a_csv_missing_a_column_is_refused_under_an_existing_name(
    ws: Workspace, tmp_path: Path
) -> None:
    BASE.drop(columns="plan").to_csv(tmp_path / "missing.csv", index=False)
    error = refused(ws, tmp_path / "missing.csv", r"does not match its schema v1 \(1 problem\)")
    assert error.problems == ("column 'plan' (category) is missing",)
    assert "- 'plan' (category)" in error.changes
    assert ws.catalog.get_snapshot("customers").columns == tuple(BASE.columns)


def test_strings_in_a_numeric_column_are_refused_naming_the_values(
    ws: Workspace, tmp_path: Path
) -> None:
    _stray_spend().to_csv(tmp_path / "strings.csv", index=False)
    error = refused(ws, tmp_path / "strings.csv", "dtype float → string")
    assert error.problems == (
        "column 'spend': dtype float → string (1 value not numeric, read as strings ('oops'))",
    )


def test_nan_in_the_target_is_refused_under_an_existing_name(ws: Workspace) -> None:
    error = refused(
        ws, BASE.assign(churned=[0, 1, np.nan, 1, 0, 1]), "target 'churned'", target="churned"
    )
    assert error.problems == ("target 'churned' has 1 null (16.67% of 6 rows)",)
    assert "dtype" not in str(error)  # the pandas float column is read as the int it was


# -- what is compatible, and what is allowed ----------------------------------------------


def test_an_added_column_is_stored_and_mentioned(ws: Workspace) -> None:
    with pytest.warns(DataQualityWarning) as caught:
        snap = ws.snapshot(BASE.assign(region="eu"), name="customers")
    assert caught[0].message.notes == (  # type: ignore[union-attr]
        "column 'region' (category) is new since schema v1 (a compatible change)",
    )
    assert "region" in snap.columns


def test_new_values_and_ranges_are_not_a_problem(ws: Workspace) -> None:
    moved = BASE.assign(spend=BASE["spend"] * 10, plan=["team"] * 6, visits=BASE["spend"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ws.snapshot(moved.astype({"visits": "int64"}), name="customers")


def test_an_allowed_change_records_a_schema_version_and_an_audit_event(ws: Workspace) -> None:
    with pytest.warns(DataQualityWarning, match="allowed schema change: column 'plan'"):
        snap = ws.snapshot(BASE.drop(columns="plan"), name="customers", allow_schema_change=True)
    versions = ws.catalog.schema_versions("customers")
    assert [v.version for v in versions] == [1, 2]
    assert ws.catalog.snapshot_schema(snap.id) == versions[1]
    [event] = [e for e in ws.catalog.audit_events() if e.action == "schema.change"]
    assert event.subject == "schema:customers"
    assert event.payload["snapshot"] == snap.id
    assert (event.payload["from_version"], event.payload["version"]) == (1, 2)
    assert event.payload["problems"] == ["column 'plan' (category) is missing"]
    # The new shape is now the name's: the same data again is no change.
    ws.snapshot(BASE.drop(columns="plan").iloc[:5], name="customers")


def test_clean_rows_after_a_one_off_allowed_change_are_no_change(
    ws: Workspace, tmp_path: Path
) -> None:
    # One window with a stray string stored with --allow-schema-change made its text column
    # the name's shape: the clean windows after it were refused as "string → float".
    frame = _stray_spend()
    frame.to_csv(tmp_path / "stray.csv", index=False)
    with pytest.warns(DataQualityWarning):
        ws.snapshot(tmp_path / "stray.csv", name="customers", allow_schema_change=True)
    with pytest.warns(DataQualityWarning) as caught:
        ws.snapshot(BASE.iloc[:4], name="customers")
    notes = caught[0].message.notes  # type: ignore[union-attr]
    assert notes == ("back to the shape of schema v1, before the change allowed at v2",)
    ws.snapshot(BASE.iloc[1:], name="customers")  # and the next one is no change at all
    # A change someone meant (the windows since in the new shape) stays the name's shape.
    frame.iloc[:5].to_csv(tmp_path / "meant.csv", index=False)
    with pytest.warns(DataQualityWarning):
        ws.snapshot(tmp_path / "meant.csv", name="customers", allow_schema_change=True)
    frame.iloc[1:].to_csv(tmp_path / "since.csv", index=False)
    with pytest.warns(DataQualityWarning):  # its stray value, named again
        ws.snapshot(tmp_path / "since.csv", name="customers")
    refused(ws, BASE.iloc[:3], "dtype string → float")


def test_the_target_of_a_trained_version_is_checked_without_being_named(
    ws: Workspace,
) -> None:
    system = System(
        "churn",
        target="churned",
        components=[Member("m", LogisticRegression(), inputs=["spend", "visits"])],
    )
    ws.train(system, "customers", workers=1)
    assert ws.catalog.trained_target("customers") == "churned"
    refused(ws, BASE.assign(churned=[0, 1, None, 1, 0, 1]), "target 'churned' has 1 null")


def test_a_target_that_is_not_a_column_is_refused(ws: Workspace) -> None:
    with pytest.raises(DataError, match="target 'label' is not a column of the data"):
        ws.snapshot(BASE, name="other", target="label")


def test_nulls_in_a_target_are_refused_under_a_new_name_too(ws: Workspace) -> None:
    with pytest.raises(IncompatibleSchema, match="snapshot 'fresh' has 1 problem"):
        ws.snapshot(BASE.assign(churned=[0, None, 0, 1, 0, 1]), name="fresh", target="churned")
    assert ws.catalog.list_snapshots("fresh") == []


# -- warnings -----------------------------------------------------------------------------


def test_nulls_stray_text_and_infinities_are_one_warning(ws: Workspace, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"x": [1.0, None, np.inf, 4.0] * 5, "y": ["1", "2", "3", "4"] * 4 + ["n.a."] * 4}
    )
    frame.to_csv(tmp_path / "dirty.csv", index=False)
    with pytest.warns(DataQualityWarning) as caught:
        ws.snapshot(tmp_path / "dirty.csv", name="dirty")
    [warning] = caught
    assert warning.message.notes == (  # type: ignore[union-attr]
        "column 'x': 5 infinite values (inf) stored as nulls",
        "column 'x': 10 nulls (50.00%)",
        "column 'y': 4 values not numeric, read as strings ('n.a.'): the whole column is "
        "stored as strings, so a model reads no number from it; clean the values in the "
        "source and snapshot again, or make them nulls first (e.g. frame['y'] = "
        "pandas.to_numeric(frame['y'], errors='coerce'))",
    )
    assert warning.filename == __file__  # it points at the caller


def test_a_warning_turned_into_an_error_stores_nothing(ws: Workspace) -> None:
    before = state(ws)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataQualityWarning)
        with pytest.raises(DataQualityWarning):
            ws.snapshot(BASE.assign(spend=[None, 1.0, 2.0, 3.0, 4.0, 5.0]), name="customers")
    assert state(ws) == before


def test_clean_data_and_a_repeated_snapshot_warn_nothing(ws: Workspace) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = ws.snapshot(BASE, name="customers")
    assert again == ws.catalog.get_snapshot("customers")


def test_a_window_is_stored_as_it_is_without_checks_or_warnings(ws: Workspace) -> None:
    window = BASE.drop(columns="plan").assign(churned=None, spend=[np.inf, 1, 2, 3, 4, None])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        snap = ws.snapshot(window, name="customers", check_schema=False, target="churned")
    notes = ws.catalog.describe_snapshot(snap.id)["notes"]
    assert "column 'spend': 1 infinite value (inf) stored as nulls" in notes
    assert "column 'churned': 6 nulls (100.00%)" in notes


# -- the pieces ---------------------------------------------------------------------------


def test_dtype_changes_the_old_schema_accepts_are_compatible() -> None:
    assert dtype_accepts("float", "int")
    assert dtype_accepts("category", "string")
    assert dtype_accepts("string", "category")
    assert not dtype_accepts("int", "float")
    assert not dtype_accepts("float", "string")
    old = Schema((ColumnSchema("a", "category"), ColumnSchema("b", "float")))
    new = Schema((ColumnSchema("a", "string"), ColumnSchema("b", "int")))
    assert old.compare(new).compatible
    assert check_snapshot(old, new, {}, target=None).problems == ()


def test_align_to_reads_columns_as_the_old_schema_did_where_nothing_changes() -> None:
    like = Schema(
        (
            ColumnSchema("whole", "int"),
            ColumnSchema("half", "int"),
            ColumnSchema("f", "float"),
            ColumnSchema("empty", "float"),
        )
    )
    frame = pd.DataFrame(
        {"whole": [1.0, None], "half": [1.5, 2.0], "f": [1, 2], "empty": [None, None]}
    )
    from regrow.data import to_arrow

    aligned = align_to(to_arrow(frame), like)
    assert [str(aligned.schema.field(n).type) for n in aligned.column_names] == [
        "int64",
        "double",
        "double",
        "double",
    ]
    assert aligned.column("whole").to_pylist() == [1, None]


def test_a_spec_regrow_did_not_write_is_not_compared(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        ws.catalog.register_schema("legacy", {"columns": {"x": "float"}})
        with pytest.raises(SchemaError):
            Schema.from_dict({"columns": {"x": "float"}})
        snap = ws.snapshot(pd.DataFrame({"y": [1, 2]}), name="legacy")
    assert snap.columns == ("y",)


def test_a_few_rows_of_a_category_column_are_stored_as_the_category_it_was(
    ws: Workspace,
) -> None:
    """BASE's 'plan' is a category (2 values in 6 rows); 2 rows hold too few repeats for
    inference alone, and were stored as a string column: a new schema of another type."""
    few = BASE.head(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no schema change to warn of
        snap = ws.snapshot(few, name="customers", target="churned")
    plan = Schema.from_dict(ws.catalog.snapshot_schema(snap.id).spec)["plan"]
    assert (plan.dtype, plan.categories) == ("category", ("free", "pro"))
