"""The planner's small boosted model: its scores are what predicting with it returns."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from regrow.errors import PlanError
from regrow.plan.small_boost import small_boost


def _rows(n: int = 1200, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "kind": pd.Categorical(rng.choice(list("pqrs"), n)),
            "count": rng.integers(0, 5, n).astype(float),
        }
    )
    X.loc[rng.random(n) < 0.1, "a"] = np.nan  # missing values take the learned side
    y = np.sin(X["a"].fillna(0)) + X["b"] ** 2 + (X["kind"] == "p") + 0.3 * rng.normal(size=n)
    return X, np.asarray(y, dtype=float)


def _split(n: int, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", [0, 7])
def test_scores_are_the_predictions_of_the_same_model_fitted_as_before(
    weighted: bool, seed: int
) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    X, y = _rows()
    fit, held = _split(len(X))
    w = np.random.default_rng(3).uniform(0.1, 1.0, len(fit)) if weighted else None
    before = lightgbm.LGBMRegressor(
        n_estimators=60, learning_rate=0.1, num_leaves=15, min_child_samples=40, n_jobs=1,
        verbose=-1, random_state=seed,
    ).fit(X.iloc[fit], y[fit], sample_weight=w)  # fmt: skip
    on_fit, on_held = small_boost(X, y[fit], (fit, held), seed=seed, weight=w)
    # Read from the booster's scores, not predicted: the same numbers to the last bit.
    np.testing.assert_array_equal(on_fit, before.predict(X.iloc[fit]))
    np.testing.assert_array_equal(on_held, before.predict(X.iloc[held]))


def test_the_same_inputs_give_the_same_outputs_and_the_seed_is_used() -> None:
    X, y = _rows()
    fit, held = _split(len(X))
    first = small_boost(X, y[fit], (fit, held), seed=0)
    again = small_boost(X, y[fit], (fit, held), seed=0)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert first[1].shape == (len(held),)
    assert np.corrcoef(first[1], y[held])[0, 1] > 0.8  # it learned the target


def test_without_lightgbm_scikit_learns_model_is_fitted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # import lightgbm raises ImportError
    X, y = _rows(600)
    fit, held = _split(len(X))
    on_fit, on_held = small_boost(X, y[fit], (fit, held), seed=0)
    assert on_fit.shape == (len(fit),)
    assert on_held.shape == (len(held),)
    assert np.corrcoef(on_held, y[held])[0, 1] > 0.6  # 300 fitting rows: it learned some


def test_a_target_per_fitting_row_is_required() -> None:
    X, y = _rows(200)
    fit, held = _split(len(X))
    with pytest.raises(
        PlanError, match=r"one target \(and weight\) per fitting row: 100 fitting rows"
    ):
        small_boost(X, y, (fit, held), seed=0)
    with pytest.raises(PlanError, match=r"weights of shape \(3,\)"):
        small_boost(X, y[fit], (fit, held), seed=0, weight=np.ones(3))
