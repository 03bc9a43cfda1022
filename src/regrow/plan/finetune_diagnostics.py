"""Which block to update: per-block gradient diagnostics, a ranking and a cheap choice.

:func:`block_diagnostics` measures, per block, the ratio of the gradient norm on recent data to
that on reference data, Auto-RGN, an optional probe and the backward cost; :func:`rank_blocks`
and :func:`choose_blocks` turn them into a ranking and a choice with reasons.
:mod:`regrow.plan.finetune_confirm` confirms the ranking with probes on held-out target rows.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch

from regrow.components.torch import TorchEstimator
from regrow.errors import ConfigError
from regrow.plan._finetune_params import _check, _fitted_torch, _params_of, _resolve
from regrow.plan._finetune_shift import SHIFT_ALPHA, block_input_shift
from regrow.plan._finetune_train import backward_flops, finetune

__all__ = ["BlockChoice", "BlockDiagnostic", "Criterion", "block_diagnostics", "choose_blocks",
           "rank_blocks"]  # fmt: skip

Criterion = Literal["grad_ratio", "mean_grad_ratio", "rgn", "probe_gain"]


@dataclass(frozen=True)
class BlockDiagnostic:
    """Evidence for updating one block.

    ``grad_ratio``: mean over rows of the norm of each row's loss gradient for the block, on
    recent data over the same on reference data (the criterion regrow uses; the two means are
    ``grad_norm_recent`` and ``grad_norm_reference``). ``mean_grad_ratio``: the same ratio for
    the norm of the *mean* gradient (kept for comparison: averaging first lets rows cancel,
    which hid label shifts from it). ``rgn``: mean over the block's tensors of
    ``||grad|| / ||weight||`` on recent data (Auto-RGN, Lee et al. 2023). ``probe_gain``: drop in
    validation loss after a short probe fine-tune of this block alone (None without probes).
    ``backward_flops``: backward FLOPs per sample to update it (down to this block);
    ``seconds``: measured time of one forward and backward pass over a batch doing so.
    ``input_shift_p``: permutation p-value that the block's *input* activations differ between
    recent and reference rows (small: the shift entered at or below this block).
    """

    block: str
    grad_ratio: float
    rgn: float
    grad_norm_recent: float
    grad_norm_reference: float
    mean_grad_ratio: float
    probe_gain: float | None
    backward_flops: float
    seconds: float
    n_params: int
    input_shift_p: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return asdict(self)


def _grads(est: TorchEstimator, X: Any, y: Any) -> dict[str, torch.Tensor]:
    """The gradient of the mean loss (eval mode)."""
    net = est.module_
    net.eval()
    net.zero_grad(set_to_none=True)
    est.loss(net(est.to_tensor(X)), est.encode_targets(y)).backward()  # type: ignore[no-untyped-call]
    out = {n: p.grad.detach().clone() for n, p in net.named_parameters() if p.grad is not None}
    net.zero_grad(set_to_none=True)
    return out


def _sample_norms(
    est: TorchEstimator, X: Any, y: Any, blocks: Sequence[str], chunk: int = 64
) -> dict[str, float]:
    """Per block, the mean over rows of the norm of that row's own loss gradient (eval mode)."""
    net = est.module_
    net.eval()
    params = {n: p.detach() for n, p in net.named_parameters()}
    buffers = {n: b.detach() for n, b in net.named_buffers()}

    def row_loss(p: dict[str, torch.Tensor], x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = torch.func.functional_call(net, (p, buffers), (x.unsqueeze(0),))
        return est.loss(out, t.unsqueeze(0))

    per_row = torch.func.vmap(torch.func.grad(row_loss), in_dims=(None, 0, 0))
    xt, yt = est.to_tensor(X), est.encode_targets(y)
    names = {b: [n for n in est.blocks_[b] if n in params] for b in blocks}
    sums = dict.fromkeys(blocks, 0.0)
    for start in range(0, len(xt), chunk):
        grads = per_row(params, xt[start : start + chunk], yt[start : start + chunk])
        for b in blocks:
            sq = sum(grads[n].flatten(1).pow(2).sum(1) for n in names[b])
            sums[b] += float(torch.as_tensor(sq).sqrt().sum())
    return {b: v / max(len(xt), 1) for b, v in sums.items()}


def _timed_pass(est: TorchEstimator, block: str, xt: torch.Tensor, yt: torch.Tensor) -> float:
    net = est.module_
    for n, p in net.named_parameters():
        p.requires_grad_(est.block_of(n) == block)
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        est.loss(net(xt), yt).backward()  # type: ignore[no-untyped-call]
        best = min(best, time.perf_counter() - started)
        net.zero_grad(set_to_none=True)
    for p in net.parameters():
        p.requires_grad_(True)
    return best


def block_diagnostics(
    estimator: TorchEstimator,
    X_recent: Any,
    y_recent: Any,
    X_ref: Any,
    y_ref: Any,
    *,
    probe_steps: int = 0,
    probe_lr: float = 1e-3,
    seed: int = 0,
) -> list[BlockDiagnostic]:
    """Per block (forward order): gradient-norm ratio, Auto-RGN, optional probe, cost.

    Reference data should be *held-out* rows of the distribution the member was trained on:
    on its own training rows the reference gradients are near zero and every ratio explodes.
    """
    _check("block_diagnostics", {"probe_steps": probe_steps, "lr": probe_lr})
    est = copy.deepcopy(_fitted_torch(estimator))
    g_recent, g_ref = _grads(est, X_recent, y_recent), _grads(est, X_ref, y_ref)
    blocks = _resolve(est, "all")
    rows_recent = _sample_norms(est, X_recent, y_recent, blocks)
    rows_ref = _sample_norms(est, X_ref, y_ref, blocks)
    shifted = block_input_shift(est, X_recent, X_ref, blocks, seed=seed)
    xt = est.to_tensor(np.asarray(X_recent, dtype=np.float32)[:256])
    yt = est.encode_targets(np.asarray(y_recent)[:256])
    out: list[BlockDiagnostic] = []
    for block in blocks:
        params = _params_of(est, block)
        norm_recent = math.sqrt(sum(float(g_recent[n].pow(2).sum()) for n, _ in params))
        norm_ref = math.sqrt(sum(float(g_ref[n].pow(2).sum()) for n, _ in params))
        rgn = float(
            np.mean(
                [
                    float(g_recent[n].norm()) / max(float(p.detach().norm()), 1e-12)
                    for n, p in params
                ]
            )
        )
        gain: float | None = None
        if probe_steps:
            probe = finetune(
                est, X_recent, y_recent, blocks=[block], lr=probe_lr, epochs=10_000,
                max_steps=probe_steps, val_fraction=0.25, patience=10_000, seed=seed,
            )  # fmt: skip
            curve = probe.report.val_loss
            gain = float(curve[0] - min(curve))
        out.append(
            BlockDiagnostic(
                block=block,
                grad_ratio=rows_recent[block] / max(rows_ref[block], 1e-12),
                rgn=rgn,
                grad_norm_recent=rows_recent[block],
                grad_norm_reference=rows_ref[block],
                mean_grad_ratio=norm_recent / max(norm_ref, 1e-12),
                probe_gain=gain,
                backward_flops=backward_flops(est, [block], X_recent),
                seconds=_timed_pass(est, block, xt, yt),
                n_params=sum(p.numel() for _, p in params),
                input_shift_p=shifted[block],
            )
        )
    return out


@dataclass(frozen=True)
class BlockChoice:
    """The blocks to fine-tune, the criterion and its scores, and why."""

    blocks: tuple[str, ...]
    criterion: str
    scores: dict[str, float]
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {
            "blocks": list(self.blocks),
            "criterion": self.criterion,
            "scores": dict(self.scores),
            "reasons": list(self.reasons),
        }


def _score(d: BlockDiagnostic, criterion: Criterion) -> float:
    if criterion == "probe_gain":
        if d.probe_gain is None:
            raise ConfigError(
                "criterion 'probe_gain' needs diagnostics with probes",
                hint="call block_diagnostics(..., probe_steps=20)",
            )
        return d.probe_gain
    return float(getattr(d, criterion))


def rank_blocks(
    diagnostics: Sequence[BlockDiagnostic], *, criterion: Criterion = "grad_ratio"
) -> list[BlockDiagnostic]:
    """Diagnostics sorted best first by ``criterion`` (ties: the cheaper block first)."""
    _check("rank_blocks", {"criterion": criterion})
    return sorted(diagnostics, key=lambda d: (-_score(d, criterion), d.backward_flops))


def choose_blocks(
    diagnostics: Sequence[BlockDiagnostic],
    *,
    budget_flops: float | None = None,
    criterion: Criterion = "grad_ratio",
    tie_margin: float = 0.1,
) -> BlockChoice:
    """The best block by ``criterion`` whose backward FLOPs per sample fit ``budget_flops``.

    With ``criterion="grad_ratio"``, blocks scoring within ``tie_margin`` (relative) of the best
    are a near tie, broken by where the shift entered: the lowest of them whose input moved
    (``input_shift_p`` below 0.01), else the cheapest of them. ``tie_margin=0`` disables it.

    >>> d = [BlockDiagnostic("input", 1.2, 0.1, 1.2, 1.0, 1.1, None, 900.0, 0.0, 10),
    ...      BlockDiagnostic("head", 6.0, 0.3, 6.0, 1.0, 5.0, None, 100.0, 0.0, 10)]
    >>> choose_blocks(d).blocks
    ('head',)
    """
    _check("choose_blocks", {"criterion": criterion, "budget_flops": budget_flops})
    _check("choose_blocks", {"tie_margin": tie_margin})
    if not diagnostics:
        raise ConfigError("no block diagnostics to choose from")
    ranked = rank_blocks(diagnostics, criterion=criterion)
    scores = {d.block: _score(d, criterion) for d in diagnostics}
    reasons: list[str] = []
    fits: list[BlockDiagnostic] = []
    for d in ranked:
        if budget_flops is not None and d.backward_flops > budget_flops:
            reasons.append(
                f"{d.block}: {criterion} {scores[d.block]:.3g} but its backward pass costs "
                f"{d.backward_flops:.3g} FLOPs/sample, over the budget {budget_flops:.3g}"
            )
        else:
            fits.append(d)
    if not fits:
        cheapest = min(diagnostics, key=lambda d: d.backward_flops)
        raise ConfigError(
            f"no block fits the budget of {budget_flops:.3g} backward FLOPs/sample",
            hint=f"the cheapest, {cheapest.block!r}, needs {cheapest.backward_flops:.3g}",
        )
    chosen = fits[0]
    runner_up = [scores[o.block] for o in ranked if o is not chosen]
    margin = f", next best {max(runner_up):.3g}" if runner_up else ""
    reason = (
        f"{chosen.block}: highest {criterion} {scores[chosen.block]:.3g}{margin}; backward cost "
        f"{chosen.backward_flops:.3g} FLOPs/sample"
    )
    top = scores[chosen.block]
    close = [d for d in fits if scores[d.block] >= top * (1 - tie_margin)]
    if criterion == "grad_ratio" and len(close) > 1:
        order = {d.block: i for i, d in enumerate(diagnostics)}
        moved = [d for d in close if d.input_shift_p < SHIFT_ALPHA]
        names = ", ".join(f"{d.block} {scores[d.block]:.3g}" for d in close)
        if moved:
            chosen = min(moved, key=lambda d: order[d.block])
            why = (
                f"its input moved (p={chosen.input_shift_p:.2g}): the lowest such block, "
                "where the shift entered"
            )
        else:
            chosen = min(close, key=lambda d: d.backward_flops)
            why = "no block input moved (an output-level shift): the cheapest of them"
        reason = (
            f"{chosen.block}: {criterion} near tie within {tie_margin:.0%} ({names}); {why}; "
            f"backward cost {chosen.backward_flops:.3g} FLOPs/sample"
        )
    reasons.insert(0, reason)
    return BlockChoice((chosen.block,), criterion, scores, tuple(reasons))
