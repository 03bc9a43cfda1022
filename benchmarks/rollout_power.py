"""How often the rollout rule decides right, with the intervals it uses now and with the old ones.

    python benchmarks/rollout_power.py [--trials 200] [--seed 1000]

Each case replays ``--trials`` split rollouts (:func:`regrow.rollout.decide.replay`: steps
5/25/50/100%, 1,000 requests per analysis, 500 labelled candidate requests a step, tolerance
0.02, alpha 0.05, at most 60 analyses) of a candidate whose per-request loss is
Bernoulli(``candidate``) against a stable one's Bernoulli(``stable``), and counts how they end.
It runs twice: with each lane's interval as :mod:`regrow.rollout.sequential` builds it (the
sub-Gaussian normal mixture intersected with the beta-binomial mixture), and with the
sub-Gaussian bound alone (what the rule used before), by swapping the lane bound for the
second run. Trial ``i`` uses seed ``--seed + i`` in both, so the two see the same traffic.
The script prints a table and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from regrow.rollout import sequential
from regrow.rollout.decide import replay

#: name -> (candidate's loss, stable's loss)
CASES = {
    "A/A at 0.20": (0.20, 0.20),
    "A/A at 0.04": (0.04, 0.04),
    "bad: 0.30 vs 0.20": (0.30, 0.20),
    "good: 0.15 vs 0.20": (0.15, 0.20),
    "bad: 0.10 vs 0.05": (0.10, 0.05),
    "good: 0.03 vs 0.05": (0.03, 0.05),
}


def _sub_gaussian(sample: sequential.Sample, alpha: float, n_opt: int) -> tuple[float, float]:
    r = sequential.radius(sample.n, alpha=alpha, sigma=0.5, n_opt=n_opt)
    return sample.mean - r, sample.mean + r


@contextmanager
def _lane_bounds(bounds: Callable[..., tuple[float, float]] | None) -> Iterator[None]:
    if bounds is None:
        yield
        return
    saved = sequential._lane_bounds
    sequential._lane_bounds = bounds
    try:
        yield
    finally:
        sequential._lane_bounds = saved


def run(trials: int, seed: int) -> dict[str, dict[str, dict[str, float]]]:
    """``{bounds: {case: {rolled_back, rolled_back_by_step_2, promoted, inconclusive,
    batches}}}``."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for label, bounds in (("now", None), ("sub-gaussian only", _sub_gaussian)):
        out[label] = {}
        with _lane_bounds(bounds):
            for case, (pc, ps) in CASES.items():
                runs = [replay(pc, ps, rng=np.random.default_rng(seed + i)) for i in range(trials)]
                states = [r.state for r in runs]
                out[label][case] = {
                    "rolled_back": states.count("rolled_back") / trials,
                    "rolled_back_by_step_2": sum(
                        r.state == "rolled_back" and r.step <= 1 for r in runs
                    )
                    / trials,
                    "promoted": states.count("promoted") / trials,
                    "inconclusive": states.count("inconclusive") / trials,
                    "batches": round(float(np.mean([r.batches for r in runs])), 1),
                }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args()
    figures = run(args.trials, args.seed)
    print(
        f"{'case':22s} {'intervals':18s} rolled back (by step 2)  promoted  inconclusive  batches"
    )
    for case in CASES:
        for label, table in figures.items():
            f = table[case]
            print(
                f"{case:22s} {label:18s} {f['rolled_back']:.3f} ({f['rolled_back_by_step_2']:.3f})"
                f"            {f['promoted']:.3f}     {f['inconclusive']:.3f}         "
                f"{f['batches']:.1f}"
            )
    print(json.dumps({"trials": args.trials, "figures": figures}))


if __name__ == "__main__":
    main()
