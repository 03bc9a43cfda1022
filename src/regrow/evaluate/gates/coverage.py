"""The coverage gate: monitoring can watch every feature the candidate's members read.

Drift is measured against each column's profile in the data its member was trained on
(:mod:`regrow.monitoring`). A column is **covered** when that reference profile exists and
holds values a drift test can compare: a numeric or categorical column with at least one
non-null value. Any column a member reads that is not covered fails the gate, naming the
members that read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from regrow.evaluate.gates.base import BaseGate, GateResult
from regrow.evaluate.gates.context import GateContext

__all__ = ["Coverage", "member_columns"]


class Coverage(BaseGate):
    """Every feature a member reads has a reference profile to monitor it against."""

    name: ClassVar[str] = "coverage"
    needs: ClassVar[frozenset[str]] = frozenset({"profiles"})

    exclude: tuple[str, ...] = ()
    """Columns not required to be covered."""

    def check(self, context: GateContext) -> GateResult:
        """Fail naming each uncovered column and who reads it."""
        readers = member_columns(context.candidate.spec)
        columns = sorted(set().union(*readers.values()) - set(self.exclude)) if readers else []
        reference = context.candidate_reference
        missing: dict[str, str] = {}
        for column in columns:
            profile = reference.get(column)
            if profile is None:
                missing[column] = "no reference profile"
            elif profile.kind not in ("numeric", "categorical"):
                missing[column] = f"a {profile.dtype} column no drift test compares"
            elif profile.count == 0:
                missing[column] = "only nulls in the reference"
        fields: dict[str, Any] = {
            "value": float(len(columns) - len(missing)), "threshold": float(len(columns)),
            "measure": "columns covered",
            "details": {"columns": columns, "uncovered": missing,
                        "readers": {c: sorted(m for m, cols in readers.items() if c in cols)
                                    for c in missing}},
        }  # fmt: skip
        if not columns:
            return self.result("pass", "the members read no data column", **fields)
        if missing:
            said = "; ".join(
                f"{c!r} ({why}; read by {', '.join(fields['details']['readers'][c])})"
                for c, why in missing.items()
            )
            return self.result(
                "fail", f"{len(missing)} of {len(columns)} column(s) cannot be monitored: {said}",
                **fields,
            )  # fmt: skip
        return self.result(
            "pass", f"all {len(columns)} column(s) the members read have a reference profile",
            **fields,
        )  # fmt: skip


def member_columns(spec: Mapping[str, Any]) -> dict[str, set[str]]:
    """Each member's raw data columns (read directly or through transforms), from a version's
    stored spec.

    >>> spec = {"target": "y", "components": {
    ...     "t": {"kind": "transform", "inputs": ["a"]},
    ...     "m": {"kind": "member", "inputs": ["t", "b"]}}}
    >>> sorted(member_columns(spec)["m"])
    ['a', 'b']
    """
    components = spec["components"]

    def raw(name: str) -> set[str]:
        cols: set[str] = set()
        for i in components[name]["inputs"]:
            cols |= raw(i) if i in components else {i}
        return cols

    return {n: raw(n) - {spec["target"]} for n, c in components.items() if c["kind"] == "member"}
