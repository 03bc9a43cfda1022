"""Updates that start from a fitted component instead of fitting it from scratch.

A run task calls :func:`apply_update` when a plan's action continues, leaf-refits or fine-tunes
a member. Each update returns a **new** fitted component; the base version is never changed.

- ``continue``: add ``extra`` boosting rounds fitted on the new rows, on top of the existing
  trees (LightGBM ``init_model``, XGBoost ``xgb_model``, scikit-learn's ``warm_start`` for
  ``HistGradientBoosting*`` and ``GradientBoosting*``).
- ``leaf-refit``: keep every tree's structure and re-estimate its leaf values on the new rows
  (LightGBM ``Booster.refit``, XGBoost's ``refresh`` updater). LightGBM blends old and new
  leaf values, ``decay_rate * old + (1 - decay_rate) * new``; its own default of 0.9 keeps 90%
  of the old values, which is wrong under concept drift, so regrow's default is 0.0 (XGBoost's
  refresh replaces leaf values outright and takes no decay).
- ``finetune``: train chosen blocks of a torch member (:mod:`regrow.plan.finetune`).

>>> import numpy as np, pandas as pd
>>> from sklearn.ensemble import HistGradientBoostingRegressor
>>> from regrow.components.base import Member
>>> from regrow.components.fitted import fit_component
>>> rng = np.random.default_rng(0)
>>> frame = pd.DataFrame({"x": rng.normal(size=300)})
>>> frame["y"] = frame["x"] * 2
>>> member = Member("m", HistGradientBoostingRegressor(max_iter=20), inputs=["x"])
>>> base = fit_component(member, frame, target="y", upstream={}, seed=0)
>>> more = apply_update(base, frame, target="y", upstream={}, seed=0,
...                     action="continue", params={"extra": 10})
>>> base.estimator.n_iter_, more.estimator.n_iter_
(20, 30)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from regrow.components.fitted import FittedComponent, feature_frame
from regrow.errors import ComponentError, PlanError
from regrow.recipes.base import estimator_family

__all__ = ["UPDATES", "apply_update", "supports"]

UpdateFn = Callable[
    [FittedComponent, pd.DataFrame, np.ndarray, Mapping[str, Any], int, pd.DataFrame | None],
    Any,
]


_family = estimator_family


def supports(estimator: Any, action: str) -> bool:
    """Whether ``action`` can update a fitted ``estimator`` of this kind."""
    family = _family(estimator)
    return {
        "continue": family in ("lightgbm", "xgboost", "sklearn-hgb", "sklearn-gb"),
        "leaf-refit": family in ("lightgbm", "xgboost"),
        "finetune": family == "torch",
    }.get(action, False)


def _int_param(params: Mapping[str, Any], key: str, default: int, action: str) -> int:
    value = params.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise PlanError(
            f"{action}: {key} must be an int >= 1 (got {value!r})", hint=f"e.g. {key}={default}"
        )
    return value


def _continue(
    fitted: FittedComponent,
    X: pd.DataFrame,
    y: np.ndarray,
    params: Mapping[str, Any],
    seed: int,
    _reference: pd.DataFrame | None,
) -> Any:
    old = fitted.estimator
    extra = _int_param(params, "extra", 50, "continue")
    family = _family(old)
    if family == "lightgbm":
        new = copy.deepcopy(old)
        new.set_params(n_estimators=extra, random_state=seed)
        new.fit(X, y, init_model=old.booster_)
        return new
    if family == "xgboost":
        new = copy.deepcopy(old)
        new.set_params(n_estimators=extra, random_state=seed)
        new.fit(X, y, xgb_model=old.get_booster())
        return new
    if family in ("sklearn-hgb", "sklearn-gb"):
        new = copy.deepcopy(old)
        key = "max_iter" if family == "sklearn-hgb" else "n_estimators"
        done = int(old.n_iter_ if family == "sklearn-hgb" else old.n_estimators_)
        # Early stopping would measure the new rows against the old validation split.
        stop = {"early_stopping": False} if family == "sklearn-hgb" else {"n_iter_no_change": None}
        new.set_params(warm_start=True, **{key: done + extra}, **stop)
        new.fit(X, y)
        return new
    raise PlanError(
        f"cannot continue {fitted.spec.name!r}: {type(old).__name__} is not gradient boosting",
        hint="use refit for it, or continue a LightGBM, XGBoost or HistGradientBoosting member",
    )


def _encoded(old: Any, y: np.ndarray) -> np.ndarray:
    classes = getattr(old, "classes_", None)
    if classes is None:
        return y
    idx = np.searchsorted(np.asarray(classes), y)
    idx = np.clip(idx, 0, len(classes) - 1)
    unseen = np.asarray(classes)[idx] != y
    if unseen.any():
        raise PlanError(
            f"leaf-refit: the new rows hold classes {sorted(set(y[unseen].tolist()))} the "
            "model never saw",
            hint="refit the member instead: a leaf refit keeps the model's classes",
        )
    return idx


def _leaf_refit(
    fitted: FittedComponent,
    X: pd.DataFrame,
    y: np.ndarray,
    params: Mapping[str, Any],
    _seed: int,
    _reference: pd.DataFrame | None,
) -> Any:
    old = fitted.estimator
    family = _family(old)
    decay = params.get("decay_rate", 0.0)
    if not isinstance(decay, int | float) or isinstance(decay, bool) or not 0 <= decay < 1:
        raise PlanError(
            f"leaf-refit: decay_rate must be in [0, 1) (got {decay!r})",
            hint="0 replaces leaf values with the new rows' (concept drift); 0.9 is LightGBM's",
        )
    new = copy.deepcopy(old)
    if family == "lightgbm":
        booster = old.booster_.refit(X, _encoded(old, y), decay_rate=float(decay))
        new._Booster = booster
        return new
    if family == "xgboost":
        import xgboost as xgb

        if decay:
            raise PlanError(
                f"leaf-refit: XGBoost's refresh takes no decay_rate (got {decay!r})",
                hint="use decay_rate=0 for XGBoost members",
            )
        booster = old.get_booster()
        dtrain = xgb.DMatrix(X, label=_encoded(old, y))
        rounds = booster.num_boosted_rounds()
        refreshed = xgb.train(
            {
                **_xgb_params(old),
                "process_type": "update",
                # it warns that the updater overrides tree_method: that is the point
                "verbosity": 0,
                "updater": "refresh",
                "refresh_leaf": True,
            },
            dtrain,
            num_boost_round=rounds,
            xgb_model=booster,
        )
        new._Booster = refreshed
        return new
    raise PlanError(
        f"cannot leaf-refit {fitted.spec.name!r}: {type(old).__name__} is not LightGBM or XGBoost",
        hint="use refit or continue for it",
    )


def _xgb_params(model: Any) -> dict[str, Any]:
    params = {k: v for k, v in model.get_xgb_params().items() if v is not None}
    for key in ("n_estimators", "tree_method"):  # refresh names its own updater
        params.pop(key, None)
    return params


def _finetune(
    fitted: FittedComponent,
    X: pd.DataFrame,
    y: np.ndarray,
    params: Mapping[str, Any],
    seed: int,
    reference: pd.DataFrame | None,
) -> Any:
    from regrow.plan.finetune import finetune_fitted

    ref: tuple[pd.DataFrame, np.ndarray] | None = None
    if reference is not None:
        ref = (reference.drop(columns=["__target__"]), reference["__target__"].to_numpy())
    return finetune_fitted(fitted.estimator, X, y, params=params, reference=ref, seed=seed)


UPDATES: dict[str, UpdateFn] = {
    "continue": _continue,
    "leaf-refit": _leaf_refit,
    "finetune": _finetune,
}


def apply_update(
    base: FittedComponent,
    frame: pd.DataFrame,
    *,
    target: str,
    upstream: Mapping[str, FittedComponent],
    seed: int,
    action: str,
    params: Mapping[str, Any],
    reference: pd.DataFrame | None = None,
) -> FittedComponent:
    """A new fitted component: ``base`` updated by ``action`` on ``frame``'s rows."""
    fn = UPDATES.get(action)
    if fn is None:
        raise PlanError(f"unknown update {action!r}", hint=f"use one of {sorted(UPDATES)}")
    spec = base.spec
    X = feature_frame(spec, frame, upstream)
    y = frame[target].to_numpy()
    ref = None
    if reference is not None:
        ref = feature_frame(spec, reference, upstream).assign(__target__=reference[target].values)
    try:
        result = fn(base, X, y, params, seed, ref)
    except PlanError:
        raise
    except Exception as exc:
        raise ComponentError(
            f"{action} of {spec.name!r} failed: {type(exc).__name__}: {exc}",
            hint="check the action's parameters, or refit the component instead",
        ) from exc
    extra: dict[str, Any] = {}
    if isinstance(result, tuple):
        result, extra = result
    info = {
        **base.info,
        "n_rows": len(frame),
        "update": {"action": action, "params": dict(params), **extra},
    }
    return FittedComponent(spec, result, info)
