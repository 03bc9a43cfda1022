"""Diagnostics: which update would win back the most loss, measured before it is paid for.

With labels in the window, every member gets a **probe**: the update the policy prefers for it
(a refit, or continued boosting), fitted on part of the window (``probe_fraction``, at most
``probe_max_rows`` rows) and scored with the rest of the system on the other part. A greedy
forward search then builds the smallest set of moves (refit a member, add a refitted copy next
to it, retire it, reweight the ensemble), each accepted only when its marginal gain on the
held-out rows is significant (the lower end of its interval above 0) and worth it (at least
``min_relative_gain`` of the current loss). The search is what keeps the plan small: once the
member whose relationship changed is refitted, a sibling whose probe only looked good because
that change leaked into the shared target has nothing left to win.

Gains are in loss units (squared error for regression, log loss for classification), with a
normal interval over the paired row differences. They are conservative: the probe trains on
fewer rows than the update will.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from regrow.components.base import Ensemble
from regrow.components.fitted import fit_component, fit_stacker, stack_features, stack_output
from regrow.components.outputs import OutputsFn
from regrow.errors import PlanError
from regrow.model import FittedSystem
from regrow.plan.domain import DomainCheck, domain_check
from regrow.plan.gains import Diagnosis, Gain, Move, mean_weights, row_losses, verdict
from regrow.plan.policy import Planning
from regrow.plan.residual import residual_diagnosis
from regrow.plan.updates import apply_update, supports

__all__ = ["Diagnosis", "DomainCheck", "Gain", "Move", "diagnose", "domain_check", "row_losses"]


@dataclass
class _State:
    replaced: frozenset[str] = frozenset()
    added: frozenset[str] = frozenset()
    retired: frozenset[str] = frozenset()
    reweight: bool = False

    def with_(self, **changes: Any) -> _State:
        return _State(**{**self.__dict__, **changes})

    def changed(self) -> bool:
        return bool(self.replaced or self.added or self.retired or self.reweight)


class _Search:
    """Scores system variants on the probe split from cached member outputs."""

    def __init__(
        self,
        model: FittedSystem,
        ensemble: Ensemble | None,
        stale: Mapping[str, tuple[np.ndarray, np.ndarray]],
        probes: Mapping[str, tuple[np.ndarray, np.ndarray]],
        y_train: np.ndarray,
        y_test: np.ndarray,
    ) -> None:
        self.model = model
        self.ensemble = ensemble
        self.stale = stale
        self.probes = probes
        self.y_train = y_train
        self.y_test = y_test
        self.classes = model.classes_

    def _columns(self, state: _State) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        cols: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for m, out in self.stale.items():
            if m in state.retired:
                continue
            cols[m] = self.probes[m] if m in state.replaced else out
            if m in state.added:
                cols[f"{m}+new"] = self.probes[m]
        return cols

    def mean_weights(self, state: _State) -> dict[str, float]:
        """The learned weights of a reweighted mean ensemble in ``state`` (sum 1)."""
        cols = self._columns(state)
        names = list(cols)
        w = mean_weights([cols[n][0] for n in names], self.y_train, self.classes)
        w = w / w.sum()
        return {n: round(float(v), 6) for n, v in zip(names, w, strict=True)}

    def losses(self, state: _State) -> np.ndarray:
        cols = self._columns(state)
        ens = self.ensemble
        if ens is None:
            (_, test), *_ = cols.values()
            return row_losses(test, self.y_test, self.classes)
        names = list(cols)
        if ens.method == "stack":
            refit = state.changed()
            weights = {n: ens.weights.get(n.removesuffix("+new"), 1.0) for n in names}
            view = Ensemble(ens.name, names, weights=weights, method="stack")
            X_test = stack_features(view, {n: cols[n][1] for n in names})
            stacker = self.model.components[ens.name].estimator
            if refit or X_test.shape[1] != _n_features(stacker):
                X_train = stack_features(view, {n: cols[n][0] for n in names})
                stacker = fit_stacker(X_train, self.y_train, self.classes)
            return row_losses(
                stack_output(stacker, X_test, self.classes), self.y_test, self.classes
            )
        if state.reweight:
            w = mean_weights([cols[n][0] for n in names], self.y_train, self.classes)
        else:
            w = np.array([ens.weights.get(n.removesuffix("+new"), 1.0) for n in names])
            if w.sum() <= 0:
                w = np.ones(len(names))
        w = w / w.sum()
        stacked = np.stack([cols[n][1] for n in names])
        out = np.tensordot(w, stacked, axes=1)
        if self.classes is not None:
            total = out.sum(axis=1, keepdims=True)
            out = np.divide(out, total, out=np.full_like(out, 1.0 / out.shape[1]), where=total > 0)
        return row_losses(out, self.y_test, self.classes)


def _n_features(stacker: Any) -> int:
    return int(getattr(stacker, "n_features_in_", -1))


def diagnose(
    model: FittedSystem,
    window: pd.DataFrame,
    *,
    planning: Planning,
    members: Sequence[str] | None = None,
    outputs: OutputsFn | None = None,
) -> Diagnosis:
    """Probe every member (or ``members``) of ``model`` on the labelled ``window``.

    With ``planning.probe == "residual"`` (the default; regression and binary classification)
    each probe is a small boosted model on the member's inputs fitted to what the system now
    gets wrong; with ``"refit"`` (and for multiclass systems) each probe refits the member.
    ``outputs`` gives the members' current outputs on rows when the caller keeps them
    (:class:`regrow.cache.OutputCache`); by default they are predicted.
    """
    cpu0 = time.process_time()
    target = model.target
    labelled = window[window[target].notna()]
    rng = np.random.default_rng(planning.seed)
    order = rng.permutation(len(labelled))
    n_train = min(round(len(labelled) * planning.probe_fraction), planning.probe_max_rows)
    tr, te = np.sort(order[:n_train]), np.sort(order[n_train:])
    train, test = labelled.iloc[tr], labelled.iloc[te]
    y_train, y_test = train[target].to_numpy(), test[target].to_numpy()
    now = dict(outputs(labelled)) if outputs is not None else model.member_outputs(labelled)
    classes = model.classes_
    ensemble_fc = next((c for c in model.components.values() if isinstance(c.spec, Ensemble)), None)
    ensemble = ensemble_fc.spec if ensemble_fc is not None else None
    assert ensemble is None or isinstance(ensemble, Ensemble)
    if ensemble is not None and ensemble.method == "gate":
        # The probes score member outputs alone; a gate also reads the rows it routes.
        raise PlanError(
            f"the probes cannot yet weigh updates under the gated ensemble {ensemble.name!r}",
            hint="refit the members that drifted on the window (`regrow update VERSION "
            "--snapshot WINDOW -c MEMBER`; a learned gate is refitted with them), or retrain "
            "(`regrow train FILE.py:NAME --snapshot WINDOW`)",
        )
    member_fcs = {n: c for n, c in model.components.items() if c.spec.kind == "member"}
    transforms = {n: c for n, c in model.components.items() if c.spec.kind == "transform"}
    probe_names = [m for m in (members or list(member_fcs)) if m in member_fcs]
    if planning.probe == "residual" and (classes is None or len(classes) == 2):
        return residual_diagnosis(
            model, labelled, (tr, te), now, planning, member_fcs, transforms, probe_names,
            ensemble, cpu0,
        )  # fmt: skip

    stale = {name: (now[name][tr], now[name][te]) for name in member_fcs}
    probes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    probe_kind: dict[str, str] = {}
    for name in probe_names:
        fc = member_fcs[name]
        how: str = planning.prefer if supports(fc.estimator, planning.prefer) else "refit"
        if how == "refit":
            probe = fit_component(
                fc.spec, train, target=target, upstream=transforms, seed=planning.seed
            )
        else:
            params = (
                {"extra": planning.continue_extra}
                if how == "continue"
                else {"decay_rate": planning.leaf_refit_decay}
            )
            probe = apply_update(
                fc,
                train,
                target=target,
                upstream=transforms,
                seed=planning.seed,
                action=how,
                params=params,
            )
        probe_kind[name] = how
        probes[name] = (model._member_output(probe, train), model._member_output(probe, test))

    member_loss: dict[str, dict[str, float]] = {}
    for name in member_fcs:
        entry = {"window": float(row_losses(stale[name][1], y_test, classes).mean())}
        if name in probes:
            entry["probe"] = float(row_losses(probes[name][1], y_test, classes).mean())
        member_loss[name] = entry

    search = _Search(model, ensemble, stale, probes, y_train, y_test)
    state = _State()
    current = search.losses(state)
    loss_before = float(current.mean())
    chosen: list[Move] = []
    considered: list[Move] = []
    active = len(member_fcs)
    while True:
        options: list[tuple[str, str | None, _State]] = []
        touched = state.replaced | state.added | state.retired
        for name in probe_names:
            if name in touched:
                continue
            options.append(("update", name, state.with_(replaced=state.replaced | {name})))
            if ensemble is not None:
                options.append(("add-member", name, state.with_(added=state.added | {name})))
        if ensemble is not None and active - len(state.retired) > 1:
            for name in member_fcs:
                if name not in touched:
                    options.append(
                        ("retire-member", name, state.with_(retired=state.retired | {name}))
                    )
        if (
            ensemble is not None
            and not state.reweight
            and not (ensemble.method == "stack" and state.changed())
        ):
            options.append(("reweight", ensemble.name, state.with_(reweight=True)))
        if not options:
            break
        scored = [(kind, comp, s, search.losses(s)) for kind, comp, s in options]
        best: tuple[str, str | None, _State, np.ndarray, Gain] | None = None
        round_moves: list[Move] = []
        for kind, comp, s, losses in scored:
            gain = Gain.of(current, losses, planning.confidence)
            round_moves.append(
                Move(
                    kind,
                    comp,
                    probe_kind.get(comp or "", "") if kind in ("update", "add-member") else "",
                    gain,
                    float(losses.mean()),
                    False,
                    "",
                )
            )
            if best is None or gain.value > best[4].value:
                best = (kind, comp, s, losses, gain)
        assert best is not None
        kind, comp, s, losses, gain = best
        # Adding a copy beside a member costs a member more at every prediction: prefer the
        # update in place unless the copy is significantly better.
        if kind == "add-member":
            inplace = next(x for x in scored if x[0] == "update" and x[1] == comp)
            edge = Gain.of(inplace[3], losses, planning.confidence)
            if edge.low <= 0:
                kind, comp, s, losses = inplace
                gain = Gain.of(current, losses, planning.confidence)
        threshold = planning.min_relative_gain * float(current.mean())
        ok, why = verdict(gain, threshold, planning.min_relative_gain)
        move = Move(
            kind,
            comp,
            probe_kind.get(comp or "", "") if kind in ("update", "add-member") else "",
            gain,
            float(losses.mean()),
            ok,
            why,
        )
        considered.extend(m for m in round_moves if (m.kind, m.component) != (kind, comp))
        considered.append(move)
        if not ok:
            break
        chosen.append(move)
        state, current = s, losses
    return Diagnosis(
        loss="squared_error" if classes is None else "log_loss",
        labelled_rows=len(labelled),
        train_rows=len(train),
        test_rows=len(test),
        loss_before=loss_before,
        loss_after=float(current.mean()),
        chosen=tuple(chosen),
        considered=tuple(considered),
        member_loss=member_loss,
        cpu_seconds=time.process_time() - cpu0,
        weights=(
            search.mean_weights(state)
            if ensemble is not None and ensemble.method in ("mean", "vote") and state.reweight
            else None
        ),
    )
