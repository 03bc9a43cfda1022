"""The fairness gate: how differently the candidate treats the groups of a sensitive column.

For a classifier, each row's decision is "favourable" when the probability of the
``positive`` class (by default the last of the model's classes) is at least ``threshold``.
Across the groups of the ``sensitive`` column (nulls form a group of their own):

* **demographic parity difference**: the largest gap between two groups' selection rates;
* **equalized odds difference**: the larger of the largest gaps between two groups' true
  positive rates and between their false positive rates (a rate with no row to measure it
  counts as 0, as in fairlearn).

The point values are fairlearn's (``demographic_parity_difference``,
``equalized_odds_difference``). Their intervals come from the evaluation's paired bootstrap:
each group's weighted counts in every resample from one matrix product, so the candidate's
and the baseline's differences, and the candidate's increase over the baseline, are judged on
the same resamples. A difference is a maximum over groups, so small groups widen the interval
(and bias it upward); the gate then says it cannot tell rather than guess.

The gate **fails** when a difference's interval lies wholly above ``max_difference``, or the
increase over the baseline's lies wholly above ``max_increase``; it **passes** when every
difference's interval lies at or below ``max_difference`` (and no increase failed); otherwise
it is **inconclusive**. It is inconclusive, too, on fewer than ``min_rows`` rows, or when a
group has fewer (:class:`~regrow.evaluate.gates.base.IntervalGate`): a group's rates over a
handful of rows decide the maximum, and their interval does not hold its level.
"""

from __future__ import annotations

import difflib
import math
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from regrow.errors import DataError
from regrow.evaluate.gates.base import GateResult, IntervalGate
from regrow.evaluate.gates.context import GateContext
from regrow.evaluate.resample import percentile_interval

if TYPE_CHECKING:  # pandas loads where a fairness gate runs: a policy is read without it
    import pandas as pd

__all__ = ["Fairness"]

Array = np.ndarray[Any, Any]
FairnessMetric = Literal["demographic_parity", "equalized_odds"]
_LABELS = {"demographic_parity": "demographic parity", "equalized_odds": "equalized odds"}


class Fairness(IntervalGate):
    """Decisions across the groups of ``sensitive`` differ by at most ``max_difference``."""

    name: ClassVar[str] = "fairness"

    sensitive: str = Field(min_length=1)
    """The column whose groups are compared (it need not be a feature the model reads)."""
    metrics: tuple[FairnessMetric, ...] = ("demographic_parity", "equalized_odds")
    max_difference: float = Field(0.1, ge=0, le=1)
    """The largest difference allowed (differences of rates lie in [0, 1])."""
    max_increase: float | None = Field(0.0, ge=0, le=1)
    """The largest increase over the baseline's difference (None: not compared)."""
    positive: str | int | float | bool | None = None
    """The favourable class (default: the last of the model's classes; needed for three or
    more classes)."""
    threshold: float = Field(0.5, gt=0, lt=1)
    """A row is decided favourably when the positive class's probability is at least this."""

    @model_validator(mode="after")
    def _some_metric(self) -> Fairness:
        if not self.metrics:
            raise ValueError("metrics must name at least one of demographic_parity, equalized_odds")
        return self

    def check(self, context: GateContext) -> GateResult:
        """Judge every metric's difference, and its increase over the baseline's."""
        if self.sensitive not in context.frame.columns:
            close = difflib.get_close_matches(self.sensitive, map(str, context.frame.columns), 1)
            raise DataError(
                f"the evaluation data has no sensitive column {self.sensitive!r} "
                "(gates.checks.fairness.sensitive)",
                hint=(f"did you mean {close[0]!r}? " if close else "")
                + f"its columns are {list(context.frame.columns)}",
            )
        classes = context.classes
        if classes is None:
            return self.inconclusive(
                "fairness compares decisions of a classifier; this is a regression system",
                threshold=self.max_difference,
            )
        positive = self.positive if self.positive is not None else classes[-1]
        if self.positive is None and len(classes) > 2:
            return self.inconclusive(
                f"with {len(classes)} classes, name the favourable one "
                "(gates.checks.fairness.positive)",
                threshold=self.max_difference,
            )
        if positive not in classes:
            raise DataError(
                f"the favourable class {positive!r} (gates.checks.fairness.positive) is not one "
                f"of the model's classes {classes}",
                hint="name one of them",
            )
        column = classes.index(positive)
        groups = _groups(context.frame[self.sensitive])
        counts = {str(k): int(v) for k, v in groups.value_counts().items()}
        small = self.too_few_in("group", counts)
        too_few = self.too_few(context.rows) or (small and f"across {self.sensitive!r}, {small}")
        if too_few:
            return self.cannot_tell(
                too_few, threshold=self.max_difference,
                details={"sensitive": self.sensitive, "groups": counts},
            )  # fmt: skip
        y_true = np.asarray(context.y == positive, dtype=np.int64)
        versions = {"candidate": context.candidate_scores}
        if context.baseline_scores is not None:
            versions["baseline"] = context.baseline_scores
        decided = {
            v: np.asarray(_proba(s)[:, column] >= self.threshold, dtype=np.int64)
            for v, s in versions.items()
        }
        draws = _draws(context, y_true, decided, groups, self.metrics)
        per_metric: dict[str, dict[str, Any]] = {}
        fails: list[str] = []
        unsure: list[str] = []
        for metric in self.metrics:
            entry: dict[str, Any] = {}
            for v in versions:
                value = _fairlearn(metric, y_true, decided[v], groups)
                entry[v] = value
                entry[f"{v}_interval"] = list(percentile_interval(draws[v][metric], context.level))
            low, high = entry["candidate_interval"]
            label = _LABELS[metric]
            said = (
                f"{label} difference {entry['candidate']:.4f} ({context.level:.0%} interval "
                f"[{low:.4f}, {high:.4f}])"
            )
            if not math.isfinite(low):
                unsure.append(f"{label} difference has no interval (too few rows per group)")
            elif low > self.max_difference:
                fails.append(f"{said} is above {self.max_difference}")
            elif high > self.max_difference:
                unsure.append(f"{said} may exceed {self.max_difference}")
            if "baseline" in versions and self.max_increase is not None:
                rise = draws["candidate"][metric] - draws["baseline"][metric]
                entry["increase"] = entry["candidate"] - entry["baseline"]
                entry["increase_interval"] = list(percentile_interval(rise, context.level))
                rise_low, rise_high = entry["increase_interval"]
                if math.isfinite(rise_low) and rise_low > self.max_increase:
                    fails.append(
                        f"{label} difference rose by {entry['increase']:+.4f} over the "
                        f"baseline's ({context.level:.0%} interval [{rise_low:+.4f}, "
                        f"{rise_high:+.4f}], limit {self.max_increase})"
                    )
            per_metric[metric] = entry
        worst = max(self.metrics, key=lambda k: _or(per_metric[k]["candidate"]))
        fields: dict[str, Any] = {
            "value": per_metric[worst]["candidate"],
            "interval": tuple(per_metric[worst]["candidate_interval"]),
            "threshold": self.max_difference,
            "measure": f"{_LABELS[worst]} difference across {self.sensitive!r}",
            "details": {
                "sensitive": self.sensitive, "positive": positive,
                "groups": counts,
                "metrics": per_metric,
            },
        }  # fmt: skip
        if fails:
            return self.result("fail", f"across {self.sensitive!r}: " + "; ".join(fails), **fields)
        if unsure:
            return self.inconclusive(f"across {self.sensitive!r}: " + "; ".join(unsure), **fields)
        return self.result(
            "pass",
            f"across {self.sensitive!r}, every difference's interval lies within "
            f"{self.max_difference} (the largest: {_LABELS[worst]}, "
            f"{per_metric[worst]['candidate']:.4f})",
            **fields,
        )


def _rates(pos: Array, neg: Array, hits: Array, false: Array) -> Array:
    """``(resamples, 3, groups)``: selection, true positive and false positive rates from the
    weighted counts of positives, negatives, and favourable decisions among each; NaN for a
    group with no weight, 0 for a rate with no row to measure it (fairlearn's convention)."""
    total = pos + neg
    with np.errstate(invalid="ignore", divide="ignore"):
        selection = np.where(total > 0, (hits + false) / np.where(total > 0, total, 1), np.nan)
        tpr = np.where(pos > 0, hits / np.where(pos > 0, pos, 1), 0.0)
        fpr = np.where(neg > 0, false / np.where(neg > 0, neg, 1), 0.0)
    present = total > 0
    return np.stack([selection, np.where(present, tpr, np.nan), np.where(present, fpr, np.nan)], 1)


def _spread(rates: Array) -> Array:
    """Largest minus smallest over groups present (NaN with fewer than one)."""
    with np.errstate(invalid="ignore"):
        present = np.isfinite(rates)
        high = np.where(present, rates, -np.inf).max(axis=-1)
        low = np.where(present, rates, np.inf).min(axis=-1)
        return np.where(present.any(axis=-1), high - low, np.nan)


def _differences(rates: Array, metric: str) -> Array:
    if metric == "demographic_parity":
        return _spread(rates[:, 0])
    return np.maximum(_spread(rates[:, 1]), _spread(rates[:, 2]))


def _draws(
    context: GateContext,
    y_true: Array,
    decided: dict[str, Array],
    groups: pd.Series,
    metrics: tuple[str, ...],
) -> dict[str, dict[str, Array]]:
    import pandas as pd

    codes, uniques = pd.factorize(groups)
    k = len(uniques)
    one_hot = np.zeros((len(codes), k))
    one_hot[np.arange(len(codes)), codes] = 1.0
    pos = y_true[:, None] * one_hot
    neg = one_hot - pos
    # Per group: positives, negatives; then per version the favourable decisions among each.
    blocks = [pos, neg]
    for v in decided:
        blocks += [decided[v][:, None] * pos, decided[v][:, None] * neg]
    sums = context.resamples.sums(np.hstack(blocks), counts=True)
    part = [sums[:, i * k : (i + 1) * k] for i in range(len(blocks))]
    out: dict[str, dict[str, Array]] = {}
    for i, v in enumerate(decided):
        rates = _rates(part[0], part[1], part[2 + 2 * i], part[3 + 2 * i])
        out[v] = {m: _differences(rates, m) for m in metrics}
    return out


def _fairlearn(metric: str, y_true: Array, decided: Array, groups: pd.Series) -> float:
    """fairlearn's value of ``metric``, given each distinct (label, decision, group) once with
    its count as the weight: the same rates as row by row, without fairlearn's per-row cost
    (about a second per call on 100,000 rows)."""
    from fairlearn.metrics import (  # type: ignore[import-untyped]  # ships no types
        demographic_parity_difference,
        equalized_odds_difference,
    )

    fn = (
        demographic_parity_difference
        if metric == "demographic_parity"
        else (equalized_odds_difference)
    )
    import pandas as pd

    cells = pd.DataFrame({"y": y_true, "d": decided, "g": groups.to_numpy()}).value_counts()
    index = cells.index.to_frame(index=False)
    return float(
        fn(index["y"].to_numpy(), index["d"].to_numpy(), sensitive_features=index["g"].to_numpy(),
           sample_weight=cells.to_numpy(dtype=float))
    )  # fmt: skip


def _groups(column: pd.Series) -> pd.Series:
    """The sensitive column as text labels, nulls as a group of their own."""
    return column.astype(object).where(column.notna(), "<null>").astype(str).reset_index(drop=True)


def _proba(scores: Array) -> Array:
    return scores if scores.ndim == 2 else np.column_stack([1 - scores, scores])


def _or(value: float) -> float:
    return value if math.isfinite(value) else -math.inf
