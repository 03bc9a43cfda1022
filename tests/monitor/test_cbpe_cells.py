"""Multiclass CBPE's confusion cells: NannyML's estimator, computed independently here.

A cell ``[t, p]`` is the mean over the window's rows of the calibrated probability of class
``t`` where the model predicts ``p`` (its argmax); the calibration is one-vs-rest isotonic per
class, rows renormalised. With every class calibrated this is NannyML's estimate exactly, so
on the same rows the two tools' errors are equal (``benchmarks/monitoring_peers.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from regrow.monitor.cbpe import CBPE

CLASSES = ["cat", "cow", "dog"]
COST = [[2.0, -1.0, -1.0], [-1.0, 3.0, 0.0], [-4.0, 0.0, 5.0]]  # true x predicted


def _overconfident(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores sharper than the truth (probabilities squared, renormalised), and labels."""
    p = rng.dirichlet((1.0, 1.5, 2.0), n)
    y = np.minimum((rng.uniform(size=n)[:, None] > p.cumsum(axis=1)).sum(axis=1), 2)
    return p**2 / (p**2).sum(axis=1, keepdims=True), y


def _cells(q: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``C[t, p]``: the mean of ``q[:, t]`` over rows predicted ``p`` (shares of all rows)."""
    pred = s.argmax(axis=1)
    return np.array([[np.mean(q[:, t] * (pred == p)) for p in range(3)] for t in range(3)])


def test_cells_are_the_isotonic_probabilities_of_each_predicted_class() -> None:
    rng = np.random.default_rng(31)
    s_ref, y_ref = _overconfident(rng, 6000)
    s_win, _ = _overconfident(rng, 2000)
    cbpe = CBPE(metrics=("confusion_matrix", "accuracy", "business_value"), cost_matrix=COST)
    estimates = cbpe.fit(s_ref, np.array(CLASSES)[y_ref]).estimate(s_win).estimates

    isotonic = [
        IsotonicRegression(out_of_bounds="clip").fit(s_ref[:, c], y_ref == c) for c in range(3)
    ]
    q = np.column_stack([iso.predict(s_win[:, c]) for c, iso in enumerate(isotonic)])
    expected = _cells(q / q.sum(axis=1, keepdims=True), s_win)
    got = np.array(
        [[estimates[f"confusion_matrix[{t},{p}]"].value for p in CLASSES] for t in CLASSES]
    )
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert got.sum() == pytest.approx(1.0)
    assert estimates["accuracy"].value == pytest.approx(np.trace(expected))
    assert estimates["business_value"].value == pytest.approx(float((expected * COST).sum()))
    raw = _cells(s_win, s_win)  # the over-confident scores promise more than they hold
    assert np.trace(raw) > np.trace(expected) + 0.03


def test_uncalibrated_cells_use_the_scores_as_they_are() -> None:
    rng = np.random.default_rng(32)
    s_ref, y_ref = _overconfident(rng, 3000)
    s_win, _ = _overconfident(rng, 1000)
    cbpe = CBPE(metrics=("confusion_matrix",), calibration="never").fit(s_ref, y_ref)
    estimates = cbpe.estimate(s_win).estimates
    got = np.array(
        [[estimates[f"confusion_matrix[{t},{p}]"].value for p in range(3)] for t in range(3)]
    )
    np.testing.assert_allclose(got, _cells(s_win, s_win), atol=1e-12)
