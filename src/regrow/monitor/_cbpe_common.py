"""Parts CBPE and DLE share: the reference support, sampling error, results and input checks.

:class:`Support` is the range of each feature on the reference (min/max for numbers, the
categories seen otherwise); estimates assume a window stays inside it. :func:`sampling_std`
is the spread of a metric over reference samples of a window's size.

>>> support = Support.of(pd.DataFrame({"a": [0.0, 1.0], "b": ["x", "y"]}))
>>> support.outside(pd.DataFrame({"a": [0.5, 2.0], "b": ["x", "x"]}))
(0.5, {'a': 0.5, 'b': 0.0})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from regrow.errors import DataError
from regrow.monitor.performance import weighted_metric

__all__ = [
    "CBPEResult",
    "Estimate",
    "LabelCheck",
    "ScoreCalibration",
    "Support",
    "binary_labels",
    "binary_scores",
    "clean",
    "expected_calibration_error",
    "sampling_std",
]

Array = np.ndarray
_CELLS_PER_BLOCK = 4_000_000


def clean(d: Mapping[str, Any]) -> dict[str, Any]:
    """``d`` as JSON-ready values: non-finite floats become None, tuples lists."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, float) and not np.isfinite(v):
            out[k] = None
        elif isinstance(v, Mapping):
            out[k] = clean(v)
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
class Estimate:
    """An estimated metric with its band (estimate ± z · sampling error)."""

    metric: str
    value: float
    low: float
    high: float
    sampling_error: float
    reference_value: float


@dataclass(frozen=True)
class ScoreCalibration:
    """How well the reference scores were calibrated, and whether CBPE recalibrates them."""

    ece_raw: float
    ece_calibrated: float
    brier_raw: float
    brier_calibrated: float
    calibrated: bool


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
        return clean(asdict(self))


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
        return clean(asdict(self))


def binary_scores(scores: Array | Sequence[float], what: str) -> Array:
    """``scores`` checked as positive-class probabilities; an ``(n, 2)`` matrix gives column 1."""
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


def binary_labels(labels: Array | Sequence[Any], n: int) -> Array:
    """``labels`` checked as ``n`` 0/1 labels."""
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
