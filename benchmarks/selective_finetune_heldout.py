"""Selective fine-tuning that generalises: three architectures, eight shift families, held out.

Run: ``python benchmarks/selective_finetune_heldout.py --seeds 0 1 2 3`` (one thread; a few
minutes per seed). ``--out runs.json`` writes the per-run records; ``--aggregate a.json b.json``
reports on records written by several processes (one per seed, say).

scikit-learn's bundled ``load_digits`` (8x8 images; nothing is downloaded). Per seed, three
networks are pretrained on 800 images: ``mlp3`` (``MLP(hidden=(128, 64))``, the original
benchmark's), ``mlp4`` (``MLP(hidden=(256, 128, 64))``) and ``cnn`` (two 3x3 conv blocks, a
dense block and a head). 200 more unshifted images are the diagnostic's reference; the other
~800 are shifted and give a labelled target set (60 or 150 images) and a test set (the rest).

Shift families, parameters drawn per seed from ranges (see :func:`shift`); the **development**
families (with the first benchmark's four shifts, ``legacy``) are the only ones the rules and
thresholds of :func:`regrow.plan.finetune_confirm.confirm_blocks` were fixed on (its defaults:
30-step probes at the five learning rates below, 30% held out, 95% interval, gain above 10% of
the unchanged loss and 0.02 nats, share 80%); the **held-out** families are reported separately:

* development: ``gain_offset`` (strong, input), ``label_cycle`` (strong, output), ``noise`` and
  ``contrast`` (mild);
* held-out: ``translate`` (strong, input), ``label_pairs`` (strong, output), ``dead_pixels`` (meant
  mild; it was not on the CNN) and ``blur`` (mild).

Options: no update, full fine-tuning, each single block, and regrow's choice (the gradient-norm
ratio ranking confirmed by probes, or no update). Every fine-tune gets the same learning-rate
sweep (``LRS``, chosen by validation loss on 25% of the target set) and early stopping. A case
(architecture, family, target size) is a **hit** when regrow's accuracy, averaged over seeds, is
within 0.5 points of the best option's. The legacy part re-runs the original benchmark's four
shifts on ``mlp3`` (hit: within 0.5 points of the best single block) for its figures.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import OrderedDict, defaultdict
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_limits
from torch import nn

from regrow.components.torch import MLP, TorchClassifier
from regrow.plan.finetune import block_diagnostics, choose_blocks, finetune
from regrow.plan.finetune_confirm import LRS, confirm_blocks

torch.set_num_threads(1)
threadpool_limits(1)

SIZES = (60, 150)
FT = {"epochs": 100, "patience": 5, "min_steps": 50, "val_fraction": 0.25, "batch_size": 32}
DEV = ("gain_offset", "label_cycle", "noise", "contrast")
HELDOUT = ("translate", "label_pairs", "dead_pixels", "blur")
MILD = ("noise", "contrast", "dead_pixels", "blur")
LEGACY = ("gain_offset", "mixing", "pixel_perm", "label_perm")


class SmallCNN(BaseEstimator):  # type: ignore[misc]
    """Module factory: conv0 (1->16), conv1 (16->32, pool), dense (512->64), head."""

    def __call__(self, n_features: int, n_outputs: int) -> nn.Sequential:
        return nn.Sequential(
            OrderedDict(
                reshape=nn.Unflatten(1, (1, 8, 8)),
                conv0=nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU()),
                conv1=nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
                flat=nn.Flatten(),
                dense=nn.Sequential(nn.Linear(32 * 16, 64), nn.ReLU()),
                head=nn.Linear(64, n_outputs),
            )
        )


ARCHS: dict[str, Any] = {
    "mlp3": lambda: MLP(hidden=(128, 64)),
    "mlp4": lambda: MLP(hidden=(256, 128, 64)),
    "cnn": SmallCNN,
}


def _relabel(y: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    return np.array([mapping.get(int(v), int(v)) for v in y])


def _images(X: np.ndarray) -> np.ndarray:
    return X.reshape(-1, 8, 8)


def shift(name: str, X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Any:
    """The shifted pool and a description of the parameters drawn."""
    if name == "gain_offset":
        a, b = rng.uniform(0.4, 0.8), rng.uniform(0.2, 0.5)
        gain, offset = rng.uniform(1 - a, 1 + a, 64), rng.uniform(-b, b, 64)
        return (X * gain + offset).astype(np.float32), y, f"gain+-{a:.2f} offset+-{b:.2f}"
    if name in ("label_cycle", "label_perm"):
        k = int(rng.integers(3, 6)) if name == "label_cycle" else 4
        classes = rng.choice(10, size=k, replace=False)
        mapping = dict(zip(classes.tolist(), np.roll(classes, 1).tolist(), strict=True))
        return X, _relabel(y, mapping), f"cycle of {k}"
    if name == "noise":
        s = rng.uniform(0.02, 0.08)
        return (X + rng.normal(0, s, X.shape)).astype(np.float32), y, f"sigma {s:.3f}"
    if name == "contrast":
        c = rng.uniform(0.85, 1.0)
        return (X * c).astype(np.float32), y, f"x{c:.2f}"
    if name == "translate":
        dx, dy = [int(v) for v in rng.choice([-2, -1, 1, 2], size=2)]
        img = np.roll(_images(X), (dy, dx), axis=(1, 2))
        if dy > 0:
            img[:, :dy] = 0
        else:
            img[:, dy:] = 0
        if dx > 0:
            img[:, :, :dx] = 0
        else:
            img[:, :, dx:] = 0
        return img.reshape(len(X), 64).astype(np.float32), y, f"dx {dx} dy {dy}"
    if name == "label_pairs":
        p = int(rng.integers(2, 4))
        c = rng.choice(10, size=2 * p, replace=False).tolist()
        mapping = {
            **dict(zip(c[::2], c[1::2], strict=True)),
            **dict(zip(c[1::2], c[::2], strict=True)),
        }
        return X, _relabel(y, mapping), f"{p} pairs swapped"
    if name == "dead_pixels":
        m = int(rng.integers(1, 4))
        out = X.copy()
        out[:, rng.choice(64, size=m, replace=False)] = 0
        return out, y, f"{m} dead pixels"
    if name == "blur":
        lam = rng.uniform(0.05, 0.2)
        img = _images(X)
        pad = np.pad(img, ((0, 0), (1, 1), (1, 1)))
        box = sum(pad[:, i : i + 8, j : j + 8] for i in range(3) for j in range(3)) / 9
        out = (1 - lam) * img + lam * box
        return out.reshape(len(X), 64).astype(np.float32), y, f"blur {lam:.2f}"
    if name == "mixing":
        q = np.linalg.qr(rng.normal(size=(64, 64)))[0]
        return (X @ q).astype(np.float32), y, "orthogonal"
    if name == "pixel_perm":
        return X[:, rng.permutation(64)], y, "permutation"
    raise ValueError(name)


def sweep(net: TorchClassifier, X: np.ndarray, y: np.ndarray, seed: int, blocks: Any) -> Any:
    """The run with the lowest validation loss over the sweep, and the sweep's total FLOPs."""
    runs = [finetune(net, X, y, blocks=blocks, lr=lr, seed=seed, **FT) for lr in LRS]
    best = min(runs, key=lambda r: min(r.report.val_loss))
    flops = sum(r.report.backward_flops + r.report.forward_flops for r in runs)
    return best, flops


def run_case(
    net: TorchClassifier, data: dict[str, Any], name: str, size: int, seed: int, salt: int
) -> dict[str, Any]:
    Xs, ys, params = shift(name, data["X_pool"], data["y_pool"], np.random.default_rng(salt))
    Xt, yt, Xtest, ytest = Xs[:size], ys[:size], Xs[150:], ys[150:]
    acc = {"none": 100 * net.score(Xtest, ytest)}
    flops: dict[str, float] = {}
    bwd: dict[str, float] = {}
    runs: dict[str, Any] = {}
    for option, blocks in [("full", "all"), *[(b, [b]) for b in net.blocks_ if b != "rest"]]:
        run, total = sweep(net, Xt, yt, seed, blocks)
        runs[option] = run
        acc[option] = 100 * run.estimator.score(Xtest, ytest)
        flops[option], bwd[option] = total, run.report.backward_flops
    started = time.process_time()
    diags = block_diagnostics(net, Xt, yt, data["X_ref"], data["y_ref"], seed=seed)
    ranked = choose_blocks(diags).blocks[0]
    choice = confirm_blocks(net, Xt, yt, diags, seed=seed)
    picked = choice.blocks[0] if choice.update else "none"
    return {
        "seed": seed, "family": name, "size": size, "params": params, "acc": acc,
        "flops": flops, "bwd": bwd, "pick": picked, "ranked": ranked,
        "probe_flops": choice.probe_flops, "choose_cpu": time.process_time() - started,
        "reason": choice.reasons[0], "base_loss": choice.base_loss,
        "threshold": choice.threshold, "holdout_rows": choice.holdout_rows,
        "probes": [p.to_dict() for p in choice.probes],
        "grad_ratio": choice.scores, "ranking": list(choice.ranking),
        "cost": {d.block: d.backward_flops for d in diags},
    }  # fmt: skip


def run_seed(seed: int, archs: list[str], splits: list[str]) -> list[dict[str, Any]]:
    X_all, y_all = load_digits(return_X_y=True)
    X_all = (X_all / 16.0).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(X_all))
    pre, ref, pool = order[:800], order[800:1000], order[1000:]
    data = {"X_ref": X_all[ref], "y_ref": y_all[ref], "X_pool": X_all[pool], "y_pool": y_all[pool]}
    out = []
    for arch in archs:
        net = TorchClassifier(
            ARCHS[arch](), epochs=30, lr=3e-3, batch_size=32, random_state=seed
        ).fit(X_all[pre], y_all[pre])
        parts = [("dev", DEV), ("heldout", HELDOUT), ("legacy", LEGACY if arch == "mlp3" else ())]
        parts = [(split, families) for split, families in parts if split in splits]
        for split, families in parts:
            for i, name in enumerate(families):
                for size in SIZES:
                    salt = 100 + seed if split == "legacy" else 1000 * seed + 17 * i + 3
                    rec = run_case(net, data, name, size, seed, salt)
                    rec.update(arch=arch, split=split)
                    out.append(rec)
                    print(
                        f"seed {seed} {arch} {split} {name} n={size} ({rec['params']}): pick "
                        f"{rec['pick']} (ranked {rec['ranked']}) "
                        + " ".join(f"{k} {v:.1f}" for k, v in rec["acc"].items()),
                        flush=True,
                    )
    return out


def _mean(records: list[dict[str, Any]], option: str) -> float:
    return float(np.mean([r["acc"][option] if option in r["acc"] else r["acc"][r[option]]
                          for r in records]))  # fmt: skip


def _regrow(r: dict[str, Any]) -> float:
    return float(r["acc"][r["pick"]])


def _seed_oracle(rs: list[dict[str, Any]]) -> float:
    """Mean accuracy of picking, for each seed, the option that is best on average over the
    case's *other* seeds: what knowing the case (net, family, size) but not the seed gives."""
    picks = []
    for r in rs:
        others = [o for o in rs if o is not r]
        picks.append(r["acc"][max(r["acc"], key=lambda k: np.mean([o["acc"][k] for o in others]))])
    return float(np.mean(picks))


def report(records: list[dict[str, Any]]) -> dict[str, Any]:
    cases: dict[tuple[str, str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        cases[(r["split"], r["arch"], r["family"], r["size"])].append(r)
    summary: dict[str, Any] = {"dev": (0, 0, 0.0, 0, 0.0), "heldout": (0, 0, 0.0, 0, 0.0)}
    for split in ("dev", "heldout"):
        none_best = 0
        hits = n = 0
        worst = np.inf
        run_hits = runs = 0
        oracle_hits = 0
        shortfall: list[float] = []
        print(f"\n{split} families (accuracy %, mean over seeds; regrow's picks per seed)")
        for key, rs in sorted(cases.items()):
            if key[0] != split:
                continue
            options = list(rs[0]["acc"])
            mean = {o: float(np.mean([r["acc"][o] for r in rs])) for o in options}
            ours = float(np.mean([_regrow(r) for r in rs]))
            best = max(mean.values())
            hit = ours >= best - 0.5
            shortfall.append(best - ours)
            hits, n = hits + hit, n + 1
            none_best += mean["none"] >= best - 0.5
            oracle_hits += len(rs) > 1 and _seed_oracle(rs) >= best - 0.5
            worst = min(worst, ours - mean["none"])
            for r in rs:
                run_hits += _regrow(r) >= max(r["acc"].values()) - 0.5
                runs += 1
            cells = " ".join(f"{o} {mean[o]:.1f}" for o in options)
            picks = ",".join(r["pick"] for r in rs)
            print(f"  {key[1]:<5}{key[2]:<12}{key[3]:>4}  regrow {ours:5.1f}  best {best:5.1f} "
                  f"{'HIT ' if hit else 'miss'} [{picks}]  {cells}")  # fmt: skip
        print(f"  {split}: {hits}/{n} cases hit ({run_hits}/{runs} single runs); worst regrow "
              f"minus none {worst:+.2f} pts")  # fmt: skip
        print(f"  {split}: no update is within 0.5 pts of the best option in {none_best}/{n} cases")
        print(f"  {split}: the seed oracle (each seed takes the option best on the case's other "
              f"seeds) hits {oracle_hits}/{n} cases")  # fmt: skip
        print(f"  {split}: regrow is {np.mean(shortfall):.2f} pts below the best option on average "
              f"over the cases (at most {max(shortfall, default=0.0):.2f})")  # fmt: skip
        summary[split] = (hits, n, worst, oracle_hits, float(np.mean(shortfall)))
    chosen = [r for r in records if r["pick"] != "none"]
    ratios = [r["probe_flops"] / r["flops"][r["pick"]] for r in chosen]
    probe_ratio = float(np.median(ratios)) if ratios else float("nan")
    print(
        f"\nprobes / chosen fine-tune's sweep (FLOPs), over {len(chosen)} updated runs: median "
        f"{probe_ratio:.1%}, mean {np.mean(ratios):.1%}, max {max(ratios, default=0):.1%}"
    )
    legacy = [r for r in records if r["split"] == "legacy"]
    out: dict[str, Any] = {
        "heldout_hit_rate": f"{summary['heldout'][0]}/{summary['heldout'][1]}",
        "worst_vs_none_pts": round(summary["heldout"][2], 2),
        "dev_hit_rate": f"{summary['dev'][0]}/{summary['dev'][1]}",
        "heldout_seed_oracle": f"{summary['heldout'][3]}/{summary['heldout'][1]}",
        "heldout_mean_shortfall_pts": round(summary["heldout"][4], 2),
        "dev_seed_oracle": f"{summary['dev'][3]}/{summary['dev'][1]}",
        "probe_cost_ratio": round(probe_ratio, 4),
    }
    if legacy:
        lcases: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
        for r in legacy:
            lcases[(r["family"], r["size"])].append(r)
        hits = 0
        for (fam, size), rs in lcases.items():
            blocks = [o for o in rs[0]["acc"] if o not in ("none", "full")]
            best = max(float(np.mean([r["acc"][b] for r in rs])) for b in blocks)
            ours = float(np.mean([_regrow(r) for r in rs]))
            hits += ours >= best - 0.5
            print(f"  legacy {fam:<12}{size:>4} regrow {ours:.1f} best block {best:.1f} "
                  f"full {_mean(rs, 'full'):.1f} picks {[r['pick'] for r in rs]}")  # fmt: skip
        lab = [r for r in legacy if r["family"] == "label_perm"]
        inp = [r for r in legacy if r["family"] != "label_perm"]
        gain = float(np.mean([_regrow(r) - r["acc"]["full"] for r in lab]))
        ratio = float(
            np.mean([r["bwd"][r["pick"]] / r["bwd"]["full"] for r in lab if r["pick"] != "none"])
        )
        gap = float(np.mean([r["acc"]["full"] - _regrow(r) for r in inp]))
        out.update(
            hit_rate=f"{hits}/{len(lcases)}", label_shift_gain_pts=round(gain, 2),
            label_shift_cost_ratio=round(ratio, 4), input_shift_gap_pts=round(gap, 2),
        )  # fmt: skip
    out["seeds"] = len({r["seed"] for r in records})
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3])
    parser.add_argument("--archs", nargs="*", default=list(ARCHS))
    parser.add_argument("--splits", nargs="*", default=["dev", "heldout", "legacy"])
    parser.add_argument("--out")
    parser.add_argument("--aggregate", nargs="*")
    args = parser.parse_args()
    if args.aggregate:
        records = []
        for path in args.aggregate:
            with open(path) as fh:
                records.extend(json.load(fh))
    else:
        started = time.perf_counter()
        records = [r for s in args.seeds for r in run_seed(s, args.archs, args.splits)]
        print(f"{time.perf_counter() - started:.0f} s", flush=True)
        if args.out:
            with open(args.out, "w") as fh:
                json.dump(records, fh)
    print(json.dumps(report(records)))


if __name__ == "__main__":
    main()
