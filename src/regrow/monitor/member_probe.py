"""Which members cannot take which values: each member run on a few rows of each finding.

A member that takes nulls (HistGradientBoosting, LightGBM) scores them as it was trained to; a
LogisticRegression raises on them, a OneHotEncoder raises on a category it never saw. Rather
than guess from the estimator's class, :func:`probe_members` runs each member, transforms
included, exactly as it predicts in production, on up to 20 rows of each finding in the
columns it reads (one row per distinct value first), with its other flagged cells replaced by
clean values, so that each finding is judged alone. A member that fails even on clean rows
raises :class:`~regrow.errors.ComponentError`: then the window's values are not the problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from regrow.components.fitted import member_output
from regrow.errors import ComponentError
from regrow.monitor.profile import ColumnProfile

if TYPE_CHECKING:
    from regrow.model import FittedSystem

__all__ = ["Cell", "probe_members"]

_PROBE_ROWS = 20  # rows of a finding each member is run on


@dataclass
class Cell:
    """The rows of one (column, kind) finding while the check runs."""

    column: str
    kind: str
    mask: np.ndarray
    values: tuple[str, ...] = ()
    close: tuple[str, ...] = ()  # "'Monthly' is close to 'monthly'"


def _clean_values(
    frame: pd.DataFrame, cells: Sequence[Cell], reference: Mapping[str, ColumnProfile]
) -> dict[str, Any]:
    """For each column with findings, a value no finding flags (from the window or reference)."""
    flagged: dict[str, np.ndarray] = {}
    for cell in cells:
        flagged[cell.column] = flagged.get(cell.column, np.zeros(len(frame), bool)) | cell.mask
    clean: dict[str, Any] = {}
    for col, mask in flagged.items():
        if not mask.all():
            clean[col] = frame[col].iloc[int(np.argmin(mask))]
            continue
        ref = reference.get(col)
        if ref is not None and ref.kind == "numeric" and np.isfinite(ref.mean):
            clean[col] = ref.mean
        elif ref is not None and ref.counts:
            clean[col] = ref.counts[0][0]
        else:
            clean[col] = np.nan
    return clean


def probe_members(
    model: FittedSystem,
    frame: pd.DataFrame,
    cells: Sequence[Cell],
    reads: Mapping[str, set[str]],
    reference: Mapping[str, ColumnProfile],
) -> dict[tuple[str, str], dict[str, str]]:
    """(column, kind) -> {member: the error it raised} for every finding a member cannot take."""
    components = model.components
    transforms = {k: c for k, c in components.items() if c.spec.kind == "transform"}
    members = {k: c for k, c in components.items() if c.spec.kind == "member"}
    clean = _clean_values(frame, cells, reference)
    out: dict[tuple[str, str], dict[str, str]] = {}

    def run(name: str, rows: pd.DataFrame) -> str | None:
        try:
            out = member_output(members[name], rows, transforms, model.classes_)
        except Exception as exc:  # any failure means: this member cannot take these rows
            cause = exc.__cause__ if isinstance(exc, ComponentError) and exc.__cause__ else exc
            text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
            return f"{type(cause).__name__}: {text[:160]}"
        if not np.isfinite(np.asarray(out, dtype=float)).all():  # takes them, answers NaN
            return "its output on these rows is NaN or infinite"
        return None

    def cleaned(rows: pd.DataFrame, cols: set[str], keep: str | None) -> pd.DataFrame:
        rows = rows.copy()
        positions = rows.index.to_numpy()
        for cell in cells:
            if cell.column in cols and cell.column != keep:
                hit = cell.mask[positions]
                if hit.any():
                    rows.loc[rows.index[hit], cell.column] = clean[cell.column]
        return rows

    for name in members:
        cols = reads[name]
        mine = [c for c in cells if c.column in cols and c.kind != "type"]
        if not mine:
            continue
        base = cleaned(frame.iloc[: min(len(frame), _PROBE_ROWS)], cols, None)
        failure = run(name, base) if len(base) else None
        if failure is not None:
            raise ComponentError(
                f"member {name!r} fails to predict even on rows of the window without a "
                f"null, an unseen category or a value of the wrong type: {failure}",
                hint="check that the window's columns hold what they held in training",
            )
        for cell in mine:
            rows = frame.iloc[_spread(cell.mask, frame[cell.column])]
            failure = run(name, cleaned(rows, cols, cell.column))
            if failure is not None:
                out.setdefault((cell.column, cell.kind), {})[name] = failure
    return out


def _spread(mask: np.ndarray, values: pd.Series) -> np.ndarray:
    """Up to ``_PROBE_ROWS`` positions of ``mask``, one per distinct value first."""
    positions = np.flatnonzero(mask)
    firsts = (
        pd.Series(positions, index=positions)
        .groupby(values.iloc[positions].astype(str).to_numpy())
        .first()
    )
    chosen = list(dict.fromkeys([*firsts.to_numpy().tolist(), *positions.tolist()]))
    return np.sort(np.asarray(chosen[:_PROBE_ROWS], dtype=int))
