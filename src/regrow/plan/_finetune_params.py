"""Parameters of selective fine-tuning, validated declaratively, and block look-ups.

Shared by :mod:`regrow.plan.finetune`, :mod:`regrow.plan._finetune_train` and
:mod:`regrow.plan.finetune_diagnostics`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from torch import nn

from regrow.components.torch import TorchEstimator
from regrow.errors import ComponentError, ConfigError


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
    "confirm": (lambda v: isinstance(v, bool), "True or False"),
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


def _pair_data(value: Any, what: str) -> tuple[Any, Any]:
    """``value`` as a pair ``(X, y)``, or a ConfigError naming the argument ``what``."""
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2:
        raise ConfigError(
            f"{what} must be a pair (X, y) of rows and their targets. Got a "
            f"{type(value).__name__} instead.",
            hint=f"pass {what}=(X_ref, y_ref)",
        )
    return value[0], value[1]


def _check_data(est: TorchEstimator, X: Any, y: Any, what: str = "X") -> None:
    """Refuse rows the fitted network cannot read: not 2-d, the wrong number of columns, or a
    ``y`` of another length. ``what`` names the argument (``"X"``, ``"replay"``)."""
    shape, fitted = np.shape(X), int(est.n_features_in_)
    if len(shape) != 2 or shape[1] != fitted:
        got = f"has {shape[1]} columns" if len(shape) == 2 else f"has shape {shape}, not 2-d"
        raise ConfigError(
            f"{_label(what, 0)} {got}, but the network was fitted on {fitted} feature columns",
            hint=f"pass the {fitted} feature columns the member was fitted on, in that order",
        )
    rows = len(y) if hasattr(y, "__len__") and np.ndim(y) > 0 else None
    if rows != shape[0]:
        got = f"has {rows} rows" if rows is not None else f"is a {type(y).__name__}"
        raise ConfigError(
            f"{_label(what, 1)} {got}, {_label(what, 0)} has {shape[0]} rows",
            hint="pass one target per row of features",
        )


def _label(what: str, index: int) -> str:
    """``X``/``y``, or ``replay[0]``/``replay[1]`` for a pair argument."""
    return ("X", "y")[index] if what == "X" else f"{what}[{index}]"


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
