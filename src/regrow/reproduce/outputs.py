"""How far a rebuilt component's outputs are from the original's, on the same rows.

Many libraries do not pickle a refit to the same bytes (pickle memoizes by object identity,
so the same values can be written in two ways), and some fits are not bitwise repeatable
(threads that sum in another order). What matters is what the component computes: a
transform's output columns, a member's values or class probabilities, an ensemble's
combined output. :func:`max_difference` measures the largest absolute difference.

>>> import numpy as np
>>> max_difference(np.array([0.25, 0.5]), np.array([0.25, 0.5078125]))
0.0078125
>>> max_difference(np.array([1.0, np.nan]), np.array([1.0, np.nan]))
0.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from regrow.components.base import Ensemble, Transform
from regrow.components.fitted import FittedComponent, combine, member_output

__all__ = ["component_output", "max_difference", "sample_rows"]


def sample_rows(frame: pd.DataFrame, rows: int, *, seed: int = 0) -> pd.DataFrame:
    """``frame``, or ``rows`` of its rows drawn without replacement (kept in order)."""
    if len(frame) <= rows:
        return frame
    picked = np.sort(np.random.default_rng(seed).choice(len(frame), rows, replace=False))
    return frame.iloc[picked]


def component_output(
    name: str, chain: Mapping[str, FittedComponent], frame: pd.DataFrame
) -> np.ndarray:
    """The output of component ``name`` on ``frame``; ``chain`` holds it and every fitted
    component it reads (transforms, and an ensemble's members)."""
    fitted = chain[name]
    transforms = {n: c for n, c in chain.items() if isinstance(c.spec, Transform)}
    if isinstance(fitted.spec, Transform):
        return np.asarray(fitted.outputs(frame, transforms).to_numpy(), dtype=float)
    classes = _classes(chain)
    if not isinstance(fitted.spec, Ensemble):
        return member_output(fitted, frame, transforms, classes)
    members = fitted.spec.members
    outputs = {m: member_output(chain[m], frame, transforms, classes) for m in members}
    combined = combine(fitted.spec, outputs, classes, fitted.estimator, frame=frame, upstream=chain)
    return np.asarray(combined, dtype=float)


def _classes(chain: Mapping[str, FittedComponent]) -> list[Any] | None:
    """Every class the chain's members know, sorted (as a fitted system orders them)."""
    classes: set[Any] = set()
    for c in chain.values():
        classes.update(c.info.get("classes", []))
    return sorted(classes) if classes else None


def max_difference(original: np.ndarray, rebuilt: np.ndarray) -> float:
    """The largest absolute difference; ``inf`` if the shapes differ or a value is missing
    on one side only (missing on both sides counts as equal)."""
    a, b = np.asarray(original, dtype=float), np.asarray(rebuilt, dtype=float)
    if a.shape != b.shape:
        return math.inf
    if a.size == 0:
        return 0.0
    if (np.isnan(a) ^ np.isnan(b)).any():
        return math.inf
    same = (a == b) | (np.isnan(a) & np.isnan(b))  # equal infinities and missing values
    return float(np.max(np.where(same, 0.0, np.abs(a - b))))
