"""Ensemble refresh on drifting streams: regrow's refresh vs stale, hard swap, window retrain.

    python benchmarks/ensemble_refresh.py [--seeds 1 2 3 4 5] [--dev-seed 0] [--chunks 40]
                                          [--trials 200 | --skip-rollouts]

Four regimes (issue #15), streams from River's generators (``pip install river``), seeded, in
chunks of 250 rows, replayed prequentially (test each chunk, then learn it) by
:func:`regrow.rollout.simulator.replay`:

- **SEA gradual**: SEA(variant 0) -> SEA(3), 20 % label noise, a sigmoid blend of width 2,000
  rows centred on the stream's middle (River's ``ConceptDriftStream``);
- **SEA recurring**: SEA(2) -> SEA(3) -> SEA(2) -> SEA(3), a quarter of the stream each, no noise;
- **Agrawal abrupt**: classification function f0, then f2 from the middle;
- **Agrawal recurring**: f0 -> f2 -> f0 -> f2, a quarter each.

Every strategy fits the same learner (a scikit-learn decision tree, depth 6, at least 5 rows a
leaf) and holds at most 6 models of 250 rows: ``stale`` (a member per chunk on the first 6 chunks,
frozen), ``hard swap`` (a model of the newest chunk), ``window retrain`` (one model on the last 6
chunks, refitted every chunk), ``regrow refresh`` (:class:`regrow.rollout.simulator.Refresh`:
Hedge eta=8 + fixed share 0.05, a newcomer per chunk weighed by 3-fold cross-validation, the
newcomer's fold models are the member, at most 6 members, retirement to a pool and re-admission).
Training rows count every fit (cross-validation folds included).

The rules were fixed on ``--dev-seed`` (printed apart); the figures are means over ``--seeds``.
Three ablations of the refresh follow (no fixed share; no pool; the tighter reserved slots
the first draft had).

Then **rollout trials** (:mod:`regrow.rollout.trials`), ``--trials`` of each kind (0 or
``--skip-rollouts`` skips them) on River's SEA stream, concepts 2 -> 3 as in *SEA recurring*:
three stable trees, each fitted on a chunk of 250 rows of concept 2, a candidate adding one tree
fitted on a chunk of concept 3 with weight 0.6 of its blend; the policy's steps (5, 25, 50,
100 %) and ``min_requests`` (500), tolerance 0.02, alpha 0.05; requests in batches of 250,
:func:`regrow.rollout.decide.decide` after every batch, at most 80 batches.

- **bad** (blend; the stream stays on concept 2): rolled back before the new member's weight
  passed the second step (the issue: >= 95 %); also with a new member fitted on concept 2 with
  shuffled labels (a subtler harm: some such candidates are barely worse than the tolerance);
- **good** (blend; the stream has drifted to concept 3): promoted (>= 90 %);
- **A/A** (split; candidate = stable, lanes by the rollout's hash on independent requests):
  falsely rolled back (<= 5 %); also with tolerance 0, where only the interval protects it,
  and with tolerance 0 on SEA with 20 % label noise (losses near the variance bound);
- **silent** (blend; the bad candidate, no label ever comes back for its lane): ends
  inconclusive, never rolled back.

The trial setup was fixed on development trials (``--dev-trials`` of each kind from seed
``--dev-seed`` * 1,000,000, printed apart); the figures use seeds ``--trial-seed`` + i.
Threads are pinned to one (threadpoolctl). A table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from itertools import islice
from typing import Any

import numpy as np
from river.datasets import synth
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

from regrow.rollout.refresh import RefreshPolicy
from regrow.rollout.simulator import HardSwap, Refresh, Replay, Stale, Strategy, Window, replay
from regrow.rollout.trials import Setup, Trial, figures, river_source, run_trials

CHUNK = 250
STRATEGIES = ("stale", "hard swap", "window retrain", "regrow refresh")
POLICY = RefreshPolicy(eta=8.0, alpha=0.05, max_members=6, reserved=0.8, probation=1, pool_size=24)
ABLATIONS = {
    "no fixed share (alpha 0)": replace(POLICY, alpha=0.0),
    "no pool (pool_size 0)": replace(POLICY, pool_size=0),
    "tighter slots (reserved 0.5, probation 2)": replace(POLICY, reserved=0.5, probation=2),
}


def _rows(stream: Any, n: int) -> Iterator[tuple[list[float], int]]:
    for x, y in islice(iter(stream), n):
        yield [float(v) for v in x.values()], int(y)


def _segments(make: Callable[[int, int], Any], concepts: list[int], n: int, seed: int) -> list[Any]:
    """``concepts`` one after another, ``n`` rows in all, each segment from a fresh seed."""
    per = n // len(concepts)
    return [r for k, c in enumerate(concepts) for r in _rows(make(c, seed * 100 + k), per)]


def stream(regime: str, seed: int, rows: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The regime's stream as chunks of ``CHUNK`` rows."""

    def sea(variant: int, seed: int, noise: float = 0.0) -> Any:
        return synth.SEA(variant=variant, noise=noise, seed=seed)

    def agrawal(function: int, seed: int) -> Any:
        return synth.Agrawal(classification_function=function, seed=seed)

    if regime == "SEA gradual":
        drift = synth.ConceptDriftStream(
            sea(0, seed, 0.2), sea(3, seed + 1, 0.2), position=rows // 2, width=2000, seed=seed
        )
        data = list(_rows(drift, rows))
    elif regime == "SEA recurring":
        data = _segments(sea, [2, 3, 2, 3], rows, seed)
    elif regime == "Agrawal abrupt":
        data = _segments(agrawal, [0, 2], rows, seed)
    elif regime == "Agrawal recurring":
        data = _segments(agrawal, [0, 2, 0, 2], rows, seed)
    else:
        raise ValueError(regime)
    x = np.array([r[0] for r in data])
    y = np.array([r[1] for r in data])
    return [(x[i : i + CHUNK], y[i : i + CHUNK]) for i in range(0, len(y) - CHUNK + 1, CHUNK)]


def learner(seed: int) -> Callable[[np.ndarray, np.ndarray], DecisionTreeClassifier]:
    def fit(x: np.ndarray, y: np.ndarray) -> DecisionTreeClassifier:
        return DecisionTreeClassifier(max_depth=6, min_samples_leaf=5, random_state=seed).fit(x, y)

    return fit


def strategies(seed: int) -> list[Strategy]:
    fit = learner(seed)
    return [Stale(fit), HardSwap(fit), Window(fit, window=6), Refresh(fit, POLICY, seed=seed)]


def run(regime: str, seed: int, chunks: int) -> dict[str, Replay]:
    data = stream(regime, seed, chunks * CHUNK)
    return {s.name: replay(data, s) for s in strategies(seed)}


#: The rollout trials: (label, kind, options, the figure read, the issue's target); options:
#: ``shuffle`` (:class:`regrow.rollout.trials.Setup`), the stream's label ``noise``, ``params``.
TRIALS: tuple[tuple[str, str, dict[str, Any], str, str], ...] = (
    ("bad", "bad", {}, "rolled_back_early", ">= 0.95"),
    ("bad, shuffled", "bad", {"shuffle": True}, "rolled_back_early", ">= 0.95"),
    ("good", "good", {}, "promoted", ">= 0.90"),
    ("A/A", "aa", {}, "rolled_back", "<= 0.05"),
    ("A/A, tolerance 0", "aa", {"params": {"tolerance": 0.0}}, "rolled_back", "<= 0.05"),
    (
        "A/A, tol. 0, noise",
        "aa",
        {"params": {"tolerance": 0.0}, "noise": 0.2},
        "rolled_back",
        "<= 0.05",
    ),
    ("silent", "silent", {}, "inconclusive", "= 1"),
)
FIGURE_WORDS = {
    "rolled_back_early": "rolled back at step 1 or 2",
    "promoted": "promoted",
    "rolled_back": "rolled back",
    "inconclusive": "ended inconclusive",
}


def _trials(trials: int, seed: int) -> dict[str, tuple[list[Trial], float]]:
    """Each row of :data:`TRIALS`: its trials and the seconds they took."""
    out: dict[str, tuple[list[Trial], float]] = {}
    for label, kind, options, _, _ in TRIALS:
        start = time.perf_counter()
        source = river_source("sea", noise=options.get("noise", 0.0))
        setup = Setup(source=source, concepts=(2, 3), shuffle=options.get("shuffle", False))
        params = options.get("params")
        runs = run_trials(kind, trials, seed=seed, setup=setup, params=params)
        out[label] = (runs, time.perf_counter() - start)
    return out


def _row(label: str, key: str, target: str, runs: list[Trial], seconds: float) -> str:
    """One line of the trials' table: the figure, means over the trials, how they ended."""
    ends: dict[str, int] = {}
    for t in runs:
        ends[f"{t.state}@{t.step + 1}"] = ends.get(f"{t.state}@{t.step + 1}", 0) + 1
    means = [
        statistics.fmean(t.batches for t in runs),
        statistics.fmean(t.stable_loss for t in runs),
        statistics.fmean(t.candidate_loss for t in runs),
        statistics.fmean(t.served_loss for t in runs),
    ]
    return (
        f"{label:<20}{FIGURE_WORDS[key]:<28}{figures(runs)[key]:>7.3f}  {target:<8}"
        f"{means[0]:>8.1f}{means[1]:>8.3f}{means[2]:>7.3f}{means[3]:>8.3f}{seconds:>7.1f}  "
        + ", ".join(f"{k} {v}" for k, v in sorted(ends.items()))
    )


def rollouts(trials: int, dev_trials: int, dev_seed: int, seed: int) -> dict[str, Any]:
    """Run and print the rollout trials; their JSON figures."""
    if dev_trials:
        print(
            f"\nrollout trials, development (seeds {dev_seed * 1_000_000} + i, {dev_trials} each)"
        )
        for label, (runs, _) in _trials(dev_trials, dev_seed * 1_000_000).items():
            print(f"  {label:<20}" + "  ".join(f"{k}={v:.3f}" for k, v in figures(runs).items()))
    results = _trials(trials, seed)
    print(f"\nrollout trials, report: {trials} of each kind, seeds {seed} + i")
    print(
        f"{'trial':<20}{'figure':<28}{'share':>7}  {'issue':<8}{'batches':>8}"
        f"{'stable':>8}{'cand.':>7}{'served':>8}{'sec':>7}  ends (state@step, 1-based)"
    )
    for label, _, _, key, target in TRIALS:
        print(_row(label, key, target, *results[label]))
    silent = results["silent"][0]
    return {
        "bad_rolled_back": figures(results["bad"][0])["rolled_back_early"],
        "bad_shuffled_rolled_back": figures(results["bad, shuffled"][0])["rolled_back_early"],
        "good_promoted": figures(results["good"][0])["promoted"],
        "aa_false_rollback": figures(results["A/A"][0])["rolled_back"],
        "aa_false_rollback_tolerance_0": figures(results["A/A, tolerance 0"][0])["rolled_back"],
        "aa_false_rollback_tolerance_0_noise": figures(results["A/A, tol. 0, noise"][0])[
            "rolled_back"
        ],
        "silent_inconclusive": figures(silent)["inconclusive"],
        "silent_failed": sum("fail" in t.actions for t in silent) / len(silent),
        "trials": trials,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--dev-seed", type=int, default=0)
    ap.add_argument("--chunks", type=int, default=40)
    ap.add_argument("--trials", type=int, default=200, help="rollout trials of each kind (0: none)")
    ap.add_argument("--skip-rollouts", action="store_true", help="run no rollout trials")
    ap.add_argument("--dev-trials", type=int, default=20)
    ap.add_argument("--trial-seed", type=int, default=1_000_000)
    args = ap.parse_args()
    with threadpool_limits(1):
        run_all(args)


def run_all(args: argparse.Namespace) -> None:
    """The refresh regimes, the ablations, the rollout trials, then the JSON line."""
    regimes = ("SEA gradual", "SEA recurring", "Agrawal abrupt", "Agrawal recurring")

    dev = {r: run(r, args.dev_seed, args.chunks) for r in regimes}
    print(f"development seed {args.dev_seed} (rules fixed here): mean prequential accuracy")
    for r in regimes:
        print(f"  {r:<18}" + "".join(f"{s}={dev[r][s].mean:.3f}  " for s in STRATEGIES))

    regime_figures: dict[str, Any] = {}
    rows = dict.fromkeys(STRATEGIES, 0)
    wins_swap = wins_window = 0
    print(f"\nreport seeds {args.seeds}: mean (worst chunk) accuracy, mean over seeds")
    print(
        f"{'regime':<18}"
        + "".join(f"{s:>22}" for s in STRATEGIES)
        + "   regrow>=stale,swap      >=window"
    )
    for r in regimes:
        runs = [run(r, seed, args.chunks) for seed in args.seeds]
        mean = {s: statistics.fmean(x[s].mean for x in runs) for s in STRATEGIES}
        worst = {s: statistics.fmean(x[s].worst for x in runs) for s in STRATEGIES}
        for s in STRATEGIES:
            rows[s] += sum(x[s].rows for x in runs)
        ours = mean["regrow refresh"]
        beats_sw = ours >= max(mean["stale"], mean["hard swap"])
        beats_w = ours >= mean["window retrain"]
        wins_swap += beats_sw
        wins_window += beats_w
        seeds_sw = sum(
            x["regrow refresh"].mean >= max(x["stale"].mean, x["hard swap"].mean) for x in runs
        )
        seeds_w = sum(x["regrow refresh"].mean >= x["window retrain"].mean for x in runs)
        cells = "".join(f"{mean[s]:>14.3f} ({worst[s]:.3f})" for s in STRATEGIES)
        n = len(runs)
        print(
            f"{r:<18}{cells}   {beats_sw!s:>5} ({seeds_sw}/{n} seeds)"
            f"  {beats_w!s:>5} ({seeds_w}/{n})"
        )
        regime_figures[r] = {
            s.replace(" ", "_"): {"mean": round(mean[s], 4), "worst": round(worst[s], 4)}
            for s in STRATEGIES
        }
        regime_figures[r]["seeds_regrow_beats_stale_and_swap"] = f"{seeds_sw}/{n}"
        regime_figures[r]["seeds_regrow_beats_window"] = f"{seeds_w}/{n}"
    ratio = rows["regrow refresh"] / rows["window retrain"]

    print("\nablations of regrow refresh, mean accuracy over the report seeds (full policy first)")
    ablation: dict[str, dict[str, float]] = {}
    for label, policy in ABLATIONS.items():
        ablation[label] = {}
        for r in regimes:
            scores = []
            for seed in args.seeds:
                data = stream(r, seed, args.chunks * CHUNK)
                scores.append(replay(data, Refresh(learner(seed), policy, seed=seed)).mean)
            ablation[label][r] = round(statistics.fmean(scores), 4)
    for label, by_regime in {
        "full": {r: regime_figures[r]["regrow_refresh"]["mean"] for r in regimes},
        **ablation,
    }.items():
        print(f"  {label:<42}" + "".join(f"{r}={v:.3f}  " for r, v in by_regime.items()))
    print("\ntraining rows: " + ", ".join(f"{s} {rows[s]:,}" for s in STRATEGIES))
    print(f"regrow refresh / window retrain rows: {ratio:.2f}")
    trials = 0 if args.skip_rollouts else args.trials
    rollout = rollouts(trials, args.dev_trials, args.dev_seed, args.trial_seed) if trials else {}
    print(
        json.dumps(
            {
                "regimes": regime_figures,
                "beats_stale_and_swap": f"{wins_swap}/{len(regimes)}",
                "beats_window": f"{wins_window}/{len(regimes)}",
                "rows_ratio": round(ratio, 3),
                **rollout,
                "seeds": args.seeds,
                "ablations": ablation,
            }
        )
    )


if __name__ == "__main__":
    main()
