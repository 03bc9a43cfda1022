"""What one analysis of a rollout decides, as a pure function, and a replay of rollouts.

:func:`decide` is the rule :func:`regrow.rollout.machine.step` applies (see its module docs for
the rule in words); it reads only the rollout's state and the evidence, and writes nothing, so
the same rule runs in the catalog-backed machine and in :func:`replay`, which rolls a simulated
candidate out over batches of requests whose losses are Bernoulli draws. ``replay`` is what the
tests (and benchmarks) use to measure the rule: how often an A/A rollout is falsely rolled
back although it is analysed after every batch, how early a bad candidate is caught, how often
a good one is promoted, and that a lane with no labels ends inconclusive, never failed.

>>> import numpy as np
>>> run = replay(0.4, 0.1, steps=(0.1, 0.5, 1.0), rng=np.random.default_rng(0))
>>> run.state, run.step
('rolled_back', 0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from regrow.rollout.evidence import Evidence
from regrow.rollout.sequential import Comparison, Sample, compare, compare_paired

__all__ = ["Move", "Replayed", "Tally", "decide", "replay"]


@dataclass(frozen=True)
class Tally:
    """The evidence as samples: each lane's count and mean loss (and the paired one)."""

    candidate: Sample
    stable: Sample
    paired: Sample | None
    step_requests: int

    @classmethod
    def of(cls, ev: Evidence) -> Tally:
        """The tally of per-request evidence."""
        paired = Sample.of(ev.paired) if ev.paired is not None else None
        return cls(Sample.of(ev.candidate), Sample.of(ev.stable), paired, ev.step_requests)


@dataclass(frozen=True)
class Move:
    """A decision: ``action`` (begin, idle, fail, advance, promote, hold, inconclusive), the
    state and step it leads to, the holds in a row, the comparison and why."""

    action: str
    state: str
    step: int
    holds: int
    comparison: Comparison | None
    reason: str


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
) -> Move:
    """The move one analysis makes (see :mod:`regrow.rollout.machine`)."""
    if state == "pending":
        return Move("begin", "shadow" if mode == "shadow" else "progressing", 0, 0, None, "started")
    if state not in ("shadow", "progressing", "inconclusive"):
        return Move("idle", state, step, holds, None, f"the rollout is {state}")
    tolerance, alpha = float(params.get("tolerance", 0.02)), float(params.get("alpha", 0.05))
    ev = Tally.of(evidence) if isinstance(evidence, Evidence) else evidence
    cmp = (
        compare_paired(ev.paired, tolerance=tolerance, alpha=alpha, min_samples=min_requests)
        if ev.paired is not None
        else compare(
            ev.candidate,
            ev.stable,
            tolerance=tolerance,
            alpha=alpha,
            min_samples=min_requests,
        )
    )
    if cmp.decision == "fail":
        return Move("fail", "rolled_back", step, holds, cmp, f"failed: {cmp.reason}")
    final = mode == "shadow" or step == len(steps) - 1
    enough = ev.step_requests >= min_requests and cmp.decision != "inconclusive"
    if enough and not final and cmp.difference <= tolerance:
        why = f"step {step + 2}: {steps[step + 1]:.0%} ({cmp.reason})"
        return Move("advance", "progressing", step + 1, 0, cmp, why)
    if enough and cmp.decision == "pass":
        return Move("promote", "promoted", step, 0, cmp, cmp.reason)
    why = (
        cmp.reason
        if enough and final
        else f"the candidate's loss looks higher by {cmp.difference:.3f}: the step waits for "
        "the interval to decide"
        if enough
        else f"{ev.step_requests} of {min_requests} labelled candidate requests this step"
    )
    limit = int(params.get("inconclusive_after", 20))
    if state != "inconclusive" and holds + 1 >= limit:
        return Move("inconclusive", "inconclusive", step, holds + 1, cmp, why)
    return Move("hold", state, step, holds + 1, cmp, why)


@dataclass(frozen=True)
class Replayed:
    """How a replayed rollout ended: its state, the last step it reached, the batches it
    took and the moves it made."""

    state: str
    step: int
    batches: int
    actions: tuple[str, ...]


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
