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

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from regrow.evaluate.gates.context import GateContext

__all__ = ["STATUSES", "BaseGate", "Gate", "GateResult", "Status"]

Status = Literal["pass", "fail", "inconclusive"]
#: Every status a gate can return.
STATUSES: tuple[Status, ...] = ("pass", "fail", "inconclusive")


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
