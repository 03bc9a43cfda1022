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
* Diagnostics (:mod:`regrow.plan.finetune_diagnostics`): :func:`block_diagnostics` measures,
  per block, the ratio of the gradient norm on recent data to that on reference data (the
  ranking criterion), the raw relative gradient norm (Auto-RGN, for comparison), an optional
  short probe fine-tune, and the backward cost of updating the block; :func:`choose_blocks`
  turns them into a choice with reasons, and
  :func:`~regrow.plan.finetune_confirm.confirm_blocks` confirms the ranking with short probes on
  held-out target rows, or decides that no update is worth it.

:func:`finetune_fitted` is the planner's entry point: plain-data parameters in, a new estimator
and a JSON-able info dict out. See ``docs/finetune.md`` for a worked example.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from regrow.components.torch import TorchEstimator
from regrow.errors import ConfigError
from regrow.plan._finetune_params import _check, _check_data, _fitted_torch, _pair_data
from regrow.plan._finetune_train import (
    FinetuneReport,
    FinetuneResult,
    StableSliceResult,
    backward_flops,
    finetune,
    stable_slice_check,
)
from regrow.plan.finetune_diagnostics import (
    BlockChoice,
    BlockDiagnostic,
    block_diagnostics,
    choose_blocks,
    rank_blocks,
)

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


# -- the planner's entry point ---------------------------------------------------------------

_FINETUNE_KEYS = (
    "blocks", "lr", "block_lr", "epochs", "max_steps", "batch_size", "val_fraction", "patience",
    "min_steps", "reinit", "shrink_perturb", "replay_share", "l2sp", "weight_decay", "head_cache",
)  # fmt: skip
_EXTRA_KEYS = (
    "stable_tolerance", "budget_flops", "criterion", "probe_steps", "tie_margin", "confirm",
)  # fmt: skip


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
    :func:`block_diagnostics` on ``reference``, then, with ``confirm`` (the default),
    :func:`~regrow.plan.finetune_confirm.confirm_blocks`: probes on held-out target rows that
    confirm a block or decide on no update (``probe_steps`` per probe, ``budget_flops``); with
    ``confirm=False``, :func:`choose_blocks` steered by ``criterion``, ``budget_flops`` and
    ``tie_margin``), plus ``stable_tolerance``. When the probes find no significant gain the
    estimator comes back unchanged with ``info["blocks"] == []`` and the reason in ``choice``.
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
    _check_data(est, X, y)
    if reference is not None:
        reference = _pair_data(reference, "reference")
        _check_data(est, *reference, "reference")
    info: dict[str, Any] = {}
    if blocks == "auto":
        if reference is None:
            raise ConfigError(
                "blocks='auto' needs reference data to compare gradients with",
                hint="pass reference=(X_ref, y_ref) or name the blocks",
            )
        confirm = bool(extra.get("confirm", True))
        diags = block_diagnostics(
            est, X, y, reference[0], reference[1],
            probe_steps=0 if confirm else int(extra.get("probe_steps", 0)), seed=seed,
        )  # fmt: skip
        info["diagnostics"] = [d.to_dict() for d in diags]
        if confirm:
            from regrow.plan.finetune_confirm import PROBE_STEPS, confirm_blocks

            confirmed = confirm_blocks(
                est, X, y, diags, probe_steps=int(extra.get("probe_steps") or PROBE_STEPS),
                budget_flops=extra.get("budget_flops"), seed=seed,
            )  # fmt: skip
            info["choice"] = confirmed.to_dict()
            if not confirmed.update:
                info["blocks"] = []
                return est, _json(info)
            blocks = list(confirmed.blocks)
            opts.setdefault("lr", confirmed.lr)
        else:
            choice = choose_blocks(
                diags,
                budget_flops=extra.get("budget_flops"),
                criterion=extra.get("criterion", "grad_ratio"),
                tie_margin=float(extra.get("tie_margin", 0.1)),
            )
            blocks = list(choice.blocks)
            info["choice"] = choice.to_dict()
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
