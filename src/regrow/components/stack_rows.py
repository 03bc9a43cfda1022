"""The rows a stack (or a learned gate) learns from, and its members' outputs on them.

A member fitted on the ensemble's own rows predicts them too well (a boosted member nearly
reproduces its training targets), and a combiner fitted on those outputs trusts it too much.
Its outputs there come from copies of it fitted on other rows instead, in one of two ways:

================  ===================================================================
cross-fitted      two copies, each fitted on half the rows, predict the other half; the
                  combiner learns on every row (as scikit-learn's stacking does with ``cv``).
                  Used when every member was fitted on the rows (a full training), and by
                  a learned gate.
held out          one copy per such member, fitted on the other rows, predicts a held-out
                  fifth (:data:`HELD_OUT_SHARE`), and a stack learns its coefficients there.
                  Used by a stack when only some members were fitted on its rows (a partial
                  update) and the fifth holds at least :data:`MIN_HELD_OUT_ROWS` rows.
================  ===================================================================

Held out costs one copy per refitted member instead of two and predicts a fifth of the rows
instead of all of them; the copy is fitted on four fifths of the rows, not half, so it is
closer to the member it stands for (the member itself is still fitted on every row). The
members that were fitted on other rows need no copy: their outputs on the held-out rows are
read as float32 keeps them, from the stored tables when they hold the rows.

The held-out rows are drawn from the stack's seed, so the same run gives the same stack.

>>> import numpy as np
>>> rows = held_out_rows(4000, seed=7)
>>> len(rows), bool(np.all(np.diff(rows) > 0)), np.array_equal(rows, held_out_rows(4000, 7))
(800, True, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from regrow.components.base import Ensemble
from regrow.components.fitted import FittedComponent, fit_component, member_output
from regrow.errors import ComponentError

if TYPE_CHECKING:
    from regrow.components.outputs import KnownOutputs

__all__ = [
    "HELD_OUT_SHARE",
    "MIN_HELD_OUT_ROWS",
    "TrainingOutputs",
    "held_out_rows",
    "training_outputs",
]

#: The share of a stack's rows held out to learn its coefficients on in a partial update.
HELD_OUT_SHARE = 0.2

#: The fewest held-out rows a stack learns on; with fewer, its members are cross-fitted.
MIN_HELD_OUT_ROWS = 200


@dataclass(frozen=True)
class TrainingOutputs:
    """The members' outputs an ensemble learns from: on every row of the frame, or (held
    out) on the rows at positions ``rows`` only; ``classes`` their column order (None for
    values); which members were ``cross_fitted`` or ``held_out`` (copies fitted on other
    rows)."""

    outputs: dict[str, np.ndarray]
    classes: list[Any] | None
    rows: np.ndarray | None = None
    cross_fitted: tuple[str, ...] = ()
    held_out: tuple[str, ...] = ()

    def target(self, frame: pd.DataFrame, target: str) -> np.ndarray:
        """The target on the rows the outputs are for."""
        y = frame[target].to_numpy()
        return y if self.rows is None else y[self.rows]


def held_out_rows(rows: int, seed: int) -> np.ndarray:
    """Positions of the :data:`HELD_OUT_SHARE` of ``rows`` rows held out, sorted, drawn
    from ``seed``."""
    count = round(HELD_OUT_SHARE * rows)
    return np.sort(np.random.default_rng(seed).permutation(rows)[:count])


def _cross_fitted(
    member: FittedComponent,
    frame: pd.DataFrame,
    target: str,
    upstream: Mapping[str, FittedComponent],
    classes: list[Any] | None,
    seed: int,
    folds: int = 2,
) -> np.ndarray:
    """Out-of-fold outputs of ``member`` on ``frame``: copies fitted on the other folds."""
    fold = np.random.default_rng(seed).permutation(len(frame)) % folds
    out: np.ndarray | None = None
    for k in range(folds):
        inside, outside = frame[fold != k], frame[fold == k]
        copy = fit_component(member.spec, inside, target=target, upstream=upstream, seed=seed)
        part = member_output(copy, outside, upstream, classes)
        if out is None:
            out = np.zeros((len(frame), *part.shape[1:]))
        out[fold == k] = part
    assert out is not None
    return out


def _held_out(
    member: FittedComponent,
    frame: pd.DataFrame,
    rows: np.ndarray,
    target: str,
    upstream: Mapping[str, FittedComponent],
    classes: list[Any] | None,
    seed: int,
) -> np.ndarray:
    """Outputs of ``member`` on the rows at positions ``rows``: a copy fitted on the others."""
    rest = np.ones(len(frame), dtype=bool)
    rest[rows] = False
    copy = fit_component(member.spec, frame[rest], target=target, upstream=upstream, seed=seed)
    return member_output(copy, frame.iloc[rows], upstream, classes)


def training_outputs(
    spec: Ensemble,
    frame: pd.DataFrame,
    *,
    target: str,
    upstream: Mapping[str, FittedComponent],
    seed: int,
    in_sample: Sequence[str],
    known: KnownOutputs | None,
) -> TrainingOutputs:
    """The members' outputs on ``frame`` to fit a stack or a learned gate on, and the classes.

    Members in ``in_sample`` were fitted on these very rows: their outputs are cross-fitted
    or held out (see the module's docstring). The other members' outputs are read as
    float32 keeps them (from ``known`` when it holds the rows, else predicted), so the fit
    is the same whether or not they were stored. Members with weight 0 are left out.
    """
    from regrow.components.outputs import KnownOutputs

    missing = [m for m in spec.members if m not in upstream]
    if missing or target not in frame.columns:
        raise ComponentError(
            f"{spec.method} ensemble {spec.name!r} needs its fitted members {missing} and the "
            f"target {target!r} to fit",
            hint="bind the ensemble to a snapshot that holds the members' inputs and target",
        )
    class_lists = [
        upstream[m].info["classes"] for m in spec.members if "classes" in upstream[m].info
    ]
    classes = sorted({c for cl in class_lists for c in cl}) if class_lists else None
    transforms = {n: f for n, f in upstream.items() if f.spec.kind == "transform"}
    stored = known if known is not None else KnownOutputs({}, {})
    used = [m for m in spec.members if spec.weights[m] > 0]
    refitted = [m for m in used if m in in_sample]
    rows = held_out_rows(len(frame), seed)
    if spec.method == "stack" and 0 < len(refitted) < len(used) and len(rows) >= MIN_HELD_OUT_ROWS:
        held = frame.iloc[rows]
        outputs = {
            m: _held_out(upstream[m], frame, rows, target, transforms, classes, seed)
            if m in refitted
            else stored.output(m, held, upstream, classes)
            for m in used
        }
        return TrainingOutputs(outputs, classes, rows, held_out=tuple(sorted(refitted)))
    outputs = {
        m: _cross_fitted(upstream[m], frame, target, transforms, classes, seed)
        if m in refitted
        else stored.output(m, frame, upstream, classes)
        for m in used
    }
    return TrainingOutputs(outputs, classes, cross_fitted=tuple(sorted(refitted)))
