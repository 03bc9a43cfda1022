"""Labelled performance: a metric per member, for the system output, per slice and per time window.

Every value comes with a confidence interval from a **Poisson bootstrap** (each row gets a
Poisson(1) weight in each of ``n_boot`` resamples; the interval is the percentile interval of
the weighted metric). The weighted metrics are computed for all resamples at once with matrix
operations, ROC AUC included (one sort, then grouped sums), so there is no loop over rows.
Every component of one group (all rows, a slice, a time window) is measured on the same
resamples, drawn once: their intervals are paired, as in the gates' comparisons.
The metrics are those of :data:`regrow.evaluate.metrics.METRICS`; their values on unit weights
equal scikit-learn's.

>>> import numpy as np
>>> y = np.array([0, 0, 1, 1, 0, 1])
>>> p = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
>>> round(float(weighted_metric("roc_auc", y, p)), 4)
0.8889
>>> value, low, high = metric_interval("accuracy", y, p, n_boot=200)
>>> round(value, 3), bool(low <= value <= high)
(0.833, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from regrow.components.outputs import OutputsFn
from regrow.data.snapshot import apply_slice
from regrow.errors import ConfigError, DataError
from regrow.evaluate.metrics import METRICS, default_metric, get_metric

if TYPE_CHECKING:
    from regrow.model import FittedSystem

__all__ = [
    "PerformanceReport",
    "PerformanceRow",
    "metric_interval",
    "performance_report",
    "poisson_weights",
    "weighted_auc",
    "weighted_metric",
]

Array = np.ndarray
_CELLS_PER_BLOCK = 4_000_000  # resamples x rows held in memory at once


def weighted_auc(score: Array, positive: Array, weights: Array | None = None) -> Array:
    """ROC AUC of ``score`` under row ``weights`` (shape ``(n,)`` or ``(B, n)``).

    ``positive`` is the label (bool / 0-1) or the *probability* that the row is positive; with
    probabilities the result is the expected AUC (ratio of expected concordant pairs to expected
    positive-negative pairs, a row never paired with itself), as in NannyML's CBPE. Ties count
    one half. Returns one value per weight row (NaN where a class has no weight).

    >>> float(weighted_auc(np.array([0.2, 0.6, 0.4]), np.array([0, 1, 1])))
    1.0
    """
    s = np.asarray(score, float)
    p = np.asarray(positive, float)
    w = np.ones_like(s) if weights is None else np.asarray(weights, float)
    if s.size == 0:  # no rows (an empty slice): no pairs to rank
        return np.full(w.shape[:-1], np.nan)
    order = np.argsort(s, kind="stable")
    sorted_s = s[order]
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ws = w if weights is None else w[..., order]
    pw = ws * p[order]
    pos_g = np.add.reduceat(pw, starts, axis=-1)
    neg_g = np.add.reduceat(ws, starts, axis=-1) - pos_g  # the weight of the negatives
    below = np.cumsum(neg_g, axis=-1) - neg_g
    own = p * (1.0 - p)  # a row's pairing with itself: 0 for labels, > 0 for probabilities
    self_pairs = w @ own if own.any() else np.zeros(w.shape[:-1])
    num = np.sum(pos_g * (below + 0.5 * neg_g), axis=-1) - 0.5 * self_pairs
    den = pos_g.sum(axis=-1) * neg_g.sum(axis=-1) - self_pairs
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan))


def _row_values(name: str, y: Array, score: Array) -> Array:
    """Per-row terms whose weighted mean is the metric (all but ROC AUC and RMSE's root)."""
    if name == "accuracy":
        if score.ndim == 2:
            return np.asarray(score.argmax(axis=1) == y, float)
        return np.asarray((score >= 0.5) == (y == 1), float)
    if name == "log_loss":
        rows = np.arange(len(y))
        p = score[rows, y] if score.ndim == 2 else np.where(y == 1, score, 1.0 - score)
        return np.asarray(-np.log(np.clip(p, 1e-15, 1.0)))
    if name == "rmse":
        return np.asarray((y - score) ** 2)
    if name == "mae":
        return np.asarray(np.abs(y - score))
    raise ConfigError(f"no weighted form for metric {name!r}", hint=f"use one of {sorted(METRICS)}")


def weighted_metric(name: str, y: Array, score: Array, weights: Array | None = None) -> Array:
    """Metric ``name`` under row ``weights`` (``(n,)`` or ``(B, n)``), one value per weight row.

    Classification: ``y`` holds class indices (0/1 for binary) and ``score`` the positive-class
    probability ``(n,)`` or class probabilities ``(n, k)``; multiclass ROC AUC is the macro
    one-vs-rest mean. Regression: ``y`` and ``score`` are values.
    """
    y = np.asarray(y)
    score = np.asarray(score, float)
    if score.ndim == 2 and score.shape[1] == 2:
        score = score[:, 1]
    w = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    if name == "roc_auc":
        if score.ndim == 1:
            return weighted_auc(score, y == 1, w)
        aucs = [weighted_auc(score[:, k], y == k, w) for k in range(score.shape[1])]
        return np.asarray(np.nanmean(np.stack(aucs), axis=0))
    terms = _row_values(name, y.astype(float) if name in ("rmse", "mae") else y, score)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (w @ terms) / w.sum(axis=-1)
    return np.asarray(np.sqrt(mean) if name == "rmse" else mean)


def poisson_weights(n: int, n_boot: int, seed: int) -> list[Array]:
    """``n_boot`` Poisson(1) weights for each of ``n`` rows, drawn from ``seed``: blocks of
    resamples (at most a few million cells each, to bound memory) that concatenate to
    ``(n_boot, n)``.

    >>> [w.shape for w in poisson_weights(5, 3, seed=0)]
    [(3, 5)]
    """
    rng = np.random.default_rng(seed)
    block = max(1, _CELLS_PER_BLOCK // max(n, 1))
    return [rng.poisson(1.0, (min(block, n_boot - b), n)) for b in range(0, n_boot, block)]


def metric_interval(
    name: str,
    y: Array,
    score: Array,
    *,
    level: float = 0.95,
    n_boot: int = 200,
    seed: int = 0,
    weights: list[Array] | None = None,
) -> tuple[float, float, float]:
    """The metric and its Poisson-bootstrap percentile interval: ``(value, low, high)``.

    ``weights`` are the resamples' row weights (:func:`poisson_weights` of ``len(y)`` rows),
    when several metrics or components are measured on the same rows: drawing them once
    makes their intervals paired (the same resamples) and saves most of the time; by
    default they are drawn from ``seed``.
    """
    n = len(y)
    value = float(weighted_metric(name, y, score))
    if n == 0 or n_boot < 2:
        return value, float("nan"), float("nan")
    blocks = weights if weights is not None else poisson_weights(n, n_boot, seed)
    draws = np.concatenate([weighted_metric(name, y, score, w) for w in blocks])
    draws = draws[np.isfinite(draws)]
    if draws.size < 2:
        return value, float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(draws, [alpha, 1.0 - alpha])
    return value, float(low), float(high)


@dataclass(frozen=True)
class PerformanceRow:
    """One metric value: a component, on all rows, a slice or a time window."""

    component: str
    kind: str  # "member" or "system"
    scope: str  # "all", "slice" or "window"
    group: str  # "all", the slice name, or the window start (ISO 8601)
    metric: str
    value: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values (NaN becomes None)."""
        return {
            k: (None if isinstance(v, float) and not np.isfinite(v) else v)
            for k, v in asdict(self).items()
        }


@dataclass(frozen=True)
class PerformanceReport:
    """Labelled performance of a system version on one frame."""

    system: str
    metric: str
    higher_is_better: bool
    level: float
    interval: str
    n_rows: int
    n_unlabelled: int
    rows: tuple[PerformanceRow, ...]

    def get(self, component: str, scope: str = "all", group: str = "all") -> PerformanceRow:
        """The row for ``component`` on ``scope``/``group``."""
        for row in self.rows:
            if (row.component, row.scope, row.group) == (component, scope, group):
                return row
        raise KeyError((component, scope, group))

    def to_frame(self) -> pd.DataFrame:
        """One line per row of the report."""
        return pd.DataFrame([asdict(r) for r in self.rows])

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        head = {k: v for k, v in asdict(self).items() if k != "rows"}
        return {**head, "rows": [r.to_dict() for r in self.rows]}


def _labels(model: FittedSystem, y: pd.Series) -> Array:
    if model.classes_ is None:
        return np.asarray(y, float)
    index = pd.Index(model.classes_).get_indexer(y)
    unknown = sorted(set(pd.unique(y[index < 0])), key=str)
    if unknown:
        raise DataError(
            f"target {model.target!r} holds classes {unknown} that the model never saw",
            hint=f"its classes are {model.classes_}",
        )
    return np.asarray(index)


def _groups(
    frame: pd.DataFrame, slices: Mapping[str, str], time_column: str | None, freq: str
) -> list[tuple[str, str, Array]]:
    groups: list[tuple[str, str, Array]] = [("all", "all", np.arange(len(frame)))]
    for name, expr in slices.items():
        groups.append(("slice", name, np.asarray(apply_slice(frame, name, expr).index)))
    if time_column is not None:
        if time_column not in frame.columns:
            raise DataError(
                f"time column {time_column!r} is not in the frame",
                hint=f"pick one of {list(frame.columns)}",
            )
        if not pd.api.types.is_datetime64_any_dtype(frame[time_column]):
            raise DataError(
                f"time column {time_column!r} is not a datetime column "
                f"(got {frame[time_column].dtype})",
                hint="convert it with pd.to_datetime first",
            )
        try:
            grouped = frame.groupby(pd.Grouper(key=time_column, freq=freq)).indices
        except ValueError as exc:
            raise ConfigError(
                f"bad window frequency {freq!r}: {exc}", hint="use a pandas offset alias: 'D', 'W'"
            ) from exc
        for start, idx in sorted(grouped.items(), key=lambda kv: str(kv[0])):
            label = start.isoformat() if isinstance(start, pd.Timestamp) else str(start)
            groups.append(("window", label, np.asarray(idx)))
    return groups


def performance_report(
    model: FittedSystem,
    frame: pd.DataFrame,
    *,
    metric: str | None = None,
    slices: Mapping[str, str] | None = None,
    time_column: str | None = None,
    freq: str = "W",
    level: float = 0.95,
    n_boot: int = 200,
    seed: int = 0,
    outputs: OutputsFn | None = None,
) -> PerformanceReport:
    """Score every member and the system output on ``frame`` (which holds the target).

    ``slices`` maps names to pandas query expressions; with ``time_column`` the rows are also
    grouped into windows of ``freq`` (a pandas offset alias). Rows without a label are left
    out and counted in ``n_unlabelled``. Groups of one class have NaN ROC AUC. ``outputs``
    gives the members' outputs on rows when the caller keeps them (by default they are
    predicted); the system's output is combined from them.
    """
    name = metric or default_metric(model.task)
    spec = get_metric(name, model.task)
    if not 0 < level < 1:
        raise ConfigError(f"the 'level' parameter must be in (0, 1); got {level!r}")
    if model.target not in frame.columns:
        raise DataError(
            f"the frame has no target column {model.target!r}",
            hint="join the labels first, or estimate performance without them (CBPE / DLE)",
        )
    labelled = frame[frame[model.target].notna()].reset_index(drop=True)
    y = _labels(model, labelled[model.target])
    members = dict(outputs(labelled)) if outputs is not None else model.member_outputs(labelled)
    scored: dict[str, tuple[str, Array]] = {m: ("member", out) for m, out in members.items()}
    scored[model.name] = ("system", model.output_of(members, labelled))
    rows: list[PerformanceRow] = []
    for scope, group, idx in _groups(labelled, slices or {}, time_column, freq):
        # every component of a group is measured on the same resamples (paired intervals)
        weights = poisson_weights(idx.size, n_boot, seed) if idx.size and n_boot >= 2 else None
        for component, (kind, out) in scored.items():
            value, low, high = metric_interval(
                name, y[idx], out[idx], level=level, n_boot=n_boot, weights=weights
            )
            rows.append(
                PerformanceRow(component, kind, scope, group, name, value, low, high, int(idx.size))
            )
    return PerformanceReport(
        system=model.ref or model.name,
        metric=name,
        higher_is_better=spec.higher_is_better,
        level=level,
        interval=f"Poisson bootstrap percentile, {n_boot} resamples",
        n_rows=len(labelled),
        n_unlabelled=len(frame) - len(labelled),
        rows=tuple(rows),
    )
