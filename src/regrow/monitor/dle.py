"""Direct loss estimation (DLE) for regressors, without labels.

The reference is NannyML's DLE. It estimates any of :data:`DLE_METRICS` (``mae``, ``mape``,
``mse``, ``msle``, ``rmse``, ``rmsle``). On labelled reference rows, :meth:`DLE.fit` trains one
model of the **row-level loss** per distinct loss (the squared error for MSE and RMSE, the
absolute error for MAE, ...; see :mod:`regrow.monitor._dle_losses`) from the features and the
prediction: by default LightGBM with its default parameters, as NannyML, or scikit-learn's
``HistGradientBoostingRegressor`` of the same shape when LightGBM is not installed. For a
window without labels, :meth:`DLE.estimate` averages the predicted row losses (and takes the
root for RMSE and RMSLE). The band is the estimate ± ``z`` times the sampling error, the
standard deviation of the realised metric over windows of the window's size drawn from the
reference: ``std(row loss) / sqrt(n)`` for the means, over ``n_samples`` reference samples
for the roots. As for CBPE, the share of window rows outside the reference support is
reported and warned about: there the loss model extrapolates.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=2000)
>>> y = x + rng.normal(size=2000) * (0.2 + np.abs(x))  # noisier for large |x|
>>> frame = pd.DataFrame({"x": x})
>>> dle = DLE(seed=0).fit(frame[:1000], x[:1000], y[:1000])
>>> est = dle.estimate(frame[1000:], x[1000:]).estimate
>>> realised = float(np.sqrt(np.mean((y[1000:] - x[1000:]) ** 2)))
>>> bool(est.low < realised < est.high)
True
>>> both = DLE(metrics=("mae", "mse"), seed=0).fit(frame[:1000], x[:1000], y[:1000])
>>> sorted(both.estimate(frame[1000:], x[1000:]).estimates)
['mae', 'mse']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.base import clone

from regrow._threads import ONE_THREAD_BELOW, small_data_threads
from regrow.errors import ConfigError, DataError
from regrow.monitor._cbpe_common import Estimate, Support, clean
from regrow.monitor._dle_losses import (
    DLE_METRICS,
    LOSS_OF,
    check_log_domain,
    default_model,
    from_mean,
    predict,
    row_loss,
)

__all__ = ["DLE", "DLE_METRICS", "DLEResult"]

Array = np.ndarray
_MAX_CATEGORIES = 250  # HistGradientBoosting's native categorical limit (255 bins) less margin
_CELLS_PER_BLOCK = 1_000_000  # resampled rows held at once


@dataclass(frozen=True)
class DLEResult:
    """DLE's estimates for one window, and the check of its support assumption.

    ``estimate`` is the first metric's, ``estimates`` holds every metric's.
    """

    n: int
    estimate: Estimate
    estimates: dict[str, Estimate]
    feature_outside_support: float
    outside_by_column: dict[str, float]
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values."""
        return clean(asdict(self))


class DLE:
    """Direct loss estimation of a regressor's error metrics.

    Parameters are stored as given: ``metric`` (one of :data:`DLE_METRICS`) or ``metrics``
    (several; give one or the other, default ``"rmse"``), ``estimator`` (a scikit-learn
    regressor for the row loss, cloned per distinct loss; ``None`` uses LightGBM, or
    scikit-learn's gradient boosting without it), ``level`` of the band, ``n_samples``
    reference samples per window size, ``max_outside`` (share of rows outside the reference
    support above which a warning is raised), ``seed``.
    """

    def __init__(
        self,
        metric: str | None = None,
        *,
        metrics: Sequence[str] | None = None,
        estimator: Any = None,
        level: float = 0.95,
        n_samples: int = 200,
        max_outside: float = 0.05,
        seed: int = 0,
    ) -> None:
        if metric is not None and metrics is not None:
            raise ConfigError(
                f"DLE takes 'metric' or 'metrics', not both (got {metric!r} and {metrics!r})",
                hint="pass metrics=(...) alone to estimate several",
            )
        chosen = (metric or "rmse",) if metrics is None else tuple(dict.fromkeys(metrics))
        unknown = [m for m in chosen if m not in DLE_METRICS]
        if unknown or not chosen:
            name = "metric" if metrics is None else "metrics"
            raise ConfigError(
                f"the {name!r} parameter of DLE must name metrics among {list(DLE_METRICS)}; "
                f"got {unknown or list(chosen)}",
                hint="e.g. DLE('rmse') or DLE(metrics=('mae', 'rmse'))",
            )
        if not 0 < level < 1:
            raise ConfigError(f"the 'level' parameter of DLE must be in (0, 1); got {level!r}")
        self.metrics = chosen
        self.metric = chosen[0]
        self.estimator = estimator
        self.level = level
        self.n_samples = n_samples
        self.max_outside = max_outside
        self.seed = seed
        self._models: dict[str, Any] = {}
        self._columns: list[str] = []
        self._categories: dict[str, pd.Index] = {}
        self._support: Support | None = None
        self._ref: tuple[Array, Array] | None = None
        self._se_cache: dict[int, dict[str, float]] = {}
        self.reference_values_: dict[str, float] = {}

    def __repr__(self) -> str:
        if len(self.metrics) == 1:
            return f"DLE(metric={self.metric!r})"
        return f"DLE(metrics={self.metrics!r})"

    @property
    def reference_value_(self) -> float:
        """The first metric's value on the reference rows."""
        return self.reference_values_.get(self.metric, float("nan"))

    def _matrix(self, features: pd.DataFrame, predictions: Array) -> Array:
        missing = [c for c in self._columns if c not in features.columns]
        if missing:
            raise DataError(
                f"the window lacks columns {missing} that the loss model reads",
                hint=f"it has {list(features.columns)}",
            )
        cols = []
        for c in self._columns:
            if c in self._categories:
                codes = self._categories[c].get_indexer(pd.Index(features[c]))
                cols.append(np.where(codes < 0, np.nan, codes.astype(float)))
            else:
                cols.append(pd.to_numeric(features[c], errors="coerce").to_numpy(float))
        return np.column_stack([*cols, predictions])

    def _losses(self) -> dict[str, str]:
        """Each distinct row loss, and the first metric that names it."""
        out: dict[str, str] = {}
        for m in self.metrics:
            out.setdefault(LOSS_OF[m], m)
        return out

    def fit(
        self,
        features: pd.DataFrame,
        predictions: Array | Sequence[float],
        targets: Array | Sequence[float],
    ) -> DLE:
        """Train one loss model per distinct row loss on labelled reference rows."""
        pred = np.asarray(predictions, float)
        y = np.asarray(targets, float)
        if not (len(features) == len(pred) == len(y)):
            raise DataError(
                f"features, predictions and targets differ in length "
                f"({len(features)}, {len(pred)}, {len(y)})"
            )
        if len(y) < 50 or not np.isfinite(y).all() or not np.isfinite(pred).all():
            raise DataError(
                f"DLE needs at least 50 reference rows with finite targets and predictions "
                f"(got {len(y)} rows)"
            )
        check_log_domain(self.metrics, y, "reference targets")
        check_log_domain(self.metrics, pred, "reference predictions")
        self._columns = [str(c) for c in features.columns]
        self._categories = {}
        categorical = []
        for c in self._columns:
            s = features[c]
            if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
                categorical.append(False)
            else:
                cats = pd.Index(pd.unique(s.dropna()))
                self._categories[c] = cats
                categorical.append(len(cats) <= _MAX_CATEGORIES)
        x = self._matrix(features, pred)
        threads = 1 if len(y) < ONE_THREAD_BELOW else None
        self._models = {}
        for kind, metric in self._losses().items():
            if self.estimator is None:
                model, fit_kwargs = default_model(categorical, self.seed, threads)
            else:
                model, fit_kwargs = clone(self.estimator), {}
            with small_data_threads(len(y)):
                self._models[kind] = model.fit(x, row_loss(metric, y, pred), **fit_kwargs)
        self._support = Support.of(features)
        self._ref = (y, pred)
        self._se_cache = {}
        self.reference_values_ = {
            m: float(from_mean(m, row_loss(m, y, pred).mean())) for m in self.metrics
        }
        return self

    def row_loss(
        self,
        features: pd.DataFrame,
        predictions: Array | Sequence[float],
        metric: str | None = None,
    ) -> Array:
        """The estimated row loss of ``metric`` (default: the first) for each row.

        The squared error for RMSE and MSE, the absolute error for MAE, and so on.
        """
        if not self._models:
            raise ConfigError("this DLE is not fitted yet", hint="call fit(...) first")
        metric = metric or self.metric
        if metric not in self.metrics:
            raise ConfigError(
                f"this DLE was not fitted for metric {metric!r}",
                hint=f"it estimates {list(self.metrics)}",
            )
        pred = np.asarray(predictions, float)
        if len(pred) != len(features):
            raise DataError(f"{len(features)} rows of features but {len(pred)} predictions")
        check_log_domain([metric], pred, "window predictions")
        threads = 1 if len(pred) < ONE_THREAD_BELOW else None
        with small_data_threads(len(pred)):
            loss = predict(self._models[LOSS_OF[metric]], self._matrix(features, pred), threads)
        return np.asarray(np.clip(loss, 0.0, None))

    def _sampling_errors(self, n: int) -> dict[str, float]:
        """Per metric, the spread of its realised value over reference windows of ``n`` rows."""
        if n in self._se_cache:
            return self._se_cache[n]
        assert self._ref is not None
        y, pred = self._ref
        out: dict[str, float] = {}
        roots = [m for m in self.metrics if m in ("rmse", "rmsle")]
        for m in self.metrics:
            if m not in roots:  # a mean of row losses: its spread is analytic
                out[m] = float(row_loss(m, y, pred).std(ddof=1) / np.sqrt(n))
        if roots:
            rng = np.random.default_rng(self.seed)
            block = max(1, _CELLS_PER_BLOCK // n)
            idx = [
                rng.integers(0, len(y), (min(block, self.n_samples - b), n))
                for b in range(0, self.n_samples, block)
            ]
            for m in roots:
                terms = row_loss(m, y, pred)
                draws = np.concatenate([np.sqrt(terms[i].mean(axis=1)) for i in idx])
                out[m] = float(draws.std(ddof=1)) if draws.size > 1 else float("nan")
        self._se_cache[n] = out
        return out

    def estimate(self, features: pd.DataFrame, predictions: Array | Sequence[float]) -> DLEResult:
        """The estimated metrics for a window, with their bands and support warnings."""
        if len(features) == 0:
            raise DataError("the window is empty: there is nothing to estimate")
        n = len(features)
        errors = self._sampling_errors(n) if self._ref is not None else {}
        z = float(norm.ppf(0.5 + self.level / 2))
        estimates: dict[str, Estimate] = {}
        for kind, first in self._losses().items():
            mean_loss = float(self.row_loss(features, predictions, first).mean())
            for m in (m for m in self.metrics if LOSS_OF[m] == kind):
                value, se = float(from_mean(m, mean_loss)), errors[m]
                estimates[m] = Estimate(
                    m, value, value - z * se, value + z * se, se, self.reference_values_[m]
                )
        estimates = {m: estimates[m] for m in self.metrics}
        assert self._support is not None
        share, by_col = self._support.outside(features)
        warnings = []
        if share > self.max_outside:
            worst = max(by_col, key=lambda c: by_col[c])
            warnings.append(
                f"{share:.1%} of window rows have features outside the reference support "
                f"(worst: {worst!r}, {by_col[worst]:.1%}): the loss model extrapolates there"
            )
        return DLEResult(n, estimates[self.metric], estimates, share, by_col, tuple(warnings))
