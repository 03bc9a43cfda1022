"""Where a shift enters a network: a permutation test on the input of every block.

A label shift leaves every block's *input* distribution as it was; an input shift moves the
input of the first block (and of the blocks after it). :func:`block_input_shift` gives, per
block, the permutation p-value of the difference between the mean (standardised) input
activations on recent and reference rows. :func:`~regrow.plan.finetune.choose_blocks` uses it to
break near ties of the gradient-norm ratio: the lowest block whose input moved, or the cheapest
block when no input moved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from regrow.components.torch import TorchEstimator

#: p-value under which a block's input counts as shifted.
SHIFT_ALPHA = 0.01


def _block_inputs(est: TorchEstimator, X: Any, blocks: Sequence[str]) -> dict[str, torch.Tensor]:
    """The input of the first module (in call order) owning parameters of each block (eval mode)."""
    net = est.module_
    seen: dict[str, torch.Tensor] = {}
    hooks = []

    def hook(block: str) -> Callable[[nn.Module, Any], None]:
        def record(mod: nn.Module, inputs: Any) -> None:
            if block not in seen and inputs and torch.is_tensor(inputs[0]):
                seen[block] = inputs[0].detach().flatten(1)

        return record

    wanted = set(blocks)
    for name, mod in net.named_modules():
        block = est.block_of(name) if name else None
        if block in wanted and any(True for _ in mod.parameters(recurse=False)):
            hooks.append(mod.register_forward_pre_hook(hook(block)))
    was = net.training
    net.eval()
    try:
        with torch.no_grad():
            net(est.to_tensor(X))
    finally:
        for h in hooks:
            h.remove()
        net.train(was)
    return seen


def _mean_gap(a: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((a[labels].mean(0) - a[~labels].mean(0)) ** 2))


def block_input_shift(
    est: TorchEstimator,
    X_recent: Any,
    X_ref: Any,
    blocks: Sequence[str],
    *,
    permutations: int = 199,
    seed: int = 0,
) -> dict[str, float]:
    """Per block, the permutation p-value that its input differs between recent and reference.

    The statistic is the mean over input features of the squared difference of the recent and
    reference means, features standardised on the pooled rows; the null permutes which rows are
    recent.
    """
    xr = np.asarray(X_recent, dtype=np.float32)
    xf = np.asarray(X_ref, dtype=np.float32)
    inputs = _block_inputs(est, np.concatenate([xr, xf]), blocks)
    is_recent = np.arange(len(xr) + len(xf)) < len(xr)
    rng = np.random.default_rng(seed)
    nulls = [rng.permutation(is_recent) for _ in range(permutations)]
    out: dict[str, float] = {}
    for block in blocks:
        if block not in inputs:
            out[block] = 1.0
            continue
        a = inputs[block].cpu().double().numpy()
        a = (a - a.mean(0)) / (a.std(0) + 1e-6)
        stat = _mean_gap(a, is_recent)
        above = sum(_mean_gap(a, perm) >= stat for perm in nulls)
        out[block] = (1 + above) / (1 + permutations)
    return out
