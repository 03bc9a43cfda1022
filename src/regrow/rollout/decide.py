"""What one analysis of a rollout decides, as a pure function, and a replay of rollouts.

:func:`decide` is the rule :func:`regrow.rollout.machine.step` applies (see its module docs for
the rule in words); it reads only the rollout's state and the evidence, and writes nothing, so
the same rule runs in the catalog-backed machine and in :func:`replay`, which rolls a simulated
candidate out over batches of requests whose losses are Bernoulli draws. ``replay`` is what the
tests (and benchmarks) use to measure the rule: how often an A/A rollout is falsely rolled
back although it is analysed after every batch, how early a bad candidate is caught, how often
a good one is promoted, and that a lane with no labels ends inconclusive, never failed
(:mod:`regrow.rollout.trials` measures the same end to end, with real models on a stream).

>>> import numpy as np
>>> run = replay(0.4, 0.1, steps=(0.1, 0.5, 1.0), rng=np.random.default_rng(0))
>>> run.state, run.step
('rolled_back', 0)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from regrow.errors import CatalogError, ConfigError
from regrow.rollout.evidence import CANDIDATE, Evidence
from regrow.rollout.sequential import Comparison, Sample, compare, compare_paired
from regrow.rollout.validate import percent

if TYPE_CHECKING:
    from regrow.catalog.rollouts import RolloutRecord

__all__ = ["Move", "Replayed", "Tally", "Verdict", "decide", "lane_of", "replay", "winner"]


@dataclass(frozen=True)
class Tally:
    """The evidence as samples: each lane's count and mean loss (and the paired one), with
    an A/B rollout's lanes and the slices as tallies of their own."""

    candidate: Sample
    stable: Sample
    paired: Sample | None
    step_requests: int
    lanes: Mapping[str, Tally] = field(default_factory=dict)
    slices: Mapping[str, Tally] = field(default_factory=dict)

    @classmethod
    def of(cls, ev: Evidence) -> Tally:
        """The tally of per-request evidence."""
        paired = Sample.of(ev.paired) if ev.paired is not None else None
        return cls(
            Sample.of(ev.candidate), Sample.of(ev.stable), paired, ev.step_requests,
            {k: cls.of(v) for k, v in ev.lanes.items()},
            {k: cls.of(v) for k, v in ev.slices.items()},
        )  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """One candidate lane's analysis: its comparison with the stable lane over all traffic
    and in each slice."""

    lane: str
    comparison: Comparison
    slices: Mapping[str, Comparison]
    step_requests: int
    loss: float

    @property
    def failed(self) -> str | None:
        """Why the lane is proven worse (naming the slice), or None."""
        if self.comparison.decision == "fail":
            return self.comparison.reason
        for name, cmp in self.slices.items():
            if cmp.decision == "fail":
                return f"slice {name!r}: {cmp.reason}"
        return None

    def as_dict(self) -> dict[str, Any]:
        """The verdict as plain JSON values (for an audit event)."""
        out = {**self.comparison.as_dict(), "step_requests": self.step_requests}
        if self.slices:
            out["slices"] = {k: v.as_dict() for k, v in self.slices.items()}
        return out


@dataclass(frozen=True)
class Move:
    """A decision: ``action`` (begin, idle, fail, drop_lane, advance, promote, hold,
    inconclusive), the state and step it leads to, the holds in a row, the comparison and
    why; the A/B lanes to ``drop``, the ``lane`` it promotes, and every live lane's
    ``verdicts``."""

    action: str
    state: str
    step: int
    holds: int
    comparison: Comparison | None
    reason: str
    drop: tuple[str, ...] = ()
    lane: str | None = None
    verdicts: tuple[Verdict, ...] = ()
    #: Whether the verdicts are an A/B rollout's lanes.
    ab: bool = False

    def details(self) -> dict[str, Any]:
        """Each lane's verdict (A/B) or the slices' comparisons, for an audit event."""
        if self.ab:
            return {"verdicts": {v.lane: v.as_dict() for v in self.verdicts}}
        if self.verdicts and self.verdicts[0].slices:
            return {"slices": self.verdicts[0].as_dict()["slices"]}
        return {}


#: The name of the one candidate of a rollout that is not A/B.
_ONE = "candidate"


def decide(
    *,
    state: str,
    mode: str,
    step: int,
    steps: Sequence[float],
    holds: int,
    min_requests: int,
    params: Mapping[str, Any],
    evidence: Evidence | Tally,
    dropped: Collection[str] = (),
) -> Move:
    """The move one analysis makes (see :mod:`regrow.rollout.machine`). An A/B rollout's
    evidence has one tally per lane (``dropped`` ones are not analysed); each live lane is
    compared with the stable lane, over all traffic and in each slice, at ``alpha`` split
    evenly over every lane and comparison (Bonferroni: the chance any of them falsely fails
    stays at most ``alpha``)."""
    if state == "pending":
        return Move("begin", "shadow" if mode == "shadow" else "progressing", 0, 0, None, "started")
    if state not in ("shadow", "progressing", "inconclusive"):
        return Move("idle", state, step, holds, None, f"the rollout is {state}")
    tolerance, alpha = float(params.get("tolerance", 0.02)), float(params.get("alpha", 0.05))
    ev = Tally.of(evidence) if isinstance(evidence, Evidence) else evidence
    arms = dict(ev.lanes) if ev.lanes else {_ONE: ev}
    share = alpha / len(arms) / (1 + len(params.get("slices") or {}))
    verdicts = tuple(
        _verdict(name, t, tolerance=tolerance, alpha=share, min_requests=min_requests)
        for name, t in arms.items()
        if name not in dropped
    )
    failing = [v for v in verdicts if v.failed]
    if failing:
        why = "; ".join((f"lane {v.lane}: " if ev.lanes else "") + f"{v.failed}" for v in failing)
        cmp = failing[0].comparison
        ab = bool(ev.lanes)
        if len(failing) == len(verdicts):
            why = f"failed: {why}"
            return Move("fail", "rolled_back", step, holds, cmp, why, (), None, verdicts, ab)
        drop = tuple(v.lane for v in failing)
        why = f"dropped: {why}"
        return Move("drop_lane", state, step, holds, cmp, why, drop, None, verdicts, ab)
    move = _go_on(state, mode, step, steps, holds, min_requests, params, verdicts)
    return replace(move, ab=bool(ev.lanes), lane=move.lane if ev.lanes else None)


def _verdict(lane: str, t: Tally, *, tolerance: float, alpha: float, min_requests: int) -> Verdict:
    def one(x: Tally) -> Comparison:
        if x.paired is not None:
            return compare_paired(x.paired, tolerance=tolerance, alpha=alpha,
                                  min_samples=min_requests)  # fmt: skip
        return compare(x.candidate, x.stable, tolerance=tolerance, alpha=alpha,
                       min_samples=min_requests)  # fmt: skip

    cut = {name: one(x) for name, x in t.slices.items()}
    return Verdict(lane, one(t), cut, t.step_requests, t.candidate.mean)


def _go_on(
    state: str,
    mode: str,
    step: int,
    steps: Sequence[float],
    holds: int,
    min_requests: int,
    params: Mapping[str, Any],
    verdicts: tuple[Verdict, ...],
) -> Move:
    """No lane failed: advance, promote the best passing lane, or hold."""
    final = mode == "shadow" or step == len(steps) - 1

    def enough(v: Verdict) -> bool:
        return v.step_requests >= min_requests and v.comparison.decision != "inconclusive"

    ready = bool(verdicts) and all(enough(v) for v in verdicts)
    worst = max(verdicts, key=lambda v: v.comparison.difference)
    cmp, tolerance = worst.comparison, worst.comparison.tolerance
    if ready and not final and cmp.difference <= tolerance:
        why = f"step {step + 2}: {percent(steps[step + 1])} ({cmp.reason})"
        return Move("advance", "progressing", step + 1, 0, cmp, why, (), None, verdicts)
    passing = [v for v in verdicts if enough(v) and v.comparison.decision == "pass"]
    if final and passing:
        best = min(passing, key=lambda v: (v.loss, v.lane))
        lowest = f" (lane {best.lane}, the lowest loss)" if len(verdicts) > 1 else ""
        why = best.comparison.reason + lowest
        return Move("promote", "promoted", step, 0, best.comparison, why, (), best.lane, verdicts)
    short = [v for v in verdicts if v.step_requests < min_requests]
    why = (
        cmp.reason
        if ready and final
        else f"the candidate's loss looks higher by {cmp.difference:.3f}: the step waits for "
        "the interval to decide"
        if ready
        else f"{short[0].step_requests} of {min_requests} labelled candidate requests this step"
        + (f" (lane {short[0].lane})" if short and len(verdicts) > 1 else "")
        if short
        else cmp.reason
    )
    limit = int(params.get("inconclusive_after", 20))
    if state != "inconclusive" and holds + 1 >= limit:
        return Move("inconclusive", "inconclusive", step, holds + 1, cmp, why, (), None, verdicts)
    return Move("hold", state, step, holds + 1, cmp, why, (), None, verdicts)


@dataclass(frozen=True)
class Replayed:
    """How a replayed rollout ended: its state, the last step it reached, the batches it
    took and the moves it made."""

    state: str
    step: int
    batches: int
    actions: tuple[str, ...]


def winner(record: RolloutRecord, lane: str | None) -> str:
    """The version a promotion of ``record`` moves the alias to: its candidate, or an A/B
    rollout's live ``lane`` (default: the live lane with the lowest mean loss in the last
    analysis; ties and lanes without evidence: the first)."""
    if not record.lanes:
        if lane is not None and lane != CANDIDATE:
            raise ConfigError(
                f"rollout {record.id[:12]} is a {record.mode} rollout, with no lane {lane!r}",
                hint=f"a lane is chosen in an ab rollout; promote this one without --lane "
                f"(its candidate is its lane {CANDIDATE!r})",
            )
        return record.candidate_id
    live = [x for x in record.lanes if not x.dropped]
    if lane is None:
        if not live:
            raise CatalogError(
                f"every lane of rollout {record.id[:12]} was dropped", hint="abort it"
            )
        losses = dict((record.evidence or {}).get("lanes") or {})

        def loss(name: str) -> float:
            value = dict(losses.get(name) or {}).get("candidate_loss")
            return float(value) if isinstance(value, int | float) else float("inf")

        return min(live, key=lambda x: loss(x.name)).version_id  # ties: the first
    for x in live:
        if x.name == lane:
            return x.version_id
    raise ConfigError(
        f"rollout {record.id[:12]} has no live lane {lane!r}",
        hint=f"its live lanes are {', '.join(x.name for x in live) or 'none'}",
    )


def lane_of(record: RolloutRecord, version_id: str) -> str:
    """The name of the lane of ``record`` serving ``version_id``."""
    return next(x.name for x in record.lanes if x.version_id == version_id)


def replay(
    p_candidate: float,
    p_stable: float,
    *,
    steps: Sequence[float] = (0.05, 0.25, 0.5, 1.0),
    min_requests: int = 200,
    batch: int = 1000,
    max_batches: int = 60,
    labelled: float = 1.0,
    params: Mapping[str, Any] | None = None,
    rng: np.random.Generator,
) -> Replayed:
    """Roll out a candidate whose per-request loss is Bernoulli(``p_candidate``) against a
    stable one's Bernoulli(``p_stable``): ``batch`` requests per analysis, split by the
    step's share, a share ``labelled`` of them labelled; :func:`decide` after every batch."""
    knobs = dict(params or {})
    state, step, holds = "progressing", 0, 0
    nc = ns = sc = ss = fresh = 0
    actions: list[str] = []
    for n in range(1, max_batches + 1):
        k = int(rng.binomial(batch, steps[step]))
        take_c, take_s = int(rng.binomial(k, labelled)), int(rng.binomial(batch - k, labelled))
        sc += int(rng.binomial(take_c, p_candidate))
        ss += int(rng.binomial(take_s, p_stable))
        nc, ns, fresh = nc + take_c, ns + take_s, fresh + take_c
        tally = Tally(Sample(nc, sc / nc if nc else 0.0), Sample(ns, ss / ns if ns else 0.0),
                      None, fresh)  # fmt: skip
        move = decide(
            state=state, mode="split", step=step, steps=steps, holds=holds,
            min_requests=min_requests, params=knobs, evidence=tally,
        )  # fmt: skip
        actions.append(move.action)
        if move.step != step:
            fresh = 0
        state, step, holds = move.state, move.step, move.holds
        if state in ("promoted", "rolled_back"):
            return Replayed(state, step, n, tuple(actions))
    return Replayed(state, step, max_batches, tuple(actions))
