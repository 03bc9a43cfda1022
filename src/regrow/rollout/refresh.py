"""Ensemble refresh: the members' blend weights follow their losses, window after window.

One evaluation window runs :func:`refresh` on an :class:`EnsembleState`; in order it

1. **retires** members whose weight stayed under ``retire_weight`` (or whose loss stayed over
   ``retire_loss``) for ``retire_after`` windows in a row; they go to a bounded *pool*;
2. applies **Hedge**, ``w_i <- w_i * exp(-eta * loss_i)``, each loss in [0, 1] on the window;
3. lets **entrants** in: pooled members whose loss on the window beats every current member's
   (a recurring concept brings its model back) and a newcomer trained on the newest chunk. An
   entrant gets the share Hedge would give it with a prior of ``1 / (n + 1)``
   (:func:`entry_share`); a newcomer's loss is its k-fold cross-validated loss on that chunk
   (:func:`cross_val_loss`), as Accuracy Weighted Ensemble weighs a new member;
4. keeps at most ``max_members``, dropping the lightest to the pool;
5. caps the total weight of **experimental** members (scored on fewer than ``probation``
   windows since they entered; a newcomer has been scored on none) at ``reserved``
   (:func:`cap_reserved`), then mixes **fixed share** ``alpha`` uniformly (:func:`fixed_share`):
   every weight ends at least ``alpha / n``, so a member that was bad for a while can win its
   weight back in a few windows (plain Hedge, like River's EWARegressor, lets it decay to zero
   for ever), and the experimental total still ends at most ``reserved``.

Everything here is pure: records in, records out, and a tuple of :class:`RefreshEvent` to audit.
``state.weights()`` is what :class:`regrow.Ensemble` takes as ``weights=`` (method ``"mean"`` or
``"vote"``); :mod:`regrow.rollout.simulator` replays a stream through it.

>>> policy = RefreshPolicy(eta=8.0, alpha=0.05)
>>> state = EnsembleState((Member("a", 0.5, age=3), Member("b", 0.5, age=3)))
>>> out = refresh(state, {"a": 0.1, "b": 0.4}, policy)
>>> {m.name: round(m.weight, 3) for m in out.state.members}
{'a': 0.896, 'b': 0.104}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, TypeVar

import numpy as np

from regrow.errors import PlanError, PolicyError

__all__ = [
    "EnsembleState",
    "Entrant",
    "Member",
    "RefreshEvent",
    "RefreshPolicy",
    "Refreshed",
    "cap_reserved",
    "cross_val_loss",
    "entry_share",
    "fixed_share",
    "hedge",
    "refresh",
]


@dataclass(frozen=True)
class RefreshPolicy:
    """How an ensemble's weights move (defaults: the benchmark's, fixed on its development seed).

    ``eta`` is Hedge's learning rate on losses in [0, 1]; ``alpha`` the fixed share;
    ``reserved`` the most total weight experimental members (scored on fewer than
    ``probation`` windows since they entered) may hold; a member whose weight stays under
    ``retire_weight`` -- or whose loss stays over ``retire_loss`` -- for ``retire_after``
    windows is retired to a pool of at most ``pool_size``; a pooled member comes back when
    its loss beats the best member's by ``readmit_margin``.
    """

    eta: float = 8.0
    alpha: float = 0.05
    max_members: int = 6
    reserved: float = 0.8
    probation: int = 1
    retire_weight: float = 0.02
    retire_loss: float = 1.0
    retire_after: int = 3
    pool_size: int = 24
    readmit_margin: float = 0.02

    def __post_init__(self) -> None:
        checks: list[tuple[str, float, bool, str]] = [
            ("eta", self.eta, self.eta >= 0, "a number >= 0"),
            ("alpha", self.alpha, 0 <= self.alpha < 1, "in [0, 1)"),
            ("max_members", self.max_members, self.max_members >= 1, "an integer >= 1"),
            ("reserved", self.reserved, self.alpha <= self.reserved <= 1, "in [alpha, 1]"),
            ("probation", self.probation, self.probation >= 0, "an integer >= 0"),
            ("retire_weight", self.retire_weight, 0 <= self.retire_weight < 1, "in [0, 1)"),
            ("retire_loss", self.retire_loss, 0 <= self.retire_loss <= 1, "in [0, 1]"),
            ("retire_after", self.retire_after, self.retire_after >= 1, "an integer >= 1"),
            ("pool_size", self.pool_size, self.pool_size >= 0, "an integer >= 0"),
            ("readmit_margin", self.readmit_margin, self.readmit_margin >= 0, "a number >= 0"),
        ]
        for key, value, ok, must in checks:
            if not (ok and math.isfinite(value)):
                raise PolicyError(
                    f"ensemble refresh: {key!r} must be {must} (got {value!r})",
                    hint=f"set {key} to a value {must}",
                )


@dataclass(frozen=True)
class Member:
    """A member's blend ``weight``, its ``age`` (windows it was scored on since it entered) and
    how many windows in a row it has been under the retirement floor (``low``)."""

    name: str
    weight: float
    age: int = 0
    low: int = 0


@dataclass(frozen=True)
class EnsembleState:
    """The members (weights sum to 1) and the retired pool, oldest retiree first."""

    members: tuple[Member, ...]
    pool: tuple[str, ...] = ()

    def weights(self) -> dict[str, float]:
        """``{member: weight}`` in member order."""
        return {m.name: m.weight for m in self.members}

    def experimental(self, policy: RefreshPolicy) -> tuple[str, ...]:
        """The members still on probation, whose total weight the policy caps."""
        return tuple(m.name for m in self.members if m.age < policy.probation)


@dataclass(frozen=True)
class Entrant:
    """A model that may join: a ``newcomer`` with its cross-validated loss on the newest chunk."""

    name: str
    loss: float


@dataclass(frozen=True)
class RefreshEvent:
    """One membership change, or the reserved cap applied to a member (``capped``), for the
    audit log."""

    kind: Literal["admitted", "readmitted", "retired", "dropped", "capped"]
    member: str
    reason: str


@dataclass(frozen=True)
class Refreshed:
    """:func:`refresh`'s result: the new state and what changed."""

    state: EnsembleState
    events: tuple[RefreshEvent, ...] = field(default=())


def hedge(weights: Sequence[float], losses: Sequence[float], eta: float) -> list[float]:
    """Exponentiated weights, normalized: ``w_i exp(-eta loss_i) / sum``.

    >>> [round(w, 3) for w in hedge([0.5, 0.5], [0.0, 1.0], eta=1.0)]
    [0.731, 0.269]
    """
    w = np.asarray(weights, dtype=float) * np.exp(-eta * np.asarray(losses, dtype=float))
    return list(map(float, w / w.sum()))


def fixed_share(weights: Sequence[float], alpha: float) -> list[float]:
    """Mix ``alpha`` of the mass uniformly: ``(1 - alpha) w_i + alpha / n``, so ``w_i >= alpha/n``.

    >>> [round(w, 3) for w in fixed_share([1.0, 0.0], alpha=0.1)]
    [0.95, 0.05]
    """
    n = len(weights)
    return [(1 - alpha) * w + alpha / n for w in weights]


def cap_reserved(weights: Sequence[float], experimental: Sequence[bool], cap: float) -> list[float]:
    """Scale the experimental members down to ``cap`` in total, the rest up to fill the gap.

    Nothing changes when they hold ``cap`` or less, or when every member is experimental.

    >>> [round(w, 3) for w in cap_reserved([0.2, 0.8], [False, True], cap=0.5)]
    [0.5, 0.5]
    """
    exp_total = sum(w for w, e in zip(weights, experimental, strict=True) if e)
    rest = sum(weights) - exp_total
    if exp_total <= cap or rest <= 0:
        return list(weights)
    up = (sum(weights) - cap) / rest
    return [w * (cap / exp_total if e else up) for w, e in zip(weights, experimental, strict=True)]


def entry_share(
    loss: float, weights: Sequence[float], losses: Sequence[float], eta: float
) -> float:
    """The weight Hedge would give an entrant with a prior of ``1 / (n + 1)``, after this window.

    The members' weights are the ones they held during the window, with their ``losses`` on it;
    the entrant's ``loss`` is out of sample (cross-validated, or a pooled model's on the window).

    >>> round(entry_share(0.1, [0.5, 0.5], [0.1, 0.1], eta=8.0), 3)
    0.333
    """
    prior = 1.0 / (len(weights) + 1)
    mine = prior * math.exp(-eta * loss)
    theirs = (1 - prior) * sum(w * math.exp(-eta * x) for w, x in zip(weights, losses, strict=True))
    return mine / (mine + theirs)


class Classifier(Protocol):
    """What :func:`cross_val_loss` needs of a fitted model."""

    def predict(self, x: np.ndarray) -> np.ndarray: ...


C = TypeVar("C", bound=Classifier)


def cross_val_loss(
    fit: Callable[[np.ndarray, np.ndarray], C],
    x: np.ndarray,
    y: np.ndarray,
    *,
    folds: int = 3,
    seed: int = 0,
    loss: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> tuple[float, list[C]]:
    """The k-fold error rate of ``fit`` on ``(x, y)``, and the ``folds`` models it fitted.

    Rows are shuffled with ``seed`` and split in ``folds`` parts; each model is fitted on the
    other parts and scored on its own. The fold models together can serve as the member (a
    cross-fitted bag), so the entry weight costs no extra fit. ``loss(y_true, y_pred)`` gives
    each row's loss in [0, 1] (default: 1 for a wrong label), so a regressor's newcomer is
    scored as :mod:`regrow.refreshing` scores its members.

    >>> class Majority:
    ...     def __init__(self, y): self.label = np.bincount(y).argmax()
    ...     def predict(self, x): return np.full(len(x), self.label)
    >>> y = np.array([0, 0, 0, 0, 0, 1])
    >>> loss, models = cross_val_loss(lambda x, y: Majority(y), np.zeros((6, 1)), y)
    >>> round(loss, 3), len(models)
    (0.167, 3)
    """
    if folds < 2 or len(y) < folds:
        raise PlanError(
            f"cross-validation needs >= 2 folds and a row per fold "
            f"(got {folds} folds, {len(y)} rows)",
            hint="use folds >= 2 on a chunk with at least that many rows",
        )
    order = np.random.default_rng(seed).permutation(len(y))
    parts = np.array_split(order, folds)
    wrong, models = 0.0, list[C]()
    for k, test in enumerate(parts):
        train = np.concatenate([p for j, p in enumerate(parts) if j != k])
        model = fit(x[train], y[train])
        predicted = model.predict(x[test])
        rows = predicted != y[test] if loss is None else loss(y[test], predicted)
        wrong += float(np.sum(rows))
        models.append(model)
    return wrong / len(y), models


def refresh(
    state: EnsembleState,
    losses: Mapping[str, float],
    policy: RefreshPolicy,
    *,
    newcomer: Entrant | None = None,
    pool_losses: Mapping[str, float] | None = None,
) -> Refreshed:
    """One evaluation window: retire, Hedge, admit, trim, cap, share (see the module docstring).

    ``losses`` holds every member's loss on the window; ``pool_losses`` the pooled members'
    (those missing are not considered for re-admission).

    >>> policy = RefreshPolicy(max_members=2, probation=0)
    >>> state = EnsembleState((Member("a", 0.5), Member("b", 0.5)), pool=("old",))
    >>> out = refresh(state, {"a": 0.3, "b": 0.4}, policy, pool_losses={"old": 0.05})
    >>> [(e.kind, e.member) for e in out.events]
    [('readmitted', 'old'), ('dropped', 'b')]
    """
    _check(state, losses, newcomer, pool_losses or {})
    events: list[RefreshEvent] = []
    pool = list(state.pool)
    held = [m.weight for m in state.members]
    window = [float(losses[m.name]) for m in state.members]

    # 1. retire members that stayed under the floor for retire_after windows (keep one)
    kept = [
        replace(
            m, low=m.low + 1 if m.weight < policy.retire_weight or x > policy.retire_loss else 0
        )
        for m, x in zip(state.members, window, strict=True)
    ]
    retired = {m.name for m in kept if m.low >= policy.retire_after}
    if len(retired) == len(kept):  # keep the one with the smallest loss on the window
        best_i = min(range(len(kept)), key=lambda i: (window[i], -kept[i].weight))
        retired.discard(kept[best_i].name)
    for m in kept:
        if m.name in retired:
            events.append(RefreshEvent("retired", m.name, f"under the floor for {m.low} windows"))
            pool.append(m.name)
    alive_idx = [i for i, m in enumerate(kept) if m.name not in retired]

    # 2. entrants: pooled models that beat every surviving member, then the newcomer
    held_sum = sum(held[i] for i in alive_idx)
    prior = {i: held[i] / held_sum if held_sum > 0 else 1 / len(alive_idx) for i in alive_idx}
    best = min(window[i] for i in alive_idx)
    entrants: list[tuple[Entrant, Literal["admitted", "readmitted"]]] = []
    for name, loss in sorted((pool_losses or {}).items(), key=lambda kv: kv[1]):
        if name in pool and loss + policy.readmit_margin < best:
            entrants.append((Entrant(name, loss), "readmitted"))
    if newcomer is not None:
        entrants.append((newcomer, "admitted"))

    # 3. Hedge on the survivors; each entrant scored as entry_share would, with a prior of
    #    1 / (n + 1). Losses are taken relative to the smallest, so no score underflows to 0.
    floor = min([best, *(e.loss for e, _ in entrants)])
    scores = {
        kept[i].name: prior[i] * math.exp(-policy.eta * (window[i] - floor)) for i in alive_idx
    }
    ages = {kept[i].name: kept[i].age + 1 for i in alive_idx}  # scored on one more window
    lows = {kept[i].name: kept[i].low for i in alive_idx}
    odds = 1.0 / len(alive_idx)  # prior / (1 - prior) with prior = 1 / (n + 1)
    for entrant, kind in entrants:
        scores[entrant.name] = odds * math.exp(-policy.eta * (entrant.loss - floor))
        # a readmitted member was scored out of sample on the window: no probation again
        ages[entrant.name] = policy.probation if kind == "readmitted" else 0
        lows[entrant.name] = 0
        if entrant.name in pool:
            pool.remove(entrant.name)
        events.append(
            RefreshEvent(kind, entrant.name, f"loss {entrant.loss:.3f}, best member {best:.3f}")
        )

    # 4. at most max_members: the lightest go to the pool
    while len(scores) > policy.max_members:
        lightest = min(scores, key=lambda k: scores[k])
        del scores[lightest]
        pool.append(lightest)
        events.append(RefreshEvent("dropped", lightest, f"more than {policy.max_members} members"))

    # 5. normalize, cap the experimental total, then fixed share (floor alpha / n)
    names = list(scores)
    w = [scores[k] / sum(scores.values()) for k in names]
    experimental = [ages[k] < policy.probation for k in names]
    k = len(names)
    cap = (policy.reserved - policy.alpha * sum(experimental) / k) / (1 - policy.alpha)
    capped = cap_reserved(w, experimental, cap)
    if capped != w:
        held_exp = sum(x for x, e in zip(w, experimental, strict=True) if e)
        events.extend(
            RefreshEvent("capped", name, f"experimental members held {held_exp:.3f}, "
                         f"over the reserved {policy.reserved:g}")
            for name, e in zip(names, experimental, strict=True)
            if e
        )  # fmt: skip
    w = fixed_share(capped, policy.alpha)
    members = tuple(
        Member(name, weight, age=ages[name], low=lows[name])
        for name, weight in zip(names, w, strict=True)
    )
    pool = pool[max(0, len(pool) - policy.pool_size) :]
    return Refreshed(EnsembleState(members, tuple(pool)), tuple(events))


def _check(
    state: EnsembleState,
    losses: Mapping[str, float],
    newcomer: Entrant | None,
    pool_losses: Mapping[str, float],
) -> None:
    """Refuse what :func:`refresh` cannot weigh: no members, a missing or out-of-range loss."""
    if not state.members:
        raise PlanError(
            "ensemble refresh: the ensemble has no members",
            hint="start from EnsembleState((Member(name, 1.0),)) with the first fitted model",
        )
    missing = [m.name for m in state.members if m.name not in losses]
    if missing:
        raise PlanError(
            f"ensemble refresh: no loss for members {missing}",
            hint="score every member on the evaluation window before refreshing",
        )
    given = {**pool_losses, **losses, **({newcomer.name: newcomer.loss} if newcomer else {})}
    bad = {k: v for k, v in given.items() if not 0.0 <= v <= 1.0}
    if bad:
        raise PlanError(
            f"ensemble refresh: losses must lie in [0, 1] (got {bad})",
            hint="pass error rates, or losses scaled to [0, 1]; eta is tuned for that range",
        )
    if newcomer is not None and newcomer.name in {m.name for m in state.members}:
        raise PlanError(
            f"ensemble refresh: newcomer {newcomer.name!r} is already a member",
            hint="give the newcomer a name no member has",
        )
