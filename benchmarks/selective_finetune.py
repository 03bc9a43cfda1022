"""Selective fine-tuning on shifted digits: which block to tune, and what it costs.

Run: ``python benchmarks/selective_finetune.py`` (one thread, about a minute).

scikit-learn's bundled ``load_digits`` (no download). Per seed: an MLP with three blocks
(``layer0`` = input, ``layer1`` = middle, ``head``) is pretrained on 800 images; 200 more,
unshifted, are the held-out reference. The remaining ~800 are shifted four ways, two of them
input-level (per-pixel gain and offset; an orthogonal mixing of pixels), one output-level (a
permutation of 4 of the 10 labels) and one input-level control (a permutation of pixels, a
sparse orthogonal mixing). Labelled target sets of 60 and 150 images are drawn from them; the
rest is the test set. Cases = 4 shifts x 2 target sizes = 8, accuracies averaged over 3 seeds.

Every option gets the same learning-rate sweep (chosen by validation loss on a 25% split of
the target set) and the same early stopping (patience 5 epochs, never before 50 optimizer
steps, best weights restored). Options: no update, full fine-tuning, each single
block, the head fitted on cached features, Auto-RGN's choice (raw relative gradient norm) and
regrow's choice (gradient-norm ratio, recent / reference; near ties within 10% go to the lowest
block whose input moved, else to the cheapest). A case is a *hit* when regrow's
choice scores within 0.5 points of the best single block. Compute is the backward pass's
FLOPs (estimated) and the CPU seconds of the chosen run.

This benchmark measures the ranking alone (``choose_blocks``). The planner confirms it with
probes or decides on no update (``regrow.plan.finetune_confirm``); that choice is measured on
more architectures and held-out shift families by ``selective_finetune_heldout.py``.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_limits

from regrow.components.torch import MLP, TorchClassifier
from regrow.plan.finetune import block_diagnostics, choose_blocks, finetune

torch.set_num_threads(1)
threadpool_limits(1)

SEEDS = (0, 1, 2)
SIZES = (60, 150)
SHIFTS = ("gain_offset", "mixing", "pixel_perm", "label_perm")
LABEL_SHIFTS = ("label_perm",)
LRS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
BLOCKS = ("layer0", "layer1", "head")
FT = {"epochs": 100, "patience": 5, "min_steps": 50, "val_fraction": 0.25, "batch_size": 32}


def shift(name: str, X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Any:
    if name == "gain_offset":
        gain, offset = rng.uniform(0.3, 1.7, 64), rng.uniform(-0.5, 0.5, 64)
        return (X * gain + offset).astype(np.float32), y
    if name == "mixing":
        q = np.linalg.qr(rng.normal(size=(64, 64)))[0]
        return (X @ q).astype(np.float32), y
    if name == "pixel_perm":
        return X[:, rng.permutation(64)], y
    classes = rng.choice(10, size=4, replace=False)
    mapping = dict(zip(classes.tolist(), np.roll(classes, 1).tolist(), strict=True))
    return X, np.array([mapping.get(int(v), int(v)) for v in y])


def sweep(net: TorchClassifier, X: np.ndarray, y: np.ndarray, seed: int, **kw: Any) -> Any:
    """The run with the lowest validation loss over the learning-rate sweep, and the sweep's CPU."""
    runs = [finetune(net, X, y, lr=lr, seed=seed, **FT, **kw) for lr in LRS]
    best = min(runs, key=lambda r: min(r.report.val_loss))
    return best, sum(r.report.cpu_seconds for r in runs)


def main() -> None:
    started = time.perf_counter()
    X_all, y_all = load_digits(return_X_y=True)
    X_all = (X_all / 16.0).astype(np.float32)
    # acc[(shift, size)][option] -> list over seeds; cost[...] -> (flops, cpu) lists
    acc: dict[tuple[str, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    cost: dict[tuple[str, int], dict[str, list[tuple[float, float]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    picks: dict[tuple[str, int], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(X_all))
        pre, ref, pool = order[:800], order[800:1000], order[1000:]
        net = TorchClassifier(
            MLP(hidden=(128, 64)), epochs=30, lr=3e-3, batch_size=32, random_state=seed
        ).fit(X_all[pre], y_all[pre])
        X_ref, y_ref = X_all[ref], y_all[ref]
        for name in SHIFTS:
            Xs, ys = shift(name, X_all[pool], y_all[pool], np.random.default_rng(100 + seed))
            for size in SIZES:
                case = (name, size)
                Xt, yt = Xs[:size], ys[:size]
                Xtest, ytest = Xs[150:], ys[150:]
                acc[case]["none"].append(100 * net.score(Xtest, ytest))
                runs: dict[str, Any] = {}
                for option, blocks, cache in [
                    ("full", "all", False),
                    *[(b, [b], False) for b in BLOCKS],
                    ("head_cached", ["head"], True),
                ]:
                    run, _ = sweep(net, Xt, yt, seed, blocks=blocks, head_cache=cache)
                    runs[option] = run
                diags = block_diagnostics(net, Xt, yt, X_ref, y_ref, seed=seed)
                for option, criterion in (
                    ("auto_rgn", "rgn"),
                    ("mean_grad", "mean_grad_ratio"),
                    ("regrow", "grad_ratio"),
                ):
                    block = choose_blocks(diags, criterion=criterion).blocks[0]  # type: ignore[arg-type]
                    picks[case][option].append(block)
                    runs[option] = runs["head_cached" if block == "head" else block]
                for option, run in runs.items():
                    acc[case][option].append(100 * run.estimator.score(Xtest, ytest))
                    cost[case][option].append((run.report.backward_flops, run.report.cpu_seconds))
        print(f"seed {seed} done after {time.perf_counter() - started:.0f} s", flush=True)

    options = ["none", "full", *BLOCKS, "head_cached", "auto_rgn", "mean_grad", "regrow"]
    header = f"{'shift':<12}{'n':>4} " + "".join(f"{o:>12}" for o in options) + "   picks"
    print("\nTest accuracy (%), mean over seeds " + str(list(SEEDS)))
    print(header)
    print("-" * len(header))
    hits = rgn_hits = mean_hits = 0
    for case in acc:
        mean = {o: float(np.mean(acc[case][o])) for o in options}
        best_single = max(mean[b] for b in BLOCKS)
        hit = mean["regrow"] >= best_single - 0.5
        hits += hit
        rgn_hits += mean["auto_rgn"] >= best_single - 0.5
        mean_hits += mean["mean_grad"] >= best_single - 0.5
        picked = f"regrow={','.join(picks[case]['regrow'])} rgn={','.join(picks[case]['auto_rgn'])}"
        print(
            f"{case[0]:<12}{case[1]:>4} "
            + "".join(f"{mean[o]:>12.1f}" for o in options)
            + f"   {'HIT ' if hit else 'miss'} {picked}"
        )
    print("\nBackward-pass compute of the chosen run: MFLOPs / CPU ms, mean over seeds")
    print(f"{'shift':<12}{'n':>4} " + "".join(f"{o:>14}" for o in options[1:]))
    for case in cost:
        cells = []
        for o in options[1:]:
            flops, cpu = (
                np.mean([c[0] for c in cost[case][o]]),
                np.mean([c[1] for c in cost[case][o]]),
            )
            cells.append(f"{flops / 1e6:>7.1f}/{1e3 * cpu:<6.0f}")
        print(f"{case[0]:<12}{case[1]:>4} " + "".join(f"{c:>14}" for c in cells))

    def mean_of(shifts: tuple[str, ...], fn: Any) -> float:
        return float(np.mean([fn(c) for c in acc if c[0] in shifts]))

    inputs = tuple(s for s in SHIFTS if s not in LABEL_SHIFTS)
    gain = mean_of(LABEL_SHIFTS, lambda c: np.mean(acc[c]["regrow"]) - np.mean(acc[c]["full"]))
    ratio = mean_of(
        LABEL_SHIFTS,
        lambda c: (
            np.mean([r[0] for r in cost[c]["regrow"]]) / np.mean([f[0] for f in cost[c]["full"]])
        ),
    )
    cpu_ratio = mean_of(
        LABEL_SHIFTS,
        lambda c: (
            np.mean([r[1] for r in cost[c]["regrow"]]) / np.mean([f[1] for f in cost[c]["full"]])
        ),
    )
    gap = mean_of(inputs, lambda c: np.mean(acc[c]["full"]) - np.mean(acc[c]["regrow"]))
    print(
        f"\nregrow hits {hits}/{len(acc)} (Auto-RGN {rgn_hits}/{len(acc)}, mean-gradient ratio "
        f"{mean_hits}/{len(acc)}); label shift: "
        f"{gain:+.1f} pts vs full at {ratio:.1%} of its backward FLOPs ({cpu_ratio:.1%} of its "
        f"CPU time); input shifts: full minus regrow {gap:+.1f} pts (negative: regrow ahead); "
        f"{time.perf_counter() - started:.0f} s"
    )
    print(
        json.dumps(
            {
                "hit_rate": f"{hits}/{len(acc)}",
                "label_shift_gain_pts": round(gain, 2),
                "label_shift_cost_ratio": round(ratio, 4),
                "input_shift_gap_pts": round(gap, 2),
                "seeds": len(SEEDS),
            }
        )
    )


if __name__ == "__main__":
    main()
