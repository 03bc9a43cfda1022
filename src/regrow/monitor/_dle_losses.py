"""The metrics DLE estimates, the row loss each one averages, and the default loss model.

Each metric is a mean of a row loss, or the root of one; metrics that share a row loss share
one loss model (``mse`` and ``rmse`` both average the squared error):

=========  =============================  ======================
metric     row loss                       from the mean loss
=========  =============================  ======================
``mae``    ``|y - p|``                    the mean
``mape``   ``|y - p| / max(|y|, eps)``    the mean
``mse``    ``(y - p)^2``                  the mean
``rmse``   ``(y - p)^2``                  its square root
``msle``   ``(log1p(y) - log1p(p))^2``    the mean
``rmsle``  ``(log1p(y) - log1p(p))^2``    its square root
=========  =============================  ======================

``eps`` is the float64 machine epsilon, as in scikit-learn's
``mean_absolute_percentage_error``; the logarithmic losses need ``y, p > -1``.

The default loss model is NannyML's: LightGBM's ``LGBMRegressor`` with its default parameters
when ``lightgbm`` is installed (``pip install 'regrow[lightgbm]'``), else scikit-learn's
``HistGradientBoostingRegressor`` with the same shape (100 trees of up to 31 leaves, learning
rate 0.1, at least 20 rows a leaf).

>>> y, p = np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0])
>>> row_loss("rmse", y, p).tolist(), round(float(from_mean("rmse", 1.25)), 4)
([0.25, 0.0, 1.0], 1.118)
>>> LOSS_OF["mse"] == LOSS_OF["rmse"], row_loss("mape", y, p).round(3).tolist()
(True, [0.5, 0.0, 0.25])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from regrow.errors import DataError

__all__ = [
    "DLE_METRICS",
    "LOSS_OF",
    "check_log_domain",
    "default_model",
    "from_mean",
    "predict",
    "row_loss",
]

Array = np.ndarray

DLE_METRICS = ("mae", "mape", "mse", "msle", "rmse", "rmsle")
LOSS_OF = {
    "mae": "absolute_error",
    "mape": "absolute_percentage_error",
    "mse": "squared_error",
    "rmse": "squared_error",
    "msle": "squared_log_error",
    "rmsle": "squared_log_error",
}
_EPS = np.finfo(np.float64).eps


def row_loss(metric: str, y: Array, pred: Array) -> Array:
    """The loss of each row that ``metric`` averages (see the module table)."""
    kind = LOSS_OF[metric]
    if kind == "absolute_error":
        return np.asarray(np.abs(y - pred))
    if kind == "absolute_percentage_error":
        return np.asarray(np.abs(y - pred) / np.maximum(np.abs(y), _EPS))
    if kind == "squared_error":
        return np.asarray((y - pred) ** 2)
    return np.asarray((np.log1p(y) - np.log1p(pred)) ** 2)


def from_mean(metric: str, mean_loss: Any) -> Any:
    """The metric from the mean row loss: its root for ``rmse`` and ``rmsle``."""
    return np.sqrt(mean_loss) if metric in ("rmse", "rmsle") else mean_loss


def check_log_domain(metrics: Sequence[str], values: Array, what: str) -> None:
    """Refuse ``values`` at or below -1 when a logarithmic metric is asked for."""
    logs = [m for m in metrics if LOSS_OF[m] == "squared_log_error"]
    if logs and values.size and values.min() <= -1:
        raise DataError(
            f"DLE cannot estimate {logs} when {what} are -1 or less (got {values.min():.4g})",
            hint="log1p is undefined there: use 'mae', 'mse' or 'rmse', or shift the target",
        )


def default_model(
    categorical: Sequence[bool], seed: int, threads: int | None
) -> tuple[Any, dict[str, Any]]:
    """The default loss model and the keyword arguments of its ``fit``.

    ``categorical`` flags the feature columns; the model's input has one more, last column,
    the prediction. ``threads`` caps LightGBM's threads (``None``: its default).
    """
    cats = [i for i, c in enumerate(categorical) if c]
    try:
        import lightgbm
    except ImportError:
        model = HistGradientBoostingRegressor(
            max_iter=100,
            learning_rate=0.1,
            max_leaf_nodes=31,
            min_samples_leaf=20,
            categorical_features=np.asarray([*categorical, False]),
            early_stopping=False,
            random_state=seed,
        )
        return model, {}
    lgbm = lightgbm.LGBMRegressor(random_state=seed, verbose=-1, n_jobs=threads)
    return lgbm, {"categorical_feature": cats} if cats else {}


def predict(model: Any, x: Array, threads: int | None) -> Array:
    """``model.predict(x)``, on at most ``threads`` threads for a LightGBM model (None: its own).

    LightGBM takes its thread count per call (``num_threads``), not from OpenMP limits.
    """
    if threads is not None and type(model).__module__.startswith("lightgbm"):
        return np.asarray(model.predict(x, num_threads=threads), float)
    return np.asarray(model.predict(x), float)
