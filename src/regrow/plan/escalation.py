"""Escalation after the probes: is the partial plan enough, or does it take a full retrain?

:func:`review_plan` weighs the actions the diagnostics chose (the rules that need no probe,
broad feature drift and a large estimated loss increase, run before them in
:mod:`regrow.planning`):

1. **Broad**: at least ``escalation.max_degraded_members`` members need an update (and more
   than half of them), or more than ``max_degraded_share`` of them. A system of one member is
   never broad on this ground: its member's update (a fine-tuning of some blocks of a
   network, a continued GBDT) is the smallest update it has, and rule 2 still weighs a full
   retrain against it.
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
   same way, and decides. There ``k`` counts the kept members by their share of the
   ensemble's weight, and the probe's estimate judges the partial plan itself first: its
   gain over now must be significant and at least the refitted members' weight share of
   ``min_relative_gain`` of the loss (or ``min_drift_share`` of what the drift added, when
   lower). A plan that fails is **dropped**; the member whose refit alone the probe expects
   to win the most replaces it when that passes the same bar (a boosted member instead of a
   linear one on the same inputs), else the full retrain is weighed against keeping the
   version. The probe refits the members and scores them on held-out rows, so the share a
   full retrain must win there can be set apart: ``escalation.full_retrain_gain`` (default:
   ``min_relative_gain``).

   Drift that raises members' loss with no update chosen therefore escalates only when a
   full retrain is expected to win it back; otherwise the plan is empty and says the data or
   the model needs a human. ``unexplained_drift: escalate`` keeps the rule before probes
   (such drift always escalates); ``ignore`` never escalates on this ground.

The :class:`Review` carries the reasons to escalate, the rationale lines, the probe's figures
for the plan's signals, and the expected loss (after the full retrain when the plan escalates).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from regrow.components.outputs import OutputsFn
from regrow.model import FittedSystem
from regrow.plan.actions import Action
from regrow.plan.diagnostics import Diagnosis, Gain, Move
from regrow.plan.full_probe import PlanProbe, probe_plans
from regrow.plan.policy import Policy
from regrow.plan.proposals import diagnosis_lines
from regrow.plan.thresholds import Thresholds
from regrow.plan.updates import supports
from regrow.system import System

__all__ = ["Review", "retrain_evidence", "review_plan"]


@dataclass(frozen=True)
class Review:
    """What the review found: reasons to escalate (none: the partial plan stands), the
    rationale lines, the full-retrain probe (when it ran) and the diagnosis, its CPU
    included."""

    diagnosis: Diagnosis
    reasons: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()
    probe: PlanProbe | None = None
    dropped: bool = False  # the partial plan is not worth running (mean or vote ensembles)
    swapped: str | None = None  # ... and refitting this member alone is, instead
    weighed: bool = False  # a full retrain was weighed against the plan on the labelled rows
    full_after: float | None = None  # the residual probes' loss after a full retrain

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
        after = (
            d.loss_after
            if p is None
            else p.full
            if escalated
            else p.now
            if self.dropped
            else d.loss_after
            if self.swapped
            else p.partial
        )
        out: dict[str, Any] = {
            "loss": d.loss,
            "before": round(d.loss_before, 6),
            "after": round(after, 6),
            "on_rows": d.test_rows,
        }
        if self.probe is not None:
            out["full_retrain"] = round(self.probe.full, 6)
        elif escalated and self.full_after is not None:  # the residual probes' estimate
            out["after"] = out["full_retrain"] = round(self.full_after, 6)
        elif escalated:  # the full retrain was not probed: "after" is the partial update's
            out["after_of"] = "partial"
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
    thresholds: Thresholds | None = None,
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
    if len(members) < 2:  # the one member's update is the smallest update there is
        pass
    elif degraded >= esc.max_degraded_members and degraded > len(members) / 2:
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
    dropped = False
    swap: str | None = None
    weighed = False
    full_after: float | None = None
    if not reasons and esc.unexplained_drift == "probe":
        share = policy.planning.min_relative_gain
        chosen = diagnosis.chosen
        refit = {m.component for m in chosen if m.kind in ("update", "add-member") and m.component}
        retired = {m.component for m in chosen if m.kind == "retire-member" and m.component}
        kept = [m for m in members if m not in refit and m not in retired]
        ens = system.ensemble
        if refit and ens is not None and ens.method != "stack" and diagnosis.probe == "residual":
            probe = probe_plans(
                model,
                window,
                planning=policy.planning,
                refit=refit,
                retired=retired,
                weights=diagnosis.weights,
                outputs=outputs,
            )
            weighed = True
            diagnosis = replace(diagnosis, cpu_seconds=diagnosis.cpu_seconds + probe.cpu_seconds)
            lines.append(_probe_line(probe, ens.method))
            weight = _weight_share(ens.weights, diagnosis.weights, retired)
            need, basis = _plan_bar(weight(refit), share, probe.now, thresholds, refit)
            g = probe.gain
            dropped = not g.clears(need)
            verdict = (
                f"{probe.loss} {probe.partial:.4g} after it vs {probe.now:.4g} now, {g.head}: "
                f"{g.worth(need, basis)}"
            )
            if dropped:
                lines.append(
                    f"the partial plan (the residual probes' choice: refit "
                    f"{', '.join(sorted(refit))}) is not worth running: {verdict}: a refitted "
                    f"member counts only by its weight in a {ens.method} ensemble, so the "
                    "residual probes' gains do not carry over"
                )
            else:
                lines.append(f"the partial plan is worth running: {verdict}")
            swap = _best_single(probe, retired, weight, share, thresholds) if dropped else None
            if swap is not None:  # the probe's own pick: a member whose refit does carry over
                sg, edge = probe.singles[swap]
                need, basis = _plan_bar(weight({swap}), share, probe.now, thresholds, {swap})
                lines.append(
                    f"refitting {swap} alone is worth running instead: {probe.loss} "
                    f"{probe.now - sg.value:.4g} after it vs {probe.now:.4g} now, {sg.head}: "
                    f"{sg.worth(need, basis)}"
                )
                how = policy.planning.prefer
                move = Move(
                    "update", swap,
                    how if supports(model.components[swap].estimator, how) else "refit",
                    sg, probe.now - sg.value, True,
                    f"{sg.head} (the full-retrain probe's estimate): {sg.worth(need, basis)}",
                )  # fmt: skip
                diagnosis = replace(
                    _unchosen(diagnosis, g), chosen=(move,), loss_after=move.loss_after
                )
                dropped, kept = False, [m for m in members if m != swap]
                e, start, after, rest = edge, move.loss_after, f"after refitting {swap}", kept
            elif dropped:  # a full retrain against keeping the version as it is
                diagnosis = _unchosen(diagnosis, g)
                found = sum(m.gain.value for m in chosen if m.kind == "update")
                lines.append(
                    f"the residual probes found {found:.4g} to win on the inputs of "
                    f"{', '.join(sorted(refit))} that refitting is not expected to reach: if it "
                    "matters, a member that can fit it (another estimator, or a stack instead "
                    f"of a {ens.method}) is a change to the system, for a human"
                )
                e, start, after, rest = probe.full_gain, probe.now, "now", members
            else:
                e, start, after, rest = probe.edge, probe.partial, "after the partial plan", kept
            full_share = _full_share(policy)
            price = weight(rest) * full_share * start
            versus = (
                f"{probe.loss} {probe.full:.4g} after a full retrain vs {start:.4g} {after}"
                + ("" if dropped else f" ({probe.now:.4g} now)")
                + f": {e.value:.4g} [{e.low:.4g}, {e.high:.4g}] lower on {e.rows} held-out rows"
            )
            bar = (
                f"the {price:.4g} that refitting the {len(rest)} member(s) "
                + ("" if dropped else "the plan keeps ")
                + f"must win ({full_share:.0%} of the loss, times their {weight(rest):.0%} "
                "weight in the ensemble)"
            )
            if e.clears(price):
                reasons.append(
                    "a full retrain is expected to do better than "
                    + ("keeping the version as it is" if dropped else after.removeprefix("after "))
                    + f" by more than it costs: {versus}, above {bar} "
                    "(escalation.unexplained_drift)"
                )
            else:
                lines.append(f"a full retrain is not expected to do better by enough: {versus}; "
                             f"it would need {bar}")  # fmt: skip
        elif kept and (actions or candidates or drifted):
            weighed = True
            room = _room(diagnosis, kept)
            full_after = diagnosis.loss_after - room
            lines.append(
                f"a full retrain is not expected to do better by enough: the probes "
                f"find {room:.4g} more to win back by refitting the {len(kept)} member(s) the "
                f"plan keeps ({diagnosis.loss} about {diagnosis.loss_after - room:.4g} after a "
                f"full retrain), each below what an update must win"
            )
        if not reasons and (dropped or not actions) and candidates:
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
    return Review(
        diagnosis, tuple(reasons), tuple(lines), probe, dropped, swap, weighed, full_after
    )


def retrain_evidence(
    model: FittedSystem,
    window: pd.DataFrame,
    system: System,
    review: Review,
    policy: Policy,
    *,
    outputs: OutputsFn | None = None,
) -> tuple[bool, str]:
    """Whether the labelled ``window`` shows a full retrain paying for itself, and the figures:
    broad feature drift escalates only then, when labels are there to tell.

    The price is the one a full retrain pays after the probes (:func:`review_plan`):
    ``min_relative_gain`` of the loss now. In a mean or vote ensemble the full-retrain probe's
    ``now - full`` must be significant and reach it (``escalation.full_retrain_gain`` of the
    loss instead, when set; the review's probe, else one run here); in a stack or a single
    member, the residual probes' gains (the moves chosen, and what the members left would
    still win) must add up to it.
    """
    ens = system.ensemble
    d = review.diagnosis
    if ens is not None and ens.method != "stack" and d.probe == "residual":
        probe = review.probe or probe_plans(
            model, window, planning=policy.planning, refit=set(), outputs=outputs
        )
        share = _full_share(policy)
        g, price = probe.full_gain, share * probe.now
        seen = (
            f"a full retrain is estimated at {probe.loss} {probe.full:.4g} against "
            f"{probe.now:.4g} now, {g.value:.4g} [{g.low:.4g}, {g.high:.4g}] lower on {g.rows} "
            "held-out rows"
        )
        pays = g.clears(price)
    else:
        share = policy.planning.min_relative_gain
        members = [m.name for m in system.members]
        found = sum(m.gain.value for m in d.chosen) + _room(
            d, [m for m in members if m not in d.updated]
        )
        price = share * d.loss_before
        seen = (
            f"the probes find {found:.4g} of the {d.loss} {d.loss_before:.4g} to win back on "
            f"{d.test_rows} held-out rows"
        )
        pays = found >= price
    bar = f"the {price:.4g} a full retrain must win ({share:.0%} of the loss)"
    return pays, f"{seen}, {'at least' if pays else 'less than'} {bar}"


def _full_share(policy: Policy) -> float:
    """The share of the loss a full retrain estimated by the full-retrain probe must win."""
    chosen = policy.escalation.full_retrain_gain
    return policy.planning.min_relative_gain if chosen is None else chosen


def _weight_share(
    own: Mapping[str, float], learned: Mapping[str, float] | None, retired: Collection[str]
) -> Callable[[Collection[str]], float]:
    """The share of the ensemble's weight (after the plan: ``learned`` weights, ``retired``
    members left out) that a set of members holds."""
    weights = {n: w for n, w in {**own, **(learned or {})}.items() if n in own and n not in retired}
    total = sum(w for w in weights.values() if w > 0)

    def of(names: Collection[str]) -> float:
        return sum(max(weights.get(n, 0.0), 0.0) for n in names) / total if total > 0 else 1.0

    return of


def _unchosen(diagnosis: Diagnosis, estimate: Gain) -> Diagnosis:
    """``diagnosis`` with its chosen moves dropped (not accepted, and saying why): the
    full-retrain probe expects the plan they make to win only ``estimate``."""
    note = (
        f"; dropped: the full-retrain probe expects the plan to win {estimate.value:.4g} "
        f"[{estimate.low:.4g}, {estimate.high:.4g}]"
    )
    considered = tuple(
        replace(m, accepted=False, why=m.why + note) if m in diagnosis.chosen else m
        for m in diagnosis.considered
    )
    return replace(
        diagnosis,
        chosen=(),
        considered=considered,
        loss_after=diagnosis.loss_before,
        weights=None,
    )


def _best_single(
    probe: PlanProbe,
    retired: Collection[str],
    weight: Callable[[Collection[str]], float],
    share: float,
    thresholds: Thresholds | None,
) -> str | None:
    """The member whose refit alone the full-retrain probe expects to win the most, when that
    gain passes the member's bar (:func:`_plan_bar`); None when no member's does."""
    passing = []
    for name, (gain, _) in probe.singles.items():
        if name in retired or weight({name}) <= 0:
            continue
        need, _ = _plan_bar(weight({name}), share, probe.now, thresholds, {name})
        if gain.clears(need):
            passing.append((gain.value, name))
    return max(passing)[1] if passing else None


def _plan_bar(
    weight: float,
    share: float,
    loss: float,
    thresholds: Thresholds | None,
    refit: Collection[str],
) -> tuple[float, str]:
    """What a mean or vote ensemble's partial plan must win, and what it is a share of: the
    share of the loss any update must win, times the refitted members' ``weight`` (their
    output counts only that much, and so does the signal a probe finds on any window); or,
    when lower and a refitted member reads a drifted feature, the policy's share of the loss
    the drift added (as :class:`~regrow.plan.thresholds.Thresholds` judges each move)."""
    need = weight * share * loss
    basis = f"{share:.0%} of the loss, times the refitted members' {weight:.0%} weight"
    t = thresholds
    if (
        t is not None
        and t.drift_cost is not None
        and set(refit) & t.drifted_members
        and t.drift_share * t.drift_cost < need
    ):
        return (
            t.drift_share * t.drift_cost,
            f"{t.drift_share:.0%} of the {t.drift_cost:.4g} the drift added to the loss",
        )
    return need, basis


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
