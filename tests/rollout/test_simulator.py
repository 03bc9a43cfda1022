"""The stream replay: prequential accuracy, training rows, and refresh on drifting concepts."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

from regrow.errors import PlanError
from regrow.rollout.refresh import RefreshPolicy
from regrow.rollout.simulator import HardSwap, Refresh, Replay, Stale, Window, replay

ROWS = 100


def concept_a(x: np.ndarray) -> np.ndarray:
    return (x[:, 0] + x[:, 1] > 10).astype(int)


def concept_b(x: np.ndarray) -> np.ndarray:
    return (x[:, 0] < 3).astype(int)


def stream(concepts: str, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """One chunk of ``ROWS`` per letter: ``"AAB"`` is two chunks of concept A, then one of B."""
    rng = np.random.default_rng(seed)
    chunks = []
    for c in concepts:
        x = rng.uniform(0, 10, size=(ROWS, 2))
        chunks.append((x, concept_a(x) if c == "A" else concept_b(x)))
    return chunks


def tree(x: np.ndarray, y: np.ndarray) -> DecisionTreeClassifier:
    return DecisionTreeClassifier(max_depth=4, random_state=0).fit(x, y)


def test_replay_tests_every_chunk_but_the_first_and_counts_training_rows() -> None:
    chunks = stream("A" * 10)
    swap = replay(chunks, HardSwap(tree))
    assert len(swap.accuracy) == 9
    assert swap.rows == 10 * ROWS
    assert replay(chunks, Window(tree, window=3)).rows == (1 + 2 + 3 * 8) * ROWS
    assert replay(chunks, Stale(tree, max_members=2)).rows == 2 * ROWS
    # 3-fold cross-validation: each row is in two training folds, and the folds are the member
    assert replay(chunks, Refresh(tree, folds=3)).rows == 10 * 2 * ROWS


def test_replay_summarizes_mean_and_worst_chunk() -> None:
    run = Replay("x", (0.9, 0.5, 0.7), rows=3)
    assert run.mean == pytest.approx(0.7)
    assert run.worst == 0.5


def test_refresh_replays_are_deterministic_for_a_seed() -> None:
    chunks = stream("AAAABBBBAA", seed=3)

    def once() -> tuple[Replay, list[tuple[int, str, str]], dict[str, float]]:
        strategy = Refresh(tree, RefreshPolicy(), seed=7)
        return replay(chunks, strategy), strategy.events, strategy.state.weights()

    first, second = once(), once()
    assert first == second
    assert first[1]  # something happened: members entered and left


def test_refresh_follows_an_abrupt_drift_that_a_stale_ensemble_misses() -> None:
    chunks = stream("A" * 4 + "B" * 8, seed=1)
    ours = replay(chunks, Refresh(tree, seed=1))
    stale = replay(chunks, Stale(tree))
    assert ours.mean > stale.mean + 0.15
    assert min(ours.accuracy[-5:]) > 0.9  # a few chunks after the drift it is back on track


def test_a_recurring_concept_brings_its_pooled_members_back() -> None:
    strategy = Refresh(tree, RefreshPolicy(max_members=3), seed=0)
    replay(stream("AAAA" + "BBBBBB" + "AA", seed=2), strategy)
    a_members = {f"m{i}" for i in range(4)}
    back = {(chunk, member) for chunk, kind, member in strategy.events if kind == "readmitted"}
    assert any(chunk == 10 and member in a_members for chunk, member in back), strategy.events
    assert len(strategy.state.members) <= 3


def test_predicting_before_any_chunk_was_learned_says_so() -> None:
    for strategy in (HardSwap(tree), Stale(tree), Refresh(tree)):
        with pytest.raises(PlanError, match="learn a chunk"):
            strategy.predict(np.zeros((2, 2)))


def test_refresh_never_holds_more_than_max_members() -> None:
    strategy = Refresh(tree, RefreshPolicy(max_members=2), seed=0)
    for x, y in stream("AABBAB"):
        strategy.learn(x, y)
        assert len(strategy.state.members) <= 2
        assert sum(strategy.state.weights().values()) == pytest.approx(1.0)
