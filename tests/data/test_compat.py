"""Schema compatibility modes: every generated change is classified as the reference table says."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regrow.data import ColumnSchema, Schema
from regrow.data.compat import MODES, classify, classify_history
from regrow.errors import SchemaError

# The reference table: (change, mode) -> (class, adapter) of the one change it makes.
# Backward: a model trained on the old schema scores rows of the new one; forward the reverse;
# full the worse of both; none accepts everything.
REFERENCE: dict[str, dict[str, tuple[str, str | None]]] = {
    "add": {
        "backward": ("safe", None),
        "forward": ("breaking", "default"),
        "full": ("breaking", "default"),
        "none": ("safe", None),
    },
    "drop": {
        "backward": ("breaking", "default"),
        "forward": ("safe", None),
        "full": ("breaking", "default"),
        "none": ("safe", "default"),
    },
    "rename": {
        "backward": ("adaptable", "rename"),
        "forward": ("adaptable", "rename"),
        "full": ("adaptable", "rename"),
        "none": ("safe", "rename"),
    },
    "widen": {
        "backward": ("adaptable", "cast"),
        "forward": ("safe", None),
        "full": ("adaptable", "cast"),
        "none": ("safe", "cast"),
    },
    "narrow": {
        "backward": ("safe", None),
        "forward": ("adaptable", "cast"),
        "full": ("adaptable", "cast"),
        "none": ("safe", None),
    },
    "new category": {
        "backward": ("adaptable", "category mapping"),
        "forward": ("safe", None),
        "full": ("adaptable", "category mapping"),
        "none": ("safe", "category mapping"),
    },
    "reorder": {
        "backward": ("safe", None),
        "forward": ("safe", None),
        "full": ("safe", None),
        "none": ("safe", None),
    },
    "nullable": {
        "backward": ("adaptable", "default"),
        "forward": ("safe", None),
        "full": ("adaptable", "default"),
        "none": ("safe", "default"),
    },
}
KINDS = {
    "add": "added",
    "drop": "dropped",
    "rename": "renamed",
    "widen": "widened",
    "narrow": "narrowed",
    "new category": "categories grown",
    "reorder": "reordered",
    "nullable": "became nullable",
}
WIDER = [("int", "float"), ("bool", "int"), ("bool", "float"), ("category", "string")]

names = st.text("abcdefgh", min_size=1, max_size=6)


def _column(name: str, dtype: str, nullable: bool = False) -> ColumnSchema:
    categories = ("a", "b") if dtype == "category" else None
    return ColumnSchema(name, dtype, nullable=nullable, categories=categories)


@st.composite
def changes(draw: st.DrawFn) -> tuple[str, Schema, Schema, str]:
    """A change, a schema, the schema with the change applied, and the adapter a cast needs."""
    dtypes = st.sampled_from(["int", "float", "bool", "string", "category", "datetime"])
    picked = draw(st.lists(names, min_size=2, max_size=6, unique=True))
    columns = [_column(n, draw(dtypes)) for n in picked]
    old = Schema(tuple(columns))
    change = draw(st.sampled_from(sorted(REFERENCE)))
    i = draw(st.integers(0, len(columns) - 1))
    new = list(columns)
    bridge = "cast"
    fresh = draw(names.filter(lambda n: n not in picked))
    if change == "add":
        new.insert(draw(st.integers(0, len(new))), _column(fresh, draw(dtypes)))
    elif change == "drop":
        del new[i]
    elif change == "rename":
        new[i] = ColumnSchema(fresh, columns[i].dtype, False, categories=columns[i].categories)
    elif change in ("widen", "narrow"):
        before, after = draw(st.sampled_from(WIDER))
        if change == "narrow":
            before, after = after, before
        old = _replace(columns, i, _column(columns[i].name, before))
        bridge = "category mapping" if "category" in (before, after) else "cast"
        new[i] = _column(columns[i].name, after)
    elif change == "new category":
        old = _replace(columns, i, _column(columns[i].name, "category"))
        new[i] = ColumnSchema(
            columns[i].name, "category", False, categories=("a", "b", f"new {fresh}")
        )
    elif change == "reorder":
        new = new[1:] + new[:1]
    else:
        new[i] = _column(columns[i].name, columns[i].dtype, nullable=True)
    return change, old, Schema(tuple(new)), bridge


def _replace(columns: list[ColumnSchema], i: int, column: ColumnSchema) -> Schema:
    return Schema((*columns[:i], column, *columns[i + 1 :]))


@given(changes(), st.sampled_from(MODES))
def test_every_generated_change_is_classified_as_the_reference_table_says(
    case: tuple[str, Schema, Schema, str], mode: str
) -> None:
    change, old, new, bridge = case
    result = classify(old, new, mode)
    assert len(result.changes) == 1, result
    (found,) = result.changes
    assert found.kind == KINDS[change]
    expected_class, expected_adapter = REFERENCE[change][mode]
    if expected_adapter == "cast":
        expected_adapter = bridge  # category <-> string is bridged by a mapping, not a cast
    assert (found.cls, found.adapter) == (expected_class, expected_adapter)
    assert result.compatible == (expected_class != "breaking")


OLD = Schema(
    (
        ColumnSchema("age", "int", nullable=False),
        ColumnSchema("plan", "category", categories=("free", "pro")),
        ColumnSchema("spend", "float"),
    )
)


def test_backward_accepts_what_a_model_trained_on_old_can_score() -> None:
    new = Schema(
        (
            ColumnSchema("age", "float", nullable=False),
            ColumnSchema("plan", "category", categories=("free", "pro", "team")),
            ColumnSchema("spend", "float"),
            ColumnSchema("region", "string"),
        )
    )
    result = classify(OLD, new, "backward")
    assert result.compatible
    assert [(c.kind, c.cls, c.adapter) for c in result.changes] == [
        ("added", "safe", None),
        ("widened", "adaptable", "cast"),
        ("categories grown", "adaptable", "category mapping"),
    ]
    assert not classify(OLD, new, "forward").compatible  # 'region' is missing from old rows
    assert not classify(OLD, new, "full").compatible
    assert classify(OLD, new, "none").compatible


def test_a_dropped_column_breaks_backward_only_if_the_model_reads_it() -> None:
    new = Schema(OLD.columns[:2])
    result = classify(OLD, new, "backward")
    assert [c.column for c in result.breaking] == ["spend"]
    assert "column 'spend' dropped breaks backward compatibility" in result.breaking[0].hint(
        "backward"
    )
    assert "default adapter" in result.breaking[0].hint("backward")
    assert classify(OLD, new, "backward", target=["age", "plan"]).compatible
    assert classify(OLD, new, "forward").compatible


def test_an_incompatible_type_change_is_breaking_in_every_checked_mode() -> None:
    new = Schema((ColumnSchema("age", "datetime", nullable=False), *OLD.columns[1:]))
    for mode in ("backward", "forward", "full"):
        (change,) = classify(OLD, new, mode).changes
        assert (change.kind, change.cls) == ("retyped", "breaking")
    assert classify(OLD, new, "none").compatible


def test_an_ambiguous_rename_is_a_drop_and_an_add() -> None:
    old = Schema((ColumnSchema("a", "int"), ColumnSchema("b", "int")))
    new = Schema((ColumnSchema("c", "int"), ColumnSchema("d", "int")))
    kinds = sorted(c.kind for c in classify(old, new, "backward").changes)
    assert kinds == ["added", "added", "dropped", "dropped"]


def test_transitive_checks_every_registered_schema_not_only_the_newest() -> None:
    v1 = OLD
    v2 = Schema(OLD.columns[:2])  # 'spend' dropped: v2 was stored anyway
    v3 = Schema(OLD.columns[:2])
    newest = classify_history([v1, v2], v3, "backward")
    assert [r.compatible for r in newest] == [True]
    every = classify_history([v1, v2], v3, "backward", transitive=True)
    assert [r.compatible for r in every] == [False, True]


def test_bad_modes_and_empty_histories_are_refused_with_a_hint() -> None:
    with pytest.raises(SchemaError, match="unknown compatibility mode 'loose'") as info:
        classify(OLD, OLD, "loose")
    assert "backward" in str(info.value)
    with pytest.raises(SchemaError, match="no schema to check against"):
        classify_history([], OLD, "backward")


def test_the_verdict_prints_every_change_with_its_class() -> None:
    new = Schema((OLD["plan"], OLD["age"]))
    text = str(classify(OLD, new, "full"))
    assert text.startswith("full: incompatible (1 breaking)")
    assert "breaking   'spend' dropped (float)" in text
    assert "safe       columns reordered" in text


def test_the_example_in_docs_contracts_runs() -> None:
    path = Path(__file__).parents[2] / "docs" / "contracts.md"
    result = doctest.testfile(str(path), module_relative=False)
    assert result.attempted > 0
    assert result.failed == 0
