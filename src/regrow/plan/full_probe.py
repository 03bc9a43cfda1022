"""The full-retrain probe: what refitting every member of a mean ensemble would reach.

The residual probes (:mod:`regrow.plan.diagnostics`) correct the system's output, which is
what refitting a member changes when the ensemble is relearned around it (a stack), or when
there is no ensemble. In a **mean** (or vote) ensemble it is not: the refitted member counts
only its weight, and the members the plan keeps go on pulling the output where it was. When
they read the same inputs, the search sees nothing left for them once the first member's
correction took the drift, yet after the run they still hold the old relationship.

So for a partial plan of a mean or vote ensemble, this probe estimates the loss after the
plan and after a full retrain the same way, on the diagnostics' split of the labelled window
(``probe_fraction`` of it, at most ``probe_max_rows`` rows, to fit; the rest to score):

- every member a plan refits gets a new output. A member whose estimator is cheap to fit
  (under :data:`CLONE_CPU_SECONDS` on the probe rows by the cost model's prior, e.g. a linear
  model) is refitted as it is; any other is **continued**: a small boosted model (60 rounds of
  15-leaf trees) on its inputs, fitted to what the member itself gets wrong (for a binary
  classifier one Newton step on its logit), is added to its output, as more boosting rounds
  on the window would, without relearning from half a window what the member knows;
- members the plan keeps give their current output;
- the ensemble combines them with the plan's weights.

Scored on the held-out rows with a paired interval: the loss **now**, after the **partial**
plan and after a **full** retrain (every member refitted). It is what a full retrain can reach
at best: one on the recent window alone also forgets what older rows taught the members the
drift did not touch, which the probe leaves out (as it leaves transforms as they are).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from regrow.components.base import Ensemble
from regrow.components.fitted import combine, feature_frame, fit_component, member_output
from regrow.components.outputs import OutputsFn
from regrow.errors import ComponentError, PlanError
from regrow.model import FittedSystem
from regrow.plan.costs import CLONE_CPU_SECONDS, cheap_to_refit
from regrow.plan.diagnostics import Gain, row_losses
from regrow.plan.policy import Planning
from regrow.plan.small_boost import small_boost

__all__ = ["CLONE_CPU_SECONDS", "PlanProbe", "probe_plans", "probe_split"]


@dataclass(frozen=True)
class PlanProbe:
    """Losses on held-out rows now, after the partial plan and after a full retrain.

    ``edge`` is the paired difference ``partial - full`` per row: positive when a full retrain
    is expected to do better than the partial plan; ``gain`` is ``now - partial``, what the
    partial plan is expected to win back, and ``full_gain`` is ``now - full``. ``singles``
    holds, for each member, the same two figures for a plan that refits that member alone
    (its gain over now, and a full retrain's edge over it): what the review weighs when the
    plan the residual probes chose is not worth running.
    """

    loss: str
    train_rows: int
    test_rows: int
    now: float
    partial: float
    full: float
    edge: Gain
    gain: Gain
    full_gain: Gain
    refitted: tuple[str, ...]
    stand_ins: Mapping[str, str]
    singles: Mapping[str, tuple[Gain, Gain]] = field(default_factory=dict)
    cpu_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "loss": self.loss,
            "train_rows": self.train_rows,
            "test_rows": self.test_rows,
            "now": self.now,
            "partial": self.partial,
            "full": self.full,
            "edge": self.edge.to_dict(),
            "gain": self.gain.to_dict(),
            "full_gain": self.full_gain.to_dict(),
            "refitted": list(self.refitted),
            "stand_ins": dict(self.stand_ins),
            "singles": {
                n: {"gain": g.to_dict(), "edge": e.to_dict()} for n, (g, e) in self.singles.items()
            },
            "cpu_seconds": self.cpu_seconds,
        }


def probe_split(rows: int, planning: Planning) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the probe's fitting and held-out rows among ``rows`` labelled rows.

    The same split as the diagnostics' (``probe_fraction``, at most ``probe_max_rows``, seeded
    by ``planning.seed``), so both score the same held-out rows.

    >>> fit, held_out = probe_split(10, Planning(probe_fraction=0.3))
    >>> len(fit), len(held_out), sorted([*fit, *held_out]) == list(range(10))
    (3, 7, True)
    """
    order = np.random.default_rng(planning.seed).permutation(rows)
    n_train = min(round(rows * planning.probe_fraction), planning.probe_max_rows)
    return np.sort(order[:n_train]), np.sort(order[n_train:])


def probe_plans(
    model: FittedSystem,
    window: pd.DataFrame,
    *,
    planning: Planning,
    refit: Collection[str],
    retired: Collection[str] = (),
    weights: Mapping[str, float] | None = None,
    outputs: OutputsFn | None = None,
) -> PlanProbe:
    """Estimate the loss after the partial plan (refit ``refit``, retire ``retired``, the
    ensemble's new ``weights``) and after a full retrain of ``model``, a mean or vote
    ensemble, on the labelled ``window``. ``outputs`` gives the members' current outputs
    when the caller keeps them."""
    cpu0 = time.process_time()
    target, classes = model.target, model.classes_
    ensemble = next((c.spec for c in model.components.values() if isinstance(c.spec, Ensemble)),
                    None)  # fmt: skip
    if ensemble is None or ensemble.method == "stack":
        raise PlanError(
            f"the full-retrain probe weighs mean or vote ensembles (got {ensemble!r})",
            hint="a stack's partial plan is weighed by the residual probes alone",
        )
    labelled = window[window[target].notna()]
    tr, te = probe_split(len(labelled), planning)
    y = labelled[target].to_numpy()
    members = [m for m in ensemble.members if ensemble.weights.get(m, 0) > 0]
    now = dict(outputs(labelled)) if outputs is not None else model.member_outputs(labelled)
    stale = {n: np.asarray(now[n], dtype=float)[te] for n in members}
    fresh: dict[str, np.ndarray] = {}
    how: dict[str, str] = {}
    for n in members:
        try:
            fresh[n], how[n] = _refitted(model, n, labelled, np.asarray(now[n], dtype=float),
                                         (tr, te), planning.seed)  # fmt: skip
        except ComponentError as exc:  # e.g. one class only: the member stays as it is
            fresh[n], how[n] = stale[n], f"kept as it is (could not be refitted: {exc})"

    def losses(outs: Mapping[str, np.ndarray], w: Mapping[str, float]) -> np.ndarray:
        names = list(outs)
        view = Ensemble(ensemble.name, names, weights={n: w.get(n, 1.0) for n in names},
                        method=ensemble.method)  # fmt: skip
        return row_losses(combine(view, outs, classes), y[te], classes)

    own = dict(ensemble.weights)
    partial = losses(
        {n: fresh[n] if n in refit else stale[n] for n in members if n not in retired},
        {**own, **(weights or {})},
    )
    full = losses(fresh, own)
    current = losses(stale, own)
    singles: dict[str, tuple[Gain, Gain]] = {}
    for n in members:
        alone = losses({m: fresh[m] if m == n else stale[m] for m in members}, own)
        singles[n] = (
            Gain.of(current, alone, planning.confidence),
            Gain.of(alone, full, planning.confidence),
        )
    return PlanProbe(
        loss="squared_error" if classes is None else "log_loss",
        train_rows=len(tr),
        test_rows=len(te),
        now=float(current.mean()),
        partial=float(partial.mean()),
        full=float(full.mean()),
        edge=Gain.of(partial, full, planning.confidence),
        gain=Gain.of(current, partial, planning.confidence),
        full_gain=Gain.of(current, full, planning.confidence),
        refitted=tuple(n for n in members if n in refit),
        stand_ins=how,
        singles=singles,
        cpu_seconds=time.process_time() - cpu0,
    )


def _refitted(
    model: FittedSystem,
    name: str,
    labelled: pd.DataFrame,
    current: np.ndarray,
    split: tuple[np.ndarray, np.ndarray],
    seed: int,
) -> tuple[np.ndarray, str]:
    """Member ``name``'s output on the held-out rows once refitted on the probe rows, and how
    (the module's docstring says which way)."""
    tr, te = split
    fc = model.components[name]
    transforms = {n: c for n, c in model.components.items() if c.spec.kind == "transform"}
    cls = str(fc.spec.recipe()["class"])
    if cheap_to_refit(cls, len(tr)):
        copy = fit_component(fc.spec, labelled.iloc[tr], target=model.target,
                             upstream=transforms, seed=seed)  # fmt: skip
        out = member_output(copy, labelled.iloc[te], transforms, model.classes_)
        return out, f"refitted as it is ({cls.rsplit('.', 1)[-1]})"
    X = _categorical(feature_frame(fc.spec, labelled, transforms))
    y = labelled[model.target].to_numpy()
    out = _continued(X, current, y, (tr, te), model.classes_, seed)
    return out, "continued by a small boosted model of what it gets wrong"


def _continued(
    X: pd.DataFrame,
    current: np.ndarray,
    y: np.ndarray,
    split: tuple[np.ndarray, np.ndarray],
    classes: Sequence[Any] | None,
    seed: int,
) -> np.ndarray:
    """The output ``current`` on the held-out rows plus a small boosted model, fitted on the
    probe rows, of what it gets wrong: its residuals, or for two classes one Newton step on
    its logit (as LogitBoost)."""
    tr, te = split
    if classes is None:
        _, correction = small_boost(X, y[tr] - current[tr], split, seed=seed)
        return np.asarray(current[te] + correction, dtype=float)
    p = np.clip(current[:, 1] / np.clip(current.sum(axis=1), 1e-12, None), 1e-6, 1 - 1e-6)
    w = p[tr] * (1 - p[tr])
    z = np.clip(((y[tr] == classes[1]).astype(float) - p[tr]) / w, -4, 4)
    _, correction = small_boost(X, z, split, seed=seed, weight=w)
    logit = np.log(p[te] / (1 - p[te])) + correction
    q = 1 / (1 + np.exp(-logit))
    return np.asarray(np.column_stack([1 - q, q]))


def _categorical(X: pd.DataFrame) -> pd.DataFrame:
    """Text and other non-numeric columns as pandas categories (boosted models take those)."""
    odd = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    return X.assign(**{c: X[c].astype("category") for c in odd}) if odd else X
