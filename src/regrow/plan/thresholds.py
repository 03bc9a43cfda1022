"""When a probe's gain is worth an update: the thresholds a move must pass.

A move (update a member, relearn the ensemble, ...) found by the diagnostics' greedy search
(:mod:`regrow.plan.diagnostics`) is **worth it** when its gain on the held-out rows is

1. **significant**: the lower end of its interval (``planning.confidence``) is above 0; and
2. **substantial**: at least the smaller of

   - ``planning.min_relative_gain`` of the loss it starts from. A probe finds some signal that
     the current members leave unfitted on any window, drifted or not (on windows with no
     drift at all, up to 10% of the loss with an interval clear of 0), and refitting a member
     on the window does not win that back: a gain no measured drift explains must beat it;
   - ``planning.min_drift_share`` of the loss the drift added, for an update of a member that
     reads a drifted feature, when the monitor measured what the drift costs the system (its
     impact, with an interval clear of 0). Such a gain is explained: the member's inputs moved
     and its loss rose with them. On a target with much noise the drift's cost is a small
     share of the loss, so a fixed share of the loss would refuse updates that win most of
     it back.

The search runs with threshold 0 when measured drift may lower the bar (any significant move
is taken, in order of gain); :meth:`Thresholds.settle` then judges each chosen move and keeps
the longest run of moves that pass. A move after one that fails is dropped even if it would
pass: its gain was measured after the failing move (conservative, and rare: a member whose
inputs did not drift would have to gain more than a drifted one).

>>> from dataclasses import replace
>>> from regrow.plan.diagnostics import Gain, Move
>>> t = Thresholds(min_share=0.1, drift_share=0.25, drift_cost=0.12,
...                drifted_members=frozenset({"alpha"}))
>>> move = Move("update", "alpha", "refit", Gain(0.05, 0.02, 0.08, 800), 0.58, True, "")
>>> t.threshold(move)  # alpha reads a drifted feature: a quarter of the drift's cost
(0.03, '25% of the 0.12 the drift added to the loss')
>>> t.judge(move).accepted
True
>>> t.judge(replace(move, component="gamma")).why  # gamma does not: 10% of the 0.63 loss
'gain 0.05 [0.02, 0.08] on 800 held-out rows: below the 0.063 worth an update (10% of the loss)'
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace

from regrow.monitor.attribution import ComponentImpact, readers
from regrow.plan.diagnostics import Diagnosis, Move
from regrow.plan.policy import Planning
from regrow.system import System

__all__ = ["Thresholds"]


@dataclass(frozen=True)
class Thresholds:
    """The thresholds a move's gain must pass (see the module's docstring)."""

    min_share: float
    drift_share: float
    drift_cost: float | None = None
    drifted_members: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        planning: Planning,
        impacts: Iterable[ComponentImpact] = (),
        drifted: Collection[str] = (),
        system: System | None = None,
    ) -> Thresholds:
        """The thresholds for a window: the policy's, and the drift the monitor measured."""
        system_impact = next((i for i in impacts if i.kind == "system"), None)
        members = {m.name for m in system.members} if system is not None else set()
        reading = (
            {c for comps in readers(system, list(drifted)).values() for c in comps} & members
            if system is not None
            else set()
        )
        cost = (
            system_impact.impact
            if system_impact is not None and system_impact.candidate and system_impact.impact > 0
            else None
        )
        return cls(
            min_share=planning.min_relative_gain,
            drift_share=planning.min_drift_share,
            drift_cost=cost if reading else None,
            drifted_members=frozenset(reading),
        )

    def search(self, planning: Planning) -> Planning:
        """The planning the greedy search runs with: with measured drift, any significant move
        goes on (threshold 0), and :meth:`settle` judges the moves it chose."""
        if self.drift_cost is None:
            return planning
        return planning.model_copy(update={"min_relative_gain": 0.0})

    def threshold(self, move: Move) -> tuple[float, str]:
        """The gain ``move`` needs, and what it is a share of."""
        start = move.loss_after + move.gain.value  # the loss the move starts from
        floor = self.min_share * start
        if (
            self.drift_cost is not None
            and move.kind in ("update", "add-member")
            and move.component in self.drifted_members
            and self.drift_share * self.drift_cost < floor
        ):
            return (
                self.drift_share * self.drift_cost,
                f"{self.drift_share:.0%} of the {self.drift_cost:.4g} the drift added to the loss",
            )
        return floor, f"{self.min_share:.0%} of the loss"

    def judge(self, move: Move) -> Move:
        """``move`` with whether it is worth it, and the sentence that says so."""
        g = move.gain
        need, basis = self.threshold(move)
        return replace(move, accepted=g.clears(need), why=f"{g.head}: {g.worth(need, basis)}")

    def settle(self, diagnosis: Diagnosis) -> Diagnosis:
        """``diagnosis`` with its chosen moves judged: the longest run of them that passes."""
        chosen: list[Move] = []
        for move in diagnosis.chosen:
            judged = self.judge(move)
            if not judged.accepted:
                break
            chosen.append(judged)
        kept = diagnosis.chosen[: len(chosen)]
        dropped = diagnosis.chosen[len(chosen) :]
        considered: list[Move] = []
        for move in diagnosis.considered:
            if move in kept:
                considered.append(chosen[kept.index(move)])
                continue
            judged = self.judge(move)
            if move in dropped and judged.accepted:
                judged = replace(
                    judged, accepted=False, why=f"{judged.why}; not taken: a move before it was not"
                )
            considered.append(judged)
        return replace(
            diagnosis,
            chosen=tuple(chosen),
            considered=tuple(considered),
            loss_after=chosen[-1].loss_after if chosen else diagnosis.loss_before,
            weights=diagnosis.weights if any(m.kind == "reweight" for m in chosen) else None,
        )
