"""From gate results to a verdict: blessed only when every gate passed.

================  ==========================================================================
``rejected``      a gate failed
``none``          a gate was inconclusive (with ``inconclusive: none``, the default), or no
                  gate is configured: an evaluation without a gate does not bless
``blessed``       every gate passed (with ``inconclusive: ignore``, every gate that could
                  tell; at least one)
================  ==========================================================================

``inconclusive: reject`` treats an inconclusive gate as a failed one. ``ignore`` never ignores
a gate inconclusive for too few rows (its details say ``too_few_rows``): an evaluation on a
handful of rows is not blessed whatever the policy says of gates that cannot tell.

>>> from regrow.evaluate.gates.base import TOO_FEW_ROWS, GateResult
>>> ok = GateResult("improvement", "pass", "better")
>>> unsure = GateResult("fairness", "inconclusive", "too few rows per group")
>>> verdict([ok, unsure])
('none', ('fairness: inconclusive: too few rows per group',))
>>> verdict([ok, unsure], inconclusive="ignore")[0]
'blessed'
>>> verdict([])[0]
'none'
>>> few = GateResult("improvement", "inconclusive", "3 rows: too few to tell",
...                  details={TOO_FEW_ROWS: True})
>>> verdict([GateResult("size", "pass", "small"), few], inconclusive="ignore")
('none', ('improvement: inconclusive (too few rows: not ignored): 3 rows: too few to tell',))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from regrow.evaluate.gates.base import TOO_FEW_ROWS, GateResult

__all__ = ["INCONCLUSIVE", "Inconclusive", "verdict"]

Inconclusive = Literal["none", "ignore", "reject"]
#: What an inconclusive gate can make of the verdict.
INCONCLUSIVE: tuple[Inconclusive, ...] = ("none", "ignore", "reject")

NO_GATE = (
    "no gate is configured, so nothing is blessed: list the gates to run in the policy's "
    "gates.checks (`regrow policy show` has examples)"
)


def verdict(
    results: Sequence[GateResult], *, inconclusive: Inconclusive = "none"
) -> tuple[str, tuple[str, ...]]:
    """The verdict of ``results`` and its reasons, one per deciding gate."""
    if not results:
        return "none", (NO_GATE,)
    failed = [r for r in results if r.status == "fail"]
    unsure = [r for r in results if r.status == "inconclusive"]
    passed = [r for r in results if r.status == "pass"]
    if inconclusive == "reject":
        failed += unsure
        unsure = []
    if failed:
        return "rejected", tuple(f"{r.name}: {_status(r)}{r.why}" for r in failed)
    if unsure and (inconclusive == "none" or not passed):
        return "none", tuple(f"{r.name}: inconclusive: {r.why}" for r in unsure)
    too_few = [r for r in unsure if r.details.get(TOO_FEW_ROWS)]
    if too_few:  # "ignore" is for gates that do not apply, not for evidence too thin to read
        return "none", tuple(
            f"{r.name}: inconclusive (too few rows: not ignored): {r.why}" for r in too_few
        )
    reasons = [f"{r.name}: {r.why}" for r in passed]
    reasons += [f"{r.name}: inconclusive (ignored by the policy): {r.why}" for r in unsure]
    return "blessed", tuple(reasons)


def _status(result: GateResult) -> str:
    return "inconclusive (the policy rejects it): " if result.status == "inconclusive" else ""
