"""The weights a reweighted mean ensemble is given: the minimum of its loss on the simplex."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from regrow.plan.gains import mean_weights, row_losses


def _members(seed: int, rows: int, k: int, m: int) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(rows, k)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    outs = []
    for _ in range(m):
        noisy = logits * rng.uniform(0, 1.5) + rng.normal(size=(rows, k)) * rng.uniform(0.2, 2)
        outs.append(np.exp(noisy) / np.exp(noisy).sum(1, keepdims=True))
    return outs, y


@pytest.mark.parametrize("seed", range(6))
def test_no_weights_on_a_fine_grid_of_the_simplex_do_better(seed: int) -> None:
    outs, y = _members(seed, 2000, k=2 + seed % 2, m=3)
    classes = list(range(2 + seed % 2))
    stacked = np.stack(outs)

    def loss(w: np.ndarray) -> float:
        return float(row_losses(np.tensordot(w, stacked, axes=1), y, classes).mean())

    w = mean_weights(outs, y, classes)
    assert w.min() >= 0
    assert w.sum() == pytest.approx(1.0)
    steps = np.linspace(0, 1, 41)
    grid = [np.array([a, b, 1 - a - b]) for a, b in itertools.product(steps, steps) if a + b <= 1]
    assert loss(w) <= min(loss(g) for g in grid) + 1e-9


def test_rows_of_a_class_no_member_knows_do_not_move_the_weights() -> None:
    outs, y = _members(0, 1000, k=2, m=2)
    w = mean_weights(outs, y, [0, 1])
    unseen = mean_weights(
        [np.vstack([o, [[0.5, 0.5]] * 10]) for o in outs], np.r_[y, [7] * 10], [0, 1]
    )
    assert unseen == pytest.approx(w)


def test_a_gain_whose_interval_lies_below_zero_is_called_worse() -> None:
    from regrow.plan.gains import Gain, verdict

    ok, why = verdict(Gain(-0.2424, -0.4604, -0.02443, 500), threshold=0.1, share=0.1)
    assert not ok
    assert why.endswith("it would make things worse (its interval lies below 0)")
    ok, why = verdict(Gain(0.01, -0.02, 0.04, 500), threshold=0.1, share=0.1)
    assert not ok
    assert why.endswith("its interval reaches 0")
