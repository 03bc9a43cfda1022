"""Refresh an ensemble's weights on a labelled window, as a plan (``regrow refresh``).

:func:`refresh_ensemble` takes a version (``churn@champion`` by default) with a ``mean`` or
``vote`` ensemble and a labelled window, and

1. checks the window as ``regrow plan`` does (:mod:`regrow._refresh_window`): columns the
   version cannot read (missing, of another type, categories a member cannot take) in more
   than ``planning.max_unusable_share`` of the rows, or labels that are not its classes (not
   numbers, for a regressor) in more than that share of the labels, are refused with a
   :class:`~regrow.errors.DataError`; fewer are set aside. Then it scores every member on the
   labelled rows left, a **loss in [0, 1]**: a classifier's
   error rate (its own predicted label); a regressor's mean of ``min(1, |y - y_hat| / s)``
   with ``s`` the window's mean absolute deviation of ``y`` around its median (the error of
   the best constant guess), so a member that is off by more than that on a row loses that
   row entirely, as a wrong label does;
2. reads the ensemble's **refresh state** (each member's age and low-weight streak, the pool
   of retired members) stored by the refresh that resulted in the version, or in its nearest
   ancestor; with none, every member with a weight is established (past probation);
3. runs :func:`regrow.rollout.refresh.refresh` under the policy's ``ensemble`` section, with
   an optional **newcomer**: a copy of member ``add_member`` fitted on the window, its entry
   loss its 3-fold cross-validated loss there (:func:`~regrow.rollout.refresh.cross_val_loss`);
4. stores the result as a **plan**: ``add-member`` for an admitted newcomer, ``retire-member``
   for members pushed out of the pool, and ``reweight`` with every member's new weight. A
   retired member keeps its fitted component at weight 0, so a recurring concept can bring it
   back without a refit. Running the plan (``ws.run_plan``) fits only the newcomer; every
   other member is reused.

**Where the state lives.** The plan stores the whole refresh, the new state included, under
``signals["refresh"]`` (and ``"kind": "refresh"`` in its stored body). Once run, the plan
records the version it resulted in, so the state is found from the version: the newest
executed refresh plan that resulted in it (or in its nearest ancestor). It survives as long as
the catalog, needs no table of its own, and belongs to the version it describes: a plan never
run changes nothing, and a refresh whose weights did not move (its run makes no new version)
still advances the ages and streaks. The records: :mod:`regrow._refresh_records`.

**Audit.** Every event (``admitted``, ``readmitted``, ``retired``, ``dropped``, ``capped``,
``removed`` from the pool) and the new weights are audited as ``ensemble.<event>`` on subject
``ensemble:<system>``, with the losses and the weights before and after; the same refresh
made again is the same plan, audited once: its costs are learned from the runs up to the
version, and the state of a refresh of the same version on the same window is not read back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd
from sklearn.base import clone

from regrow._refresh_records import (
    MemberRow,
    audit_refresh,
    current_state,
    member_rows,
    state_dict,
    store_plan,
    stored_state,
)
from regrow._refresh_window import MIN_LABELLED_ROWS, Labelled, labelled_rows
from regrow.components.base import Ensemble, Member
from regrow.components.fitted import combine, feature_frame
from regrow.errors import PlanError
from regrow.plan.actions import Action, AddMember, FullRetrain, RetireMember, Reweight
from regrow.plan.costs import CostModel
from regrow.plan.plan import Plan
from regrow.plan.policy import Policy
from regrow.plan_runs import after_actions
from regrow.rollout.refresh import (
    EnsembleState,
    Entrant,
    Refreshed,
    RefreshPolicy,
    cross_val_loss,
    refresh,
)
from regrow.services import Services
from regrow.windows import open_window, store_window

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.catalog.records import SnapshotRecord, SystemVersionRecord
    from regrow.catalog.store import ArtifactStore
    from regrow.model import FittedSystem
    from regrow.system import System

__all__ = [
    "MIN_LABELLED_ROWS",
    "EnsembleRefresh",
    "MemberRow",
    "current_state",
    "refresh_ensemble",
]


class RowLoss(Protocol):
    """Each row's loss in [0, 1] of a member's ``output`` (probabilities, labels or values)."""

    def __call__(self, output: np.ndarray, truth: np.ndarray = ...) -> np.ndarray: ...


class Refreshable(Protocol):
    """What :func:`refresh_ensemble` needs of a workspace (:class:`regrow.Workspace` has it)."""

    catalog: Catalog
    store: ArtifactStore

    @property
    def home(self) -> Path: ...

    def require(self, role: str, what: str) -> None: ...

    def policy(self) -> Policy: ...

    def snapshot(
        self,
        data: Any,
        *,
        name: str,
        time_column: str | None = ...,
        slices: Mapping[str, str] | None = ...,
        check_schema: bool = ...,
    ) -> SnapshotRecord: ...


@dataclass(frozen=True)
class EnsembleRefresh:
    """What :func:`refresh_ensemble` decided: the plan (stored unless ``dry_run``), a row per
    member, the new state, where the old one came from (``None``: no earlier refresh) and what
    the window's check said (rows set aside, labels left out)."""

    plan: Plan
    rows: tuple[MemberRow, ...]
    state: EnsembleState
    loss: str
    stored: bool
    state_from: str | None
    notes: tuple[str, ...] = ()  # what the window's screening set aside or left unlabelled


def refresh_ensemble(
    ws: Refreshable,
    system_ref: str,
    window: Any,
    *,
    add_member: str | None = None,
    dry_run: bool = False,
    reason: str = "",
    policy: Policy | None = None,
) -> EnsembleRefresh:
    """Refresh the weights of ``system_ref``'s ensemble on labelled ``window``, as a plan.

    ``system_ref`` is a version (``churn:v3``, ``churn@live``) or a system name, which means
    its ``champion``. ``window`` is a snapshot or rows (see :meth:`regrow.Workspace.plan`).
    ``add_member`` names a member whose copy, fitted on the window, may join. ``dry_run``
    computes everything and writes nothing. ``policy`` defaults to the workspace's. Run the
    plan with ``ws.run_plan(result.plan.id)`` (an added member needs approval by default).
    See the module docstring for the losses, the state and the audit events.
    """
    ws.require("viewer" if dry_run else "operator", "refresh an ensemble")
    policy = policy or ws.policy()
    rules = RefreshPolicy(**policy.ensemble.model_dump())
    services = Services(ws.catalog, ws.store, ws.snapshot, home=str(ws.home))
    ref = system_ref if ":" in system_ref or "@" in system_ref else f"{system_ref}@champion"
    version = services.version(ref)
    model = services.load(version)
    system = model.definition()
    ens = _mean_ensemble(system.ensemble, version.ref)
    rows = open_window(services, version, window)
    shown = str(window) if isinstance(window, str | Path) else rows.record.name
    labelled = labelled_rows(services, version, model, rows, policy.planning, name=shown)
    frame = labelled.frame
    loss_of, loss_name = _row_loss(model, frame[model.target].to_numpy())
    outputs = model.member_outputs(frame)
    stored, state_from = stored_state(ws.catalog, version, rows.record.id)
    before = current_state(ens, stored, rules)
    losses = {m: float(np.mean(loss_of(outputs[m]))) for m in ens.members}
    newcomer = None
    if add_member is not None:
        newcomer = _newcomer(model, add_member, frame, loss_of, seed=policy.planning.seed)
    out = refresh(
        before, {m.name: losses[m.name] for m in before.members}, rules,
        newcomer=newcomer, pool_losses={p: losses[p] for p in before.pool},
    )  # fmt: skip
    out, admitted = _settle(out, newcomer)
    actions = _actions(ens, add_member, admitted, out.state, policy.ensemble.model_dump())
    weights_after = {m.name: m.weight for m in out.state.members}
    record = {
        "ensemble": ens.name,
        "loss": loss_name,
        "losses": {m: round(x, 6) for m, x in losses.items()},
        "newcomer": asdict(newcomer) if newcomer is not None else None,
        "before": before.weights(),
        "after": weights_after,
        "ensemble_loss": {
            "before": _blend_loss(ens, before.weights(), outputs, model, loss_of),
            "after": None if admitted else _blend_loss(ens, weights_after, outputs, model, loss_of),
        },
        "events": [asdict(e) for e in out.events],
        "state": state_dict(out.state),
        "state_from": state_from,
    }
    plan = _plan(services, version, rows.record, system, actions, record, policy, reason,
                 labelled)  # fmt: skip
    plan = replace(plan, signals={**plan.signals, "labelled_rows": len(frame)})
    table = member_rows(ens, before, out, losses, newcomer)
    notes = (*rows.notes, *labelled.lines)
    if dry_run:
        return EnsembleRefresh(plan, table, out.state, loss_name, False, state_from, notes)
    win = store_window(services, rows)
    plan = replace(plan, window=win.id)
    new = store_plan(ws.catalog, plan)
    if new:
        audit_refresh(ws.catalog, plan, record, table)
    return EnsembleRefresh(plan, table, out.state, loss_name, True, state_from, notes)


def _mean_ensemble(ens: Ensemble | None, ref: str) -> Ensemble:
    if ens is None:
        raise PlanError(
            f"{ref} has no ensemble: there are no members' weights to refresh",
            hint="add an Ensemble of two or more members (method 'mean' or 'vote') to the system",
        )
    if ens.method in ("stack", "gate"):
        what = "learns its combination" if ens.method == "stack" else "routes rows by its gate"
        raise PlanError(
            f"the ensemble {ens.name!r} of {ref} is a {ens.method}: it {what}, it has no "
            "weights to refresh",
            hint=f"plan an update with `regrow plan --version {ref} --window ...`"
            if ens.method == "stack"
            else f"refit its members with `regrow update {ref} --snapshot WINDOW -c MEMBER`",
        )
    return ens


def _row_loss(model: FittedSystem, y: np.ndarray) -> tuple[RowLoss, str]:
    """Each row's loss in [0, 1] of an output (see the module docstring), and its name."""
    if model.classes_ is not None:
        classes = np.asarray(model.classes_)

        def wrong(output: np.ndarray, truth: np.ndarray = y) -> np.ndarray:
            predicted = output if output.ndim == 1 else classes[output.argmax(axis=1)]
            return np.asarray(predicted != truth, dtype=float)

        return wrong, "error rate"
    values = y.astype(float)
    scale = float(np.mean(np.abs(values - np.median(values)))) or float(np.finfo(float).eps)

    def off(output: np.ndarray, truth: np.ndarray = values) -> np.ndarray:
        return np.asarray(np.minimum(1.0, np.abs(truth - output.astype(float)) / scale))

    return off, f"absolute error / {scale:.4g} (capped at 1)"


def _newcomer(
    model: FittedSystem, like: str, frame: pd.DataFrame, loss_of: RowLoss, *, seed: int
) -> Entrant:
    """The entrant ``like`` copied: its name and its 3-fold cross-validated loss on ``frame``."""
    spec = model.definition()[like]  # raises with a close-match hint
    if not isinstance(spec, Member):
        raise PlanError(
            f"add-member copies a member; {like!r} is not one (it is the {spec.kind})",
            hint=f"name one of the members: {[m.name for m in model.definition().members]}",
        )
    transforms = {n: c for n, c in model.components.items() if c.spec.kind == "transform"}
    X = feature_frame(spec, frame, transforms)
    y = frame[model.target].to_numpy()
    estimator = spec.estimator

    class Rows:  # cross_val_loss slices arrays: it is handed row numbers
        def __init__(self, fitted: Any) -> None:
            self.fitted = fitted

        def predict(self, at: np.ndarray) -> np.ndarray:
            return np.asarray(self.fitted.predict(X.iloc[at[:, 0]]))

    def fit(at: np.ndarray, target: np.ndarray) -> Rows:
        return Rows(clone(estimator).fit(X.iloc[at[:, 0]], target))

    def score(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        return loss_of(predicted, truth)

    loss, _ = cross_val_loss(
        fit, np.arange(len(frame)).reshape(-1, 1), y, folds=3, seed=seed, loss=score
    )
    names = set(model.components)
    k = 1
    while f"{like}_r{k}" in names:
        k += 1
    return Entrant(f"{like}_r{k}", float(loss))


def _settle(out: Refreshed, newcomer: Entrant | None) -> tuple[Refreshed, bool]:
    """A newcomer dropped at once is never fitted: it leaves the pool too."""
    if newcomer is None or newcomer.name in out.state.weights():
        return out, newcomer is not None
    pool = tuple(p for p in out.state.pool if p != newcomer.name)
    return replace(out, state=replace(out.state, pool=pool)), False


def _actions(
    ens: Ensemble,
    like: str | None,
    admitted: bool,
    state: EnsembleState,
    hedge: Mapping[str, Any],
) -> list[Action]:
    """Add the newcomer, retire members out of the pool, then weigh every member left; each
    action names its recipe (lineage shows which built each component), the reweight's
    parameters being the policy's ``ensemble`` section (``hedge``)."""
    from regrow.recipes import get_recipe

    def ref(name: str) -> str:
        return get_recipe(name).ref

    why = "ensemble refresh"
    actions: list[Action] = []
    new = [m.name for m in state.members if m.name not in ens.members]
    if admitted and like is not None:
        actions += [AddMember(like, reason=f"{why}: a newcomer fitted on the window",
                              new_name=n, recipe=ref("add-member-copy")) for n in new]  # fmt: skip
    kept = set(state.weights()) | set(state.pool)
    actions += [
        RetireMember(
            m,
            reason=f"{why}: out of the pool (policy ensemble.pool_size)",
            recipe=ref("retire-member"),
        )
        for m in ens.members
        if m not in kept
    ]
    members = [m for m in ens.members if m in kept] + new
    weights = {m: round(state.weights().get(m, 0.0), 6) for m in members}
    actions.append(Reweight(ens.name, reason=f"{why}: Hedge + fixed share", weights=weights,
                            recipe=ref("ensemble-hedge-refresh"),
                            recipe_params=dict(hedge)))  # fmt: skip
    return actions


def _blend_loss(
    ens: Ensemble,
    weights: Mapping[str, float],
    outputs: Mapping[str, np.ndarray],
    model: FittedSystem,
    loss_of: RowLoss,
) -> float:
    """The ensemble's loss on the window with ``weights`` (in sample: learned on it)."""
    blend = Ensemble(
        ens.name,
        ens.members,
        weights={m: weights.get(m, 0.0) for m in ens.members},
        method=ens.method,
    )
    return round(float(np.mean(loss_of(combine(blend, outputs, model.classes_)))), 6)


def _plan(
    services: Services,
    version: SystemVersionRecord,
    window: SnapshotRecord,
    system: System,
    actions: list[Action],
    record: Mapping[str, Any],
    policy: Policy,
    reason: str,
    labelled: Labelled,
) -> Plan:
    """The refresh as a plan: checked, costed and with its approvals, as a planned update.

    The costs are learned from the component versions fitted up to ``version``, so that the
    same refresh made again, after runs measured more, is the same plan.
    """
    costs = CostModel.from_history(
        r
        for name in system.components
        for r in services.catalog.component_history(system.name, name)
        if r.created_at <= version.created_at
    )
    checked: list[Action] = []
    for a in actions:
        now = after_actions(system, checked)
        a.check(policy, now)
        checked.append(replace(a, cost=a.estimate(costs, now, window.rows),
                               approval=policy.needs_approval(a.kind)))  # fmt: skip
    after_actions(system, checked)  # the new weights make a valid ensemble
    estimated = sum(a.cost.cpu_seconds for a in checked if a.cost)
    full = FullRetrain("*").estimate(costs, system, window.rows)
    e = policy.ensemble
    rationale = [
        f"ensemble refresh of {record['ensemble']!r} on window {window.name!r}: Hedge "
        f"(eta {e.eta:g}) and fixed share (alpha {e.alpha:g}) on each member's "
        f"{record['loss']}",
        f"state from the refresh that made {record['state_from']}"
        if record["state_from"]
        else "no earlier refresh: every weighted member counts as established",
        *(f"{ev['member']}: {ev['kind']} ({ev['reason']})" for ev in record["events"]),
        *labelled.lines,
        *([reason] if reason else []),
    ]
    return Plan(
        system=system.name,
        version=version.ref,
        version_id=version.id,
        window=window.id,
        actions=tuple(checked),
        rationale=tuple(rationale),
        contingency="if the candidate fails its gates: keep the champion",
        signals={"refresh": dict(record)},
        cost={
            "estimated_cpu_seconds": round(estimated, 4),
            "full_retrain_cpu_seconds": round(full.cpu_seconds, 4),
        },
        data={
            "mode": "recent",
            "window_rows": window.rows,
            "retained_rows": 0,
            **labelled.data,
        },
        policy=policy.to_dict(),
        needs_approval=any(a.approval for a in checked)
        or estimated > policy.budgets.max_cpu_seconds,
    )
