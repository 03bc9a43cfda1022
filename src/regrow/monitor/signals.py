"""Performance signals of any model: estimated (CBPE, DLE) and realised metrics per chunk,
the calibration check, and alerts.

The system monitor (:mod:`regrow.monitoring`) and the monitor of any model's predictions
(:mod:`regrow.monitor.external`) both call :func:`performance_signals` with the reference's
and the window's model outputs:

- a classifier's outputs are probabilities (``(n,)`` of the positive class, or ``(n, k)`` in
  ``Task.classes`` order): CBPE (:mod:`regrow.monitor.cbpe`) is fitted on the labelled
  reference rows and estimates every metric for the whole window and for each chunk;
- a regressor's outputs are its predictions: DLE (:mod:`regrow.monitor.dle`) does the same;
- where the window has labels, the **realised** metric sits next to each estimate, and on the
  whole window the calibration is checked (``CBPE.check_with_labels``).

**Alerts.** A metric with a policy threshold (``monitoring.alerts``: ``{roc_auc: {min: 0.8}}``)
alerts when an estimate or a realised value crosses it. A metric without one alerts when its
estimate falls more than ``sigmas`` sampling standard deviations at the scope's size, and more
than ``margin`` (relative), below its reference value (above it, for error metrics): the
reference's own value is the baseline and the band says what noise a chunk of that size has.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> p = rng.beta(2, 2, 6000); y = (rng.uniform(size=6000) < p).astype(int)
>>> ref = Scored(pd.DataFrame({"x": p[:3000]}), p[:3000], y[:3000])
>>> win = Scored(pd.DataFrame({"x": p[3000:]}), p[3000:], None)
>>> signals = performance_signals(Task("classification", (0, 1)), ref, win, [],
...                               metrics=("roc_auc", "accuracy"))
>>> [(r.metric, r.alert) for r in signals.rows]
[('roc_auc', False), ('accuracy', False)]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from regrow.errors import DataError, RegrowError
from regrow.monitor.chunks import Chunk

__all__ = [
    "HIGHER_IS_BETTER",
    "LOWER_IS_BETTER",
    "Alert",
    "EstimateRow",
    "PerformanceSignals",
    "Scored",
    "Task",
    "performance_signals",
    "realised_regression",
]

HIGHER_IS_BETTER = frozenset(
    {"roc_auc", "f1", "precision", "recall", "specificity", "accuracy", "average_precision",
     "business_value"}
)  # fmt: skip
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "mape", "mse", "msle", "rmse", "rmsle"})
MIN_REFERENCE_LABELS = 50
MIN_REALISED_LABELS = 20


@dataclass(frozen=True)
class Task:
    """What the outputs are: ``classification`` (``classes`` in score-column order; binary:
    ``(negative, positive)``, decided at ``threshold``) or ``regression``."""

    kind: str
    classes: tuple[Any, ...] | None = None
    threshold: float = 0.5


@dataclass(frozen=True)
class Scored:
    """Rows with a model's outputs: feature ``frame``, ``output`` (probabilities or
    predictions), and ``labels`` (None, or one per row with None/NaN where unlabelled)."""

    frame: pd.DataFrame
    output: np.ndarray
    labels: np.ndarray | None = None

    def labelled(self) -> np.ndarray:
        """A boolean mask of the rows with a label."""
        if self.labels is None:
            return np.zeros(len(self.output), bool)
        return np.asarray(pd.notna(pd.Series(self.labels, dtype=object)).to_numpy(), bool)


@dataclass(frozen=True)
class Alert:
    """A signal that crossed its threshold, in a chunk (None: the whole window)."""

    signal: str
    chunk: str | None
    value: float
    threshold: float
    direction: str  # "below" | "above"
    why: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return _clean(asdict(self))


@dataclass(frozen=True)
class EstimateRow:
    """One metric in one scope: the estimate with its band, and what was realised."""

    chunk: str | None
    metric: str
    value: float
    low: float
    high: float
    reference: float
    realised: float | None = None
    threshold: float | None = None
    alert: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return _clean(asdict(self))


@dataclass(frozen=True)
class PerformanceSignals:
    """Estimates per metric and scope, the calibration check, warnings and alerts."""

    method: str | None
    reference_rows: int
    rows: list[EstimateRow] = field(default_factory=list)
    calibration: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()
    alerts: list[Alert] = field(default_factory=list)

    def get(self, metric: str, chunk: str | None = None) -> EstimateRow:
        """The row of ``metric`` in ``chunk`` (None: the whole window)."""
        for row in self.rows:
            if row.metric == metric and row.chunk == chunk:
                return row
        raise KeyError(f"no estimate of {metric!r} for chunk {chunk!r}")

    def to_dict(self) -> dict[str, Any]:
        """The ``estimates`` section of a monitor result."""
        return {
            "method": self.method,
            "reference_rows": self.reference_rows,
            "warnings": list(self.warnings),
            "rows": [r.to_dict() for r in self.rows],
        }


@dataclass(frozen=True)
class _Reference:
    """What the estimates take from the reference: the fitted estimator (None, and why, when
    it cannot be fitted), its labelled rows, and the baseline values of its metrics."""

    n_ref: int
    estimator: Any = None
    baseline: dict[str, float] = field(default_factory=dict)
    failed: str | None = None


def performance_signals(
    task: Task,
    reference: Scored | Callable[[], Scored],
    window: Scored,
    chunks: Sequence[Chunk],
    *,
    metrics: Sequence[str] | None = None,
    cost_matrix: Sequence[Sequence[float]] | None = None,
    rules: Mapping[str, Mapping[str, float]] | None = None,
    sigmas: float = 3.0,
    margin: float = 0.02,
    seed: int = 0,
    reference_key: Hashable | None = None,
) -> PerformanceSignals:
    """Estimated (and, with labels, realised) performance of ``window`` for the whole window
    and each chunk, with alerts (see the module docstring). Chunk indices are positions in
    ``window``.

    ``reference`` may be a function that scores the reference rows: it is called only when
    the estimator must be fitted. With ``reference_key``, which must identify those rows, their
    labels and outputs (the model and the snapshot they come from), the fitted estimator is
    kept for the process (:data:`regrow.monitor.shared.ESTIMATORS`, keyed by it, the task,
    ``metrics``, ``cost_matrix`` and ``seed``): the next window with the same reference does
    not fit it again, and gets the same numbers.
    """
    method = "cbpe" if task.kind == "classification" else "dle"

    def fit() -> _Reference:
        return _fit_reference(
            task, reference() if callable(reference) else reference, metrics, cost_matrix, seed
        )

    if reference_key is None:
        fitted = fit()
    else:
        from regrow.monitor.shared import ESTIMATORS

        cost = None if cost_matrix is None else tuple(tuple(map(float, r)) for r in cost_matrix)
        chosen = None if metrics is None else tuple(metrics)
        fitted = ESTIMATORS.get(("estimator", reference_key, task, chosen, cost, seed), fit)
    n_ref, estimator = fitted.n_ref, fitted.estimator
    if fitted.failed is not None:
        return PerformanceSignals(None, n_ref, warnings=(fitted.failed,))
    scopes: list[tuple[str | None, np.ndarray]] = [(None, np.arange(len(window.output)))]
    scopes += [(c.label, c.index) for c in chunks]
    win_labelled = window.labelled()
    rows: list[EstimateRow] = []
    warnings: list[str] = []
    for label, index in scopes:
        if len(index) == 0:
            continue
        estimates, found = _estimate(task, estimator, window, index)
        labelled = index[win_labelled[index]]
        if label is None:
            warnings += found
            if 0 < len(labelled) < MIN_REALISED_LABELS:
                warnings.append(
                    f"realised performance is not shown: the window has {len(labelled):,} "
                    f"labelled rows, too few to tell (at least {MIN_REALISED_LABELS} are needed)"
                )
            elif task.kind == "classification" and window.labels is not None and len(labelled):
                seen = pd.unique(pd.Series(window.labels[labelled], dtype=object))
                if len(seen) == 1:
                    warnings.append(
                        f"the window's {len(labelled):,} labels are all {seen[0]!r}: metrics "
                        "that need both classes (roc_auc, recall, precision, f1, "
                        "average_precision) have no realised value"
                    )
        realised = _realised(task, estimator, window, labelled)
        for name, est in estimates.items():
            rows.append(
                EstimateRow(label, name, est.value, est.low, est.high, est.reference_value,
                            realised.get(name))
            )  # fmt: skip
    calibration = None
    if task.kind == "classification" and win_labelled.sum() >= MIN_REFERENCE_LABELS:
        calibration = _calibration(task, estimator, window, np.flatnonzero(win_labelled))
    rows, alerts = _alerts(rows, estimator, rules or {}, sigmas, margin, fitted.baseline)
    rows = [_within_range(r) for r in rows]
    z_cal = calibration.get("calibration_z") if calibration else None
    if z_cal is not None and abs(z_cal) > sigmas:  # as strict as the default thresholds
        assert calibration is not None
        alerts.append(
            Alert("calibration", None, float(calibration["calibration_z"]), 0.0, "above",
                  next((w for w in calibration["warnings"] if w.startswith("calibration")),
                       "the calibration drifted"))
        )  # fmt: skip
    return PerformanceSignals(method, n_ref, rows, calibration, tuple(warnings), alerts)


def _fit_reference(
    task: Task,
    reference: Scored,
    metrics: Sequence[str] | None,
    cost_matrix: Sequence[Sequence[float]] | None,
    seed: int,
) -> _Reference:
    """The estimator fitted on ``reference`` and the baseline of its metrics (or why not)."""
    labelled = reference.labelled()
    n_ref = int(labelled.sum())
    if n_ref < MIN_REFERENCE_LABELS:
        return _Reference(
            n_ref,
            failed=f"the reference has {n_ref} labelled rows: estimating performance needs "
            f"at least {MIN_REFERENCE_LABELS}",
        )
    try:
        estimator = _fit(task, reference, labelled, metrics, cost_matrix, seed)
    except RegrowError as exc:
        return _Reference(n_ref, failed=f"performance is not estimated: {exc.message}")
    # The baseline of a default threshold: the estimate on the reference rows themselves (the
    # realised reference value carries the reference's label noise on top).
    everything = np.flatnonzero(labelled)
    expected, _ = _estimate(task, estimator, _Rows(reference.frame, reference.output), everything)
    return _Reference(n_ref, estimator, {k: float(v.value) for k, v in expected.items()})


def _fit(
    task: Task,
    reference: Scored,
    labelled: np.ndarray,
    metrics: Sequence[str] | None,
    cost_matrix: Sequence[Sequence[float]] | None,
    seed: int,
) -> Any:
    frame = reference.frame.iloc[np.flatnonzero(labelled)]
    out = reference.output[labelled]
    assert reference.labels is not None
    y = reference.labels[labelled]
    if task.kind == "classification":
        from regrow.monitor.cbpe import CBPE, CBPE_METRICS

        chosen = tuple(metrics) if metrics else tuple(
            m for m in CBPE_METRICS if cost_matrix is not None or m != "business_value"
        )  # fmt: skip
        cbpe = CBPE(chosen, threshold=task.threshold, cost_matrix=cost_matrix, seed=seed)
        if out.ndim == 1:
            assert task.classes is not None
            return cbpe.fit(out, _binary(y, task.classes), frame)
        return cbpe.fit(out, y, frame, classes=task.classes)
    from regrow.monitor.dle import DLE, DLE_METRICS

    chosen = tuple(metrics) if metrics else tuple(DLE_METRICS)
    y_num = pd.to_numeric(pd.Series(y, dtype=object), errors="coerce").to_numpy(float)
    if (
        chosen
        and {"msle", "rmsle"} & set(chosen)
        and (np.nanmin(y_num) <= -1 or np.nanmin(out) <= -1)
    ):
        chosen = tuple(m for m in chosen if m not in ("msle", "rmsle"))
    return DLE(metrics=chosen, seed=seed).fit(frame, out, y_num)


def _binary(labels: np.ndarray, classes: tuple[Any, ...]) -> np.ndarray:
    """0/1 labels of a binary task (1: ``classes[1]``)."""
    values = pd.Series(labels, dtype=object)
    unknown = sorted({v for v in values.tolist() if v not in classes}, key=str)
    if unknown:
        raise DataError(
            f"labels {unknown[:5]} are not among the model's classes {list(classes)}",
            hint="check the target column and the class the scores are for",
        )
    return np.asarray((values == classes[1]).to_numpy(), int)


@dataclass(frozen=True)
class _Rows:
    frame: pd.DataFrame
    output: np.ndarray


def _estimate(
    task: Task, estimator: Any, window: Scored | _Rows, index: np.ndarray
) -> tuple[dict[str, Any], list[str]]:
    frame = window.frame.iloc[index]
    out = window.output[index]
    if task.kind == "classification":
        result = estimator.estimate(out, frame)
        return dict(result.estimates), list(result.warnings)
    result = estimator.estimate(frame, out)
    return dict(result.estimates), list(result.warnings)


def _realised(task: Task, estimator: Any, window: Scored, index: np.ndarray) -> dict[str, float]:
    """The realised metrics on the labelled rows ``index`` (none below a minimum)."""
    if len(index) < MIN_REALISED_LABELS or window.labels is None:
        return {}
    y = window.labels[index]
    out = window.output[index]
    try:
        if task.kind == "classification":
            labels = _binary(y, task.classes or ()) if out.ndim == 1 else y
            check = estimator.check_with_labels(out, labels)
            return {k: float(v) for k, v in check.realised.items() if v is not None}
        y_num = pd.to_numeric(pd.Series(y, dtype=object), errors="coerce").to_numpy(float)
        return {m: realised_regression(m, y_num, out) for m in estimator.metrics}
    except (RegrowError, ValueError):  # one class only, labels the model never saw
        return {}


def realised_regression(metric: str, y: np.ndarray, pred: np.ndarray) -> float:
    """A regression metric on labelled rows: mae, mape, mse, msle, rmse or rmsle.

    >>> realised_regression("rmse", np.array([1.0, 3.0]), np.array([2.0, 2.0]))
    1.0
    """
    from regrow.monitor._dle_losses import LOSS_OF, from_mean, row_loss

    if metric not in LOSS_OF:
        raise DataError(
            f"unknown regression metric {metric!r}", hint=f"use one of {sorted(LOSS_OF)}"
        )
    ok = np.isfinite(y) & np.isfinite(pred)
    y, pred = y[ok], pred[ok]
    if len(y) == 0:
        return math.nan
    if LOSS_OF[metric] == "squared_log_error" and ((y <= -1).any() or (pred <= -1).any()):
        return math.nan  # log1p is undefined there
    return float(from_mean(metric, row_loss(metric, y, pred).mean()))


def _calibration(
    task: Task, estimator: Any, window: Scored, index: np.ndarray
) -> dict[str, Any] | None:
    assert window.labels is not None
    out = window.output[index]
    y = window.labels[index]
    try:
        labels = _binary(y, task.classes or ()) if out.ndim == 1 else y
        check = estimator.check_with_labels(out, labels)
    except (RegrowError, ValueError):
        return None
    return _clean(
        {
            "chunk": None,
            "rows": len(index),
            "calibration_drift": check.calibration_drift,
            "calibration_z": check.calibration_z,
            "observed_positive_rate": check.observed_positive_rate,
            "expected_positive_rate": check.expected_positive_rate,
            "ece": check.ece,
            "warnings": list(check.warnings),
        }
    )


def _alerts(
    rows: list[EstimateRow],
    estimator: Any,
    rules: Mapping[str, Mapping[str, float]],
    sigmas: float,
    margin: float,
    baseline: Mapping[str, float],
) -> tuple[list[EstimateRow], list[Alert]]:
    """Each row with its threshold and alert flag; the alerts, estimates before realised."""
    out_rows: list[EstimateRow] = []
    alerts: list[Alert] = []
    for row in rows:
        rule = rules.get(row.metric, {})
        se = (row.high - row.low) / (2 * _z(estimator))
        threshold: float | None = None
        direction = ""
        source = ""
        if "min" in rule:
            threshold, direction, source = float(rule["min"]), "below", "policy"
        elif "max" in rule:
            threshold, direction, source = float(rule["max"]), "above", "policy"
        elif math.isfinite(base := baseline.get(row.metric, math.nan)):
            gap = max(sigmas * se, margin * abs(base))
            if row.metric in HIGHER_IS_BETTER:
                threshold, direction, source = base - gap, "below", "reference"
            elif row.metric in LOWER_IS_BETTER:
                threshold, direction, source = base + gap, "above", "reference"
            if threshold is not None and not _reachable(row.metric, threshold):
                # a band wider than the metric's range (a few rows): no value can cross it
                threshold, direction, source = None, "", ""
        crossed = False
        if threshold is not None:
            for kind, value in (("estimated", row.value), ("realised", row.realised)):
                if value is None or not math.isfinite(value):
                    continue
                if (value < threshold) if direction == "below" else (value > threshold):
                    crossed = crossed or kind == "estimated"
                    alerts.append(
                        Alert(f"{kind} {row.metric}", row.chunk, value, threshold, direction,
                              _why(kind, row, value, threshold, direction, source, sigmas,
                                   margin, baseline.get(row.metric, math.nan)))
                    )  # fmt: skip
        out_rows.append(
            EstimateRow(row.chunk, row.metric, row.value, row.low, row.high, row.reference,
                        row.realised, threshold, crossed)
        )  # fmt: skip
    alerts.sort(key=lambda a: (not a.signal.startswith("estimated"), a.chunk is not None))
    return out_rows, alerts


def _why(
    kind: str,
    row: EstimateRow,
    value: float,
    threshold: float,
    direction: str,
    source: str,
    sigmas: float,
    margin: float,
    base: float,
) -> str:
    where = "the whole window" if row.chunk is None else f"chunk {row.chunk}"
    rule = (
        f"policy monitoring.alerts.{row.metric}.{'min' if direction == 'below' else 'max'}"
        if source == "policy"
        else f"the reference's expected {base:.4g} {'less' if direction == 'below' else 'plus'} "
        f"{sigmas:g} sampling standard deviations or {margin:.0%}, whichever is more"
    )
    return f"{kind} {row.metric} {value:.4g} is {direction} {threshold:.4g} in {where} ({rule})"


def _reachable(metric: str, threshold: float) -> bool:
    """Whether a value of ``metric`` can lie past ``threshold`` (one inside its range).

    >>> _reachable("f1", -0.76), _reachable("f1", 0.4), _reachable("business_value", -3.0)
    (False, True, True)
    """
    from regrow.forecast.trend import metric_bounds

    bounds = metric_bounds(metric)
    return bounds is None or bounds[0] < threshold < bounds[1]


def _within_range(row: EstimateRow) -> EstimateRow:
    """``row`` with its band clipped to the range its metric can take (errors are never
    negative, shares lie in [0, 1]): a normal band around a small window's estimate can
    reach past them. The alert thresholds are worked out first, from the unclipped width.

    >>> _within_range(EstimateRow(None, "mse", 7.9, -9.3, 25.0, 10.6)).low
    0.0
    """
    from regrow.forecast.trend import metric_bounds

    bounds = metric_bounds(row.metric)
    if bounds is None:
        return row
    lo, hi = bounds
    return replace(row, low=min(max(row.low, lo), hi), high=max(min(row.high, hi), lo))


def _z(estimator: Any) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + float(getattr(estimator, "level", 0.95)) / 2))


def _clean(d: Mapping[str, Any]) -> dict[str, Any]:
    """NaN and infinities as None, numpy scalars as Python numbers (JSON-ready)."""

    def plain(v: Any) -> Any:
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, Mapping):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        return v

    return {k: plain(v) for k, v in d.items()}
