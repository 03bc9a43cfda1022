"""Escalation after the probes: is the partial plan enough, or does it take a full retrain?

:func:`review_plan` weighs the actions the diagnostics chose (the rules that need no probe,
broad feature drift and a large estimated loss increase, run before them in
:mod:`regrow.planning`):

1. **Broad**: at least ``escalation.max_degraded_members`` members need an update (and more
   than half of them), or more than ``max_degraded_share`` of them.
2. **A full retrain is expected to beat the plan by more than it costs**
   (``unexplained_drift: probe``). With ``L_plan`` the loss expected after the partial plan
   and ``L_full`` after a full retrain, the plan escalates when ``L_plan - L_full`` is
   significant (its interval's lower end above 0) and at least ``k * min_relative_gain *
   L_plan``, ``k`` being the members a full retrain refits that the plan keeps: each of those
   refits must win back what any member's update must win to be worth it (probes find up to
   that much unfitted signal per member on windows with no drift).

   How ``L_full`` is estimated: in a stack (or with a single member) the residual probes are
   faithful, since the stack is relearned around a refitted member; their last round already
   weighed updating each member the plan keeps, each below the bar, so together they find
   less than ``k`` bars and a full retrain cannot pay (the rationale says what they found).
   In a **mean or vote** ensemble a refitted member counts only its weight, so the residual
   probes overstate a partial plan: :mod:`regrow.plan.full_probe` estimates both plans the
   same way, and decides.

   Drift that raises members' loss with no update chosen therefore escalates only when a
   full retrain is expected to win it back; otherwise the plan is empty and says the data or
   the model needs a human. ``unexplained_drift: escalate`` keeps the rule before probes
   (such drift always escalates); ``ignore`` never escalates on this ground.

The :class:`Review` carries the reasons to escalate, the rationale lines, the probe's figures
for the plan's signals, and the expected loss (after the full retrain when the plan escalates).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from regrow.components.outputs import OutputsFn
from regrow.model import FittedSystem
from regrow.plan.actions import Action
from regrow.plan.diagnostics import Diagnosis
from regrow.plan.full_probe import PlanProbe, probe_plans
from regrow.plan.policy import Policy
from regrow.plan.proposals import diagnosis_lines
from regrow.system import System

__all__ = ["Review", "review_plan"]


@dataclass(frozen=True)
class Review:
    """What the review found: reasons to escalate (none: the partial plan stands), the
    rationale lines, the full-retrain probe (when it ran) and the diagnosis, its CPU
    included."""

    diagnosis: Diagnosis
    reasons: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()
    probe: PlanProbe | None = None

    @property
    def signals(self) -> dict[str, Any]:
        """The probe's figures for the plan's signals (no CPU seconds: a plan's id is its
        content, the same on the same inputs)."""
        if self.probe is None:
            return {}
        body = self.probe.to_dict()
        body.pop("cpu_seconds")
        return {"full_retrain_probe": body}

    def expected(self, *, escalated: bool) -> dict[str, Any]:
        """The plan's expected loss: before, and after the partial plan or the full retrain:
        the full-retrain probe's estimates when it ran, else the residual probes' (after every
        move the search found worth an update)."""
        d, p = self.diagnosis, self.probe
        after = d.loss_after if p is None else p.full if escalated else p.partial
        out: dict[str, Any] = {
            "loss": d.loss,
            "before": round(d.loss_before, 6),
            "after": round(after, 6),
            "on_rows": d.test_rows,
        }
        if self.probe is not None:
            out["full_retrain"] = round(self.probe.full, 6)
        return out


def review_plan(
    model: FittedSystem,
    window: pd.DataFrame,
    system: System,
    diagnosis: Diagnosis,
    actions: Sequence[Action],
    policy: Policy,
    *,
    candidates: Collection[str] = (),
    drifted: Collection[str] = (),
    outputs: OutputsFn | None = None,
) -> Review:
    """Whether the partial ``actions`` chosen from ``diagnosis`` should escalate (see above).

    ``window`` holds the rows the diagnostics probed; ``outputs`` gives the members' current
    outputs on rows when the caller keeps them (as for :func:`~regrow.plan.diagnostics.diagnose`).
    """
    esc = policy.escalation
    reasons: list[str] = []
    lines: list[str] = []
    members = [m.name for m in system.members]
    degraded = len({a.component for a in actions if a.kind not in ("reweight", "retire-member")})
    if degraded >= esc.max_degraded_members and degraded > len(members) / 2:
        reasons.append(
            f"{degraded} of {len(members)} members need an update, at least the policy's "
            f"{esc.max_degraded_members} (escalation.max_degraded_members)"
        )
    elif members and degraded / len(members) > esc.max_degraded_share:
        reasons.append(
            f"{degraded} of {len(members)} members need an update, above the policy's "
            f"{esc.max_degraded_share:.0%} (escalation.max_degraded_share)"
        )
    probe: PlanProbe | None = None
    if not reasons and esc.unexplained_drift == "probe":
        share = policy.planning.min_relative_gain
        chosen = diagnosis.chosen
        refit = {m.component for m in chosen if m.kind in ("update", "add-member") and m.component}
        kept = [m for m in members if m not in refit]
        ens = system.ensemble
        if refit and ens is not None and ens.method != "stack" and diagnosis.probe == "residual":
            probe = probe_plans(
                model,
                window,
                planning=policy.planning,
                refit=refit,
                retired={m.component for m in chosen if m.kind == "retire-member" and m.component},
                weights=diagnosis.weights,
                outputs=outputs,
            )
            diagnosis = replace(diagnosis, cpu_seconds=diagnosis.cpu_seconds + probe.cpu_seconds)
            lines.append(_probe_line(probe, ens.method))
            e, price = probe.edge, len(kept) * share * probe.partial
            versus = (
                f"{probe.loss} {probe.full:.4g} after a full retrain vs {probe.partial:.4g} after "
                f"the partial plan ({probe.now:.4g} now): {e.value:.4g} [{e.low:.4g}, "
                f"{e.high:.4g}] lower on {e.rows} held-out rows"
            )
            bar = (
                f"the {price:.4g} that refitting the {len(kept)} member(s) the plan keeps must "
                f"win ({share:.0%} of the loss each)"
            )
            if e.low > 0 and e.value >= price:
                reasons.append(
                    f"a full retrain is expected to do better than the partial plan by more "
                    f"than it costs: {versus}, above {bar} (escalation.unexplained_drift)"
                )
            else:
                lines.append(f"a full retrain is not expected to do better by enough: {versus}; "
                             f"it would need {bar}")  # fmt: skip
        elif kept and (actions or candidates or drifted):
            room = _room(diagnosis, kept)
            lines.append(
                f"a full retrain is not expected to do better by enough: the residual probes "
                f"find {room:.4g} more to win back by refitting the {len(kept)} member(s) the "
                f"plan keeps ({diagnosis.loss} about {diagnosis.loss_after - room:.4g} after a "
                f"full retrain), each below what an update must win"
            )
        if not reasons and not actions and candidates:
            lines.append(
                f"the drift raises the loss of {', '.join(candidates)}, but neither a member's "
                "update nor a full retrain is expected to win it back: nothing is planned; if "
                "the loss matters, the data or the model needs a human"
            )
    elif not reasons and not actions and candidates and esc.unexplained_drift == "escalate":
        reasons.append(
            f"the drift raises the loss of {', '.join(candidates)} but no member's update wins "
            "it back (escalation.unexplained_drift)"
        )
    # With the probe, its estimate of the partial plan replaces the residual probes' one.
    lines = [*diagnosis_lines(diagnosis, expected=probe is None), *lines]
    return Review(diagnosis, tuple(reasons), tuple(lines), probe)


def _room(diagnosis: Diagnosis, members: Collection[str]) -> float:
    """What updating ``members`` could still win back by the residual probes: each one's
    significant gain in the last round of the search that weighed it, summed."""
    last: dict[str, float] = {}
    for m in diagnosis.considered:
        if m.kind == "update" and m.component is not None and m.component in members:
            last[m.component] = m.gain.value if m.gain.low > 0 else 0.0
    return sum(last.values())


def _probe_line(p: PlanProbe, method: str) -> str:
    how = "; ".join(sorted(set(p.stand_ins.values())))
    return (
        f"full-retrain probe (a {method} ensemble counts a refitted member only by its weight): "
        f"members refitted on the {p.train_rows} probe rows ({how}), combined, scored on the "
        f"other {p.test_rows}: {p.loss} {p.now:.4g} now, {p.partial:.4g} after the partial "
        f"plan, {p.full:.4g} after a full retrain"
    )
