"""Confidence-based performance estimation (CBPE) for classifiers, without labels.

The reference is NannyML's CBPE. On labelled reference data :meth:`CBPE.fit`

1. checks calibration (expected calibration error and Brier score), and fits an isotonic
   calibration only if it helps on held-out reference rows (2-fold cross-fitting, Brier score);
2. keeps the labelled reference to give the **sampling error** of a window of ``n`` rows:
   for ROC AUC the standard deviation of the realised AUC over 200 reference samples of ``n``
   rows (drawn with replacement, computed once per size); for accuracy the analytic
   ``std(correct) / sqrt(n)`` of the reference rows' correctness.

For a window without labels :meth:`CBPE.estimate` takes the calibrated probability ``q`` of
each row as the chance that it is positive: the expected confusion matrix gives the expected
accuracy (``q`` where the model predicts positive, ``1 - q`` elsewhere), and the expected ROC AUC
ranks rows by the model's score with ``q`` as soft labels. The band is the estimate ±
``z * sampling error``. Multiclass ``(n, k)`` probability matrices are handled one-vs-rest
(accuracy of the argmax class, macro ROC AUC; see :mod:`regrow.monitor._cbpe_multiclass`).
Assumptions are checked, not assumed: the share of window rows whose
score or features fall outside the reference range, and, once labels arrive,
:meth:`CBPE.check_with_labels` compares estimate and realised value and tests whether the
observed positive rate (per class, for multiclass) still matches the calibrated probabilities.

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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.isotonic import IsotonicRegression

from regrow.errors import ConfigError, DataError
from regrow.monitor import _cbpe_multiclass as mc
from regrow.monitor.performance import weighted_auc, weighted_metric

__all__ = [
    "CBPE",
    "CBPEResult",
    "Estimate",
    "LabelCheck",
    "ScoreCalibration",
    "Support",
    "expected_calibration_error",
    "sampling_std",
]

Array = np.ndarray
_CELLS_PER_BLOCK = 4_000_000


def _clean(d: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, float) and not np.isfinite(v):
            out[k] = None
        elif isinstance(v, Mapping):
            out[k] = _clean(v)
        elif isinstance(v, tuple):
            out[k] = list(v)
        else:
            out[k] = v
    return out


def expected_calibration_error(prob: Array, y: Array, n_bins: int = 10) -> float:
    """Expected calibration error on ``n_bins`` equal-width bins of the probability.

    >>> round(expected_calibration_error(np.array([0.1, 0.9]), np.array([0, 1])), 2)
    0.1
    """
    prob = np.asarray(prob, float)
    bins = np.minimum((prob * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    gap = np.abs(np.bincount(bins, prob, n_bins) - np.bincount(bins, np.asarray(y, float), n_bins))
    return float(gap.sum() / max(count.sum(), 1))


def sampling_std(
    metric: str, y: Array, score: Array, size: int, *, n_samples: int = 200, seed: int = 0
) -> float:
    """Standard deviation of ``metric`` over ``n_samples`` random samples of ``size`` rows.

    Samples are drawn with replacement from the labelled rows ``(y, score)``, so this is the
    spread of the realised metric of a window of ``size`` rows drawn like them.
    """
    n_ref = len(y)
    rng = np.random.default_rng(seed)
    block = max(1, _CELLS_PER_BLOCK // max(size, n_ref))
    values = []
    for start in range(0, n_samples, block):
        b = min(block, n_samples - start)
        idx = rng.integers(0, n_ref, (b, size)) + (np.arange(b) * n_ref)[:, None]
        counts = np.bincount(idx.ravel(), minlength=b * n_ref).reshape(b, n_ref)
        values.append(weighted_metric(metric, y, score, counts.astype(float)))
    draws = np.concatenate(values)
    draws = draws[np.isfinite(draws)]
    return float(draws.std(ddof=1)) if draws.size > 1 else float("nan")


@dataclass(frozen=True)
class Support:
    """The reference range of each feature: min/max for numbers, the categories seen otherwise."""

    numeric: dict[str, tuple[float, float]] = field(default_factory=dict)
    categories: dict[str, frozenset[Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Support:
        """The support of every column of ``frame``."""
        numeric: dict[str, tuple[float, float]] = {}
        categories: dict[str, frozenset[Any]] = {}
        for col in frame.columns:
            s = frame[col]
            if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
                numeric[str(col)] = (float(s.min()), float(s.max()))
            else:
                categories[str(col)] = frozenset(s.dropna().unique())
        return cls(numeric, categories)

    def outside(self, frame: pd.DataFrame) -> tuple[float, dict[str, float]]:
        """Share of rows with any feature outside the support, and the share per column.

        Missing values are not counted as outside; columns the reference lacks are ignored.
        """
        flags = np.zeros(len(frame), bool)
        per_column: dict[str, float] = {}
        for col, (lo, hi) in self.numeric.items():
            if col in frame.columns:
                v = pd.to_numeric(frame[col], errors="coerce").to_numpy(float)
                out = (v < lo) | (v > hi)
                per_column[col] = float(out.mean()) if len(v) else 0.0
                flags |= out
        for col, seen in self.categories.items():
            if col in frame.columns:
                s = frame[col]
                out = (~s.isin(list(seen)) & s.notna()).to_numpy(bool)
                per_column[col] = float(out.mean()) if len(s) else 0.0
                flags |= out
        return (float(flags.mean()) if len(frame) else 0.0), per_column


@dataclass(frozen=True)
class ScoreCalibration:
    """How well the reference scores were calibrated, and whether CBPE recalibrates them."""

    ece_raw: float
    ece_calibrated: float
    brier_raw: float
    brier_calibrated: float
    calibrated: bool


@dataclass(frozen=True)
class Estimate:
    """An estimated metric with its band (estimate ± z · sampling error)."""

    metric: str
    value: float
    low: float
    high: float
    sampling_error: float
    reference_value: float


@dataclass(frozen=True)
class CBPEResult:
    """CBPE's estimates for one window, and the checks of its assumptions."""

    n: int
    estimates: dict[str, Estimate]
    score_outside_support: float
    feature_outside_support: float
    outside_by_column: dict[str, float]
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values."""
        return _clean(asdict(self))


@dataclass(frozen=True)
class LabelCheck:
    """Estimated against realised performance once a window's labels arrive."""

    n: int
    estimated: dict[str, Estimate]
    realised: dict[str, float]
    within_band: dict[str, bool]
    observed_positive_rate: float
    expected_positive_rate: float
    calibration_z: float
    ece: float
    calibration_drift: bool
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The check as JSON-ready values."""
        return _clean(asdict(self))


def _binary(scores: Array | Sequence[float], what: str) -> Array:
    s = np.asarray(scores, float)
    if s.ndim == 2 and s.shape[1] == 2:
        s = s[:, 1]
    if s.ndim != 1:
        raise DataError(
            f"CBPE takes the positive-class probability of a binary classifier as {what} "
            f"(got an array of shape {s.shape})",
            hint="pass proba[:, 1] of a binary model, or a fitted multiclass CBPE's (n, k) matrix",
        )
    if s.size and (not np.isfinite(s).all() or s.min() < 0 or s.max() > 1):
        raise DataError(f"{what} must be probabilities in [0, 1] (got values outside, or NaN)")
    return s


def _labels(labels: Array | Sequence[Any], n: int) -> Array:
    y = np.asarray(labels)
    if y.shape != (n,):
        raise DataError(f"expected {n} labels (got shape {y.shape})")
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:  # True and False compare equal to 1 and 0
        raise DataError(
            f"CBPE takes 0/1 labels (got values {sorted(values, key=str)[:5]})",
            hint="encode the positive class as 1",
        )
    return y.astype(int)


class CBPE:
    """Confidence-based performance estimation for a classifier's scores.

    Parameters are stored as given: ``metrics`` (any of ``roc_auc``, ``accuracy``);
    ``calibration`` (``"auto"``: isotonic only if it lowers the held-out Brier score, per class
    for multiclass, ``"always"``, ``"never"``); ``threshold`` for predicting positive (binary
    only: a multiclass model predicts its argmax class); ``level`` of the band;
    ``n_samples`` reference samples per window size; ``max_outside``, the share of rows outside
    the reference support above which a warning is raised.
    """

    def __init__(
        self,
        metrics: Sequence[str] = ("roc_auc", "accuracy"),
        *,
        calibration: str = "auto",
        threshold: float = 0.5,
        level: float = 0.95,
        n_bins: int = 10,
        n_samples: int = 200,
        max_outside: float = 0.05,
        seed: int = 0,
    ) -> None:
        unknown = sorted(set(metrics) - {"roc_auc", "accuracy"})
        if unknown or not metrics:
            raise ConfigError(
                f"CBPE cannot estimate metrics {unknown or list(metrics)}",
                hint="use 'roc_auc' and/or 'accuracy'",
            )
        if calibration not in ("auto", "always", "never"):
            raise ConfigError(
                f"the 'calibration' parameter of CBPE must be 'auto', 'always' or 'never'; "
                f"got {calibration!r}"
            )
        if not 0 < level < 1:
            raise ConfigError(f"the 'level' parameter of CBPE must be in (0, 1); got {level!r}")
        self.metrics = tuple(metrics)
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
        self._std_cache: dict[tuple[str, int], float] = {}
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
        s = _binary(raw, "reference scores")
        y = _labels(labels, len(s))
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
        self._ref = (s, y)
        self._support = Support.of(features) if features is not None else None
        self._std_cache = {}
        self.reference_values_ = {m: self._realised(m, y, s) for m in self.metrics}
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
            return _binary(scores, what)
        return mc.class_matrix(scores, what, len(self.classes_))

    def _y(self, labels: Array | Sequence[Any], n: int) -> Array:
        return _labels(labels, n) if self.classes_ is None else mc.encode(labels, n, self.classes_)

    def _correct(self, y: Array, s: Array) -> Array:
        if s.ndim == 2:
            return np.asarray(s.argmax(axis=1) == y)
        return np.asarray((s >= self.threshold) == (y == 1))

    def _realised(self, metric: str, y: Array, s: Array) -> float:
        if metric == "accuracy":
            return float(np.mean(self._correct(y, s)))
        return float(weighted_metric(metric, y, s))

    def _sampling_error(self, metric: str, n: int) -> float:
        key = (metric, n)
        if key not in self._std_cache:
            s, y = self._fitted()
            if metric == "accuracy":  # row-wise correctness: the spread of its mean is analytic
                correct = self._correct(y, s).astype(float)
                self._std_cache[key] = float(correct.std(ddof=1) / np.sqrt(n))
            else:
                self._std_cache[key] = sampling_std(
                    metric, y, s, n, n_samples=self.n_samples, seed=self.seed
                )
        return self._std_cache[key]

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
        estimates: dict[str, Estimate] = {}
        for metric in self.metrics:
            if s.ndim == 2:
                value = (mc.expected_accuracy if metric == "accuracy" else mc.expected_macro_auc)(
                    s, q
                )
            elif metric == "accuracy":
                value = float(np.mean(np.where(s >= self.threshold, q, 1.0 - q)))
            else:
                value = float(weighted_auc(s, q))
            se = self._sampling_error(metric, len(s))
            estimates[metric] = Estimate(
                metric, value, value - z * se, value + z * se, se, self.reference_values_[metric]
            )
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
        realised = {m: self._realised(m, y, s) for m in self.metrics}
        within = {m: bool(e.low <= realised[m] <= e.high) for m, e in result.estimates.items()}
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
