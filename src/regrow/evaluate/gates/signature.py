"""The signature gate: the candidate takes and gives what the version it replaces does.

The **input** signature is the set of data columns the members read, each with its type in
the data it was trained on (from the reference profiles, when given); the **output**
signature is the task, the classes and the output's width. Any difference with the baseline
(the alias holder) fails the gate unless the policy allows that kind of change: ``inputs``
(columns added or removed), ``types`` (a column's type changed) or ``outputs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from regrow.evaluate.gates.base import BaseGate, GateResult
from regrow.evaluate.gates.context import GateContext
from regrow.evaluate.gates.coverage import member_columns

if TYPE_CHECKING:
    from regrow.model import FittedSystem
    from regrow.monitor.profile import ColumnProfile

__all__ = ["Signature", "signature_of"]

Change = Literal["inputs", "types", "outputs"]


class Signature(BaseGate):
    """The candidate's inputs and outputs match the baseline's, or the change is allowed."""

    name: ClassVar[str] = "signature"

    allow: tuple[Change, ...] = ()
    """Kinds of change the policy accepts: inputs, types, outputs."""

    def check(self, context: GateContext) -> GateResult:
        """Fail naming each change the policy does not allow."""
        if context.baseline is None:
            return self.inconclusive("no baseline (alias holder) to compare the signature with")
        cand = signature_of(context.candidate, context.candidate_reference)
        base = signature_of(context.baseline, context.baseline_reference)
        changes: dict[str, list[str]] = {"inputs": [], "types": [], "outputs": []}
        added = sorted(set(cand["inputs"]) - set(base["inputs"]))
        removed = sorted(set(base["inputs"]) - set(cand["inputs"]))
        if added:
            changes["inputs"].append(f"reads new columns {added}")
        if removed:
            changes["inputs"].append(f"no longer reads {removed}")
        for column in sorted(set(cand["inputs"]) & set(base["inputs"])):
            was, now = base["inputs"][column], cand["inputs"][column]
            if was is not None and now is not None and was != now:
                changes["types"].append(f"{column!r} is {now} where it was {was}")
        for key in ("task", "classes", "width"):
            if cand[key] != base[key]:
                changes["outputs"].append(f"{key} {cand[key]!r} where it was {base[key]!r}")
        refused = [c for kind, cs in changes.items() if kind not in self.allow for c in cs]
        allowed = [c for kind, cs in changes.items() if kind in self.allow for c in cs]
        fields: dict[str, Any] = {
            "value": float(len(refused)), "threshold": 0.0, "measure": "changes not allowed",
            "details": {"candidate": cand, "baseline": base, "changes": changes,
                        "allowed": list(self.allow)},
        }  # fmt: skip
        if refused:
            return self.result(
                "fail", "the candidate " + "; ".join(refused) + _allow_hint(changes, self.allow),
                **fields,
            )  # fmt: skip
        note = f" (allowed: {'; '.join(allowed)})" if allowed else ""
        return self.result(
            "pass",
            f"same {len(cand['inputs'])} input column(s) and outputs as the baseline{note}",
            **fields,
        )


def signature_of(
    model: FittedSystem, reference: Mapping[str, ColumnProfile] | None = None
) -> dict[str, Any]:
    """``{"inputs": {column: dtype or None}, "task", "classes", "width"}`` of a version."""
    columns = sorted(set().union(*member_columns(model.spec).values()))
    reference = reference or {}
    classes = model.classes_
    return {
        "inputs": {c: reference[c].dtype if c in reference else None for c in columns},
        "task": model.task,
        "classes": None if classes is None else [_plain(c) for c in classes],
        "width": 1 if classes is None else len(classes),
    }


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _allow_hint(changes: Mapping[str, list[str]], allow: tuple[str, ...]) -> str:
    kinds = [k for k, cs in changes.items() if cs and k not in allow]
    return f" (to accept it: gates.checks.signature.allow: {kinds})"
