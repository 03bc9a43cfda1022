"""Confirm the diagnostic's block choice with short probes, or choose not to update at all.

The gradient-norm ratio of :func:`~regrow.plan.finetune.block_diagnostics` ranks blocks
cheaply, but a ranking is not a decision: on a deeper net it can put the head above a
penultimate block that adapts better, under a label shift it can rank the first conv block of a
CNN highest (whose fine-tuning then loses 20 points to the head's), and under a mild shift every
update can lose against the unchanged net. :func:`confirm_blocks` settles these on the target
rows themselves:

1. It splits the rows into a probe-training part and a held-out part (``holdout``).
2. The candidates are, always, the head (last block) and the penultimate block. Lower blocks
   are candidates only when the diagnostics find that some block's *input* moved (its
   ``input_shift_p`` below :data:`~regrow.plan._finetune_shift.SHIFT_ALPHA`): then the
   lowest such block (where the shift entered) and the top ``top`` blocks of the
   gradient-norm-ratio ranking join them. When no input moved, the shift is in how inputs map
   to outputs, which the top blocks adapt to; probing the lower ones would cost more than the
   whole fine-tuning of the head. Candidates over ``budget_flops`` are left out.
3. Each candidate is fine-tuned alone for ``probe_steps`` optimizer steps at each learning rate
   of ``lrs`` (two of the sweep's five, :data:`PROBE_LRS`), on the training part. A probe's
   *gain* is the mean over held-out rows of the drop in loss against the unchanged net, with a
   Student-t interval at ``confidence`` on those per-row differences.
4. **No update** when the best probe's lower end is not above the larger of ``min_gain`` and
   ``min_relative_gain`` times the unchanged net's held-out loss: the expected gain is not
   significant.
5. Otherwise the block of the best probe is chosen, with that probe's learning rate.

``docs/finetune.md`` has a worked example and the benchmark that fixed the defaults (on
development shift families only; it reports held-out families separately).
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
from regrow.plan._finetune_shift import SHIFT_ALPHA
from regrow.plan._finetune_train import finetune
from regrow.plan.finetune_diagnostics import BlockDiagnostic, rank_blocks

__all__ = ["LRS", "PROBE_LRS", "PROBE_STEPS", "ConfirmedChoice", "Probe", "confirm_blocks"]

#: The learning-rate sweep of the benchmark.
LRS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)

#: The learning rates the probes run at: two of the sweep's, a decade apart.
PROBE_LRS = (3e-3, 3e-2)

#: Optimizer steps of one probe.
PROBE_STEPS = 16


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
    diagnostics: Sequence[BlockDiagnostic], top: int, budget: float | None
) -> tuple[list[str], list[str], list[str]]:
    """(ranking, candidates in forward order, reasons for the ones left out or not probed)."""
    ranking = [d.block for d in rank_blocks(diagnostics, criterion="grad_ratio")]
    order = [d.block for d in diagnostics]
    moved = [d.block for d in diagnostics if d.input_shift_p < SHIFT_ALPHA]
    wanted = set(order[-2:])
    reasons: list[str] = []
    if moved:
        wanted |= {moved[0], *ranking[:top]}
    else:
        lower = [b for b in ranking[:top] if b not in wanted]
        if lower:
            reasons.append(
                f"{', '.join(lower)}: not probed: no block's input moved (input shift p >= "
                f"{SHIFT_ALPHA:g}), so the shift is in how inputs map to outputs and the top "
                "blocks adapt to it"
            )
    cost = {d.block: d.backward_flops for d in diagnostics}
    reasons += [
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
    lrs: Sequence[float] = PROBE_LRS,
    probe_steps: int = PROBE_STEPS,
    top: int = 1,
    holdout: float = 0.3,
    batch_size: int = 32,
    budget_flops: float | None = None,
    confidence: float = 0.95,
    min_relative_gain: float = 0.1,
    min_gain: float = 0.02,
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
    if not 0 < holdout < 1 or not 0.5 < confidence < 1:
        raise ConfigError(
            f"need 0 < holdout < 1 and 0.5 < confidence < 1 (got {holdout}, {confidence})"
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
    ranking, names, reasons = _candidates(diagnostics, top, budget_flops)
    if not names:
        cheapest = min(diagnostics, key=lambda d: d.backward_flops)
        raise ConfigError(
            f"no candidate block fits the budget of {budget_flops} backward FLOPs/sample",
            hint=f"the cheapest, {cheapest.block!r}, needs {cheapest.backward_flops:.3g}: "
            "raise budget_flops",
        )
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
    why = (
        f"{best.block}: the best loss gain of the fine-tuning probes ({probe_steps} steps per "
        f"learning rate: {gains}), on their own {n_hold} held-out rows; its interval "
        f"[{best.low:.3g}, {best.high:.3g}] clears {threshold:.3g} (the larger of "
        f"{min_relative_gain:.0%} of the unchanged net's loss {base:.3g} there and {min_gain:g})"
    )
    return ConfirmedChoice((best.block,), best.lr, reasons=(why, ranked, *reasons), **common)
