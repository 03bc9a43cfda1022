"""The calibration gate: expected calibration error (ECE) of a classifier's probabilities.

Rows are put in ``bins`` equal-width bins of confidence: the positive class's probability for
a binary classifier, the top class's probability for more classes (Guo et al., 2017, "On
calibration of modern neural networks"). ECE is the row-weighted mean, over bins, of the gap
between the bin's mean confidence and how often it was right:
``sum_b |sum_{i in b} (hit_i - confidence_i)| / n``.

On the evaluation's paired resamples, each bin's sums come from one matrix product, for the
candidate and the baseline at once. ECE is biased upward on few rows (every bin's gap is an
absolute value), so the interval is honest about small samples: the gate **passes** when the
candidate's interval lies at or below ``max_ece``, **fails** when it lies wholly above it (or
its increase over the baseline's lies wholly above ``max_increase``), and is **inconclusive**
otherwise, or for a regression system, or on fewer than ``min_rows`` rows
(:class:`~regrow.evaluate.gates.base.IntervalGate`).

>>> import numpy as np
>>> hits = np.array([1, 0, 1, 1]); conf = np.array([0.9, 0.2, 0.8, 0.6])
>>> round(float(ece(hits, conf, bins=2)[0]), 4)
0.225
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from regrow.evaluate.gates.base import GateResult, IntervalGate
from regrow.evaluate.gates.context import GateContext
from regrow.evaluate.resample import percentile_interval

__all__ = ["Calibration", "ece"]

Array = np.ndarray[Any, Any]


class Calibration(IntervalGate):
    """The candidate's probabilities mean what they say: ECE at most ``max_ece``."""

    name: ClassVar[str] = "calibration"

    max_ece: float = Field(0.05, gt=0, le=1)
    max_increase: float | None = Field(None, ge=0, le=1)
    """The largest rise over the baseline's ECE (None: not compared)."""
    bins: int = Field(10, ge=2, le=1000)

    def check(self, context: GateContext) -> GateResult:
        """Three-way on the candidate's ECE interval against ``max_ece``."""
        if context.classes is None:
            return self.inconclusive(
                "calibration error applies to a classifier's probabilities; this is a "
                "regression system",
                threshold=self.max_ece,
            )
        too_few = self.too_few(context.rows)
        if too_few:
            return self.cannot_tell(
                too_few, threshold=self.max_ece, measure="expected calibration error"
            )
        versions = {"candidate": context.candidate_scores}
        if context.baseline_scores is not None:
            versions["baseline"] = context.baseline_scores
        pairs = {v: _hits(context, s) for v, s in versions.items()}
        columns = np.hstack([_columns(h, c, self.bins) for h, c in pairs.values()])
        sums = context.resamples.sums(columns)
        width = self.bins + 1
        draws = {v: _ece(sums[:, i * width : (i + 1) * width]) for i, v in enumerate(versions)}
        values = {v: float(ece(h, c, self.bins)[0]) for v, (h, c) in pairs.items()}
        low, high = percentile_interval(draws["candidate"], context.level)
        details: dict[str, Any] = {"bins": self.bins, "candidate": values["candidate"],
                                   "candidate_interval": [low, high]}  # fmt: skip
        fails: list[str] = []
        if "baseline" in versions:
            details["baseline"] = values["baseline"]
            details["baseline_interval"] = list(
                percentile_interval(draws["baseline"], context.level)
            )
            if self.max_increase is not None:
                rise = percentile_interval(draws["candidate"] - draws["baseline"], context.level)
                details["increase_interval"] = list(rise)
                if math.isfinite(rise[0]) and rise[0] > self.max_increase:
                    fails.append(
                        f"it rose by {values['candidate'] - values['baseline']:+.4f} over the "
                        f"baseline's (interval [{rise[0]:+.4f}, {rise[1]:+.4f}], limit "
                        f"{self.max_increase})"
                    )
        fields: dict[str, Any] = {
            "value": values["candidate"], "interval": (low, high), "threshold": self.max_ece,
            "measure": "expected calibration error", "details": details,
        }  # fmt: skip
        said = (
            f"expected calibration error {values['candidate']:.4f} ({context.level:.0%} "
            f"interval [{low:.4f}, {high:.4f}], {self.bins} bins)"
        )
        if math.isfinite(low) and low > self.max_ece:
            fails.insert(0, f"above {self.max_ece}")
        if fails:
            return self.result("fail", f"{said}: " + "; ".join(fails), **fields)
        if not math.isfinite(high) or high > self.max_ece:
            return self.inconclusive(f"{said}: may exceed {self.max_ece}", **fields)
        return self.result("pass", f"{said}: within {self.max_ece}", **fields)


def ece(hits: Array, confidence: Array, bins: int = 10, weights: Array | None = None) -> Array:
    """Expected calibration error under each row of ``weights`` (``(b, n)``; default: one
    row of ones). ``hits``: 1 where the predicted event happened; ``confidence``: its
    predicted probability."""
    w = np.ones((1, len(hits))) if weights is None else np.asarray(weights, dtype=np.float64)
    return _ece(w @ _columns(hits, confidence, bins))


def _columns(hits: Array, confidence: Array, bins: int) -> Array:
    """Per bin: (hit - confidence) of its rows; then a column of ones (the weight)."""
    which = np.clip((np.asarray(confidence) * bins).astype(np.int64), 0, bins - 1)
    gaps = np.zeros((len(hits), bins + 1))
    gaps[np.arange(len(hits)), which] = np.asarray(hits, dtype=np.float64) - confidence
    gaps[:, bins] = 1.0
    return gaps


def _ece(sums: Array) -> Array:
    total = sums[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.abs(sums[:, :-1]).sum(axis=1) / total, np.nan)


def _hits(context: GateContext, scores: Array) -> tuple[Array, Array]:
    """Binary: (label is the positive class, its probability); else (top class is right,
    its probability)."""
    classes = context.classes or []
    proba = scores if scores.ndim == 2 else np.column_stack([1 - scores, scores])
    y = context.y
    if proba.shape[1] == 2:
        return np.asarray(y == classes[-1], dtype=np.float64), proba[:, 1]
    top = proba.argmax(axis=1)
    return np.asarray(np.asarray(classes, dtype=object)[top] == y, dtype=np.float64), proba.max(1)
