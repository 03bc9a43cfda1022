"""Screening a window before planning: which rows the probes and updates may use, or stop.

The monitor's data-quality check (:mod:`regrow.monitor.data_quality`) says what the version
cannot take; the policy says what the planner does about it:

* a column the version reads that is **missing**, or holds no usable value at all (every row
  null, or every value of the wrong type), stops planning with a
  :class:`~regrow.errors.PlanError`: an update trained without it would learn to do without
  the column, and a broken feed is fixed at its source, not in the model;
* rows some member **cannot take** (nulls a LogisticRegression cannot read, categories a
  OneHotEncoder never saw) and values of the **wrong type**: ``planning.unusable_rows: drop``
  (the default) sets them aside, so the probes and the update use the other rows, and the
  plan says which rows and why; more than ``planning.max_unusable_share`` of the window, or
  ``unusable_rows: stop``, stops planning with an error naming the column, the rows and what
  to do;
* what every member takes (nulls a gradient-boosted member reads natively, an extra column)
  is listed in the rationale and changes nothing.

>>> from regrow.plan.policy import Planning
>>> import numpy as np, pandas as pd
>>> from regrow.monitor.data_quality import WindowCheck
>>> clean = WindowCheck(3, (), pd.DataFrame({"x": [1, 2, 3]}), np.zeros(3, bool))
>>> screen(clean, Planning(), target="y").rows.x.tolist()
[1, 2, 3]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from regrow.errors import PlanError
from regrow.monitor.data_quality import ColumnFinding, WindowCheck
from regrow.plan.policy import Planning

__all__ = ["Screened", "screen"]


@dataclass(frozen=True)
class Screened:
    """The rows a plan probes and trains on, with what the screening says about the window."""

    rows: pd.DataFrame
    lines: tuple[str, ...]
    set_aside: int
    changed: bool  # the rows differ from the window's (rows set aside, types read as trained)

    def data(self) -> dict[str, Any]:
        """What a plan records so that its run trains on the same rows (empty: the window)."""
        return {"set_aside_rows": self.set_aside, "as_trained": True} if self.changed else {}


def _broken(check: WindowCheck, target: str) -> list[ColumnFinding]:
    return [
        f
        for f in check.findings
        if f.column != target
        and f.readers
        and (f.kind == "missing" or (f.kind in ("nulls", "type") and f.rows == check.rows))
    ]


def screen(check: WindowCheck, planning: Planning, *, target: str) -> Screened:
    """The rows of ``check``'s window a plan may use, or a :class:`PlanError` (see above)."""
    broken = _broken(check, target)
    if broken:
        what = "; ".join(f.described for f in broken)
        renamed = [f for f in broken if "renamed?" in f.what]
        hint = (
            "bridge the rename with a boundary adapter (`regrow adapters propose` writes it; "
            "Workspace.adapt adds it to this version without re-fitting), rename the column "
            "back, or "
            if renamed
            else "fix the feed that fills "
            + ", ".join(repr(f.column) for f in broken)
            + " and plan again, bridge it with an adapter (`regrow adapters propose`), or "
        )
        raise PlanError(
            f"cannot plan on this window: {what}",
            hint=hint + "retrain the system on data without the column; `regrow monitor` "
            "still reports on the window as it is",
        )
    lines = [f"data quality: {f.column!r}: {f.why}" for f in check.findings if not f.unusable]
    set_aside = check.rows - check.usable_rows
    if set_aside:
        share = set_aside / check.rows
        unusable = [f for f in check.findings if f.unusable]
        if planning.unusable_rows == "stop" or share > planning.max_unusable_share:
            what = "; ".join(
                f.described
                + (f"; member {', '.join(map(repr, f.blocked))} cannot take them" if f.blocked
                   else "")
                for f in unusable
            )  # fmt: skip
            rule = (
                "planning.unusable_rows is stop"
                if planning.unusable_rows == "stop"
                else f"above planning.max_unusable_share ({planning.max_unusable_share:.0%})"
            )
            raise PlanError(
                f"{set_aside:,} of {check.rows:,} rows ({share:.1%}) of the window cannot be "
                f"scored by the version ({rule}): {what}",
                hint="fill or drop those rows, or give the member an imputer or an encoder "
                "that takes unknown values (e.g. OneHotEncoder(handle_unknown='ignore')) and "
                "retrain; with planning.unusable_rows: drop and a higher "
                "planning.max_unusable_share the plan sets them aside",
            )
        what = "; ".join(f"{f.column!r}: {f.why}" for f in unusable)
        lines.insert(
            0,
            f"set aside {set_aside:,} of {check.rows:,} rows ({share:.1%}) that the version "
            f"cannot score (planning.unusable_rows: drop); the probes and the update use the "
            f"other {check.usable_rows:,}: {what}",
        )
    rows = check.usable.reset_index(drop=True)
    # Rows without a label cannot train an update: the run leaves them out of its rows.
    unlabelled = target in rows.columns and bool(rows[target].isna().any())
    return Screened(rows, tuple(lines), set_aside, check.changed or unlabelled)
