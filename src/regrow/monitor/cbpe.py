"""Confidence-based performance estimation (CBPE) for classifiers, without labels.

The reference is NannyML's CBPE. On labelled reference data :meth:`CBPE.fit`

1. checks calibration (expected calibration error and Brier score), and fits an isotonic
   calibration only if it helps on held-out reference rows (2-fold cross-fitting, Brier score);
2. keeps the labelled reference to give the **sampling error** of a window of ``n`` rows: the
   standard deviation of the realised metric over windows of ``n`` reference rows, analytic
   for means of row terms (accuracy, confusion cells, business value), else over
   ``n_samples`` reference samples drawn with replacement; computed once per window size
   (see :mod:`regrow.monitor._cbpe_sampling`).

It estimates any of :data:`CBPE_METRICS`: ``roc_auc``, ``f1``, ``precision``, ``recall``,
``specificity``, ``accuracy``, ``confusion_matrix``, ``business_value`` and
``average_precision``. For a window without labels :meth:`CBPE.estimate` takes the calibrated
probability ``q`` of each row as the chance that it is positive: the expected confusion matrix
(``E[TP] = mean(q * yhat)``, ``E[FP] = mean((1 - q) * yhat)``, ...) gives accuracy,
precision, recall, specificity, F1, the confusion cells (as **shares of the rows**) and the
business value (the **mean value per row** under ``cost_matrix``); ROC AUC and average
precision rank rows by the model's score with ``q`` as soft labels
(:mod:`regrow.monitor._cbpe_metrics` has the formulas). The band is the estimate ±
``z * sampling error``. Multiclass ``(n, k)`` probability matrices are handled one-vs-rest:
accuracy of the argmax class, the others macro-averaged over classes, and a ``k x k``
confusion matrix named ``confusion_matrix[<true>,<pred>]``
(see :mod:`regrow.monitor._cbpe_multiclass`).
Assumptions are checked, not assumed: the share of window rows whose
score or features fall outside the reference range, and, once labels arrive,
:meth:`CBPE.check_with_labels` compares estimates and realised values (scikit-learn's) and
tests whether the observed positive rate (per class, for multiclass) still matches the
calibrated probabilities.

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> p = rng.beta(2, 2, 4000)
>>> y = (rng.uniform(size=4000) < p).astype(int)
>>> cbpe = CBPE(seed=0).fit(p[:2000], y[:2000])
>>> result = cbpe.estimate(p[2000:])
>>> auc = result.estimates["roc_auc"]
>>> from sklearn.metrics import roc_auc_score
>>> realised = roc_auc_score(y[2000:], p[2000:])
>>> bool(auc.low < realised < auc.high), result.warnings
(True, ())
>>> p3 = rng.dirichlet([1, 1, 1], 3000)
>>> y3 = np.array(["a", "b", "c"])[(rng.uniform(size=3000)[:, None] > p3.cumsum(1)).sum(1)]
>>> acc = CBPE(seed=0).fit(p3[:2000], y3[:2000]).estimate(p3[2000:]).estimates["accuracy"]
>>> bool(acc.low < np.mean(np.array(["a", "b", "c"])[p3[2000:].argmax(1)] == y3[2000:]) < acc.high)
True
>>> every = CBPE(CBPE_METRICS, cost_matrix=[[0, -1], [-5, 10]], seed=0).fit(p[:2000], y[:2000])
>>> check = every.check_with_labels(p[2000:], y[2000:])
>>> len(check.estimated), sum(check.within_band.values()) >= 11
(12, True)
>>> round(check.estimated["true_positive"].value, 2), round(check.realised["true_positive"], 2)
(0.34, 0.33)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.isotonic import IsotonicRegression

from regrow.errors import ConfigError, DataError
from regrow.monitor import _cbpe_metrics as metrics_
from regrow.monitor import _cbpe_multiclass as mc
from regrow.monitor._cbpe_common import (
    CBPEResult,
    Estimate,
    LabelCheck,
    ScoreCalibration,
    Support,
    binary_labels,
    binary_scores,
    expected_calibration_error,
    sampling_std,
)
from regrow.monitor._cbpe_metrics import CBPE_METRICS
from regrow.monitor._cbpe_sampling import sampling_errors

__all__ = [
    "CBPE",
    "CBPE_METRICS",
    "CBPEResult",
    "Estimate",
    "LabelCheck",
    "ScoreCalibration",
    "Support",
    "expected_calibration_error",
    "sampling_std",
]

Array = np.ndarray


class CBPE:
    """Confidence-based performance estimation for a classifier's scores.

    Parameters are stored as given: ``metrics`` (any of :data:`CBPE_METRICS`: ``roc_auc``,
    ``f1``, ``precision``, ``recall``, ``specificity``, ``accuracy``, ``confusion_matrix``,
    ``business_value``, ``average_precision``; see :mod:`regrow.monitor._cbpe_metrics` for
    what each estimates); ``cost_matrix``, the value of each confusion cell for
    ``business_value``, true x predicted (binary: ``[[value_TN, value_FP], [value_FN,
    value_TP]]``, NannyML's ``business_value_matrix``; its estimate is the mean value per row);
    ``calibration`` (``"auto"``: for a binary model isotonic only if it lowers the held-out
    Brier score, for a multiclass one every class (see :mod:`~regrow.monitor._cbpe_multiclass`
    on NannyML's per-class test); ``"always"``, ``"never"``;
    a calibrated estimate's band also holds the calibration's own error, the metric's
    sampling error at the reference's size); ``threshold`` for predicting positive (binary
    only: a multiclass model predicts its argmax class); ``level`` of the band;
    ``n_samples`` reference samples per window size; ``max_outside``, the share of rows outside
    the reference support above which a warning is raised.
    """

    def __init__(
        self,
        metrics: Sequence[str] = ("roc_auc", "accuracy"),
        *,
        cost_matrix: Sequence[Sequence[float]] | Array | None = None,
        calibration: str = "auto",
        threshold: float = 0.5,
        level: float = 0.95,
        n_bins: int = 10,
        n_samples: int = 200,
        max_outside: float = 0.05,
        seed: int = 0,
    ) -> None:
        if isinstance(metrics, str):
            metrics = (metrics,)
        unknown = sorted(set(metrics) - set(CBPE_METRICS))
        if unknown or not metrics:
            raise ConfigError(
                f"CBPE cannot estimate metrics {unknown or list(metrics)}",
                hint=f"use any of {list(CBPE_METRICS)}",
            )
        self._cost = metrics_.check_cost_matrix(cost_matrix, metrics)
        if calibration not in ("auto", "always", "never"):
            raise ConfigError(
                f"the 'calibration' parameter of CBPE must be 'auto', 'always' or 'never'; "
                f"got {calibration!r}"
            )
        if not 0 < level < 1:
            raise ConfigError(f"the 'level' parameter of CBPE must be in (0, 1); got {level!r}")
        self.metrics = tuple(dict.fromkeys(metrics))
        self.cost_matrix = cost_matrix
        self.calibration = calibration
        self.threshold = threshold
        self.level = level
        self.n_bins = n_bins
        self.n_samples = n_samples
        self.max_outside = max_outside
        self.seed = seed
        self._iso: IsotonicRegression | None = None
        self._isos: list[IsotonicRegression | None] = []
        self.classes_: tuple[Any, ...] | None = None  # None: binary
        self.class_calibration_: dict[Any, ScoreCalibration] = {}
        self._ref: tuple[Array, Array] | None = None
        self._support: Support | None = None
        self._se_cache: dict[int, dict[str, float]] = {}
        self.calibration_: ScoreCalibration | None = None
        self.reference_values_: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"CBPE(metrics={self.metrics!r}, calibration={self.calibration!r})"

    # -- fitting ------------------------------------------------------------------------------

    def fit(
        self,
        scores: Array | Sequence[float],
        labels: Array | Sequence[Any],
        features: pd.DataFrame | None = None,
        *,
        classes: Sequence[Any] | None = None,
    ) -> CBPE:
        """Learn calibration and sampling error from labelled reference predictions.

        Scores of shape ``(n, k)``, ``k >= 3``, make a multiclass CBPE; ``classes`` names their
        columns (default: the sorted reference labels).
        """
        raw = np.asarray(scores, float)
        if mc.is_multiclass(raw):
            s, y, self.classes_ = mc.reference(raw, labels, classes)
            cal = mc.fit_calibration(s, y, self.calibration, self.seed, self._column_ece)
            self.class_calibration_ = dict(
                zip(self.classes_, (ScoreCalibration(*c) for c in cal.per_class), strict=True)
            )  # one-vs-rest per class; calibration_ holds the means over classes
            self.calibration_ = ScoreCalibration(*cal.overall)
            self._iso, self._isos = None, cal.isos
            return self._keep(s, y, features)
        if classes is not None:
            raise ConfigError("'classes' applies to multiclass (n, k >= 3) scores only")
        self.classes_, self._isos, self.class_calibration_ = None, [], {}
        s = binary_scores(raw, "reference scores")
        y = binary_labels(labels, len(s))
        if len(s) < 50 or y.min() == y.max():
            raise DataError(
                f"CBPE needs at least 50 reference rows with both classes (got {len(s)} rows, "
                f"classes {sorted(set(y.tolist()))})"
            )
        rng = np.random.default_rng(self.seed)
        fold = rng.permutation(len(s)) % 2 == 0
        cross = np.empty_like(s)
        for part in (fold, ~fold):
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            cross[~part] = iso.fit(s[part], y[part]).predict(s[~part])
        brier_raw = float(np.mean((s - y) ** 2))
        brier_cal = float(np.mean((cross - y) ** 2))
        use = self.calibration == "always" or (self.calibration == "auto" and brier_cal < brier_raw)
        self.calibration_ = ScoreCalibration(
            ece_raw=expected_calibration_error(s, y, self.n_bins),
            ece_calibrated=expected_calibration_error(cross, y, self.n_bins),
            brier_raw=brier_raw,
            brier_calibrated=brier_cal,
            calibrated=use,
        )
        self._iso = (
            IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
            if use
            else None
        )
        return self._keep(s, y, features)

    def _keep(self, s: Array, y: Array, features: pd.DataFrame | None) -> CBPE:
        k = 2 if s.ndim == 1 else s.shape[1]
        if self._cost is not None and self._cost.shape != (k, k):
            raise ConfigError(
                f"the 'cost_matrix' of CBPE must be {k} x {k} for a model of {k} classes; "
                f"got shape {self._cost.shape}",
                hint="one row per true class, one column per predicted class"
                + (", [[value_TN, value_FP], [value_FN, value_TP]]" if k == 2 else ""),
            )
        self._ref = (s, y)
        self._support = Support.of(features) if features is not None else None
        self._se_cache = {}
        # the reference's realised values: the estimators' arithmetic on one-hot labels (fast)
        self.reference_values_ = metrics_.estimated(
            self.metrics,
            self._matrix(s),
            np.eye(k)[y],
            self._pred(s),
            self.classes_,
            self._cost,
        )
        return self

    def _column_ece(self, prob: Array, y: Array) -> float:
        return expected_calibration_error(prob, y, self.n_bins)

    def _fitted(self) -> tuple[Array, Array]:
        if self._ref is None:
            raise ConfigError("this CBPE is not fitted yet", hint="call fit(scores, labels) first")
        return self._ref

    def calibrated(self, scores: Array | Sequence[float]) -> Array:
        """The calibrated probability that each row is positive (of each class: ``(n, k)``)."""
        self._fitted()
        s = self._scores(scores, "scores")
        if self.classes_ is not None:
            return mc.calibrate(self._isos, s)
        return np.asarray(self._iso.predict(s)) if self._iso is not None else s

    def _scores(self, scores: Array | Sequence[float], what: str) -> Array:
        if self.classes_ is None:
            return binary_scores(scores, what)
        return mc.class_matrix(scores, what, len(self.classes_))

    def _y(self, labels: Array | Sequence[Any], n: int) -> Array:
        return (
            binary_labels(labels, n)
            if self.classes_ is None
            else mc.encode(labels, n, self.classes_)
        )

    def _pred(self, s: Array) -> Array:
        """The predicted class of each row: the argmax, or ``score >= threshold`` if binary."""
        return np.asarray(s.argmax(axis=1) if s.ndim == 2 else (s >= self.threshold).astype(int))

    @staticmethod
    def _matrix(p: Array) -> Array:
        """Per-class columns ``(n, k)``: a binary probability ``p`` becomes ``[1 - p, p]``."""
        return p if p.ndim == 2 else np.column_stack([1.0 - p, p])

    def _realised(self, y: Array, s: Array) -> dict[str, float]:
        return metrics_.realised(
            self.metrics, y, self._matrix(s), self._pred(s), self.classes_, self._cost
        )

    def _sampling_errors(self, n: int) -> dict[str, float]:
        """The sampling error of every estimate at window size ``n`` (computed once per n)."""
        if n not in self._se_cache:
            s, y = self._fitted()
            self._se_cache[n] = sampling_errors(
                self.metrics,
                y,
                self._matrix(s),
                self._pred(s),
                self.classes_,
                self._cost,
                n,
                n_samples=self.n_samples,
                seed=self.seed,
            )
        return self._se_cache[n]

    # -- estimating ---------------------------------------------------------------------------

    def expected_row_correct(self, scores: Array | Sequence[float]) -> Array:
        """Per row, the calibrated chance the predicted label is right."""
        q = self.calibrated(scores)
        s = self._scores(scores, "scores")
        if s.ndim == 2:
            return np.asarray(q[np.arange(len(s)), s.argmax(axis=1)])
        return np.asarray(np.where(s >= self.threshold, q, 1.0 - q))

    def expected_row_log_loss(self, scores: Array | Sequence[float]) -> Array:
        """Per row, the expected log loss of the score under the calibrated probability."""
        q = self.calibrated(scores)
        s = np.clip(self._scores(scores, "scores"), 1e-15, 1 - 1e-15)
        if s.ndim == 2:
            return np.asarray(-(q * np.log(s)).sum(axis=1))
        return np.asarray(-(q * np.log(s) + (1.0 - q) * np.log(1.0 - s)))

    def estimate(
        self, scores: Array | Sequence[float], features: pd.DataFrame | None = None
    ) -> CBPEResult:
        """Estimated metrics for a window of scores (and, optionally, its features)."""
        ref_s, _ = self._fitted()
        s = self._scores(scores, "window scores")
        if len(s) == 0:
            raise DataError("the window is empty: there is nothing to estimate")
        q = self.calibrated(s)
        z = float(norm.ppf(0.5 + self.level / 2))
        values = metrics_.estimated(
            self.metrics, self._matrix(s), self._matrix(q), self._pred(s), self.classes_, self._cost
        )
        errors = self._sampling_errors(len(s))
        if self._iso is not None or any(iso is not None for iso in self._isos):
            # A calibration fitted on the reference's rows is itself an estimate: its error is
            # about the metric's sampling error at the reference's size, added in quadrature.
            fitted = self._sampling_errors(len(ref_s))
            errors = {k: float(np.hypot(v, fitted.get(k, 0.0))) for k, v in errors.items()}
        estimates = {
            name: Estimate(
                name,
                value,
                value - z * errors[name],
                value + z * errors[name],
                errors[name],
                self.reference_values_[name],
            )
            for name, value in values.items()
        }
        out = (s < ref_s.min(axis=0)) | (s > ref_s.max(axis=0))
        score_out = float(np.mean(out.any(axis=1) if out.ndim == 2 else out))
        feat_out, by_col = (
            self._support.outside(features)
            if self._support is not None and features is not None
            else (0.0, {})
        )
        warnings = []
        if score_out > self.max_outside and s.ndim == 2:
            warnings.append(
                f"{score_out:.1%} of window rows have a class probability outside that class's "
                "reference range: the calibration is extrapolated"
            )
        elif score_out > self.max_outside:
            warnings.append(
                f"{score_out:.1%} of window scores fall outside the reference range "
                f"[{ref_s.min():.3g}, {ref_s.max():.3g}]: the calibration is extrapolated"
            )
        if feat_out > self.max_outside:
            worst = max(by_col, key=lambda c: by_col[c])
            warnings.append(
                f"{feat_out:.1%} of window rows have features outside the reference support "
                f"(worst: {worst!r}, {by_col[worst]:.1%}): estimates assume only covariate "
                "shift within the reference support"
            )
        return CBPEResult(len(s), estimates, score_out, feat_out, by_col, tuple(warnings))

    def check_with_labels(
        self,
        scores: Array | Sequence[float],
        labels: Array | Sequence[Any],
        features: pd.DataFrame | None = None,
    ) -> LabelCheck:
        """Compare a window's estimates with its realised metrics, now that labels arrived.

        ``calibration_drift`` is set when the observed positive rate differs from the mean
        calibrated probability by more than the band's z (a binomial z-test), or when a
        realised metric falls outside its band. For multiclass each class's observed frequency
        is tested against its mean calibrated probability, and the class with the largest
        ``|z|`` gives ``calibration_z`` and the observed / expected rates.
        """
        s = self._scores(scores, "window scores")
        y = self._y(labels, len(s))
        result = self.estimate(s, features)
        q = self.calibrated(s)
        realised = self._realised(y, s)
        within = {  # a metric undefined on the window's labels (NaN) is not contradicted
            m: bool(e.low <= realised[m] <= e.high or np.isnan(realised[m]))
            for m, e in result.estimates.items()
        }
        if s.ndim == 2 and self.classes_ is not None:
            c, z_cal = mc.worst_class(y, q)
            observed, expected = float(np.mean(y == c)), float(q[:, c].mean())
            what = f"of class {self.classes_[c]!r}"
        else:
            var = float(np.sum(q * (1.0 - q)))
            z_cal = float((y.sum() - q.sum()) / np.sqrt(var)) if var > 0 else float("nan")
            observed, expected, what = float(y.mean()), float(q.mean()), "positive"
        z = float(norm.ppf(0.5 + self.level / 2))
        drift = bool(abs(z_cal) > z) or not all(within.values())
        warnings = list(result.warnings)
        if abs(z_cal) > z:
            warnings.append(
                f"calibration drifted: {observed:.3f} of the window is {what} where the "
                f"calibrated scores expect {expected:.3f} (z = {z_cal:.1f})"
            )
        warnings += [
            f"realised {m} {realised[m]:.4f} is outside the estimated band "
            f"[{result.estimates[m].low:.4f}, {result.estimates[m].high:.4f}]"
            for m, ok in within.items()
            if not ok
        ]
        return LabelCheck(
            n=len(s),
            estimated=result.estimates,
            realised=realised,
            within_band=within,
            observed_positive_rate=observed,
            expected_positive_rate=expected,
            calibration_z=z_cal,
            ece=self._column_ece(q, y) if q.ndim == 1 else mc.ovr_mean(self._column_ece, q, y),
            calibration_drift=drift,
            warnings=tuple(warnings),
        )
