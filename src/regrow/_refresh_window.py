"""The labelled rows a refresh weighs members on (see :mod:`regrow.refreshing`).

A refresh scores every member on the window, so the window is checked first, as ``regrow
monitor`` and ``regrow plan`` check one (:func:`regrow.monitoring.window_quality`), and
screened under the policy's ``planning`` section as ``regrow plan`` screens it
(:func:`regrow.plan.screen.screen`):

* a column the version reads that is missing or holds no value of its trained type, and rows
  the version cannot score (a category column that arrives as numbers, a category a one-hot
  encoder never saw) in more than ``planning.max_unusable_share`` of the window, are refused
  with a :class:`~regrow.errors.DataError` that names the column, the members that cannot take
  it and what to do; fewer such rows are set aside, and the plan says so;
* labels the version cannot read (for a classifier, none of its classes, such as ``"yes"`` for
  a 0/1 model; for a regressor, not numbers) are refused the same way when they are more than
  ``planning.max_unusable_share`` of the labels given (or ``planning.unusable_rows`` is
  ``stop``), naming a bad label and the classes; fewer count as unlabelled;
* fewer than :data:`MIN_LABELLED_ROWS` labelled rows left are refused with a
  :class:`~regrow.errors.PlanError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from regrow.errors import DataError, PlanError
from regrow.monitoring import unreadable_labels, window_quality
from regrow.plan.screen import screen

if TYPE_CHECKING:
    from regrow.catalog.records import SystemVersionRecord
    from regrow.model import FittedSystem
    from regrow.monitor.data_quality import WindowCheck
    from regrow.plan.policy import Planning
    from regrow.services import Services
    from regrow.windows import Window

__all__ = ["MIN_LABELLED_ROWS", "Labelled", "labelled_rows"]

#: Fewer labelled rows than this and a window cannot weigh members (nor cross-validate one).
MIN_LABELLED_ROWS = 30

_SCREENED = "cannot plan on this window: "  # how screen() opens a refusal of a column


@dataclass(frozen=True)
class Labelled:
    """The labelled usable rows (types read as trained), what the screening said about the
    window, and what a plan records so that its run fits on the same rows."""

    frame: pd.DataFrame
    lines: tuple[str, ...]
    data: dict[str, Any]


def labelled_rows(
    services: Services,
    version: SystemVersionRecord,
    model: FittedSystem,
    window: Window,
    planning: Planning,
    *,
    name: str | None = None,
) -> Labelled:
    """The rows of ``window`` that ``version`` can score and that carry a label it can read.

    Raises :class:`~regrow.errors.PlanError` without a target column or with too few labels,
    and :class:`~regrow.errors.DataError` for a window the version cannot take (see the module
    docstring); the messages call the window ``name`` (default: its snapshot's name).
    """
    name, target = name or window.record.name, model.target
    if target not in window.frame.columns:
        raise PlanError(
            f"window {name!r} has no target column {target!r}: refresh weighs members by "
            "their loss on labelled rows",
            hint="use a labelled snapshot, e.g. `regrow window SYSTEM --since 7d --labelled`",
        )
    check = window_quality(services, version, window.frame, model)
    try:
        screened = screen(check, planning, target=target)
    except PlanError as exc:
        raise DataError(
            f"cannot refresh {version.ref} on window {name!r}: "
            + exc.message.removeprefix(_SCREENED),
            hint=exc.hint.replace("plan again", "refresh again") if exc.hint else None,
        ) from exc
    _check_labels(check, model, window, planning, version.ref, name)
    rows = screened.rows
    labelled = rows[rows[target].notna()].reset_index(drop=True)
    if len(labelled) < MIN_LABELLED_ROWS:
        raise PlanError(
            f"window {name!r} has {len(labelled)} labelled row(s) in {target!r} that the "
            f"version can score; a refresh needs at least {MIN_LABELLED_ROWS}",
            hint="wait for more labels, or use a longer window",
        )
    return Labelled(labelled, screened.lines, screened.data())


def _check_labels(
    check: WindowCheck,
    model: FittedSystem,
    window: Window,
    planning: Planning,
    ref: str,
    name: str,
) -> None:
    """Refuse labels the version cannot read, past the policy's share (module docstring)."""
    target = model.target
    unread = unreadable_labels(check, model, ref)
    if unread is None:
        return
    rows, what = unread
    given = int(window.frame[target].notna().sum())
    share = rows / given
    if planning.unusable_rows != "stop" and share <= planning.max_unusable_share:
        return  # counted as unlabelled; the screening's lines say so
    hint = (
        "map the labels to the classes the version was trained on"
        if model.classes_ is not None
        else "give numeric labels"
    )
    rule = (
        "planning.unusable_rows is stop"
        if planning.unusable_rows == "stop"
        else f"more than planning.max_unusable_share, {planning.max_unusable_share:.0%}"
    )
    raise DataError(
        f"{rows:,} of {given:,} labels in {target!r} of window {name!r} "
        f"({share:.1%}: {rule}) are not {what}",
        hint=f"{hint}, or drop those rows, and refresh again",
    )
