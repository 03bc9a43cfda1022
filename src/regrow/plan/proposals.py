"""From a diagnosis to a plan's actions and sentences.

:func:`proposed_actions` turns the moves the diagnostics chose (:mod:`regrow.plan.diagnostics`)
into actions, each with its reason and gain: an update becomes ``refit``, or ``continue`` /
``leaf-refit`` when the probe used it (a torch member's, ``finetune`` under ``planning.neural:
finetune``); a stacked ensemble is refitted whenever a member changes. Each action is made by
its **recipe** (:mod:`regrow.recipes`): the one the policy's ``planning.recipes`` names for the
component or the action kind, else the default, and it records the recipe's ``name@version``
and parameters.
:func:`diagnosis_lines` says what the probes found, for the plan's rationale.
"""

from __future__ import annotations

from typing import Any

from regrow.plan.actions import Action
from regrow.plan.diagnostics import Diagnosis
from regrow.plan.gains import Move
from regrow.plan.policy import Policy
from regrow.recipes.base import family_of
from regrow.recipes.choice import choose
from regrow.system import System

__all__ = ["diagnosis_lines", "proposed_actions"]


def proposed_actions(system: System, diagnosis: Diagnosis, policy: Policy) -> list[Action]:
    """The diagnosis's chosen moves as actions, with their reasons."""
    planning = policy.planning
    out: list[Action] = []
    ens = system.ensemble
    for move in diagnosis.chosen:
        probe = "a residual probe" if diagnosis.probe == "residual" else f"a {move.update} probe"
        what = "the ensemble relearned" if move.kind == "reweight" else f"{probe} on its inputs"
        if move.kind == "retire-member":
            what = "leaving it out"
        reason = (
            f"{what} cuts the {diagnosis.loss} by {move.gain.value:.4g} "
            f"[{move.gain.low:.4g}, {move.gain.high:.4g}] on {move.gain.rows} held-out rows of "
            f"the window"
        )
        gain = move.gain
        comp = move.component or ""
        if move.kind == "update":
            member = system[comp]
            kind = move.update if move.update in ("continue", "leaf-refit") else "refit"
            if family_of(member) == "torch" and planning.neural == "finetune":
                kind = "finetune"  # its blocks are chosen by planning._neural
            out.append(_made(planning, member, kind, reason=reason, gain=gain))
        elif move.kind == "add-member":
            name, n = f"{comp}_2", 2
            while name in system:
                n += 1
                name = f"{comp}_{n}"
            out.append(
                _made(planning, system[comp], move.kind, reason=reason, gain=gain, new_name=name)
            )
        elif move.kind == "retire-member":
            out.append(_made(planning, system[comp], move.kind, reason=reason, gain=gain))
        elif move.kind == "reweight" and ens is not None:
            weights = None
            if diagnosis.weights:
                weights = {
                    k.removesuffix("+new"): v
                    for k, v in diagnosis.weights.items()
                    if not k.endswith("+new")
                }
            out.append(_made(planning, ens, "reweight", reason=reason, gain=gain, weights=weights))
    if (
        ens is not None
        and ens.method == "stack"
        and out
        and not any(a.kind == "reweight" for a in out)
    ):
        why = "a stack is refitted on the window when its members change"
        out.append(_made(planning, ens, "reweight", reason=why))
    return out


def _made(planning: Any, component: Any, kind: str, **fields: Any) -> Action:
    """The action of the recipe chosen for a ``kind`` action on ``component``."""
    choice = choose(planning, component, kind)
    if choice.note:
        fields["reason"] = f"{fields.get('reason', '')} ({choice.note})"
    action: Action = choice.action(component.name, **fields)
    return action


def diagnosis_lines(d: Diagnosis, *, expected: bool = True) -> list[str]:
    """The diagnosis in sentences: the probes, the moves chosen and the best not chosen, and
    (with ``expected``) the loss the residual probes expect after the chosen moves."""
    how = (
        "a small boosted model of what the system gets wrong, on each member's inputs"
        if d.probe == "residual"
        else "each member refitted"
    )
    if d.probe == "residual" and d.refitted:
        how += f" ({', '.join(d.refitted)}: linear, refitted as it is)"
    lines = [
        f"probes: {how}, fitted on {d.train_rows} labelled rows of the window and scored on "
        f"the other {d.test_rows}; {d.loss} of the current version there: {d.loss_before:.4g}"
    ]
    for m in d.chosen:
        lines.append(f"chosen: {_move(m)} — {m.why}")
    last: dict[str, Any] = {}
    for m in d.considered:
        if not m.accepted and m.component not in {c.component for c in d.chosen}:
            last[_move(m)] = m
    for label, m in sorted(last.items(), key=lambda kv: -kv[1].gain.value)[:6]:
        lines.append(f"not chosen: {label} — {m.why}")
    if d.chosen and expected:
        lines.append(
            f"expected {d.loss} after the update: {d.loss_after:.4g} (from {d.loss_before:.4g})"
        )
    return lines


def _move(m: Move) -> str:
    """A move for people: ``add-member net`` reads as a new member, so it says what it adds."""
    if m.kind == "add-member":
        return f"add-member {m.component} (a refitted copy beside it)"
    return f"{m.kind} {m.component}"
