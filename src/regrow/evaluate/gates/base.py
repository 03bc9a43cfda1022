"""What a gate is: a check with thresholds that reads a :class:`GateContext` and says why.

A gate is anything with a ``name`` and a ``check(context) -> GateResult`` method
(:class:`Gate`). The built-in gates are frozen pydantic models (:class:`BaseGate`): their
fields are their thresholds, validated the way the policy is (a bad value names the key and
the value), and :meth:`BaseGate.settings` is what an evaluation stores of them.

Every result has a ``status``:

================  ============================================================================
``pass``          the evidence shows the candidate within the threshold
``fail``          the evidence shows it outside
``inconclusive``  the gate cannot tell: no baseline, too few rows, an undefined metric, a
                  check that does not apply (calibration of a regressor); ``why`` says which
================  ============================================================================

**Too few rows.** A gate that judges a bootstrap interval (:class:`IntervalGate`: improvement,
slice_regression, stability, fairness, calibration) is inconclusive on fewer than its
``min_rows`` rows (default :data:`MIN_ROWS`, 30; ``gates.checks.<gate>.min_rows`` in the
policy), and so is each slice, or group, that small: a percentile interval over a handful of
rows does not hold its level. Coverage of the 95% interval of a paired difference (the true
difference from 400,000 rows; 1,000 synthetic evaluation sets per cell; ROC AUC at 30%
positives, RMSE), and how often an equal candidate's improvement interval lay above 0 (2.5%
if the interval held):

======  ============  =============  ======================================
rows    AUC covered   RMSE covered   an equal candidate passed (AUC / RMSE)
======  ============  =============  ======================================
3       16.8%         77.2%          3.8% / 10.4%
5       39.7%         86.4%          1.1% / 8.8%
10      72.0%         89.9%          1.2% / 4.7%
20      92.6%         93.7%          2.0% / 3.7%
30      93.4%         93.3%          2.5% / 3.3%
50      95.3%         93.1%          2.1% / 3.4%
100     93.5%         93.7%          3.5% / 2.0%
200     94.5%         94.0%          2.5% / 2.4%
======  ============  =============  ======================================

AUC's coverage counts the sets where it is defined: on 3 rows, 39% held one class only. Each
cell is good to about 0.7 points (1,000 sets). From about 20 rows on, the interval covers as
well as it does on 200 rows (the percentile bootstrap's own shortfall of 1 to 2 points), and an
equal candidate passes about as rarely as it should; 30 leaves a margin over that.

>>> r = GateResult("size", "pass", "3.1 MB of artifacts, within 50 MB", value=3.1e6,
...                threshold=5e7, measure="artifact bytes")
>>> r.to_dict()["status"], GateResult.from_dict(r.to_dict()) == r
('pass', True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from regrow.evaluate.gates.context import GateContext

__all__ = [
    "MIN_ROWS",
    "STATUSES",
    "TOO_FEW_ROWS",
    "BaseGate",
    "Gate",
    "GateResult",
    "IntervalGate",
    "Status",
]

Status = Literal["pass", "fail", "inconclusive"]
#: Every status a gate can return.
STATUSES: tuple[Status, ...] = ("pass", "fail", "inconclusive")
#: The fewest rows an :class:`IntervalGate` judges an interval on (see the module docstring).
MIN_ROWS = 30
#: The key of a result's details that marks it inconclusive for too few rows.
TOO_FEW_ROWS = "too_few_rows"


@dataclass(frozen=True)
class GateResult:
    """What one gate found: the measured ``value`` (what it is: ``measure``), its
    ``interval``, the ``threshold`` it was judged against, the ``status`` and one sentence of
    ``why``. ``details`` holds the rest (per slice, per metric), JSON-ready."""

    name: str
    status: Status
    why: str
    value: float | None = None
    interval: tuple[float, float] | None = None
    threshold: float | None = None
    measure: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES} (got {self.status!r})")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN and infinities become None."""
        return {
            "name": self.name,
            "status": self.status,
            "why": self.why,
            "value": _finite(self.value),
            "interval": None if self.interval is None else [_finite(v) for v in self.interval],
            "threshold": _finite(self.threshold),
            "measure": self.measure,
            "details": _json(dict(self.details)),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        """The inverse of :meth:`to_dict` (None stays None)."""
        interval = data.get("interval")
        return cls(
            name=str(data["name"]),
            status=data["status"],
            why=str(data["why"]),
            value=data.get("value"),
            interval=None if interval is None else (interval[0], interval[1]),
            threshold=data.get("threshold"),
            measure=str(data.get("measure", "")),
            details=dict(data.get("details") or {}),
        )


@runtime_checkable
class Gate(Protocol):
    """A check an evaluation runs: ``check`` reads the context and returns a result."""

    name: ClassVar[str]

    def check(self, context: GateContext) -> GateResult:
        """Judge the candidate in ``context``."""
        ...


class BaseGate(BaseModel):
    """A built-in gate: its fields are its thresholds (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str] = ""
    #: What the gate reads beyond the versions and the rows, for the evaluation service to
    #: load only when a configured gate needs it: ``"profiles"`` (reference and snapshot
    #: profiles), ``"store"`` (artifact sizes).
    needs: ClassVar[frozenset[str]] = frozenset()
    #: False for a gate that measures time: its values differ from run to run.
    deterministic: ClassVar[bool] = True

    def check(self, context: GateContext) -> GateResult:  # pragma: no cover - abstract
        """Judge the candidate in ``context``."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """The thresholds as JSON (what the policy and the evaluation record hold)."""
        return self.model_dump(mode="json")

    def result(self, status: Status, why: str, **fields: Any) -> GateResult:
        """A result named after this gate."""
        return GateResult(self.name, status, why, **fields)

    def inconclusive(self, why: str, **fields: Any) -> GateResult:
        """An ``inconclusive`` result saying why."""
        return GateResult(self.name, "inconclusive", why, **fields)


class IntervalGate(BaseGate):
    """A gate that judges bootstrap intervals: inconclusive on fewer than ``min_rows`` rows.

    >>> from regrow.evaluate.gates import Improvement
    >>> Improvement().too_few(3)
    '3 rows: too few to tell; at least 30 are needed (gates.checks.improvement.min_rows)'
    >>> Improvement().too_few(30) is None
    True
    """

    min_rows: int = Field(MIN_ROWS, ge=1)
    """The fewest rows (of the evaluation, of a slice, of a group) an interval is judged on."""

    def settings(self) -> dict[str, Any]:
        """The thresholds as JSON; ``min_rows`` only when it is not the default, so that a
        policy which does not set it keeps the id it had before the setting existed (and the
        evaluations blessed under it still count)."""
        out = super().settings()
        if out.get("min_rows") == MIN_ROWS:
            del out["min_rows"]
        return out

    def too_few(self, rows: int, of: str = "") -> str | None:
        """Why ``rows`` rows (``of`` what, e.g. ``" in slice 'north'"``) are too few to judge;
        None when they are enough."""
        if rows >= self.min_rows:
            return None
        return (
            f"{rows:,} row{'s' if rows != 1 else ''}{of}: too few to tell; at least "
            f"{self.min_rows:,} are needed (gates.checks.{self.name}.min_rows)"
        )

    def cannot_tell(self, why: str, **fields: Any) -> GateResult:
        """An ``inconclusive`` result for too few rows: its details say ``too_few_rows``, so
        that ``inconclusive: ignore`` does not ignore it (:func:`~.verdict.verdict`)."""
        details = {**dict(fields.pop("details", None) or {}), TOO_FEW_ROWS: True}
        return self.inconclusive(why, details=details, **fields)

    def too_few_in(self, kind: str, rows: Mapping[str, int]) -> str | None:
        """Why the parts of ``rows`` (name -> rows: slices, groups) with fewer than
        ``min_rows`` rows cannot be judged; None when every part has enough.

        >>> from regrow.evaluate.gates import SliceRegression
        >>> SliceRegression().too_few_in("slice", {"north": 250, "tail": 17})
        "slice 'tail' has 17 rows: too few to tell; at least 30 are needed (gates.checks...)"
        """
        small = {name: n for name, n in rows.items() if n < self.min_rows}
        if not small:
            return None
        if len(small) == 1:
            [(name, n)] = small.items()
            listed = f"{kind} {name!r} has {n:,} row{'s' if n != 1 else ''}"
        else:
            listed = f"{kind}s " + ", ".join(f"{name!r} ({n:,} rows)" for name, n in small.items())
        return (
            f"{listed}: too few to tell; at least {self.min_rows:,} are needed "
            f"(gates.checks.{self.name}.min_rows)"
        )


def _finite(value: Any) -> Any:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _json(value: Any) -> Any:
    """Plain JSON types: NaN to None, tuples to lists, numpy scalars to Python ones."""
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value
