"""Data quality of a window: what a version cannot take as it is, who reads it, what is done.

:func:`check_window` compares a window with the reference the version was trained on (its
monitoring profile: each column's type and categories), before anything predicts on it.
Each finding names the column, how many rows, which rows (positions in the window, counted
from 0) and example values, and the components that read the column:

==============  ===============================================  ===============================
kind            finding                                          how the version reads the rows
==============  ===============================================  ===============================
``missing``     a column the version reads is not in the window  as all null
``type``        values not of the type the column had in          as null, and the rows are set
                training (``'abc'`` in a float column)            aside: never guessed at
``nulls``       null values (a null-rate change is also a drift   as they are
                signal: ``null_rate``)
``nonfinite``   ``inf`` / ``-inf`` in a numeric column            as they are
``unseen``      categories the reference never held               as they are
``extra``       a column neither the version nor the reference    ignored
                has (a renamed column shows as missing + extra)
==============  ===============================================  ===============================

Then every member is run, transforms included, exactly as it predicts in production, on a
few rows of each finding in the columns it reads (the member's other columns filled with
clean values, so each finding is judged alone). A member that raises **cannot take** those
values: a HistGradientBoosting or LightGBM member scores nulls as it was trained to, a
LogisticRegression or a OneHotEncoder that never saw the value does not. Rows that some
member cannot take (and rows with values of the wrong type) are **unusable**: the system
cannot score them. Attribution, performance and the planner's probes use the usable rows of
:attr:`WindowCheck.frame`, the window as the version reads it; the drift tests see every row.

Findings about the target (nulls, classes never seen in training, values of another type)
leave the rows usable but unlabelled.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from regrow.monitor.member_probe import Cell, probe_members
from regrow.monitor.profile import ColumnProfile

if TYPE_CHECKING:
    from regrow.model import FittedSystem

__all__ = ["ColumnFinding", "WindowCheck", "check_window"]

_SHOWN_ROWS = 5  # row numbers quoted per finding


@dataclass(frozen=True)
class ColumnFinding:
    """One kind of problem in one column: how many rows, which, who reads it, who cannot."""

    column: str
    kind: str  # missing | type | nulls | nonfinite | unseen | extra
    rows: int
    examples: tuple[int, ...]  # the first row numbers (positions in the window, from 0)
    values: tuple[str, ...]  # example offending values (type, unseen, nonfinite)
    readers: tuple[str, ...]  # transforms and members that read the column
    blocked: tuple[str, ...]  # members that cannot take these values
    unusable: bool  # whether these rows are set aside (the system cannot score them)
    why: str  # what, who reads it, what is done
    what: str = ""  # what alone

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "column": self.column,
            "kind": self.kind,
            "rows": self.rows,
            "examples": list(self.examples),
            "values": list(self.values),
            "readers": list(self.readers),
            "blocked": list(self.blocked),
            "unusable": self.unusable,
            "why": self.why,
        }

    @property
    def described(self) -> str:
        """What the finding is and who reads the column, without what is done about it."""
        readers = f"; read by {', '.join(self.readers)}" if self.readers else ""
        return f"{self.column!r}: {self.what or self.why}{readers}"


@dataclass(frozen=True)
class WindowCheck:
    """Every finding of a window, and the window as the version reads it."""

    rows: int
    findings: tuple[ColumnFinding, ...]
    frame: pd.DataFrame = field(repr=False, compare=False)
    unusable: np.ndarray = field(repr=False, compare=False)  # bool per row
    coerced: tuple[str, ...] = ()  # columns read as another type than the window's

    @property
    def usable_rows(self) -> int:
        """Rows every member can take."""
        return int(self.rows - self.unusable.sum())

    @property
    def usable(self) -> pd.DataFrame:
        """The usable rows of :attr:`frame` (index kept: positions in the window)."""
        return self.frame[~self.unusable]

    @property
    def changed(self) -> bool:
        """Whether :attr:`frame` differs from the window (types read, rows set aside)."""
        return bool(self.coerced) or bool(self.unusable.any())

    def of_kind(self, *kinds: str) -> list[ColumnFinding]:
        """The findings of these kinds, in order."""
        return [f for f in self.findings if f.kind in kinds]

    def lines(self) -> list[str]:
        """One sentence per finding."""
        return [f"{f.column!r}: {f.why}" for f in self.findings]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "rows": self.rows,
            "usable_rows": self.usable_rows,
            "coerced": list(self.coerced),
            "findings": [f.to_dict() for f in self.findings],
        }


def _raw_inputs(spec: Mapping[str, Any], name: str) -> set[str]:
    components = spec["components"]
    cols: set[str] = set()
    for i in components[name]["inputs"]:
        cols |= _raw_inputs(spec, i) if i in components else {i}
    return cols


def check_window(
    model: FittedSystem, window: pd.DataFrame, reference: Mapping[str, ColumnProfile]
) -> WindowCheck:
    """Check ``window`` for what ``model`` cannot take (see the module docstring).

    ``reference`` maps columns to their profiles in the data the version was trained on.
    Raises :class:`~regrow.errors.ComponentError` when a member fails even on rows without any
    finding: then the problem is not in the window's values.
    """
    spec = model.spec
    comps = spec["components"]
    reads = {
        n: _raw_inputs(spec, n) for n, c in comps.items() if c["kind"] in ("transform", "member")
    }
    columns = sorted(set().union(*reads.values()) - {model.target}) if reads else []
    readers = {c: tuple(n for n in reads if c in reads[n]) for c in columns}
    frame = window.reset_index(drop=True).copy()
    n = len(frame)
    cells: list[Cell] = []
    coerced: list[str] = []
    extra = [
        c for c in frame.columns if c not in reference and c not in columns and c != model.target
    ]
    for col in columns:
        ref = reference.get(col)
        if col not in frame.columns:
            frame[col] = _nulls(ref, n)
            cells.append(Cell(col, "missing", np.ones(n, bool)))
            continue
        given = frame[col]
        read, bad = _as_trained(given, ref)
        if read is not given:
            frame[col] = read
            coerced.append(col)
        if bad.any():
            cells.append(Cell(col, "type", bad, _examples(window[col].to_numpy(), bad)))
        nulls = frame[col].isna().to_numpy() & ~bad
        if nulls.any():
            cells.append(Cell(col, "nulls", nulls))
        if ref is not None and ref.kind == "numeric":
            values = frame[col].to_numpy(dtype=float, na_value=np.nan)
            inf = np.isinf(values)
            if inf.any():
                cells.append(Cell(col, "nonfinite", inf, _examples(values, inf)))
        elif ref is not None and ref.kind == "categorical" and ref.complete and ref.dtype != "bool":
            known = {v for v, _ in ref.counts}
            present = frame[col].notna().to_numpy()
            unseen = present & ~frame[col].astype(object).isin(known).to_numpy()
            if unseen.any():
                shown = _examples(frame[col].to_numpy(), unseen)
                close = tuple(
                    f"{v!r} is close to {m[0]!r}"
                    for v in shown
                    if (m := difflib.get_close_matches(v, sorted(known), n=1, cutoff=0.7))
                )
                cells.append(Cell(col, "unseen", unseen, shown, close))
    blocked = probe_members(model, frame, cells, reads, reference)
    unusable = np.zeros(n, bool)
    findings: list[ColumnFinding] = []
    for cell in cells:
        who = blocked.get((cell.column, cell.kind), {})
        drop = cell.kind == "type" or bool(who)
        if drop:
            unusable |= cell.mask
        findings.append(_finding(cell, readers[cell.column], who, drop, n, extra))
    findings.extend(_target(model, frame, window))
    for col in extra:
        findings.append(
            ColumnFinding(col, "extra", n, (), (), (), (), False,
                          "not read by the version and not in the reference: ignored")
        )  # fmt: skip
    return WindowCheck(n, tuple(findings), frame, unusable, tuple(coerced))


def _nulls(ref: ColumnProfile | None, n: int) -> pd.Series:
    if ref is not None and ref.kind == "numeric":
        return pd.Series(np.full(n, np.nan))
    return pd.Series([None] * n, dtype=object)


def _as_trained(values: pd.Series, ref: ColumnProfile | None) -> tuple[pd.Series, np.ndarray]:
    """The column as the version reads it, and the rows whose values are not of that type."""
    none = np.zeros(len(values), bool)
    if ref is None or ref.dtype == "bool":
        return values, none
    boolean = pd.api.types.is_bool_dtype(values)
    numeric = pd.api.types.is_numeric_dtype(values) and not boolean
    if ref.kind == "numeric" and boolean:  # true / false where numbers were: not a number
        return pd.Series(
            np.full(len(values), np.nan), index=values.index
        ), values.notna().to_numpy()
    if ref.kind == "numeric" and not numeric:
        read = pd.to_numeric(values.astype(object), errors="coerce").astype(float)
        return read, values.notna().to_numpy() & read.isna().to_numpy()
    if ref.kind == "categorical" and (numeric or values.dtype == object):

        def text(v: Any) -> Any:
            if v is None or (isinstance(v, float) and np.isnan(v)):
                return None
            return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)

        return values.astype(object).map(text).astype("str"), none
    return values, none


def _examples(values: np.ndarray, mask: np.ndarray, k: int = 3) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for v in values[mask]:
        seen.setdefault(str(v), None)
        if len(seen) == k:
            break
    return tuple(seen)


def _finding(
    cell: Cell,
    readers: tuple[str, ...],
    blocked: Mapping[str, str],
    unusable: bool,
    n: int,
    extra: Sequence[str],
) -> ColumnFinding:
    rows = int(cell.mask.sum())
    examples = tuple(int(i) for i in np.flatnonzero(cell.mask)[:_SHOWN_ROWS])
    where = (
        "every row"
        if rows == n
        else f"row{'s' if rows > 1 else ''} {', '.join(map(str, examples))}"
        + (", ..." if rows > len(examples) else "")
    )
    shown = ", ".join(repr(v) for v in cell.values)
    what = {
        "missing": "the column is missing from the window",
        "type": f"{rows:,} of {n:,} values are not of the column's trained type ({shown}; {where})",
        "nulls": f"{rows:,} of {n:,} values are null ({where})",
        "nonfinite": f"{rows:,} of {n:,} values are infinite ({shown}; {where})",
        "unseen": f"{rows:,} of {n:,} values are categories never seen in training ({shown}; "
        f"{where})",
    }[cell.kind]
    if cell.close:
        what += f" ({'; '.join(cell.close)})"
    if cell.kind == "missing":
        close = difflib.get_close_matches(cell.column, extra, n=1, cutoff=0.3)
        if close:
            what += f" (the window has {close[0]!r}, which the reference lacks: renamed?)"
    members = ", ".join(readers) if readers else "nothing"
    if blocked:
        who = "; ".join(f"member {m!r} cannot take them ({e})" for m, e in blocked.items())
        why = f"{what}; read by {members}; {who}: the rows are set aside"
    elif cell.kind == "type":
        why = f"{what}; read by {members}: the rows are set aside"
    elif cell.kind == "missing":
        why = f"{what}; read by {members}, which read{'s' if len(readers) == 1 else ''} it as "
        why += "all null"
    else:
        why = f"{what}; read by {members}, which take{'s' if len(readers) == 1 else ''} them"
    return ColumnFinding(
        cell.column, cell.kind, rows, examples, cell.values, readers, tuple(blocked), unusable,
        why, what,
    )  # fmt: skip


def _target(model: FittedSystem, frame: pd.DataFrame, window: pd.DataFrame) -> list[ColumnFinding]:
    """Findings about the target; rows with a label the model cannot read become unlabelled."""
    target = model.target
    if target not in frame.columns:
        return []
    n = len(frame)
    y = frame[target]
    given = y.notna().to_numpy()
    out: list[ColumnFinding] = []
    bad = np.zeros(n, bool)
    if model.classes_ is not None:
        classes = pd.Index(model.classes_)
        if pd.api.types.is_numeric_dtype(classes) and not pd.api.types.is_numeric_dtype(y):
            y = pd.to_numeric(y.astype(object), errors="coerce")
        bad = given & (classes.get_indexer(y) < 0)
        kind, what = "unseen", "labels are classes never seen in training"
    elif not pd.api.types.is_numeric_dtype(y):
        y = pd.to_numeric(y.astype(object), errors="coerce").astype(float)
        bad = given & y.isna().to_numpy()
        kind, what = "type", "labels are not numbers"
    if bad.any():
        y = y.where(~bad)
        cell = Cell(target, kind, bad, _examples(window[target].to_numpy(), bad))
        rows = int(bad.sum())
        out.append(
            ColumnFinding(target, kind, rows, tuple(int(i) for i in np.flatnonzero(bad)[:5]),
                          cell.values, (), (), False,
                          f"{rows:,} of {n:,} {what} ({', '.join(map(repr, cell.values))}): "
                          "those rows count as unlabelled")
        )  # fmt: skip
    frame[target] = y
    nulls = y.isna().to_numpy() & ~bad
    if nulls.any():
        rows = int(nulls.sum())
        out.append(
            ColumnFinding(target, "nulls", rows, tuple(int(i) for i in np.flatnonzero(nulls)[:5]),
                          (), (), (), False,
                          f"{rows:,} of {n:,} rows have no label: performance and probes use "
                          f"the {n - rows - int(bad.sum()):,} labelled rows")
        )  # fmt: skip
    return out
