"""Gates on the evaluation metric: improvement, per-slice regression, stability.

All three read the metric of the evaluation (``gates.metric``; by default ROC AUC for
classifiers, RMSE for regressors) on the paired bootstrap resamples the context draws once,
and express it as an **improvement** (positive: the candidate is better, whichever way the
metric points).

* ``improvement``: the interval's lower end must lie above ``min`` (absolute, or ``relative``
  to the baseline's value: 0.01 = one percent better).
* ``slice_regression``: no slice may be worse by more than ``max`` (the point estimate, as
  before gates were pluggable; each slice's interval is reported).
* ``stability``: on rows of the *reference* period the candidate did not train on (a
  snapshot the policy names, or the baseline's training rows minus the candidate's), the
  candidate must be no worse than ``margin``: pass when the interval's lower end is at least
  ``-margin``, fail when its upper end is below it, inconclusive in between. It guards
  against a candidate that fits a transient of the recent window and forgot the rest.

Each is inconclusive on fewer than ``min_rows`` rows (the evaluation's, a slice's, the
reference period's held-out rows): see :class:`~regrow.evaluate.gates.base.IntervalGate`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from regrow.evaluate.gates.base import GateResult, IntervalGate
from regrow.evaluate.gates.context import GateContext
from regrow.evaluate.metrics import resampled_values
from regrow.evaluate.resample import Resamples, percentile_interval

__all__ = ["Improvement", "SliceRegression", "Stability"]


class Improvement(IntervalGate):
    """The candidate beats the baseline: the improvement interval's lower end above ``min``."""

    name: ClassVar[str] = "improvement"

    min: float = 0.0
    """The least improvement (in the metric's units, or a share of the baseline's value)."""
    relative: bool = False
    """Judge ``(improvement) / |baseline's value|`` instead of the improvement itself."""

    def check(self, context: GateContext) -> GateResult:
        """Pass when the interval's lower end lies above ``min``."""
        m = context.metric.name
        if context.baseline_scores is None:
            return self.inconclusive("no baseline to compare with", threshold=self.min)
        cand, base = context.value("candidate"), context.value("baseline")
        point = context.improvement(cand, base)
        if self.relative:
            point = point / abs(base) if base else math.nan
        what = f"relative {m} improvement" if self.relative else f"{m} improvement"
        too_few = self.too_few(context.rows)
        if too_few:  # the point alone: an interval over so few rows would mislead
            return self.cannot_tell(
                too_few, value=point, threshold=self.min, measure=what,
                details={"candidate": cand, "baseline": base, "rows": context.rows},
            )  # fmt: skip
        draws = context.improvements(context.draws[0, :, 0], context.draws[1, :, 0])
        if self.relative:
            with np.errstate(invalid="ignore", divide="ignore"):
                draws = draws / np.abs(context.draws[1, :, 0])
        low, high = percentile_interval(draws, context.level)
        fields: dict[str, Any] = {
            "value": point, "interval": (low, high), "threshold": self.min, "measure": what,
            "details": {"candidate": cand, "baseline": base},
        }  # fmt: skip
        if not (math.isfinite(point) and math.isfinite(low)):
            return self.inconclusive(
                f"{m} is undefined on these rows (a class missing?): nothing to compare", **fields
            )
        level = f"{context.level:.0%} interval [{low:+.4f}, {high:+.4f}]"
        if low > self.min:
            return self.result("pass", f"{what} {point:+.4f} ({level}) lies above {self.min}",
                               **fields)  # fmt: skip
        return self.result(
            "fail", f"{what} {point:+.4f} has a {level} that does not lie above {self.min}",
            **fields,
        )  # fmt: skip


class SliceRegression(IntervalGate):
    """No slice of the evaluation rows gets worse by more than ``max``."""

    name: ClassVar[str] = "slice_regression"

    max: float = Field(0.02, ge=0)
    """The largest drop of the metric a slice may show (the point estimate)."""

    def check(self, context: GateContext) -> GateResult:
        """Fail naming every slice worse than ``max``; report each slice's interval. A slice
        of fewer than ``min_rows`` rows is not judged, and leaves the gate inconclusive
        unless another slice fails it."""
        m = context.metric.name
        measure = f"worst slice's {m} drop"
        if context.baseline_scores is None:
            return self.inconclusive("no baseline to compare with", threshold=self.max)
        too_few = self.too_few(context.rows)
        if too_few:
            return self.cannot_tell(too_few, threshold=self.max, measure=measure)
        names = [n for n in context.groups if n != "all"]
        if not names:
            return self.result(
                "pass", "the evaluation snapshot has no slices: none can regress",
                threshold=self.max, measure=measure,
            )  # fmt: skip
        slices: dict[str, Any] = {}
        worse: list[str] = []
        for j, name in enumerate(context.groups):
            if name == "all":
                continue
            rows = _rows(context, name)
            if rows < self.min_rows:
                slices[name] = {"rows": rows, "judged": False, "too_few": True}
                continue
            cand, base = context.value("candidate", name), context.value("baseline", name)
            if not (math.isfinite(cand) and math.isfinite(base)):
                slices[name] = {"rows": rows, "judged": False}
                continue
            drop = -context.improvement(cand, base)
            draws = -context.improvements(context.draws[0, :, j], context.draws[1, :, j])
            slices[name] = {
                "rows": rows, "judged": True, "drop": drop,
                "interval": list(percentile_interval(draws, context.level)),
            }  # fmt: skip
            if drop > self.max:
                worse.append(f"slice {name!r} is worse by {drop:.4f} {m} (limit {self.max})")
        judged = {n: s for n, s in slices.items() if s["judged"]}
        small = {n: s["rows"] for n, s in slices.items() if s.get("too_few")}
        undefined = sorted(set(slices) - set(judged) - set(small))
        note = f"; {m} undefined on {', '.join(map(repr, undefined))}" if undefined else ""
        if small:
            note += "; " + str(self.too_few_in("slice", small))
        fields: dict[str, Any] = {
            "threshold": self.max, "measure": measure, "details": {"slices": slices},
        }  # fmt: skip
        if judged:
            worst = max(judged, key=lambda n: judged[n]["drop"])
            fields.update(
                value=judged[worst]["drop"], interval=tuple(judged[worst]["interval"]),
                details={"worst": worst, "slices": slices},
            )  # fmt: skip
        if worse:
            return self.result("fail", "; ".join(worse) + note, **fields)
        if small:
            return self.cannot_tell(note.removeprefix("; "), **fields)
        if not judged:
            return self.inconclusive(f"{m} is undefined on every slice{note}", **fields)
        drop = judged[worst]["drop"]
        # The same signed drop as the value column: negative when the slice improved.
        largest = f"the largest: {worst!r}, {drop:.4f}" + (", an improvement" if drop < 0 else "")
        return self.result(
            "pass", f"no slice's {m} drop exceeds {self.max} ({largest}){note}", **fields
        )


class Stability(IntervalGate):
    """No worse than ``margin`` on held-out rows of the reference period."""

    name: ClassVar[str] = "stability"

    margin: float = Field(0.01, ge=0)
    """How much worse than the baseline the candidate may be on the reference period."""
    snapshot: str | None = None
    """A labelled snapshot of the reference period the candidate did not train on. None: the
    rows of the baseline's training snapshot that no training snapshot of the candidate
    holds."""
    max_rows: int = Field(50_000, ge=10)
    """Held-out rows scored at most (a seeded sample of them beyond that)."""

    def check(self, context: GateContext) -> GateResult:
        """Three-way on the improvement's interval against ``-margin``."""
        m = context.metric.name
        threshold = -self.margin
        if context.baseline is None:
            return self.inconclusive("no baseline to compare with", threshold=threshold)
        held = context.reference_rows(self.snapshot) if context.reference_rows else None
        if held is None or len(held.frame) == 0:
            where = f"snapshot {self.snapshot!r}" if self.snapshot else "the reference period"
            return self.inconclusive(
                f"no held-out rows of {where} to score (name a labelled snapshot of the "
                "reference period in gates.checks.stability.snapshot)",
                threshold=threshold,
            )
        frame = held.frame
        too_few = self.too_few(len(frame), f" of {held.source}")
        if too_few:
            return self.cannot_tell(
                too_few, threshold=threshold, details={"rows": len(frame), "source": held.source}
            )
        if len(frame) > self.max_rows:
            frame = frame.sample(self.max_rows, random_state=context.seed)
        y = frame[context.candidate.target].to_numpy()
        scores = [
            context.predict(context.candidate, frame),
            context.predict(context.baseline, frame),
        ]
        cand = context.metric.fn(y, scores[0], context.classes)
        base = context.metric.fn(y, scores[1], context.classes)
        point = context.improvement(cand, base)
        resamples = Resamples(len(frame), context.n_boot, seed=context.seed + 1)
        draws = resampled_values(context.metric, y, scores, resamples, classes=context.classes)
        low, high = percentile_interval(
            context.improvements(draws[0, :, 0], draws[1, :, 0]), context.level
        )
        favoured = (
            f"; {', '.join(held.trained_on)} trained on these rows" if held.trained_on else ""
        )
        fields: dict[str, Any] = {
            "value": point, "interval": (low, high), "threshold": threshold,
            "measure": f"{m} improvement on the reference period",
            "details": {"rows": len(frame), "source": held.source, "candidate": cand,
                        "baseline": base, "trained_on": list(held.trained_on)},
        }  # fmt: skip
        if not (math.isfinite(point) and math.isfinite(low)):
            return self.inconclusive(f"{m} is undefined on {held.source}", **fields)
        said = (
            f"{m} improvement {point:+.4f} ({context.level:.0%} interval [{low:+.4f}, "
            f"{high:+.4f}]) on {len(frame):,} rows of {held.source}{favoured}"
        )
        if low >= threshold:
            return self.result("pass", f"{said}: no worse than {self.margin}", **fields)
        if high < threshold:
            return self.result("fail", f"{said}: worse by more than {self.margin}", **fields)
        return self.inconclusive(f"{said}: cannot tell whether within {self.margin}", **fields)


def _rows(context: GateContext, name: str) -> int:
    rows = context.groups[name]
    return context.rows if rows is None else len(rows)
