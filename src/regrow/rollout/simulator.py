"""Replay a labelled stream in chunks through a refresh strategy, prequentially.

Each chunk is first **tested** (the strategy predicts it; its accuracy is recorded) and then
**learned** (the strategy may fit models on it; the rows it fits on are counted). The first
chunk is only learned. Four strategies, each a small class with ``predict`` and ``learn``:

==================  ===============================================================================
:class:`Stale`      one member per chunk on the first ``max_members`` chunks, equal weights, frozen
:class:`HardSwap`   a single model of the newest chunk replaces the last one
:class:`Window`     a single model refitted on the last ``window`` chunks, every chunk
:class:`Refresh`    regrow's refresh (:mod:`regrow.rollout.refresh`): each chunk a newcomer,
                    weighed at entry by k-fold cross-validation; the member *is* its fold models
                    (a cross-fitted bag), so the entry weight costs no extra fit; Hedge + fixed
                    share on each chunk's losses; retirement to a pool and re-admission from it
==================  ===============================================================================

A model is anything with scikit-learn's ``classes_`` and ``predict_proba``; a learner is a
callable ``(x, y) -> model``. Members blend by a weighted mean of class probabilities.

>>> import numpy as np
>>> class Prior:  # predicts the class frequencies it was fitted on
...     def __init__(self, y):
...         self.classes_, counts = np.unique(y, return_counts=True)
...         self.p = counts / counts.sum()
...     def predict_proba(self, x): return np.tile(self.p, (len(x), 1))
>>> chunks = [(np.zeros((4, 1)), np.array([0, 0, 0, 1]))] * 3
>>> run = replay(chunks, HardSwap(lambda x, y: Prior(y)))
>>> run.accuracy, run.rows
((0.75, 0.75), 12)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from regrow.errors import PlanError
from regrow.rollout.refresh import (
    EnsembleState,
    Entrant,
    Member,
    RefreshPolicy,
    cross_val_loss,
    refresh,
)

__all__ = ["HardSwap", "Refresh", "Replay", "Stale", "Strategy", "Window", "replay"]

Chunk = tuple[np.ndarray, np.ndarray]


class Model(Protocol):
    """A fitted classifier, scikit-learn style."""

    classes_: Any

    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...


Learner = Callable[[np.ndarray, np.ndarray], Model]


class Strategy(Protocol):
    """How a deployed model (or ensemble) is kept up to date as labelled chunks arrive."""

    name: str

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Labels for the rows of ``x``."""
        ...

    def learn(self, x: np.ndarray, y: np.ndarray) -> int:
        """Take a labelled chunk; return how many rows models were fitted on."""
        ...


@dataclass(frozen=True)
class Replay:
    """Per-chunk prequential accuracy (every chunk but the first) and training rows."""

    strategy: str
    accuracy: tuple[float, ...]
    rows: int

    @property
    def mean(self) -> float:
        """Prequential accuracy over the tested chunks."""
        return float(np.mean(self.accuracy))

    @property
    def worst(self) -> float:
        """The worst chunk's accuracy."""
        return float(np.min(self.accuracy))


class _Bag:
    """Models that predict together: the mean of their (aligned) class probabilities."""

    def __init__(self, models: Sequence[Model]) -> None:
        self.models = list(models)

    def proba(self, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
        out = np.zeros((len(x), len(classes)))
        for model in self.models:
            p = model.predict_proba(x)
            cols = np.searchsorted(classes, np.asarray(model.classes_))
            out[:, cols] += p
        return out / len(self.models)

    def predict(self, x: np.ndarray) -> np.ndarray:
        classes = np.unique(np.concatenate([np.asarray(m.classes_) for m in self.models]))
        return np.asarray(classes[self.proba(x, classes).argmax(axis=1)])


def _blend(bags: Sequence[_Bag], weights: Sequence[float], x: np.ndarray) -> np.ndarray:
    if not bags:
        raise PlanError(
            "nothing to predict with: no model was fitted yet",
            hint="learn a chunk first (replay learns the first chunk before it tests any)",
        )
    classes = np.unique(np.concatenate([np.asarray(m.classes_) for b in bags for m in b.models]))
    total = sum(w * b.proba(x, classes) for b, w in zip(bags, weights, strict=True))
    return np.asarray(classes[np.asarray(total).argmax(axis=1)])


class Stale:
    """One member per chunk on the first ``max_members`` chunks, equal weights, then frozen."""

    name = "stale"

    def __init__(self, learner: Learner, max_members: int = 6) -> None:
        self.learner, self.max_members = learner, max_members
        self._bags: list[_Bag] = []

    def predict(self, x: np.ndarray) -> np.ndarray:
        return _blend(self._bags, [1.0] * len(self._bags), x)

    def learn(self, x: np.ndarray, y: np.ndarray) -> int:
        if len(self._bags) >= self.max_members:
            return 0
        self._bags.append(_Bag([self.learner(x, y)]))
        return len(y)


class HardSwap:
    """A model of the newest chunk replaces the deployed one."""

    name = "hard swap"

    def __init__(self, learner: Learner) -> None:
        self.learner = learner
        self._bag: _Bag | None = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        return _blend([self._bag] if self._bag is not None else [], [1.0], x)

    def learn(self, x: np.ndarray, y: np.ndarray) -> int:
        self._bag = _Bag([self.learner(x, y)])
        return len(y)


class Window(HardSwap):
    """A model refitted from scratch on the last ``window`` chunks, every chunk."""

    name = "window retrain"

    def __init__(self, learner: Learner, window: int = 6) -> None:
        super().__init__(learner)
        self.window = window
        self._recent: list[Chunk] = []

    def learn(self, x: np.ndarray, y: np.ndarray) -> int:
        self._recent = [*self._recent, (x, y)][-self.window :]
        xs = np.concatenate([c[0] for c in self._recent])
        ys = np.concatenate([c[1] for c in self._recent])
        return super().learn(xs, ys)


class Refresh:
    """regrow's refresh: a cross-validated newcomer per chunk, Hedge + fixed share, a pool.

    ``events`` keeps every membership change with the chunk it happened on.
    """

    name = "regrow refresh"

    def __init__(
        self,
        learner: Learner,
        policy: RefreshPolicy | None = None,
        *,
        folds: int = 3,
        seed: int = 0,
    ) -> None:
        self.learner, self.folds, self.seed = learner, folds, seed
        self.policy = policy if policy is not None else RefreshPolicy()
        self.state = EnsembleState(())
        self.events: list[tuple[int, str, str]] = []
        self._models: dict[str, _Bag] = {}
        self._chunk = 0

    def predict(self, x: np.ndarray) -> np.ndarray:
        names = [m.name for m in self.state.members]
        return _blend([self._models[n] for n in names], [m.weight for m in self.state.members], x)

    def learn(self, x: np.ndarray, y: np.ndarray) -> int:
        name = f"m{self._chunk}"
        seed = self.seed * 1_000_003 + self._chunk
        cv, bags = cross_val_loss(self._fit, x, y, folds=self.folds, seed=seed)
        rows = sum(len(y) - len(part) for part in np.array_split(np.arange(len(y)), self.folds))
        self._models[name] = _Bag([m for bag in bags for m in bag.models])
        if not self.state.members:
            self.state = EnsembleState((Member(name, 1.0, age=self.policy.probation),))
        else:
            loss = {m.name: self._loss(m.name, x, y) for m in self.state.members}
            pooled = {n: self._loss(n, x, y) for n in self.state.pool}
            out = refresh(
                self.state,
                loss,
                self.policy,
                newcomer=Entrant(name, cv),
                pool_losses=pooled,
            )
            self.state = out.state
            self.events += [(self._chunk, e.kind, e.member) for e in out.events]
            keep = {m.name for m in self.state.members} | set(self.state.pool)
            self._models = {n: b for n, b in self._models.items() if n in keep}
        self._chunk += 1
        return rows

    def _fit(self, x: np.ndarray, y: np.ndarray) -> _Bag:
        return _Bag([self.learner(x, y)])

    def _loss(self, name: str, x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(self._models[name].predict(x) != y))


def replay(chunks: Sequence[Chunk], strategy: Strategy) -> Replay:
    """Test then train on each chunk in turn; the first chunk is only learned."""
    accuracy: list[float] = []
    rows = 0
    for i, (x, y) in enumerate(chunks):
        if i:
            accuracy.append(float(np.mean(strategy.predict(x) == y)))
        rows += strategy.learn(x, y)
    return Replay(strategy.name, tuple(accuracy), rows)
