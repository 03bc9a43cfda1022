"""Selective fine-tuning of torch members: train chosen blocks, guard the rest, pick blocks.

Three parts, each usable by hand and by the planner:

* :func:`finetune` trains only the chosen blocks of a fitted
  :class:`~regrow.components.torch.TorchEstimator` on recent data and returns a *new* estimator
  with a :class:`FinetuneReport` (the input is never mutated). Frozen blocks get
  ``requires_grad=False`` and their modules stay in eval mode, so BatchNorm running statistics
  and dropout in them do not move. Per-block learning rates, epoch and step budgets, early
  stopping on a validation split of the recent data (best weights restored), re-initialisation
  and shrink-and-perturb of chosen blocks. When only a top suffix of an ``nn.Sequential`` is
  trained, the frozen prefix's features are computed once and the suffix is fitted on that cache.
* Forgetting guards: a replay buffer of reference rows mixed into every batch (``replay_share``),
  an L2-SP penalty pulling trained weights toward their pre-update values (``l2sp``), and
  :func:`stable_slice_check`, which says whether the update hurt a slice the drift did not touch.
* Diagnostics: :func:`block_diagnostics` measures, per block, the ratio of the gradient norm on
  recent data to that on reference data (the criterion that chooses well), the raw relative
  gradient norm (Auto-RGN, for comparison), an optional short probe fine-tune, and the backward
  cost of updating the block; :func:`choose_blocks` turns them into a choice with reasons.

:func:`finetune_fitted` is the planner's entry point: plain-data parameters in, a new estimator
and a JSON-able info dict out. See ``docs/finetune.md`` for a worked example.
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
from regrow.errors import ComponentError, ConfigError
from regrow.plan._finetune_shift import SHIFT_ALPHA, block_input_shift

__all__ = [
    "BlockChoice",
    "BlockDiagnostic",
    "FinetuneReport",
    "FinetuneResult",
    "StableSliceResult",
    "backward_flops",
    "block_diagnostics",
    "choose_blocks",
    "finetune",
    "finetune_fitted",
    "rank_blocks",
    "stable_slice_check",
]

Criterion = Literal["grad_ratio", "mean_grad_ratio", "rgn", "probe_gain"]


# -- parameters, validated declaratively ---------------------------------------------------


def _num(lo: float, hi: float = math.inf, *, lo_open: bool = False, hi_open: bool = True) -> Any:
    def check(v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
            return False
        above = v > lo if lo_open else v >= lo
        below = v < hi if hi_open else v <= hi
        return bool(above and below)

    left, right = "(" if lo_open else "[", ")" if hi_open else "]"
    return check, f"a number in {left}{lo}, {hi}{right}"


def _int(lo: int, *, optional: bool = False) -> Any:
    def check(v: Any) -> bool:
        if v is None:
            return optional
        return bool(isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= lo)

    return check, f"an int >= {lo}" + (" or None" if optional else "")


def _names(v: Any) -> bool:
    return isinstance(v, Sequence) and not isinstance(v, str) and all(isinstance(b, str) for b in v)


def _block_lr(v: Any) -> bool:
    return v is None or (
        isinstance(v, Mapping) and all(_num(0, lo_open=True)[0](x) for x in v.values())
    )


def _pair(v: Any) -> bool:
    return v is None or (
        isinstance(v, Sequence)
        and not isinstance(v, str)
        and len(v) == 2
        and _num(0)[0](v[0])
        and _num(0)[0](v[1])
    )


#: key -> (check, what a valid value is). Shared by finetune() and finetune_fitted().
_SPEC: dict[str, tuple[Callable[[Any], bool], str]] = {
    "blocks": (
        lambda v: v in ("all", "auto") or (_names(v) and len(v) > 0),
        "'all', 'auto' or a non-empty list of block names",
    ),
    "lr": _num(0, lo_open=True),
    "block_lr": (_block_lr, "None or a mapping of block name to a learning rate > 0"),
    "epochs": _int(1),
    "max_steps": _int(1, optional=True),
    "batch_size": _int(1, optional=True),
    "val_fraction": _num(0, 1),
    "patience": _int(1),
    "min_steps": _int(0),
    "reinit": (_names, "a list of block names"),
    "shrink_perturb": (_pair, "None or a pair (shrink, perturb) of numbers >= 0"),
    "replay_share": _num(0, 1),
    "l2sp": _num(0),
    "weight_decay": _num(0),
    "head_cache": (lambda v: v in (True, False, "auto"), "True, False or 'auto'"),
    "stable_tolerance": _num(0),
    "budget_flops": (lambda v: v is None or _num(0, lo_open=True)[0](v), "None or a number > 0"),
    "criterion": (
        lambda v: v in ("grad_ratio", "mean_grad_ratio", "rgn", "probe_gain"),
        "'grad_ratio', 'mean_grad_ratio', 'rgn' or 'probe_gain'",
    ),
    "probe_steps": _int(0),
    "tie_margin": _num(0, 1),
}


def _check(where: str, values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        spec = _SPEC.get(key)
        if spec is None:
            raise ConfigError(
                f"unknown parameter {key!r} of {where}", hint=f"known parameters: {sorted(_SPEC)}"
            )
        ok, what = spec
        if not ok(value):
            raise ConfigError(f"The {key!r} parameter of {where} must be {what}. Got {value!r}.")


def _fitted_torch(estimator: Any) -> TorchEstimator:
    if not isinstance(estimator, TorchEstimator):
        raise ConfigError(
            f"selective fine-tuning needs a torch member, got {type(estimator).__name__}",
            hint="use regrow.components.torch.TorchClassifier or TorchRegressor",
        )
    if not hasattr(estimator, "module_"):
        raise ComponentError(
            f"this {type(estimator).__name__} is not fitted", hint="fit it before fine-tuning"
        )
    return estimator


def _resolve(est: TorchEstimator, blocks: Any, what: str = "blocks") -> list[str]:
    known = [b for b in est.blocks_ if _params_of(est, b)]
    if blocks == "all":
        return known
    unknown = [b for b in blocks if b not in est.blocks_]
    if unknown:
        raise ConfigError(f"{what} names unknown blocks {unknown}", hint=f"blocks are {known}")
    return [b for b in est.blocks_ if b in blocks]  # forward order


def _params_of(est: TorchEstimator, block: str) -> list[tuple[str, nn.Parameter]]:
    names = set(est.blocks_[block])
    return [(n, p) for n, p in est.module_.named_parameters() if n in names]


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


# -- diagnostics: which block to update ------------------------------------------------------


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


# -- the planner's entry point ---------------------------------------------------------------

_FINETUNE_KEYS = (
    "blocks", "lr", "block_lr", "epochs", "max_steps", "batch_size", "val_fraction", "patience",
    "min_steps", "reinit", "shrink_perturb", "replay_share", "l2sp", "weight_decay", "head_cache",
)  # fmt: skip
_EXTRA_KEYS = ("stable_tolerance", "budget_flops", "criterion", "probe_steps", "tie_margin")


def _split_reference(
    reference: tuple[Any, Any], seed: int
) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    X, y = np.asarray(reference[0], dtype=np.float32), np.asarray(reference[1])
    order = np.random.default_rng(seed).permutation(len(X))
    a, b = order[: len(X) // 2], order[len(X) // 2 :]
    return (X[a], y[a]), (X[b], y[b])


def finetune_fitted(
    estimator: Any,
    X: Any,
    y: Any,
    *,
    params: Mapping[str, Any],
    reference: tuple[Any, Any] | None,
    seed: int,
) -> tuple[TorchEstimator, dict[str, Any]]:
    """Fine-tune a fitted torch member from plain-data ``params``; the planner's entry point.

    ``params`` keys are :func:`finetune`'s keyword arguments (``blocks`` may also be ``"auto"``:
    :func:`block_diagnostics` on ``reference`` then :func:`choose_blocks`, steered by
    ``criterion``, ``budget_flops`` and ``probe_steps``), plus ``stable_tolerance``.
    ``reference`` (held-out rows of the training distribution) feeds the diagnostic, the replay
    buffer (``replay_share > 0``) and :func:`stable_slice_check`; when both replay and the check
    need it, it is split in two halves so the check never scores rows the update replayed.
    Returns the new estimator and a JSON-able info dict: the report's fields, ``choice`` when
    blocks were chosen, and ``stable`` when a reference was given.
    """
    if not isinstance(params, Mapping):
        raise ConfigError(f"params must be a mapping (got {type(params).__name__})")
    _check("finetune_fitted", params)
    opts = dict(params)
    extra = {k: opts.pop(k) for k in _EXTRA_KEYS if k in opts}
    blocks = opts.pop("blocks", "auto")
    est = _fitted_torch(estimator)
    info: dict[str, Any] = {}
    if blocks == "auto":
        if reference is None:
            raise ConfigError(
                "blocks='auto' needs reference data to compare gradients with",
                hint="pass reference=(X_ref, y_ref) or name the blocks",
            )
        diags = block_diagnostics(
            est, X, y, reference[0], reference[1],
            probe_steps=int(extra.get("probe_steps", 0)), seed=seed,
        )  # fmt: skip
        choice = choose_blocks(
            diags,
            budget_flops=extra.get("budget_flops"),
            criterion=extra.get("criterion", "grad_ratio"),
            tie_margin=float(extra.get("tie_margin", 0.1)),
        )
        blocks = list(choice.blocks)
        info["choice"] = choice.to_dict()
        info["diagnostics"] = [d.to_dict() for d in diags]
    replay_share = float(opts.get("replay_share", 0.0))
    replay = check = reference
    if reference is not None and replay_share > 0:
        replay, check = _split_reference(reference, seed)
    if "shrink_perturb" in opts and opts["shrink_perturb"] is not None:
        opts["shrink_perturb"] = tuple(opts["shrink_perturb"])
    result = finetune(
        est, X, y, blocks=blocks, replay=replay if replay_share > 0 else None, seed=seed, **opts
    )
    info.update(result.report.to_dict())
    if check is not None:
        stable = stable_slice_check(
            est, result.estimator, check[0], check[1],
            tolerance=float(extra.get("stable_tolerance", 0.01)),
        )  # fmt: skip
        info["stable"] = stable.to_dict()
    return result.estimator, _json(info)


def _json(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value
