"""Residual probes: what refitting a member could win back, for one prediction per member.

``planning.probe: residual`` (the default; regression and binary classification): per member,
a small boosted model (60 rounds of 15-leaf trees) on the **member's inputs**, fitted on the
probe rows to what the whole system now gets wrong (residuals; for classification one Newton
step on the logit), and scored with the system on the held-out rows. A greedy search then
takes the best significant move at a time and probes the others again against the improved
system (see :mod:`regrow.plan.diagnostics`). It costs one prediction per member (shared with
the monitor through the caller's ``outputs``) and a few small fits, not a member refit each.

A linear member cheap to fit (:func:`~regrow.plan.costs.cheap_to_refit`: up to about 16,000
probe rows) is probed by **refitting it as it is** on the probe rows instead, its new
output combined with the others as the system stands (the stack's coefficients, the mean's
weights, and the corrections already taken): a boosted probe on a linear member's inputs
finds curves its refit cannot fit, and the plan would refit the wrong member. Refitting it
costs less than the boosted probe.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from regrow.components.base import Ensemble
from regrow.components.fitted import (
    FittedComponent,
    combine,
    feature_frame,
    fit_component,
    fit_stacker,
    member_output,
    stack_features,
    stack_output,
)
from regrow.errors import ComponentError
from regrow.model import FittedSystem
from regrow.plan.costs import cheap_to_refit, linear
from regrow.plan.gains import Diagnosis, Gain, Move, mean_weights, row_losses, verdict
from regrow.plan.policy import Planning
from regrow.plan.small_boost import small_boost
from regrow.plan.updates import supports

__all__ = ["residual_diagnosis"]

_EPS = 1e-12


def _system_output(
    model: FittedSystem,
    ensemble: Ensemble | None,
    outputs: Mapping[str, np.ndarray],
    stacker: Any = None,
    weights: Mapping[str, float] | None = None,
) -> np.ndarray:
    """The system's output (values, or probability matrices) from its members' outputs:
    combined by ``stacker`` (a stack), or by ``weights`` (a mean or vote; default: its own)."""
    if ensemble is None:
        return next(iter(outputs.values()))
    if ensemble.method == "stack":
        X = stack_features(ensemble, outputs)
        return stack_output(stacker, X, model.classes_)
    if weights is not None:
        names = [m for m in ensemble.members if weights.get(m, 0) > 0]
        ensemble = Ensemble(ensemble.name, names, weights={n: weights[n] for n in names},
                            method=ensemble.method)  # fmt: skip
        outputs = {n: outputs[n] for n in names}
    return np.asarray(combine(ensemble, outputs, model.classes_))


def _refitted_outputs(
    model: FittedSystem,
    labelled: pd.DataFrame,
    rows: np.ndarray,
    member_fcs: Mapping[str, FittedComponent],
    transforms: Mapping[str, FittedComponent],
    names: Sequence[str],
    seed: int,
) -> dict[str, np.ndarray]:
    """The outputs on every labelled row of each linear member in ``names`` cheap enough to
    refit as it is (:func:`~regrow.plan.costs.cheap_to_refit`), fitted on the probe
    ``rows``; a member that cannot be fitted there (one class only, say) is left to the
    boosted probe."""
    out: dict[str, np.ndarray] = {}
    for name in names:
        fc = member_fcs[name]
        cls = str(fc.spec.recipe()["class"])
        if not (linear(cls) and cheap_to_refit(cls, len(rows))):
            continue
        try:
            copy = fit_component(fc.spec, labelled.iloc[rows], target=model.target,
                                 upstream=transforms, seed=seed)  # fmt: skip
            out[name] = member_output(copy, labelled, transforms, model.classes_)
        except ComponentError:
            continue
    return out


def _score(output: np.ndarray, classes: Sequence[Any] | None) -> np.ndarray:
    """The scale corrections add on: the value, or the positive class's logit."""
    if classes is None:
        return np.asarray(output, dtype=float)
    p = np.clip(output[:, 1] / np.clip(output.sum(axis=1), _EPS, None), 1e-6, 1 - 1e-6)
    return np.asarray(np.log(p / (1 - p)))


def _score_losses(score: np.ndarray, y: np.ndarray, classes: Sequence[Any] | None) -> np.ndarray:
    if classes is None:
        return row_losses(score, y, None)
    p = 1 / (1 + np.exp(-score))
    return row_losses(np.column_stack([1 - p, p]), y, classes)


def _residual_probe(
    X: pd.DataFrame,
    split: tuple[np.ndarray, np.ndarray],
    score_train: np.ndarray,
    y_train: np.ndarray,
    classes: Sequence[Any] | None,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """A small boosted model (:mod:`regrow.plan.small_boost`) of what the current score gets
    wrong, fitted on the probe rows ``split[0]``; its correction on the probe rows and on the
    held-out rows ``split[1]``.

    Regression: fitted to the residuals. Binary classification: one Newton step on the
    logit (working response ``(y - p) / (p (1 - p))``, weights ``p (1 - p)``), as LogitBoost.
    """
    if classes is None:
        return small_boost(X, y_train - score_train, split, seed=seed)
    p = 1 / (1 + np.exp(-score_train))
    positive = (np.asarray(y_train) == classes[1]).astype(float)
    w = np.clip(p * (1 - p), 1e-3, None)
    return small_boost(X, np.clip((positive - p) / w, -4, 4), split, seed=seed, weight=w)


def residual_diagnosis(
    model: FittedSystem,
    labelled: pd.DataFrame,
    split: tuple[np.ndarray, np.ndarray],
    outputs: Mapping[str, np.ndarray],
    planning: Planning,
    member_fcs: Mapping[str, FittedComponent],
    transforms: Mapping[str, FittedComponent],
    probe_names: Sequence[str],
    ensemble: Ensemble | None,
    cpu0: float,
) -> Diagnosis:
    """The residual probes' diagnosis of ``labelled`` (probe rows ``split[0]``, held-out
    rows ``split[1]``, positions), from the members' current ``outputs`` on its rows."""
    target = model.target
    classes = model.classes_
    tr, te = split
    y = labelled[target].to_numpy()
    y_train, y_test = y[tr], y[te]
    stacker = model.components[ensemble.name].estimator if ensemble is not None else None
    out = _system_output(model, ensemble, outputs, stacker)
    score_tr, score_te = _score(out[tr], classes), _score(out[te], classes)
    current = _score_losses(score_te, y_test, classes)
    loss_before = float(current.mean())
    inputs = {n: feature_frame(member_fcs[n].spec, labelled, transforms) for n in probe_names}
    member_loss = {
        n: {"window": float(row_losses(o[te], y_test, classes).mean())} for n, o in outputs.items()
    }
    chosen: list[Move] = []
    considered: list[Move] = []

    def judge(kind: str, comp: str | None, update: str, losses: np.ndarray) -> Move:
        gain = Gain.of(current, losses, planning.confidence)
        threshold = planning.min_relative_gain * float(current.mean())
        ok, why = verdict(gain, threshold, planning.min_relative_gain)
        return Move(kind, comp, update, gain, float(losses.mean()), ok, why)

    # Round 0 only: the ensemble relearned on the window, or a member retired.
    combos: list[tuple[Move, np.ndarray, np.ndarray]] = []
    if ensemble is not None:
        names = [m for m in ensemble.members if ensemble.weights[m] > 0]
        if ensemble.method == "stack":
            view = Ensemble(ensemble.name, names, weights=dict.fromkeys(names, 1.0), method="stack")
            X_all = stack_features(view, {n: outputs[n] for n in names})
            restacked = fit_stacker(X_all[tr], y_train, classes)
            new = stack_output(restacked, X_all, classes)
        else:
            w = mean_weights([outputs[n][tr] for n in names], y_train, classes)
            new = np.tensordot(w / w.sum(), np.stack([outputs[n] for n in names]), axes=1)
        s_tr, s_te = _score(new[tr], classes), _score(new[te], classes)
        combos.append((judge("reweight", ensemble.name, "", _score_losses(s_te, y_test, classes)),
                       s_tr, s_te))  # fmt: skip
    weights_after: dict[str, float] | None = None
    update_kind = planning.prefer
    remaining = list(probe_names)
    # A cheap member (a linear model) is probed by refitting it as it is on the probe rows:
    # a boosted probe on its inputs would find signal its refit cannot fit. Its new output
    # enters the system as the others stand now; accepted residual corrections still apply.
    refitted = _refitted_outputs(
        model, labelled, tr, member_fcs, transforms, probe_names, planning.seed
    )
    members_now = dict(outputs)
    stacker_now, weights_now = stacker, dict(ensemble.weights) if ensemble is not None else {}
    extra_tr, extra_te = np.zeros(len(tr)), np.zeros(len(te))
    while remaining:
        round_moves = []
        for name in remaining:
            if name in refitted:
                new_out = _system_output(
                    model, ensemble, {**members_now, name: refitted[name]}, stacker_now,
                    weights_now,
                )  # fmt: skip
                s_tr = _score(new_out[tr], classes) + extra_tr
                s_te = _score(new_out[te], classes) + extra_te
                how = "refit"
            else:
                corr_tr, corr_te = _residual_probe(
                    inputs[name], split, score_tr, y_train, classes, planning.seed
                )
                s_tr, s_te = score_tr + corr_tr, score_te + corr_te
                how = update_kind if supports(member_fcs[name].estimator, update_kind) else "refit"
            move = judge("update", name, how, _score_losses(s_te, y_test, classes))
            round_moves.append((move, s_tr, s_te))
        if not chosen:
            round_moves.extend(combos)
        round_moves.sort(key=lambda m: -m[0].gain.value)
        best, s_tr, s_te = round_moves[0]
        considered.extend(m for m, _, _ in round_moves)
        if not best.accepted:
            break
        chosen.append(best)
        if best.kind == "update" and best.component in refitted:
            members_now[best.component] = refitted[best.component]
        elif best.kind == "update":
            extra_tr, extra_te = extra_tr + (s_tr - score_tr), extra_te + (s_te - score_te)
        score_tr, score_te = s_tr, s_te
        current = _score_losses(score_te, y_test, classes)
        if best.kind == "update" and best.component in remaining:
            remaining.remove(best.component)
        elif best.kind == "reweight":
            combos = []
            if ensemble is not None and ensemble.method != "stack":
                weights_after = {n: round(float(v), 6) for n, v in zip(
                    names, w / w.sum(), strict=True)}  # fmt: skip
                weights_now.update(weights_after)
            elif ensemble is not None:
                stacker_now = restacked
        else:
            break
    return Diagnosis(
        loss="squared_error" if classes is None else "log_loss",
        labelled_rows=len(labelled),
        train_rows=len(tr),
        test_rows=len(te),
        loss_before=loss_before,
        loss_after=float(current.mean()),
        chosen=tuple(chosen),
        considered=tuple(considered),
        member_loss=member_loss,
        cpu_seconds=time.process_time() - cpu0,
        weights=weights_after,
        probe="residual",
        refitted=tuple(n for n in probe_names if n in refitted),
    )
