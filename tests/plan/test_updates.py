"""Updates that start from a fitted member: continue, leaf-refit; and the stacked ensemble."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression
from xgboost import XGBRegressor

from regrow.components.base import Member
from regrow.components.fitted import fit_component
from regrow.errors import PlanError
from regrow.plan.updates import apply_update, supports

from .conftest import make


def _fit(estimator: object, frame: pd.DataFrame) -> object:
    return fit_component(Member("m", estimator, inputs=["a1", "a2"]), frame, target="y",
                         upstream={}, seed=0)  # fmt: skip


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    return make(1500, 0), make(1500, 1, frozenset({"alpha"}))


def test_continue_adds_rounds_on_the_new_rows_and_leaves_the_base_alone(frames) -> None:  # type: ignore[no-untyped-def]
    old, new = frames
    for est, count in [
        (LGBMRegressor(n_estimators=30, verbose=-1, n_jobs=1), lambda m: m.booster_.num_trees()),
        (XGBRegressor(n_estimators=30, n_jobs=1), lambda m: m.get_booster().num_boosted_rounds()),
        (HistGradientBoostingRegressor(max_iter=30), lambda m: m.n_iter_),
    ]:
        base = _fit(est, old)
        before = base.estimator.predict(new[["a1", "a2"]]).copy()
        more = apply_update(base, new, target="y", upstream={}, seed=0, action="continue",
                            params={"extra": 20})  # fmt: skip
        assert count(more.estimator) == 50
        assert count(base.estimator) == 30
        np.testing.assert_allclose(base.estimator.predict(new[["a1", "a2"]]), before)
        err = lambda m: np.mean((m.predict(new[["a1", "a2"]]) - new.y) ** 2)  # noqa: E731
        assert err(more.estimator) < err(base.estimator)
        assert more.info["update"]["action"] == "continue"


def test_leaf_refit_keeps_the_trees_and_decay_rate_blends_old_and_new_leaves(frames) -> None:  # type: ignore[no-untyped-def]
    old, new = frames
    base = _fit(LGBMRegressor(n_estimators=40, verbose=-1, n_jobs=1), old)
    fresh = apply_update(base, new, target="y", upstream={}, seed=0, action="leaf-refit",
                         params={"decay_rate": 0.0})  # fmt: skip
    kept = apply_update(base, new, target="y", upstream={}, seed=0, action="leaf-refit",
                        params={"decay_rate": 0.9})  # fmt: skip
    assert fresh.estimator.booster_.num_trees() == base.estimator.booster_.num_trees()
    X = new[["a1", "a2"]]
    err = {k: np.mean((m.estimator.predict(X) - new.y) ** 2)
           for k, m in {"base": base, "fresh": fresh, "kept": kept}.items()}  # fmt: skip
    # Under concept drift, LightGBM's default decay (0.9) keeps most of the old leaf values.
    assert err["fresh"] < err["kept"] < err["base"]
    xgb = _fit(XGBRegressor(n_estimators=30, n_jobs=1), old)
    refreshed = apply_update(xgb, new, target="y", upstream={}, seed=0, action="leaf-refit",
                             params={})  # fmt: skip
    assert np.mean((refreshed.estimator.predict(X) - new.y) ** 2) < np.mean(
        (xgb.estimator.predict(X) - new.y) ** 2
    )


def test_updates_refuse_what_they_cannot_do(frames) -> None:  # type: ignore[no-untyped-def]
    old, new = frames
    linear = _fit(LinearRegression(), old)
    assert not supports(linear.estimator, "continue")
    with pytest.raises(PlanError, match="not gradient boosting"):
        apply_update(linear, new, target="y", upstream={}, seed=0, action="continue",
                     params={})  # fmt: skip
    lgbm = _fit(LGBMRegressor(n_estimators=10, verbose=-1, n_jobs=1), old)
    with pytest.raises(PlanError, match="decay_rate must be in"):
        apply_update(lgbm, new, target="y", upstream={}, seed=0, action="leaf-refit",
                     params={"decay_rate": 1.0})  # fmt: skip
    with pytest.raises(PlanError, match="extra must be an int"):
        apply_update(lgbm, new, target="y", upstream={}, seed=0, action="continue",
                     params={"extra": 0})  # fmt: skip
    with pytest.raises(PlanError, match="unknown update 'grow'"):
        apply_update(lgbm, new, target="y", upstream={}, seed=0, action="grow", params={})
    binary = old.assign(y=(old.y > 0).astype(int))
    clf = _fit(LGBMClassifier(n_estimators=10, verbose=-1, n_jobs=1), binary)
    three = new.assign(y=np.where(new.y > 1, 2, (new.y > 0).astype(int)))
    with pytest.raises(PlanError, match="classes \\[2\\] the model never saw"):
        apply_update(clf, three, target="y", upstream={}, seed=0, action="leaf-refit",
                     params={})  # fmt: skip
