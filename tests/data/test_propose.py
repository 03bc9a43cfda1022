"""propose(): which schema changes get an adapter, with which parameters, and which stay to
people; the proposed Python builds the proposed adapters."""

from __future__ import annotations

import pandas as pd
import pytest

from regrow.data import ColumnSchema, Schema
from regrow.data.adapters import Adapters, Cast, MapCategories, Rename
from regrow.data.propose import Proposal, propose
from regrow.errors import SchemaError

PLANS = ("free", "other", "pro")


def _schema(*columns: ColumnSchema) -> Schema:
    return Schema(columns)


def _built(proposal: Proposal) -> Adapters:
    namespace: dict[str, object] = {}
    exec(proposal.python(), namespace)
    return Adapters(namespace["adapters"])  # type: ignore[arg-type]


def test_a_rename_a_widened_int_and_a_new_category_with_other_known_are_proposed() -> None:
    old = _schema(
        ColumnSchema("tenure", "int"),
        ColumnSchema("seats", "int", min=1, max=9),
        ColumnSchema("plan", "category", categories=PLANS),
    )
    new = _schema(
        ColumnSchema("months", "int"),
        ColumnSchema("seats", "float"),
        ColumnSchema("plan", "category", categories=(*PLANS, "team")),
    )
    proposal = propose(old, new)
    assert proposal.bridged
    assert proposal.adapters == Adapters(
        [
            Rename("tenure", source="months"),
            Cast("seats", "int"),
            MapCategories("plan", known=PLANS, unseen="other"),
        ]
    )
    assert _built(proposal) == proposal.adapters


def test_the_proposed_adapters_read_the_new_rows_as_the_old_shape() -> None:
    old = _schema(ColumnSchema("seats", "int", min=1, max=9), ColumnSchema("tier", "string"))
    new = _schema(ColumnSchema("seats", "float"), ColumnSchema("plan", "string"))
    adapters = propose(old, new).adapters
    frame = adapters.apply(pd.DataFrame({"seats": [2.0, 9.0], "plan": ["pro", "free"]}))
    assert frame.to_dict("list") == {"seats": [2, 9], "tier": ["pro", "free"]}
    assert str(frame["seats"].dtype) == "int64"


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ("bool", "int", Cast("x", "bool")),
        ("bool", "float", Cast("x", "bool")),
        ("int", "float", Cast("x", "int")),
    ],
)
def test_every_widening_gets_a_cast_back_to_the_old_type(
    before: str, after: str, expected: Cast
) -> None:
    proposal = propose(_schema(ColumnSchema("x", before)), _schema(ColumnSchema("x", after)))
    assert list(proposal.adapters) == [expected]


def test_a_cast_sets_no_range_from_what_training_saw() -> None:
    # The old schema's min/max are observed values, not limits: a range from them would refuse
    # every new value beyond them (a user found a proposed max=14 refusing visits=15).
    old = _schema(ColumnSchema("age", "int", min=0, max=14))
    proposal = propose(old, _schema(ColumnSchema("age", "float")))
    assert list(proposal.adapters) == [Cast("age", "int")]
    assert "min" not in proposal.adapters[0].to_dict()
    assert "max" not in proposal.adapters[0].to_dict()


def test_category_to_string_maps_unseen_to_other_when_other_is_known() -> None:
    old = _schema(ColumnSchema("plan", "category", categories=PLANS))
    proposal = propose(old, _schema(ColumnSchema("plan", "string")))
    assert list(proposal.adapters) == [MapCategories("plan", known=PLANS, unseen="other")]


@pytest.mark.parametrize("new_dtype", ["category", "string"])
def test_without_an_other_category_the_mapping_is_undecided(new_dtype: str) -> None:
    old = _schema(ColumnSchema("plan", "category", categories=("free", "pro")))
    grown = ("free", "pro", "team") if new_dtype == "category" else None
    proposal = propose(old, _schema(ColumnSchema("plan", new_dtype, categories=grown)))
    assert not proposal.adapters
    assert not proposal.bridged
    [(change, reason)] = proposal.undecided
    assert change.column == "plan"
    assert "which known category should unseen values become?" in reason
    assert 'MapCategories("plan", known=("free", "pro"), unseen=...)' in reason


def test_other_must_match_case_to_be_chosen() -> None:
    old = _schema(ColumnSchema("plan", "category", categories=("Other", "free")))
    new = _schema(ColumnSchema("plan", "category", categories=("Other", "free", "team")))
    assert not propose(old, new).bridged


def test_a_dropped_column_is_undecided_and_says_what_the_old_schema_knows() -> None:
    old = _schema(
        ColumnSchema("seats", "int", min=1, max=9),
        ColumnSchema("plan", "category", categories=("free", "pro")),
        ColumnSchema("note", "string"),
    )
    proposal = propose(old, _schema())
    assert not proposal.adapters
    reasons = {change.column: reason for change, reason in proposal.undecided}
    assert set(reasons) == {"seats", "plan", "note"}
    assert 'write Default("seats", ...) with an int from 1 to 9' in reasons["seats"]
    assert "one of its categories 'free', 'pro'" in reasons["plan"]
    assert "records nothing more about it" in reasons["note"]
    assert reasons["seats"].startswith("'seats' dropped (int): a Default needs the value")


def test_a_column_that_became_nullable_is_undecided() -> None:
    old = _schema(ColumnSchema("flag", "bool", nullable=False))
    proposal = propose(old, _schema(ColumnSchema("flag", "bool", nullable=True)))
    [(change, reason)] = proposal.undecided
    assert change.kind == "became nullable"
    assert "the value its nulls should read" in reason
    assert "True or False" in reason


def test_a_retyped_column_is_undecided() -> None:
    proposal = propose(_schema(ColumnSchema("x", "int")), _schema(ColumnSchema("x", "string")))
    [(change, reason)] = proposal.undecided
    assert change.kind == "retyped"
    assert "retrain" in reason


def test_only_columns_the_reader_reads_matter() -> None:
    old = _schema(ColumnSchema("a", "int"), ColumnSchema("b", "int"))
    new = _schema(ColumnSchema("a", "float"))
    assert propose(old, new, reads=["c"]) == Proposal(Adapters())
    proposal = propose(old, new, reads=["a"])
    assert list(proposal.adapters) == [Cast("a", "int")]
    assert proposal.bridged


def test_the_mode_decides_which_changes_need_an_adapter() -> None:
    old = _schema(ColumnSchema("a", "int"), ColumnSchema("b", "float"))
    new = _schema(ColumnSchema("a", "float"), ColumnSchema("b", "int"))
    assert list(propose(old, new, mode="backward").adapters) == [Cast("a", "int")]
    assert propose(old, new, mode="none") == Proposal(Adapters())
    forward = propose(old, new, mode="forward")
    assert not forward.adapters
    [(change, reason)] = forward.undecided
    assert change.column == "b"
    assert "forward direction" in reason
    with pytest.raises(SchemaError, match="unknown compatibility mode 'loose'"):
        propose(old, new, mode="loose")


def test_safe_changes_propose_nothing() -> None:
    old = _schema(ColumnSchema("a", "float"), ColumnSchema("b", "int", nullable=True))
    new = _schema(ColumnSchema("b", "int", nullable=False), ColumnSchema("a", "float"),
                  ColumnSchema("c", "string"))  # fmt: skip
    proposal = propose(old, new)
    assert proposal == Proposal(Adapters())
    assert proposal.python() == ""
    assert proposal.to_dict() == {"adapters": [], "undecided": [], "python": ""}


def test_to_dict_carries_the_adapters_and_each_undecided_change_with_its_reason() -> None:
    old = _schema(ColumnSchema("a", "int"), ColumnSchema("b", "int"))
    report = propose(old, _schema(ColumnSchema("a", "float"))).to_dict()
    assert report["adapters"] == [{"kind": "cast", "column": "a", "dtype": "int"}]
    [undecided] = report["undecided"]
    assert (undecided["column"], undecided["kind"], undecided["class"]) == (
        "b",
        "dropped",
        "breaking",
    )
    assert undecided["reason"].startswith("'b' dropped (int)")
    assert report["python"].startswith("from regrow.data.adapters import Cast\n")


def test_the_python_quotes_odd_names_and_builds_the_same_adapters() -> None:
    odd = 'plan "tier"\\ü'
    old = _schema(
        ColumnSchema(odd, "category", categories=("a'b", "other")),
        ColumnSchema("n", "int", min=-2, max=2**40),
    )
    new = _schema(
        ColumnSchema(odd, "category", categories=("a'b", "other", "x")),
        ColumnSchema("n", "float"),
    )
    proposal = propose(old, new)
    assert len(proposal.adapters) == 2
    assert _built(proposal) == proposal.adapters
