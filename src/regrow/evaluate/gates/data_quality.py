"""The data-quality gate: the candidate's training snapshots and the evaluation snapshot
against the reference profile.

The **reference** is what the version in production was trained on: each column the baseline's
members read, profiled in the snapshot they were trained on (with no baseline, the
candidate's own). Every snapshot's stored monitoring profile
(:class:`~regrow.monitor.profile.Profile`) is compared with it, column by column, for the
columns the candidate reads:

==============  ===========================================================================
``schema``      the column is missing, or of another kind (numbers where text was)
``nulls``       its null rate rose by more than ``max_null_increase``
``range``       more than ``max_out_of_range`` of its values lie outside the reference's
                [min, max] (read from the snapshot's quantile sketch: within its rank error)
``unseen``      more than ``max_unseen`` of its values are categories the reference never held
==============  ===========================================================================

The value is the number of findings; any finding fails the gate (``allow_schema_changes``
lets a column's kind change or go missing: the signature gate judges that).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from regrow.evaluate.gates.base import BaseGate, GateResult
from regrow.evaluate.gates.context import GateContext

if TYPE_CHECKING:
    from regrow.monitor.profile import ColumnProfile, Profile

__all__ = ["DataQuality", "column_findings"]

_SHOWN = 4  # findings quoted in the sentence of why


class DataQuality(BaseGate):
    """Training and evaluation snapshots look like the reference, column by column."""

    name: ClassVar[str] = "data_quality"
    needs: ClassVar[frozenset[str]] = frozenset({"profiles"})

    max_null_increase: float = Field(0.05, ge=0, le=1)
    max_out_of_range: float = Field(0.01, ge=0, le=1)
    max_unseen: float = Field(0.01, ge=0, le=1)
    allow_schema_changes: bool = False

    def check(self, context: GateContext) -> GateResult:
        """One finding per (snapshot, column, check) beyond its limit."""
        theirs = context.baseline_reference if context.baseline is not None else {}
        reference = dict(theirs or context.candidate_reference)
        if not reference:
            return self.inconclusive("no reference profile to compare the snapshots with")
        columns = sorted(context.candidate_reference or reference)
        snapshots: dict[str, Profile] = {
            f"training snapshot {name!r}": p for name, p in context.training.items()
        }
        if context.evaluation_profile is not None:
            snapshots["the evaluation snapshot"] = context.evaluation_profile
        if not snapshots:
            return self.inconclusive("no snapshot profile to check")
        findings: list[dict[str, Any]] = []
        for label, profile in snapshots.items():
            for column in columns:
                ref = reference.get(column) or context.candidate_reference.get(column)
                if ref is None:
                    continue
                for f in column_findings(ref, profile.columns.get(column), self):
                    findings.append({"snapshot": label, "column": column, **f})
        against = "the baseline's" if theirs else "the candidate's own"
        fields: dict[str, Any] = {
            "value": float(len(findings)), "threshold": 0.0, "measure": "findings",
            "details": {"reference": against, "snapshots": list(snapshots),
                        "columns": columns, "findings": findings},
        }  # fmt: skip
        if findings:
            said = "; ".join(
                f"{f['snapshot']}: {f['column']!r} {f['what']}" for f in findings[:_SHOWN]
            )
            more = f" (and {len(findings) - _SHOWN} more)" if len(findings) > _SHOWN else ""
            return self.result("fail", f"{said}{more}", **fields)
        return self.result(
            "pass",
            f"{len(snapshots)} snapshot(s) match {against} reference profile on "
            f"{len(columns)} column(s): schema, nulls, ranges and categories",
            **fields,
        )


def column_findings(
    ref: ColumnProfile, col: ColumnProfile | None, limits: DataQuality
) -> list[dict[str, Any]]:
    """What is wrong with column profile ``col`` against ``ref`` under ``limits``.

    >>> import pyarrow as pa
    >>> from regrow.monitor.profile import profile_column
    >>> ref = profile_column("x", pa.array([0.0, 1.0, 2.0, 3.0]))
    >>> col = profile_column("x", pa.array([1.0, 5.0, None, 2.0]))
    >>> [f["check"] for f in column_findings(ref, col, DataQuality())]
    ['nulls', 'range']
    """
    if col is None:
        if limits.allow_schema_changes:
            return []
        return [{"check": "schema", "share": None, "limit": None, "what": "is missing"}]
    out: list[dict[str, Any]] = []

    def found(check: str, share: float | None, limit: float | None, what: str) -> None:
        out.append({"check": check, "share": share, "limit": limit, "what": what})

    if col.kind != ref.kind and col.dtype is not None and not limits.allow_schema_changes:
        found("schema", None, None, f"is {col.dtype} where the reference has {ref.dtype}")
        return out
    rise = _rate(col) - _rate(ref)
    if rise > limits.max_null_increase:
        limit = limits.max_null_increase
        found("nulls", rise, limit, f"null rate rose by {rise:.2%} (limit {limit:.2%})")
    if ref.kind == "numeric" and col.kind == "numeric":
        share = _out_of_range(ref, col)
        limit = limits.max_out_of_range
        if share > limit:
            found("range", share, limit, f"has {share:.2%} of values outside the reference's "
                  f"[{ref.min:g}, {ref.max:g}] (limit {limit:.2%})")  # fmt: skip
    elif ref.kind == "categorical" and col.kind == "categorical" and ref.complete:
        share, shown = _unseen(ref, col)
        limit = limits.max_unseen
        if share > limit:
            names = ", ".join(map(repr, shown))
            found("unseen", share, limit, f"has {share:.2%} of values in categories the "
                  f"reference never held ({names}; limit {limit:.2%})")  # fmt: skip
    return out


def _rate(profile: ColumnProfile) -> float:
    rate = profile.null_rate
    return 0.0 if math.isnan(rate) else rate


def _out_of_range(ref: ColumnProfile, col: ColumnProfile) -> float:
    """Share of ``col``'s values below the reference's min or above its max."""
    if not col.count or math.isnan(ref.min) or (col.min >= ref.min and col.max <= ref.max):
        return 0.0
    kll = col.kll()
    if kll is None:
        return 0.0
    below = kll.get_rank(ref.min, False) if col.min < ref.min else 0.0
    above = 1.0 - kll.get_rank(ref.max, True) if col.max > ref.max else 0.0
    return float(below + above)


def _unseen(ref: ColumnProfile, col: ColumnProfile) -> tuple[float, list[str]]:
    known: Mapping[str, int] = dict(ref.counts)
    new = [(v, c) for v, c in col.counts if v not in known]
    if not col.count:
        return 0.0, []
    return sum(c for _, c in new) / col.count, [v for v, _ in new[:3]]
