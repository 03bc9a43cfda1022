"""Rollout trials: a labelled stream served through a rollout of real models, decided by the rule.

:func:`regrow.rollout.decide.replay` measures the rule on Bernoulli losses; a trial here measures
it end to end. A **stable ensemble** of ``members`` models, each fitted on an earlier chunk of
concept ``A``, blends by mean class probabilities. The **candidate** is the stable ensemble plus
one new member, fitted on a chunk of concept ``B``, which takes ``weight`` of the candidate's
blend (the stable members share the rest). Requests arrive in batches; the rollout's router
(:class:`regrow.rollout.router.RolloutRouter`) serves them, both versions' 0/1 errors are the
losses, and :func:`regrow.rollout.decide.decide` analyses the evidence after every batch, as
:func:`regrow.rollout.machine.step` does in production. Four kinds of trial (:data:`KINDS`):

==========  =====  ===========================================================================
kind        mode   what happens, and the figure it gives (:func:`figures`)
==========  =====  ===========================================================================
``bad``     blend  the stream stays on ``A``: the new member learnt another concept (or, with
                   ``Setup.shuffle``, ``A`` with shuffled labels), so the candidate is worse.
                   Figure: rolled back before the weight passed the second step (rolled
                   back at step index 0 or 1)
``good``    blend  the stream has drifted to ``B``, the concept the new member learnt: the
                   candidate is better. Figure: promoted
``aa``      split  the candidate *is* the stable ensemble, served on its own lane to
                   independent requests. Figure: rolled back (a false rollback), although the
                   rule looks after every batch
``silent``  blend  the bad candidate, but no label ever arrives for its lane. Figure: ended
                   inconclusive; it must never be rolled back
==========  =====  ===========================================================================

In blend mode every request is served ``(1 - w) * stable + w * candidate`` at the step's ``w``
and both versions are scored on it, so the evidence is paired per request (candidate loss -
stable loss). Streams come from a :data:`Source`; :func:`sea` is River's SEA generator written
in numpy (so this module needs no River), :func:`river_source` wraps River's generators
(``pip install 'regrow[monitor]'``). Trial ``i`` of :func:`run_trials` uses seed
``seed + i``; a trial is a pure function of its seed.

>>> t = run_trial("bad", 0)
>>> t.state, t.step, t.candidate_loss > t.stable_loss
('rolled_back', 0, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np

from regrow.errors import ConfigError, MissingDependency
from regrow.plan.policy import RolloutPolicy
from regrow.rollout.decide import Tally, decide
from regrow.rollout.evidence import CANDIDATE
from regrow.rollout.router import RolloutRouter
from regrow.rollout.sequential import Sample

__all__ = [
    "KINDS",
    "Ensemble",
    "Setup",
    "Source",
    "Trial",
    "figures",
    "river_source",
    "run_trial",
    "run_trials",
    "sea",
]

#: The kinds of trial, in the order a report lists them.
KINDS = ("bad", "good", "aa", "silent")
#: ``(concept, seed, rows) -> (x, y)``: ``rows`` labelled rows of a concept, drawn with a seed.
Source = Callable[[int, int, int], tuple[np.ndarray, np.ndarray]]
#: A learner: ``(x, y, seed) -> fitted classifier`` (with ``classes_`` and ``predict_proba``).
Learner = Callable[[np.ndarray, np.ndarray, int], Any]
_SEA_THRESHOLDS = {0: 8.0, 1: 9.0, 2: 7.0, 3: 9.5}


def sea(concept: int, seed: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """River's SEA concepts in numpy: three features uniform on ``[0, 10]``, label
    ``x0 + x1 > threshold`` with thresholds 8, 9, 7 and 9.5 for concepts 0 to 3.

    >>> x, y = sea(2, seed=0, rows=4)
    >>> x.shape, bool(((x[:, 0] + x[:, 1] > 7) == y).all())
    ((4, 3), True)
    """
    if concept not in _SEA_THRESHOLDS:
        raise ConfigError(
            f"SEA has no concept {concept!r}", hint="SEA's concepts are 0, 1, 2 and 3"
        )
    x = np.random.default_rng(seed).uniform(0.0, 10.0, size=(rows, 3))
    return x, (x[:, 0] + x[:, 1] > _SEA_THRESHOLDS[concept]).astype(int)


def river_source(generator: str = "sea", *, noise: float = 0.0) -> Source:
    """A :data:`Source` drawing from River's ``SEA`` (concept = variant, with label
    ``noise``) or ``Agrawal`` (concept = classification function) generator."""
    try:
        from river.datasets import synth
    except ImportError as exc:
        raise MissingDependency("river", "monitor") from exc
    if generator not in ("sea", "agrawal"):
        raise ConfigError(f"unknown River generator {generator!r}", hint="use 'sea' or 'agrawal'")

    def draw(concept: int, seed: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
        stream = (
            synth.SEA(variant=concept, noise=noise, seed=seed)
            if generator == "sea"
            else synth.Agrawal(classification_function=concept, seed=seed)
        )
        data = list(islice(iter(stream), rows))
        x = np.array([[float(v) for v in row.values()] for row, _ in data])
        return x, np.array([int(label) for _, label in data])

    return draw


def _tree(x: np.ndarray, y: np.ndarray, seed: int) -> Any:
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(max_depth=6, min_samples_leaf=5, random_state=seed).fit(x, y)


@dataclass(frozen=True)
class Ensemble:
    """Fitted models blended by a weighted mean of their class probabilities."""

    models: tuple[Any, ...]
    weights: tuple[float, ...]

    def proba(self, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Blended probabilities of ``classes`` (columns aligned across models)."""
        out = np.zeros((len(x), len(classes)))
        for model, w in zip(self.models, self.weights, strict=True):
            cols = np.searchsorted(classes, np.asarray(model.classes_))
            out[:, cols] += w * model.predict_proba(x)
        return out / sum(self.weights)


@dataclass(frozen=True)
class Setup:
    """The stream and the models of a trial.

    ``concepts`` is ``(A, B)``: the stable members learn ``A``, the new member ``B``; with
    ``shuffle`` the new member of a ``bad`` or ``silent`` trial learns ``A`` with its labels
    shuffled instead. ``weight`` is the new member's share of the candidate's blend: at 0.6
    it decides wherever it is confident, the member a rollout must guard against (at the
    mean's share, 1/4 beside three members, a member of another SEA concept raised the loss
    by 0.003 on average in development runs, within the tolerance: no candidate to roll back).
    """

    source: Source = sea
    concepts: tuple[int, int] = (2, 3)
    members: int = 3
    chunk: int = 250
    weight: float = 0.6
    shuffle: bool = False
    learner: Learner = field(default=_tree)

    def __post_init__(self) -> None:
        if not 0.0 < self.weight < 1.0:
            raise ConfigError(
                f"the new member's weight must be in (0, 1) (got {self.weight!r})",
                hint="its share of the candidate's blend, e.g. 0.6",
            )
        if self.members < 1 or self.chunk < 10:
            raise ConfigError(
                f"a trial needs members >= 1 and chunk >= 10 (got {self.members}, {self.chunk})",
                hint="e.g. members=3, chunk=250",
            )


@dataclass(frozen=True)
class Trial:
    """How one trial ended: its state and the last step it reached, the batches analysed,
    the moves made, and the mean loss of each version and of what was served."""

    kind: str
    seed: int
    state: str
    step: int
    batches: int
    actions: tuple[str, ...]
    stable_loss: float
    candidate_loss: float
    served_loss: float


class _Lane:
    """Running count, loss sum and absolute sum of one lane's labelled requests (for paired
    differences, the absolute sum splits them into gains and losses)."""

    def __init__(self) -> None:
        self.n, self.total, self.absolute = 0, 0.0, 0.0

    def add(self, losses: np.ndarray) -> None:
        self.n, self.total = self.n + len(losses), self.total + float(losses.sum())
        self.absolute += float(np.abs(losses).sum())

    @property
    def sample(self) -> Sample:
        if not self.n:
            return Sample(0, 0.0, 0.0)
        return Sample(self.n, self.total / self.n, self.absolute / self.n)


def _seed(seed: int, *path: int) -> int:
    """A 32-bit seed for one draw of a trial (``path`` names it), independent of the others."""
    return int(np.random.SeedSequence([seed, *path]).generate_state(1)[0])


@dataclass(frozen=True)
class _Versions:
    """The stable ensemble, the candidate and the classes they predict."""

    stable: Ensemble
    candidate: Ensemble
    classes: np.ndarray

    @classmethod
    def of(cls, kind: str, seed: int, setup: Setup) -> _Versions:
        a, b = setup.concepts
        seeds = [_seed(seed, 0, j) for j in range(setup.members + 1)]
        stable = [
            setup.learner(*setup.source(a, s, setup.chunk), s) for s in seeds[: setup.members]
        ]
        ones = (1.0,) * setup.members
        if kind == "aa":
            same = Ensemble(tuple(stable), ones)
            return cls(same, same, np.unique(np.concatenate([m.classes_ for m in stable])))
        x, y = setup.source(b, seeds[-1], setup.chunk)
        if setup.shuffle and kind in ("bad", "silent"):
            x, y = setup.source(a, seeds[-1], setup.chunk)
            y = np.random.default_rng(seeds[-1]).permutation(y)
        new = setup.learner(x, y, seeds[-1])
        share = setup.weight * setup.members / (1.0 - setup.weight)
        classes = np.unique(np.concatenate([m.classes_ for m in [*stable, new]]))
        return cls(Ensemble(tuple(stable), ones), Ensemble((*stable, new), (*ones, share)), classes)


def run_trial(
    kind: str,
    seed: int,
    *,
    setup: Setup | None = None,
    steps: Sequence[float] | None = None,
    min_requests: int | None = None,
    batch: int = 250,
    max_batches: int = 80,
    params: dict[str, Any] | None = None,
) -> Trial:
    """Run one trial of ``kind`` (see the module docs) with seed ``seed``: ``batch`` requests
    per analysis, at most ``max_batches`` analyses. ``steps`` and ``min_requests`` default
    to the policy's ``rollout`` section, ``params`` (``tolerance``, ``alpha``,
    ``inconclusive_after``) to :func:`regrow.rollout.machine.start`'s."""
    if kind not in KINDS:
        raise ConfigError(f"unknown trial kind {kind!r}", hint=f"use one of {', '.join(KINDS)}")
    if batch < 1 or max_batches < 1:
        raise ConfigError(
            f"batch and max_batches must be >= 1 (got {batch}, {max_batches})",
            hint="e.g. batch=250, max_batches=80",
        )
    defaults = RolloutPolicy()
    shares = tuple(steps) if steps is not None else defaults.steps
    if not shares or any(not 0.0 < v <= 1.0 for v in shares):
        raise ConfigError(f"steps {shares!r} are not shares", hint="e.g. (0.05, 0.25, 0.5, 1.0)")
    need = min_requests if min_requests is not None else defaults.min_requests
    knobs = {"tolerance": 0.02, "alpha": 0.05, "inconclusive_after": 20, **(params or {})}
    setup = setup or Setup()
    versions = _Versions.of(kind, seed, setup)
    mode = "split" if kind == "aa" else "blend"
    concept = setup.concepts[1] if kind == "good" else setup.concepts[0]
    lanes = {"stable": _Lane(), "candidate": _Lane(), "paired": _Lane(), "served": _Lane()}
    state, step, holds, fresh = "progressing", 0, 0, 0
    actions: list[str] = []
    for n in range(1, max_batches + 1):
        x, y = setup.source(concept, _seed(seed, 1, n), batch)
        router = _router(mode, f"trial-{kind}-{seed}", shares[step])
        if router.blend is not None:
            fresh += _blend_batch(x, y, versions, router.blend, lanes, kind != "silent")
        else:
            keys = [f"{n}-{i}" for i in range(batch)]
            fresh += _split_batch(x, y, keys, versions, router, lanes)
        paired = lanes["paired"].sample if mode == "blend" else None
        tally = Tally(lanes["candidate"].sample, lanes["stable"].sample, paired, fresh)
        move = decide(
            state=state, mode=mode, step=step, steps=shares, holds=holds,
            min_requests=need, params=knobs, evidence=tally,
        )  # fmt: skip
        actions.append(move.action)
        fresh = 0 if move.step != step else fresh
        state, step, holds = move.state, move.step, move.holds
        if state in ("promoted", "rolled_back"):
            break
    return Trial(
        kind, seed, state, step, n, tuple(actions), lanes["stable"].sample.mean,
        lanes["candidate"].sample.mean, lanes["served"].sample.mean,
    )  # fmt: skip


def _router(mode: str, rollout_id: str, share: float) -> RolloutRouter:
    """The router of the rollout at a step's share (versions named ``stable``, ``candidate``)."""
    if mode == "blend":
        return RolloutRouter(rollout_id, stable_id="stable", mode=mode, blend=("candidate", share))
    return RolloutRouter(rollout_id, stable_id="stable", lanes={CANDIDATE: ("candidate", share)})


def _wrong(proba: np.ndarray, y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The 0/1 loss of the most probable class of each row."""
    return np.asarray(classes[proba.argmax(axis=1)] != y, dtype=float)


def _blend_batch(
    x: np.ndarray,
    y: np.ndarray,
    versions: _Versions,
    weight: float,
    lanes: dict[str, _Lane],
    labelled: bool,
) -> int:
    """Serve a batch in blend mode at the candidate's ``weight``, score both versions on every
    request; the fresh labelled candidate requests it brings (none if its lane is silent)."""
    classes = versions.classes
    ps, pc = versions.stable.proba(x, classes), versions.candidate.proba(x, classes)
    es, ec = _wrong(ps, y, classes), _wrong(pc, y, classes)
    lanes["served"].add(_wrong((1.0 - weight) * ps + weight * pc, y, classes))
    lanes["stable"].add(es)
    if not labelled:
        return 0
    lanes["candidate"].add(ec)
    lanes["paired"].add(ec - es)
    return len(y)


def _split_batch(
    x: np.ndarray,
    y: np.ndarray,
    keys: list[str],
    versions: _Versions,
    router: RolloutRouter,
    lanes: dict[str, _Lane],
) -> int:
    """Serve a batch in split mode, each request on its lane; the candidate requests in it."""
    mine = np.array([router.lane_for(k) == CANDIDATE for k in keys])
    for lane, ens, rows in (
        ("candidate", versions.candidate, mine),
        ("stable", versions.stable, ~mine),
    ):
        if rows.any():
            loss = _wrong(ens.proba(x[rows], versions.classes), y[rows], versions.classes)
            lanes[lane].add(loss)
            lanes["served"].add(loss)
    return int(mine.sum())


def run_trials(kind: str, trials: int, *, seed: int = 0, **options: Any) -> list[Trial]:
    """``trials`` trials of ``kind``, trial ``i`` with seed ``seed + i`` (``options`` go to
    :func:`run_trial`)."""
    return [run_trial(kind, seed + i, **options) for i in range(trials)]


def figures(trials: Sequence[Trial]) -> dict[str, float]:
    """The shares of ``trials`` that were rolled back, rolled back at step index 0 or 1
    (``rolled_back_early``), promoted, and that ended inconclusive.

    >>> t = Trial("aa", 0, "inconclusive", 3, 80, (), 0.1, 0.1, 0.1)
    >>> figures([t])["inconclusive"]
    1.0
    """
    if not trials:
        raise ConfigError("no trials to summarise", hint="run at least one trial")
    n = len(trials)
    return {
        "rolled_back": sum(t.state == "rolled_back" for t in trials) / n,
        "rolled_back_early": sum(t.state == "rolled_back" and t.step <= 1 for t in trials) / n,
        "promoted": sum(t.state == "promoted" for t in trials) / n,
        "inconclusive": sum(t.state == "inconclusive" for t in trials) / n,
    }
