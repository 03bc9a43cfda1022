"""The shared paired bootstrap: exact weighted metrics, Poisson weights, seeded chunks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import poisson
from sklearn.metrics import log_loss, roc_auc_score

from regrow.evaluate.metrics import METRICS, paired_bootstrap, resampled_values
from regrow.evaluate.resample import _TABLE, RankedAUC, Resamples, percentile_interval


def scores(n: int, seed: int, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0.01, 0.99)
    return y, np.round(s, 1) if ties else s


@pytest.mark.parametrize("ties", [False, True])
def test_ranked_auc_is_sklearns_weighted_auc_on_every_resample(ties: bool) -> None:
    y, s = scores(1500, 1, ties)
    rows = np.flatnonzero(np.random.default_rng(2).random(len(y)) < 0.4)  # a slice
    resamples = Resamples(len(y), 40, seed=3)
    values = resamples.map(RankedAUC(s, y == 1, rows).values)
    weights = np.vstack(list(resamples))
    for b in range(40):
        expected = roc_auc_score(y[rows], s[rows], sample_weight=weights[b, rows])
        assert values[b] == pytest.approx(expected, abs=1e-12)


def test_mean_metrics_on_resamples_are_weighted_means() -> None:
    y, s = scores(800, 4)
    proba = np.column_stack([1 - s, s])
    resamples = Resamples(len(y), 25, seed=5)
    values = resampled_values(METRICS["log_loss"], y, [proba], resamples, classes=[0, 1])
    weights = np.vstack(list(resamples))
    for b in range(25):
        assert values[0, b, 0] == pytest.approx(log_loss(y, proba, sample_weight=weights[b]))


def test_weights_are_poisson_one_to_within_the_tables_resolution() -> None:
    counts = np.bincount(_TABLE, minlength=16) / 65536
    assert np.abs(counts - poisson.pmf(np.arange(16), 1.0)).max() <= 2**-16
    draws = np.vstack(list(Resamples(10_000, 20, seed=0)))
    assert draws.mean() == pytest.approx(1.0, abs=0.01)
    assert draws.var() == pytest.approx(1.0, abs=0.02)


def test_resamples_depend_on_the_seed_only() -> None:
    a, b, c = (np.vstack(list(Resamples(3000, 700, seed=s))) for s in (1, 1, 2))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    threaded = Resamples(3000, 700, seed=1).map(lambda w: w.sum(axis=1, keepdims=True))
    assert np.array_equal(threaded[:, 0], a.sum(axis=1))


def test_the_poisson_interval_matches_a_multinomial_bootstrap() -> None:
    y, good = scores(2000, 6)
    rng = np.random.default_rng(7)
    worse = np.clip(good + rng.normal(0, 0.15, len(good)), 0.01, 0.99)
    low, high = paired_bootstrap(METRICS["roc_auc"], y, good, worse, n_boot=1000, seed=0)
    auc = METRICS["roc_auc"].fn
    naive = []
    for _ in range(1000):  # the textbook way: draw rows with replacement, rank each anew
        idx = rng.integers(0, len(y), len(y))
        naive.append(auc(y[idx], good[idx], [0, 1]) - auc(y[idx], worse[idx], [0, 1]))
    n_low, n_high = np.quantile(naive, [0.025, 0.975])
    width = n_high - n_low
    assert abs(low - n_low) < 0.2 * width
    assert abs(high - n_high) < 0.2 * width


def test_an_interval_needs_two_finite_draws() -> None:
    assert all(math.isnan(v) for v in percentile_interval(np.array([np.nan, 1.0]), 0.95))
    assert percentile_interval(np.array([1.0, 2.0, 3.0]), 0.5) == (1.5, 2.5)
