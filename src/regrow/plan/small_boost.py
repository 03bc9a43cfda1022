"""The planner's small boosted model: 60 rounds of 15-leaf trees, fitted on the probe rows and
read on the probe rows and the held-out rows.

The residual probes (:mod:`regrow.plan.residual`) and the full-retrain probe
(:mod:`regrow.plan.full_probe`) each fit one to what a model gets wrong. With LightGBM
installed (several times faster than scikit-learn's on small data) its output is read from
the booster's own scores rather than predicted: the probe rows' training scores, and the
held-out rows' scores as a validation set, which LightGBM updates on their binned values as
each tree is added. They are the values ``predict`` returns -- the same leaves of the same
trees, summed in the same order (a test checks they are equal to the last bit) -- for about
20% less CPU: no second pass over the rows from their raw values, and no round trip through
the model's text, which LightGBM's scikit-learn wrapper makes at the end of every fit. Without
LightGBM, scikit-learn's ``HistGradientBoostingRegressor`` of the same shape is fitted and
predicts.

>>> import numpy as np, pandas as pd
>>> X = pd.DataFrame({"x": np.linspace(-1, 1, 400)})
>>> fit, held = np.arange(0, 400, 2), np.arange(1, 400, 2)
>>> on_fit, on_held = small_boost(X, np.sign(X["x"].to_numpy()[fit]), (fit, held), seed=0)
>>> on_fit.shape, on_held.shape, bool(on_held[0] < 0 < on_held[-1])
((200,), (200,), True)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from regrow._threads import small_data_threads
from regrow.errors import PlanError

__all__ = ["ROUNDS", "small_boost"]

#: Boosting rounds of the small model (each a tree of at most 15 leaves, learning rate 0.1).
ROUNDS = 60

# What LGBMRegressor(n_estimators=60, learning_rate=0.1, num_leaves=15, min_child_samples=40,
# n_jobs=1, random_state=seed) trains with, spelled for lightgbm.train (its other parameters
# are LightGBM's defaults). No metric: nothing is evaluated while it trains.
_PARAMS: dict[str, Any] = {
    "objective": "regression",
    "boosting_type": "gbdt",
    "learning_rate": 0.1,
    "num_leaves": 15,
    "min_child_samples": 40,
    "num_threads": 1,
    "verbose": -1,
    "metric": "None",
}


def small_boost(
    X: pd.DataFrame,
    target: np.ndarray,
    split: tuple[np.ndarray, np.ndarray],
    *,
    seed: int,
    weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit the small model on rows ``split[0]`` (positions) of ``X`` to ``target`` (one value
    per fitting row, optionally weighted by ``weight``); its output on the fitting rows and on
    rows ``split[1]``."""
    fit, held = split
    target = np.asarray(target, dtype=float)
    if target.shape != (len(fit),) or (weight is not None and np.shape(weight) != target.shape):
        raise PlanError(
            f"the small boosted model needs one target (and weight) per fitting row: "
            f"{len(fit)} fitting rows, got targets of shape {target.shape}"
            + (f" and weights of shape {np.shape(weight)}" if weight is not None else ""),
            hint="give the target values of the rows split[0] names, in that order",
        )
    try:
        import lightgbm
    except ImportError:
        return _sklearn(X, target, split, seed, weight)
    train = lightgbm.Dataset(X.iloc[fit], label=target, weight=weight, free_raw_data=True)
    # The held-out rows are binned by the training rows' bins, as predict reads them.
    valid = lightgbm.Dataset(X.iloc[held], label=np.zeros(len(held)), reference=train)
    booster = lightgbm.train(
        {**_PARAMS, "seed": seed}, train, num_boost_round=ROUNDS, valid_sets=[valid],
        keep_training_booster=True,
    )  # fmt: skip
    scores: list[np.ndarray] = []

    def keep(preds: np.ndarray, _data: Any) -> tuple[str, float, bool]:
        scores.append(np.array(preds, dtype=float))  # a copy: LightGBM reuses its buffer
        return "scores", 0.0, False

    booster.eval_train(feval=keep)
    booster.eval_valid(feval=keep)
    booster.free_dataset()
    on_fit, on_held = scores
    return on_fit, on_held


def _sklearn(
    X: pd.DataFrame,
    target: np.ndarray,
    split: tuple[np.ndarray, np.ndarray],
    seed: int,
    weight: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.ensemble import HistGradientBoostingRegressor

    fit, held = split
    model = HistGradientBoostingRegressor(
        max_iter=ROUNDS, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=40,
        early_stopping=False, categorical_features="from_dtype", random_state=seed,
    )  # fmt: skip
    with small_data_threads(len(X)):
        model.fit(X.iloc[fit], target, sample_weight=weight)
        return (
            np.asarray(model.predict(X.iloc[fit]), dtype=float),
            np.asarray(model.predict(X.iloc[held]), dtype=float),
        )
