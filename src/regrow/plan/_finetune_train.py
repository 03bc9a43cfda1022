"""Selective fine-tuning proper: train chosen blocks of a torch member, and what it costs.

:func:`finetune` and :func:`backward_flops` are re-exported by :mod:`regrow.plan.finetune`, which
documents them; :func:`stable_slice_check` is the forgetting guard.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from regrow.components.torch import TorchEstimator
from regrow.errors import ConfigError
from regrow.plan._finetune_params import (
    _check,
    _check_data,
    _fitted_torch,
    _pair_data,
    _params_of,
    _resolve,
)

# -- compute cost ----------------------------------------------------------------------------


def _layer_flops(est: TorchEstimator, X: Any) -> list[tuple[str, str | None, float]]:
    """(module, block, forward FLOPs per sample) of each module owning parameters, in call order."""
    net = est.module_
    rows: list[tuple[str, str | None, float]] = []
    hooks = []

    def hook(name: str) -> Callable[[nn.Module, Any, Any], None]:
        def record(mod: nn.Module, inputs: Any, output: Any) -> None:
            n = max(1, int(inputs[0].shape[0]))
            if isinstance(mod, nn.Linear):
                flops = 2.0 * mod.in_features * mod.out_features
            elif isinstance(mod, nn.modules.conv._ConvNd):
                per_out = 2.0 * mod.in_channels // mod.groups * math.prod(mod.kernel_size)
                flops = per_out * output[0].numel()
            else:
                own = sum(p.numel() for p in mod.parameters(recurse=False))
                flops = 2.0 * max(own, output.numel() / n if torch.is_tensor(output) else 0)
            rows.append((name, est.block_of(name), flops))

        return record

    for name, mod in net.named_modules():
        if any(True for _ in mod.parameters(recurse=False)):
            hooks.append(mod.register_forward_hook(hook(name)))
    was = net.training
    net.eval()
    try:
        with torch.no_grad():
            net(est.to_tensor(np.asarray(X, dtype=np.float32)[:2]))
    finally:
        for h in hooks:
            h.remove()
        net.train(was)
    return rows


def backward_flops(est: TorchEstimator, blocks: Sequence[str], X: Any) -> float:
    """Estimated backward FLOPs per sample when ``blocks`` train and the rest is frozen.

    Weight gradients cost about one forward pass of each trained layer; input gradients one
    forward pass of every layer above the lowest trained one (nothing flows below it).
    """
    return _backward(_layer_flops(est, X), blocks)


def _backward(rows: list[tuple[str, str | None, float]], blocks: Sequence[str]) -> float:
    trained = set(blocks)
    lowest = next((i for i, (_, b, _) in enumerate(rows) if b in trained), len(rows))
    grad_in = sum(f for _, _, f in rows[lowest + 1 :])
    grad_w = sum(f for _, b, f in rows if b in trained)
    return float(grad_in + grad_w)


# -- fine-tuning ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FinetuneReport:
    """What a fine-tune did and what it cost. ``val_loss[0]`` is the loss before updating."""

    blocks: tuple[str, ...]
    epochs: int
    steps: int
    best_epoch: int
    early_stop_epoch: int | None
    train_loss: tuple[float, ...]
    val_loss: tuple[float, ...]
    cpu_seconds: float
    backward_flops: float
    forward_flops: float
    head_cache: bool
    replay_rows: int
    reinit: tuple[str, ...] = ()
    lr: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        out = asdict(self)
        for key in ("blocks", "train_loss", "val_loss", "reinit"):
            out[key] = list(out[key])
        return out


@dataclass(frozen=True)
class FinetuneResult:
    """A new fitted estimator and the report of how it was obtained."""

    estimator: TorchEstimator
    report: FinetuneReport


def _cache_split(est: TorchEstimator, trained: set[str]) -> int | None:
    """Index k such that children[:k] of a Sequential are frozen and cacheable, else None."""
    net = est.module_
    if not isinstance(net, nn.Sequential):
        return None
    k = 0
    for name, child in net.named_children():
        tensors = [f"{name}.{n}" for n in child.state_dict(keep_vars=True)]
        if any(est.block_of(t) in trained for t in tensors):
            break
        noisy = any(
            isinstance(m, nn.Dropout | nn.modules.batchnorm._BatchNorm) for m in child.modules()
        )
        if noisy and est.block_of(name) is None:
            return None  # a module in no block stays in train mode: not cacheable
        k += 1
    else:
        return None
    return k if k > 0 else None


def _set_modes(est: TorchEstimator, trained: set[str]) -> None:
    """Train mode, except modules of frozen blocks (their BatchNorm stats and dropout freeze)."""
    est.module_.train()
    for name, mod in est.module_.named_modules():
        block = est.block_of(name) if name else None
        if block is not None and block not in trained:
            mod.eval()


def finetune(
    estimator: TorchEstimator,
    X: Any,
    y: Any,
    *,
    blocks: Sequence[str] | Literal["all"],
    lr: float = 1e-3,
    block_lr: Mapping[str, float] | None = None,
    epochs: int = 20,
    max_steps: int | None = None,
    batch_size: int | None = None,
    val_fraction: float = 0.2,
    patience: int = 3,
    min_steps: int = 50,
    reinit: Sequence[str] = (),
    shrink_perturb: tuple[float, float] | None = None,
    replay: tuple[Any, Any] | None = None,
    replay_share: float = 0.0,
    l2sp: float = 0.0,
    weight_decay: float = 0.0,
    head_cache: bool | Literal["auto"] = "auto",
    seed: int = 0,
) -> FinetuneResult:
    """Fine-tune ``blocks`` of a fitted torch estimator on ``(X, y)``; return a new estimator.

    ``lr`` applies to every trained block unless ``block_lr`` names it. Training stops after
    ``epochs`` epochs, ``max_steps`` optimizer steps, or ``patience`` epochs without a better
    loss on the validation split (``val_fraction`` of the rows; 0 disables early stopping), but
    early stopping never stops before ``min_steps`` optimizer steps (on a few dozen rows an
    epoch is two steps, and an update whose validation loss first rises would be discarded).
    The weights of the best epoch are restored.
    ``reinit`` blocks restart from a fresh initialisation; ``shrink_perturb=(s, p)`` sets trained
    weights to ``s * w + p * w_fresh``. ``replay=(X_ref, y_ref)`` with ``replay_share`` mixes
    reference rows into each batch; ``l2sp`` adds ``l2sp / 2 * ||w - w_before||^2``.
    ``head_cache`` fits a trained top suffix of an ``nn.Sequential`` on cached features.
    """
    _check(
        "finetune",
        {
            "blocks": blocks, "lr": lr, "block_lr": block_lr, "epochs": epochs,
            "max_steps": max_steps, "batch_size": batch_size, "val_fraction": val_fraction,
            "patience": patience, "min_steps": min_steps, "reinit": reinit,
            "shrink_perturb": shrink_perturb, "replay_share": replay_share, "l2sp": l2sp,
            "weight_decay": weight_decay, "head_cache": head_cache,
        },
    )  # fmt: skip
    cpu_started = time.process_time()
    base = _fitted_torch(estimator)
    names = _resolve(base, blocks)
    if not names:
        raise ConfigError("no block with parameters to train", hint=f"blocks: {list(base.blocks_)}")
    trained = set(names)
    if not set(reinit) <= trained:
        raise ConfigError(
            f"reinit names blocks {sorted(set(reinit) - trained)} that are not trained",
            hint=f"add them to blocks (trained: {names})",
        )
    lrs = {b: float(lr) for b in names}
    for b, v in (block_lr or {}).items():
        if b not in trained:
            raise ConfigError(f"block_lr names block {b!r} that is not trained", hint=f"{names}")
        lrs[b] = float(v)
    if replay_share > 0 and replay is None:
        raise ConfigError("replay_share > 0 needs replay=(X_ref, y_ref)")
    if replay_share >= 1:
        raise ConfigError(f"The 'replay_share' must be below 1. Got {replay_share!r}.")
    _check_data(base, X, y)
    if replay is not None:
        _check_data(base, *_pair_data(replay, "replay"), "replay")

    est = copy.deepcopy(base)
    net = est.module_
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    fresh = est.build_module(seed + 7919) if reinit or shrink_perturb else None
    with torch.no_grad():
        fresh_state = fresh.state_dict() if fresh is not None else {}
        for b in reinit:
            for n in est.blocks_[b]:
                target = net.get_parameter(n) if n in before else net.get_buffer(n)
                target.copy_(fresh_state[n])
        if shrink_perturb is not None:
            s, p = shrink_perturb
            for b in names:
                for n, param in _params_of(est, b):
                    param.mul_(float(s)).add_(fresh_state[n], alpha=float(p))
    anchor = {n: p for n, p in before.items() if not any(n in est.blocks_[b] for b in reinit)}
    for n, param in net.named_parameters():
        param.requires_grad_(est.block_of(n) in trained)

    xt = est.to_tensor(X)
    yt = est.encode_targets(y)
    gen = torch.Generator().manual_seed(int(seed))
    n_val = round(len(xt) * float(val_fraction))
    if val_fraction > 0 and not 1 <= n_val < len(xt):
        raise ConfigError(f"val_fraction={val_fraction} leaves no train or no validation rows")
    order = torch.randperm(len(xt), generator=gen).to(xt.device)
    val_idx, tr_idx = order[:n_val], order[n_val:]
    rx, ry = (est.to_tensor(replay[0]), est.encode_targets(replay[1])) if replay else (None, None)

    k = _cache_split(est, trained) if head_cache is not False else None
    if head_cache is True and k is None:
        raise ConfigError(
            "head_cache=True but the trained blocks are not a top suffix of an nn.Sequential",
            hint="use head_cache='auto' to fall back to the full forward pass",
        )
    layers = _layer_flops(est, X)
    fwd_per = float(sum(f for _, _, f in layers))
    bwd_per = _backward(layers, names)
    forward_flops = 0.0
    model: nn.Module = net
    if k is not None:
        assert isinstance(net, nn.Sequential)
        prefix, model = net[:k], net[k:]
        prefix.eval()
        with torch.no_grad():
            xt = prefix(xt)
            rx = prefix(rx) if rx is not None else None
        cached = {name for name, _ in list(net.named_children())[:k]}
        prefix_flops = sum(f for n, _, f in layers if n.split(".")[0] in cached)
        forward_flops += prefix_flops * (len(xt) + (len(rx) if rx is not None else 0))
        fwd_per -= prefix_flops

    groups = [{"params": [p for _, p in _params_of(est, b)], "lr": lrs[b]} for b in names]
    opt = torch.optim.AdamW(groups, lr=float(lr), weight_decay=float(weight_decay))
    bs = int(batch_size or est.batch_size)
    n_replay = round(bs * replay_share / (1 - replay_share)) if rx is not None else 0
    if replay_share > 0:
        n_replay = max(1, n_replay)

    def val_loss() -> float:
        if n_val == 0:
            return float("nan")
        model.eval()
        with torch.no_grad():
            v = float(est.loss(model(xt[val_idx]), yt[val_idx]))
        _set_modes(est, trained)
        return v

    _set_modes(est, trained)
    batchnorm = any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in model.modules()
    )
    val_curve = [val_loss()]
    train_curve: list[float] = []
    best, best_epoch = val_curve[0], 0
    moving = [n for n in net.state_dict() if est.block_of(n) in trained]

    def snapshot() -> dict[str, torch.Tensor]:  # frozen tensors never change
        current = net.state_dict()
        return {n: current[n].detach().clone() for n in moving}

    best_state = snapshot()
    steps = epoch = replay_rows = rows = 0
    early: int | None = None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        while epoch < epochs and (max_steps is None or steps < max_steps):
            epoch += 1
            perm = tr_idx[torch.randperm(len(tr_idx), generator=gen).to(xt.device)]
            total, seen = 0.0, 0
            for start in range(0, len(perm), bs):
                if max_steps is not None and steps >= max_steps:
                    break
                idx = perm[start : start + bs]
                if len(idx) < 2 and n_replay == 0 and batchnorm:
                    continue  # a training BatchNorm cannot normalise a batch of one
                xb, yb = xt[idx], yt[idx]
                if n_replay and rx is not None and ry is not None:
                    j = torch.randint(len(rx), (n_replay,), generator=gen).to(xt.device)
                    xb, yb = torch.cat([xb, rx[j]]), torch.cat([yb, ry[j]])
                    replay_rows += n_replay
                opt.zero_grad(set_to_none=True)
                loss = est.loss(model(xb), yb)
                if l2sp > 0:
                    pen = sum(
                        ((p - anchor[n]) ** 2).sum()
                        for n, p in net.named_parameters()
                        if p.requires_grad and n in anchor
                    )
                    loss = loss + 0.5 * float(l2sp) * pen
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                steps += 1
                total, seen = total + float(loss.detach()) * len(xb), seen + len(xb)
                rows += len(xb)
            train_curve.append(total / max(seen, 1))
            v = val_loss()
            val_curve.append(v)
            if n_val == 0:
                continue
            if v < best - 1e-7:
                best, best_epoch = v, epoch
                best_state = snapshot()
            elif epoch - best_epoch >= patience and steps >= min_steps:
                early = epoch
                break
    if n_val > 0:
        net.load_state_dict(best_state, strict=False)
    else:
        best_epoch = epoch
    forward_flops += fwd_per * rows
    net.zero_grad(set_to_none=True)
    for param in net.parameters():
        param.requires_grad_(True)
    net.eval()
    report = FinetuneReport(
        blocks=tuple(names),
        epochs=epoch,
        steps=steps,
        best_epoch=best_epoch,
        early_stop_epoch=early,
        train_loss=tuple(train_curve),
        val_loss=tuple(val_curve),
        cpu_seconds=time.process_time() - cpu_started,
        backward_flops=float(bwd_per * rows),
        forward_flops=float(forward_flops),
        head_cache=k is not None,
        replay_rows=replay_rows,
        reinit=tuple(reinit),
        lr=lrs,
    )
    return FinetuneResult(est, report)


# -- forgetting guard: the stable slice ------------------------------------------------------


@dataclass(frozen=True)
class StableSliceResult:
    """Scores of the old and new estimator on a slice the drift did not touch.

    The score is accuracy for classifiers and R^2 for regressors; ``passed`` when the drop
    ``old_score - new_score`` is at most ``tolerance``.
    """

    old_score: float
    new_score: float
    drop: float
    tolerance: float
    passed: bool
    rows: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return asdict(self)


def stable_slice_check(
    old: Any, new: Any, X_stable: Any, y_stable: Any, *, tolerance: float = 0.01
) -> StableSliceResult:
    """Whether ``new`` scores no more than ``tolerance`` below ``old`` on the stable slice.

    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> X, y = np.zeros((4, 1)), np.array([0, 0, 0, 1])
    >>> old = DummyClassifier().fit(X, y)
    >>> stable_slice_check(old, old, X, y).passed
    True
    """
    _check("stable_slice_check", {"stable_tolerance": tolerance})
    old_score, new_score = (
        float(old.score(X_stable, y_stable)),
        float(new.score(X_stable, y_stable)),
    )
    drop = old_score - new_score
    return StableSliceResult(
        old_score, new_score, drop, float(tolerance), drop <= tolerance, len(y_stable)
    )
