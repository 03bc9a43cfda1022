"""Confirm the diagnostic's block choice with short probes, or choose not to update at all.

The gradient-norm ratio of :func:`~regrow.plan.finetune.block_diagnostics` ranks blocks
cheaply, but a ranking is not a decision: on a deeper net it can put the head above a
penultimate block that adapts better, and under a mild shift every update can lose against the
unchanged net. :func:`confirm_blocks` settles both on the target rows themselves:

1. It splits the rows into a probe-training part and a held-out part (``holdout``).
2. The candidates are the top ``top`` blocks of the gradient-norm-ratio ranking, the
   diagnostic's own choice (:func:`~regrow.plan.finetune_diagnostics.choose_blocks`, with its
   near-tie rule) and, always, the head (last block) and the penultimate block, less those over
   ``budget_flops``.
3. Each candidate is fine-tuned alone for ``probe_steps`` optimizer steps at each learning rate
   of ``lrs`` (the sweep's), on the training part. A probe's *gain* is the mean over held-out
   rows of the drop in loss against the unchanged net, with a Student-t interval at
   ``confidence`` on those per-row differences.
4. **No update** when the best probe's lower end is not above the larger of ``min_gain`` and
   ``min_relative_gain`` times the unchanged net's held-out loss: the expected gain is not
   significant.
5. Otherwise the diagnostic's choice stands when its best probe reaches ``share`` of the best
   probe's gain (it is confirmed); else the block of the best probe replaces it. Either way the
   learning rate of that block's best probe comes with it.

``docs/finetune.md`` has a worked example and the benchmark that fixed the defaults.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from scipy import stats

from regrow.components.torch import TorchEstimator
from regrow.errors import ConfigError
from regrow.plan._finetune_train import finetune
from regrow.plan.finetune_diagnostics import BlockDiagnostic, choose_blocks, rank_blocks

__all__ = ["LRS", "ConfirmedChoice", "Probe", "confirm_blocks"]

#: The learning-rate sweep of the benchmark; probes run at each of them.
LRS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


@dataclass(frozen=True)
class Probe:
    """One short fine-tune of one block at one learning rate, scored on held-out rows.

    ``gain``: mean drop of the per-row loss against the unchanged net (positive: better);
    ``low``/``high``: its interval; ``flops``: forward plus backward FLOPs the probe spent.
    """

    block: str
    lr: float
    steps: int
    gain: float
    low: float
    high: float
    flops: float
    cpu_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (a diverged probe's infinite gain becomes None)."""
        return {k: None if isinstance(v, float) and not math.isfinite(v) else v
                for k, v in asdict(self).items()}  # fmt: skip


@dataclass(frozen=True)
class ConfirmedChoice:
    """The confirmed blocks (empty: no update), the learning rate, the evidence and why.

    ``ranking``: block names best first by the cheap diagnostic; ``probes``: every probe run;
    ``base_loss``: the unchanged net's mean loss on the held-out rows; ``threshold``: the gain
    the best probe's lower end had to reach.
    """

    blocks: tuple[str, ...]
    lr: float | None
    ranking: tuple[str, ...]
    scores: dict[str, float]
    probes: tuple[Probe, ...]
    base_loss: float
    threshold: float
    holdout_rows: int
    reasons: tuple[str, ...]

    @property
    def update(self) -> bool:
        """Whether any block is to be fine-tuned."""
        return bool(self.blocks)

    @property
    def probe_flops(self) -> float:
        """FLOPs all probes spent together."""
        return float(sum(p.flops for p in self.probes))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        out = asdict(self)
        out.update(
            blocks=list(self.blocks),
            ranking=list(self.ranking),
            probes=[p.to_dict() for p in self.probes],
            reasons=list(self.reasons),
            probe_flops=self.probe_flops,
        )
        return out


def _row_losses(est: TorchEstimator, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    net = est.module_
    was = net.training
    net.eval()
    try:
        with torch.no_grad():
            out, target = net(est.to_tensor(X)), est.encode_targets(y)
            return np.array(
                [float(est.loss(out[i : i + 1], target[i : i + 1])) for i in range(len(X))]
            )
    finally:
        net.train(was)


def _interval(diff: np.ndarray, confidence: float) -> tuple[float, float, float]:
    mean = float(diff.mean())
    if len(diff) < 2:
        return mean, -math.inf, math.inf
    half = float(stats.t.ppf(confidence, len(diff) - 1)) * float(diff.std(ddof=1))
    half /= math.sqrt(len(diff))
    return mean, mean - half, mean + half


def _candidates(
    diagnostics: Sequence[BlockDiagnostic], top: int, budget: float | None, picked: str
) -> tuple[list[str], list[str], list[str]]:
    """(ranking, candidates in forward order, reasons for the ones left out)."""
    ranking = [d.block for d in rank_blocks(diagnostics, criterion="grad_ratio")]
    order = [d.block for d in diagnostics]
    wanted = set(ranking[:top]) | set(order[-2:]) | {picked}
    cost = {d.block: d.backward_flops for d in diagnostics}
    reasons = [
        f"{b}: not probed, its backward pass costs {cost[b]:.3g} FLOPs/sample, over the budget "
        f"{budget:.3g}"
        for b in order
        if b in wanted and budget is not None and cost[b] > budget
    ]
    kept = [b for b in order if b in wanted and (budget is None or cost[b] <= budget)]
    return ranking, kept, reasons


def confirm_blocks(
    estimator: TorchEstimator,
    X: Any,
    y: Any,
    diagnostics: Sequence[BlockDiagnostic],
    *,
    lrs: Sequence[float] = LRS,
    probe_steps: int = 30,
    top: int = 2,
    holdout: float = 0.3,
    batch_size: int = 32,
    budget_flops: float | None = None,
    confidence: float = 0.95,
    min_relative_gain: float = 0.1,
    min_gain: float = 0.02,
    share: float = 0.8,
    seed: int = 0,
) -> ConfirmedChoice:
    """Confirm the ranked blocks with short probes on held-out target rows, or choose none.

    ``diagnostics`` come from :func:`~regrow.plan.finetune.block_diagnostics` on the same
    estimator. See the module docstring for the rule; every threshold is an argument.
    """
    if not diagnostics:
        raise ConfigError("no block diagnostics to confirm", hint="call block_diagnostics first")
    if not lrs or any(not lr > 0 for lr in lrs):
        raise ConfigError(f"lrs must be learning rates > 0, got {list(lrs)!r}")
    if probe_steps < 1 or top < 1 or batch_size < 1:
        raise ConfigError(
            f"probe_steps, top and batch_size must be >= 1 (got {probe_steps}, {top}, {batch_size})"
        )
    if not 0 < holdout < 1 or not 0.5 < confidence < 1 or not 0 < share <= 1:
        raise ConfigError(
            f"need 0 < holdout < 1, 0.5 < confidence < 1, 0 < share <= 1 (got {holdout}, "
            f"{confidence}, {share})"
        )
    if min_relative_gain < 0 or min_gain < 0:
        raise ConfigError(
            f"min_relative_gain and min_gain must be >= 0, got {min_relative_gain}, {min_gain}"
        )
    Xa, ya = np.asarray(X, dtype=np.float32), np.asarray(y)
    n_hold = round(len(Xa) * holdout)
    if n_hold < 2 or len(Xa) - n_hold < 2:
        raise ConfigError(
            f"{len(Xa)} target rows are too few to hold out {holdout:.0%} of them for the probes",
            hint="label more recent rows, or name the blocks to fine-tune",
        )
    try:
        picked = choose_blocks(diagnostics, budget_flops=budget_flops).blocks[0]
    except ConfigError as exc:
        raise ConfigError(
            f"no candidate block fits the budget of {budget_flops} backward FLOPs/sample",
            hint=exc.hint or "raise budget_flops",
        ) from exc
    ranking, names, reasons = _candidates(diagnostics, top, budget_flops, picked)
    scores = {d.block: float(d.grad_ratio) for d in diagnostics}
    order = np.random.default_rng(seed).permutation(len(Xa))
    hold, train = order[:n_hold], order[n_hold:]
    base_rows = _row_losses(estimator, Xa[hold], ya[hold])
    base = float(base_rows.mean())
    threshold = max(float(min_relative_gain) * base, float(min_gain))
    probes: list[Probe] = []
    for block in names:
        for lr in lrs:
            run = finetune(
                estimator, Xa[train], ya[train], blocks=[block], lr=float(lr), epochs=10_000,
                max_steps=probe_steps, val_fraction=0.0, batch_size=batch_size, seed=seed,
            )  # fmt: skip
            diff = base_rows - _row_losses(run.estimator, Xa[hold], ya[hold])
            gain, low, high = _interval(diff, confidence)
            if not math.isfinite(gain):  # a diverged probe gains nothing
                gain = low = high = -math.inf
            rep = run.report
            probes.append(
                Probe(block, float(lr), rep.steps, gain, low, high,
                      rep.backward_flops + rep.forward_flops, rep.cpu_seconds)
            )  # fmt: skip
    best = max(probes, key=lambda p: p.gain)
    ranked = f"ranking by grad_ratio: {', '.join(f'{b} {scores[b]:.3g}' for b in ranking)}"
    common: dict[str, Any] = {
        "ranking": tuple(ranking), "scores": scores, "probes": tuple(probes), "base_loss": base,
        "threshold": threshold, "holdout_rows": int(n_hold),
    }  # fmt: skip
    if not best.low > threshold:
        why = (
            f"no fine-tuning: expected gain not significant (best probe {best.block} at lr "
            f"{best.lr:g}: held-out loss gain {best.gain:.3g} [{best.low:.3g}, {best.high:.3g}] "
            f"at {confidence:.0%}, needs a lower end above {threshold:.3g}: "
            f"{min_relative_gain:.0%} of the unchanged loss {base:.3g}, at least {min_gain:.3g})"
        )
        return ConfirmedChoice((), None, reasons=(why, ranked, *reasons), **common)
    per_block = {b: max((p for p in probes if p.block == b), key=lambda p: p.gain) for b in names}
    gains = ", ".join(f"{b} {p.gain:.3g} (lr {p.lr:g})" for b, p in per_block.items())
    head = f"probes ({probe_steps} steps per learning rate), held-out loss gain {gains}"
    if per_block[picked].gain >= share * best.gain:
        chosen = per_block[picked]
        verdict = (
            f"{picked}: the diagnostic's choice, confirmed by {head}: within {share:.0%} of the "
            "best"
        )
    else:
        chosen = best
        verdict = (
            f"{best.block}: replaces the diagnostic's choice {picked}, whose best gain is under "
            f"{share:.0%} of this block's; {head}"
        )
    why = (
        f"{verdict}; best probe's interval [{best.low:.3g}, {best.high:.3g}] clears {threshold:.3g}"
    )
    return ConfirmedChoice(
        (chosen.block,),
        chosen.lr,
        reasons=(why, ranked, *reasons),
        **common,
    )
