"""What the diagnostics measure: gains on held-out rows, the moves they judge, the diagnosis.

A :class:`Gain` is a loss reduction with a normal interval over paired row differences;
a :class:`Move` is one step the search considered (update a member, add a refitted copy,
retire a member, relearn the ensemble) with its gain and verdict; a :class:`Diagnosis` is
what the probes found (:mod:`regrow.plan.diagnostics`). Losses per row are squared error
(values) or log loss (probability matrices): :func:`row_losses`.

>>> import numpy as np
>>> g = Gain.of(np.array([1.0, 2.0, 3.0, 2.0]), np.array([0.5, 1.5, 2.0, 1.0]), 0.95)
>>> round(g.value, 3), g.rows
(0.75, 4)
>>> row_losses(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 1]), [0, 1]).round(3).tolist()
[0.105, 0.223]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

__all__ = ["Diagnosis", "Gain", "Move", "mean_weights", "row_losses", "verdict"]

_EPS = 1e-12


@dataclass(frozen=True)
class Gain:
    """A loss reduction on held-out rows, with its interval (positive is better)."""

    value: float
    low: float
    high: float
    rows: int

    @classmethod
    def of(cls, before: np.ndarray, after: np.ndarray, confidence: float) -> Gain:
        """The mean paired difference ``before - after`` with a normal interval."""
        diff = np.asarray(before, dtype=float) - np.asarray(after, dtype=float)
        mean = float(diff.mean())
        se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("inf")
        z = NormalDist().inv_cdf(0.5 + confidence / 2)
        return cls(mean, mean - z * se, mean + z * se, len(diff))

    @property
    def head(self) -> str:
        """``gain V [LOW, HIGH] on N held-out rows``."""
        return (
            f"gain {self.value:.4g} [{self.low:.4g}, {self.high:.4g}] on {self.rows} held-out rows"
        )

    def clears(self, need: float) -> bool:
        """Whether the gain is significant (its interval above 0) and at least ``need``.

        >>> Gain(0.05, 0.02, 0.08, 800).clears(0.03), Gain(0.05, -0.01, 0.11, 800).clears(0.03)
        (True, False)
        """
        return self.low > 0 and self.value >= need

    def worth(self, need: float, basis: str) -> str:
        """Why the gain is worth an update of ``need`` (a share of ``basis``) or not: the
        clause the plan's text puts after :attr:`head`.

        >>> Gain(-0.02, -0.03, -0.01, 800).worth(0.03, "10% of the loss")
        'it would make things worse (its interval lies below 0)'
        """
        if self.high < 0:
            return "it would make things worse (its interval lies below 0)"
        if not self.low > 0:
            return "its interval reaches 0"
        if not self.value >= need:
            return f"below the {need:.4g} worth an update ({basis})"
        return f"significant, and above the {need:.4g} worth an update ({basis})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "rows": self.rows,
        }


@dataclass(frozen=True)
class Move:
    """One step of the search: what changes, its marginal gain, and the loss after it."""

    kind: str  # "update", "add-member", "retire-member", "reweight"
    component: str | None
    update: str  # the update the probe used: "refit", "continue", "leaf-refit", ""
    gain: Gain
    loss_after: float
    accepted: bool
    why: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "kind": self.kind,
            "component": self.component,
            "update": self.update,
            "gain": self.gain.to_dict(),
            "loss_after": self.loss_after,
            "accepted": self.accepted,
            "why": self.why,
        }


@dataclass(frozen=True)
class Diagnosis:
    """What the probes found: the moves chosen, every move considered, and what it cost."""

    loss: str
    labelled_rows: int
    train_rows: int
    test_rows: int
    loss_before: float
    loss_after: float
    chosen: tuple[Move, ...]
    considered: tuple[Move, ...]
    member_loss: dict[str, dict[str, float]] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    probe: str = "refit"
    weights: dict[str, float] | None = None  # a reweighted mean ensemble's new weights
    refitted: tuple[str, ...] = ()  # members probed by refitting them as they are

    @property
    def updated(self) -> list[str]:
        """Members the chosen moves refit (in place or as an added copy)."""
        return [m.component for m in self.chosen if m.component and m.kind != "retire-member"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "loss": self.loss,
            "labelled_rows": self.labelled_rows,
            "train_rows": self.train_rows,
            "test_rows": self.test_rows,
            "loss_before": self.loss_before,
            "loss_after": self.loss_after,
            "chosen": [m.to_dict() for m in self.chosen],
            "considered": [m.to_dict() for m in self.considered],
            "member_loss": self.member_loss,
            "cpu_seconds": self.cpu_seconds,
            "weights": self.weights,
            "probe": self.probe,
            "refitted": list(self.refitted),
        }


def verdict(gain: Gain, threshold: float, share: float) -> tuple[bool, str]:
    """Whether a gain is significant and worth it, and the sentence that says so."""
    return gain.clears(
        threshold
    ), f"{gain.head}: {gain.worth(threshold, f'{share:.0%} of the loss')}"


def row_losses(output: np.ndarray, y: np.ndarray, classes: Sequence[Any] | None) -> np.ndarray:
    """Per-row loss: squared error (values) or log loss (probability matrices)."""
    if classes is None:
        return np.asarray((np.asarray(y, dtype=float) - output) ** 2, dtype=float)
    import pandas as pd

    cols = pd.Index(list(classes)).get_indexer(np.asarray(y))  # -1: a class never seen
    p = np.where(cols >= 0, output[np.arange(len(y)), np.clip(cols, 0, None)], 0.0)
    return np.asarray(-np.log(np.clip(p, _EPS, 1.0)), dtype=float)


def mean_weights(
    outputs: Sequence[np.ndarray], y: np.ndarray, classes: Sequence[Any] | None
) -> np.ndarray:
    """Non-negative weights of a weighted mean that minimise the loss on ``y``.

    Values: non-negative least squares. Probabilities: each row's probability of its class
    is linear in the weights, so the mean log loss ``-mean_i log(P[i] @ w)`` is convex in
    them; over ``w >= 0`` the minimum of that loss plus ``sum(w)`` has ``sum(w) = 1`` and is
    the minimum on the simplex, found by L-BFGS-B from the exact gradient.

    >>> import numpy as np
    >>> good = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    >>> flat = np.full((3, 2), 0.5)
    >>> mean_weights([good, flat], np.array([1, 0, 1]), [0, 1]).round(3).tolist()
    [1.0, 0.0]
    """
    import pandas as pd  # here: a stored plan's gains are read without pandas and scipy
    from scipy.optimize import minimize, nnls

    if classes is None:
        A = np.column_stack(outputs)
        w, _ = nnls(A, np.asarray(y, dtype=float))
        return w if w.sum() > 0 else np.ones(len(outputs))
    cols = pd.Index(list(classes)).get_indexer(np.asarray(y))
    rows = np.flatnonzero(cols >= 0)  # a class never seen: the same loss whatever the weights
    P = np.column_stack([np.asarray(o)[rows, cols[rows]] for o in outputs]).astype(float)
    P = P[P.sum(axis=1) > 0]
    even = np.full(len(outputs), 1.0 / len(outputs))
    if len(P) == 0:
        return even

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        mix = np.maximum(P @ w, _EPS)
        return float(-np.log(mix).mean() + w.sum()), 1.0 - (P / mix[:, None]).mean(axis=0)

    res = minimize(loss, even, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * len(even))
    w = np.maximum(res.x, 0.0)
    return np.asarray(w / w.sum()) if w.sum() > 0 else even
