"""Direct loss estimation (DLE) for regressors, without labels.

The reference is NannyML's DLE. On labelled reference rows, :meth:`DLE.fit` trains a model
of the **row-level loss** (the squared error for RMSE, the absolute error for MAE) from the
features and the prediction: by default a scikit-learn ``HistGradientBoostingRegressor``.
For a window without labels, :meth:`DLE.estimate` averages the predicted row losses (and
takes the root for RMSE). The band is the estimate ± ``z`` times the sampling error, the
standard deviation of the realised metric over reference samples of the window's size. As
for CBPE, the share of window rows outside the reference support is reported and warned
about: there the loss model extrapolates.

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
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits  # no type info

from regrow.errors import ConfigError, DataError
from regrow.monitor.cbpe import Estimate, Support, _clean, sampling_std

__all__ = ["DLE", "DLEResult"]

Array = np.ndarray
_MAX_CATEGORIES = 250  # HistGradientBoosting's native categorical limit (255 bins) less margin
_ONE_THREAD_BELOW = 50_000  # rows


def _threads(n_rows: int) -> Any:
    """One OpenMP thread for small data, the default otherwise.

    On a few thousand rows, gradient boosting's OpenMP threads cost more than they save, and
    on a busy 2-core machine their spin-waiting made fitting 10-50x slower (0.1 s -> 7 s).
    """
    if n_rows < _ONE_THREAD_BELOW:
        return threadpool_limits(limits=1, user_api="openmp")
    return contextlib.nullcontext()


@dataclass(frozen=True)
class DLEResult:
    """DLE's estimate for one window, and the check of its support assumption."""

    n: int
    estimate: Estimate
    feature_outside_support: float
    outside_by_column: dict[str, float]
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values."""
        return _clean(asdict(self))


class DLE:
    """Direct loss estimation of a regressor's RMSE or MAE.

    Parameters are stored as given: ``metric`` (``"rmse"`` or ``"mae"``), ``estimator`` (a
    scikit-learn regressor for the row loss; ``None`` uses a small gradient-boosted model),
    ``level`` of the band, ``n_samples`` reference samples per window size, ``max_outside``
    (share of rows outside the reference support above which a warning is raised), ``seed``.
    """

    def __init__(
        self,
        metric: str = "rmse",
        *,
        estimator: Any = None,
        level: float = 0.95,
        n_samples: int = 200,
        max_outside: float = 0.05,
        seed: int = 0,
    ) -> None:
        if metric not in ("rmse", "mae"):
            raise ConfigError(
                f"the 'metric' parameter of DLE must be 'rmse' or 'mae'; got {metric!r}"
            )
        if not 0 < level < 1:
            raise ConfigError(f"the 'level' parameter of DLE must be in (0, 1); got {level!r}")
        self.metric = metric
        self.estimator = estimator
        self.level = level
        self.n_samples = n_samples
        self.max_outside = max_outside
        self.seed = seed
        self._model: Any = None
        self._columns: list[str] = []
        self._categories: dict[str, pd.Index] = {}
        self._support: Support | None = None
        self._ref: tuple[Array, Array] | None = None
        self._std_cache: dict[int, float] = {}
        self.reference_value_: float = float("nan")

    def __repr__(self) -> str:
        return f"DLE(metric={self.metric!r})"

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

    def _row_target(self, y: Array, pred: Array) -> Array:
        err = y - pred
        return np.asarray(err**2 if self.metric == "rmse" else np.abs(err))

    def fit(
        self,
        features: pd.DataFrame,
        predictions: Array | Sequence[float],
        targets: Array | Sequence[float],
    ) -> DLE:
        """Train the loss model on labelled reference rows."""
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
        model = self.estimator
        if model is None:
            model = HistGradientBoostingRegressor(
                max_iter=100,
                learning_rate=0.08,
                max_leaf_nodes=15,
                min_samples_leaf=40,
                categorical_features=np.asarray([*categorical, False]),
                random_state=self.seed,
            )
        with _threads(len(y)):
            self._model = model.fit(self._matrix(features, pred), self._row_target(y, pred))
        self._support = Support.of(features)
        self._ref = (y, pred)
        self._std_cache = {}
        self.reference_value_ = float(
            np.sqrt(np.mean((y - pred) ** 2))
            if self.metric == "rmse"
            else np.mean(np.abs(y - pred))
        )
        return self

    def row_loss(self, features: pd.DataFrame, predictions: Array | Sequence[float]) -> Array:
        """The estimated squared (RMSE) or absolute (MAE) error of each row."""
        if self._model is None:
            raise ConfigError("this DLE is not fitted yet", hint="call fit(...) first")
        pred = np.asarray(predictions, float)
        if len(pred) != len(features):
            raise DataError(f"{len(features)} rows of features but {len(pred)} predictions")
        with _threads(len(pred)):
            loss = np.asarray(self._model.predict(self._matrix(features, pred)), float)
        return np.asarray(np.clip(loss, 0.0, None))

    def estimate(self, features: pd.DataFrame, predictions: Array | Sequence[float]) -> DLEResult:
        """The estimated metric for a window, with its band and support warnings."""
        if len(features) == 0:
            raise DataError("the window is empty: there is nothing to estimate")
        loss = self.row_loss(features, predictions)
        value = float(np.sqrt(loss.mean()) if self.metric == "rmse" else loss.mean())
        n = len(loss)
        if n not in self._std_cache:
            assert self._ref is not None
            y, pred = self._ref
            self._std_cache[n] = sampling_std(
                self.metric, y, pred, n, n_samples=self.n_samples, seed=self.seed
            )
        se = self._std_cache[n]
        z = float(norm.ppf(0.5 + self.level / 2))
        est = Estimate(
            self.metric, value, value - z * se, value + z * se, se, self.reference_value_
        )
        assert self._support is not None
        share, by_col = self._support.outside(features)
        warnings = []
        if share > self.max_outside:
            worst = max(by_col, key=lambda c: by_col[c])
            warnings.append(
                f"{share:.1%} of window rows have features outside the reference support "
                f"(worst: {worst!r}, {by_col[worst]:.1%}): the loss model extrapolates there"
            )
        return DLEResult(n, est, share, by_col, tuple(warnings))
