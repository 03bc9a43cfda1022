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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize, nnls
from scipy.stats import norm

from regrow.components.base import Ensemble
from regrow.components.fitted import (
    FittedComponent,
    combine,
    feature_frame,
    fit_component,
    fit_stacker,
    stack_features,
    stack_output,
)
from regrow.model import FittedSystem
from regrow.plan.policy import Planning
from regrow.plan.updates import apply_update, supports

__all__ = ["Diagnosis", "DomainCheck", "Gain", "Move", "diagnose", "domain_check", "row_losses"]

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
        z = float(norm.ppf(0.5 + confidence / 2))
        return cls(mean, mean - z * se, mean + z * se, len(diff))

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
        }


def _verdict(gain: Gain, threshold: float, share: float) -> tuple[bool, str]:
    """Whether a gain is significant and worth it, and the sentence that says so."""
    head = f"gain {gain.value:.4g} [{gain.low:.4g}, {gain.high:.4g}] on {gain.rows} held-out rows"
    if gain.low <= 0:
        return False, f"{head}: its interval reaches 0"
    if gain.value < threshold:
        return False, f"{head}: below the {threshold:.4g} worth an update ({share:.0%} of the loss)"
    return True, f"{head}: significant, and above the {threshold:.4g} threshold ({share:.0%})"


def row_losses(output: np.ndarray, y: np.ndarray, classes: Sequence[Any] | None) -> np.ndarray:
    """Per-row loss: squared error (values) or log loss (probability matrices)."""
    if classes is None:
        return np.asarray((np.asarray(y, dtype=float) - output) ** 2, dtype=float)
    idx = {c: i for i, c in enumerate(classes)}
    cols = np.array([idx.get(v, -1) for v in y])
    p = np.where(cols >= 0, output[np.arange(len(y)), np.clip(cols, 0, None)], 0.0)
    return np.asarray(-np.log(np.clip(p, _EPS, 1.0)), dtype=float)


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
        w = _mean_weights([cols[n][0] for n in names], self.y_train, self.classes)
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
            w = _mean_weights([cols[n][0] for n in names], self.y_train, self.classes)
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


def _mean_weights(
    outputs: Sequence[np.ndarray], y: np.ndarray, classes: Sequence[Any] | None
) -> np.ndarray:
    """Non-negative weights of a weighted mean that minimise the loss on ``y``."""
    if classes is None:
        A = np.column_stack(outputs)
        w, _ = nnls(A, np.asarray(y, dtype=float))
        return w if w.sum() > 0 else np.ones(len(outputs))
    stacked = np.stack(outputs)

    def loss(theta: np.ndarray) -> float:
        w = np.exp(theta - theta.max())
        w = w / w.sum()
        p = np.tensordot(w, stacked, axes=1)
        return float(row_losses(p, y, classes).mean())

    res = minimize(loss, np.zeros(len(outputs)), method="Nelder-Mead", options={"maxiter": 400})
    w = np.exp(res.x - res.x.max())
    return np.asarray(w / w.sum())


def diagnose(
    model: FittedSystem,
    window: pd.DataFrame,
    *,
    planning: Planning,
    members: Sequence[str] | None = None,
) -> Diagnosis:
    """Probe every member (or ``members``) of ``model`` on the labelled ``window``.

    With ``planning.probe == "residual"`` (the default; regression and binary classification)
    each probe is a small boosted model on the member's inputs fitted to what the system now
    gets wrong; with ``"refit"`` (and for multiclass systems) each probe refits the member.
    """
    cpu0 = time.process_time()
    target = model.target
    labelled = window[window[target].notna()]
    rng = np.random.default_rng(planning.seed)
    order = rng.permutation(len(labelled))
    n_train = min(round(len(labelled) * planning.probe_fraction), planning.probe_max_rows)
    train = labelled.iloc[np.sort(order[:n_train])]
    test = labelled.iloc[np.sort(order[n_train:])]
    y_train, y_test = train[target].to_numpy(), test[target].to_numpy()
    classes = model.classes_
    ensemble_fc = next((c for c in model.components.values() if isinstance(c.spec, Ensemble)), None)
    ensemble = ensemble_fc.spec if ensemble_fc is not None else None
    assert ensemble is None or isinstance(ensemble, Ensemble)
    member_fcs = {n: c for n, c in model.components.items() if c.spec.kind == "member"}
    transforms = {n: c for n, c in model.components.items() if c.spec.kind == "transform"}
    probe_names = [m for m in (members or list(member_fcs)) if m in member_fcs]
    if planning.probe == "residual" and (classes is None or len(classes) == 2):
        return _residual_diagnosis(
            model, labelled, train, test, planning, member_fcs, transforms, probe_names,
            ensemble, cpu0,
        )  # fmt: skip

    stale: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, fc in member_fcs.items():
        stale[name] = (model._member_output(fc, train), model._member_output(fc, test))
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
        ok, why = _verdict(gain, threshold, planning.min_relative_gain)
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
            if ensemble is not None and ensemble.method != "stack" and state.reweight
            else None
        ),
    )


def _system_output(
    model: FittedSystem,
    ensemble: Ensemble | None,
    outputs: Mapping[str, np.ndarray],
    stacker: Any = None,
) -> np.ndarray:
    """The system's output (values, or probability matrices) from its members' outputs."""
    if ensemble is None:
        return next(iter(outputs.values()))
    if ensemble.method == "stack":
        X = stack_features(ensemble, outputs)
        return stack_output(stacker, X, model.classes_)
    return np.asarray(combine(ensemble, outputs, model.classes_))


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


def _probe_model(seed: int) -> Any:
    """60 rounds of small trees: LightGBM when installed (several times faster on small data)."""
    try:
        from lightgbm import LGBMRegressor
    except ImportError:
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(
            max_iter=60, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=40,
            early_stopping=False, random_state=seed,
        )  # fmt: skip
    return LGBMRegressor(
        n_estimators=60, learning_rate=0.1, num_leaves=15, min_child_samples=40,
        n_jobs=1, verbose=-1, random_state=seed,
    )  # fmt: skip


def _residual_probe(
    X_train: pd.DataFrame,
    X_test: pd.DataFrame,
    score_train: np.ndarray,
    y_train: np.ndarray,
    classes: Sequence[Any] | None,
    seed: int,
) -> np.ndarray:
    """A small boosted model of what the current score gets wrong; its correction on test.

    Regression: fitted to the residuals. Binary classification: one Newton step on the
    logit (working response ``(y - p) / (p (1 - p))``, weights ``p (1 - p)``), as LogitBoost.
    """
    probe = _probe_model(seed)
    if classes is None:
        probe.fit(X_train, y_train - score_train)
        return np.asarray(probe.predict(X_test), dtype=float)
    p = 1 / (1 + np.exp(-score_train))
    positive = (np.asarray(y_train) == classes[1]).astype(float)
    w = np.clip(p * (1 - p), 1e-3, None)
    probe.fit(X_train, np.clip((positive - p) / w, -4, 4), sample_weight=w)
    return np.asarray(probe.predict(X_test), dtype=float)


def _residual_diagnosis(
    model: FittedSystem,
    labelled: pd.DataFrame,
    train: pd.DataFrame,
    test: pd.DataFrame,
    planning: Planning,
    member_fcs: Mapping[str, FittedComponent],
    transforms: Mapping[str, FittedComponent],
    probe_names: Sequence[str],
    ensemble: Ensemble | None,
    cpu0: float,
) -> Diagnosis:
    target = model.target
    classes = model.classes_
    y_train, y_test = train[target].to_numpy(), test[target].to_numpy()
    # One prediction per member on the labelled rows; everything else reuses these outputs.
    outputs = {n: model._member_output(fc, labelled) for n, fc in member_fcs.items()}
    pos = {i: k for k, i in enumerate(labelled.index)}
    tr = np.array([pos[i] for i in train.index])
    te = np.array([pos[i] for i in test.index])
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
        ok, why = _verdict(gain, threshold, planning.min_relative_gain)
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
            w = _mean_weights([outputs[n][tr] for n in names], y_train, classes)
            new = np.tensordot(w / w.sum(), np.stack([outputs[n] for n in names]), axes=1)
        s_tr, s_te = _score(new[tr], classes), _score(new[te], classes)
        combos.append((judge("reweight", ensemble.name, "", _score_losses(s_te, y_test, classes)),
                       s_tr, s_te))  # fmt: skip
    weights_after: dict[str, float] | None = None
    update_kind = planning.prefer
    remaining = list(probe_names)
    while remaining:
        round_moves = []
        for name in remaining:
            corr = _residual_probe(
                inputs[name].iloc[tr], inputs[name], score_tr, y_train, classes, planning.seed
            )
            s_tr, s_te = score_tr + corr[tr], score_te + corr[te]
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
        score_tr, score_te = s_tr, s_te
        current = _score_losses(score_te, y_test, classes)
        if best.kind == "update" and best.component in remaining:
            remaining.remove(best.component)
        elif best.kind == "reweight":
            combos = []
            if ensemble is not None and ensemble.method != "stack":
                weights_after = {n: round(float(v), 6) for n, v in zip(
                    names, w / w.sum(), strict=True)}  # fmt: skip
        else:
            break
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
        weights=weights_after,
        probe="residual",
    )


@dataclass(frozen=True)
class DomainCheck:
    """How well a classifier tells window rows from reference rows (0.5: not at all)."""

    auc: float
    low: float
    high: float
    rows: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {"auc": self.auc, "low": self.low, "high": self.high, "rows": self.rows}


def domain_check(
    reference: pd.DataFrame,
    window: pd.DataFrame,
    columns: Sequence[str],
    *,
    seed: int = 0,
    rows: int = 2000,
    confidence: float = 0.95,
) -> DomainCheck:
    """Multivariate drift: the held-out AUC of a small boosted classifier of window vs reference.

    Per-feature tests miss a shift in how features go together (a correlation that flips,
    each marginal unchanged); a classifier on all ``columns`` sees it. Up to ``rows`` rows of
    each side, half to fit, half to score; the interval is Hanley and McNeil's.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    n = min(rows, len(reference), len(window))
    ref = reference[list(columns)].sample(n, random_state=seed)
    win = window[list(columns)].sample(n, random_state=seed + 1)
    X = pd.concat([ref, win], ignore_index=True)
    for col in X.columns:
        if not pd.api.types.is_numeric_dtype(X[col]):
            X[col] = X[col].astype("category")
    y = np.r_[np.zeros(n), np.ones(n)]
    order = np.random.default_rng(seed).permutation(2 * n)
    fit, score = order[:n], order[n:]
    clf = HistGradientBoostingClassifier(
        max_iter=50, max_leaf_nodes=15, learning_rate=0.1, early_stopping=False,
        random_state=seed, categorical_features="from_dtype",
    )  # fmt: skip
    clf.fit(X.iloc[fit], y[fit])
    auc = float(roc_auc_score(y[score], clf.predict_proba(X.iloc[score])[:, 1]))
    n1 = float(y[score].sum())
    n0 = len(score) - n1
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n0 * n1)
    z = float(norm.ppf(0.5 + confidence / 2))
    half = z * float(np.sqrt(max(var, 0.0)))
    return DomainCheck(auc, auc - half, auc + half, len(score))
