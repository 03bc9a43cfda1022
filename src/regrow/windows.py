"""The window a version is checked on: a stored snapshot, or rows stored once checked.

``regrow monitor --window recent.csv`` and ``regrow plan`` take a window as a snapshot (its
id, an id prefix or its name) or as rows: a DataFrame, an Arrow table, the path of a CSV or
Parquet file. Rows are read and validated first (:func:`open_window`) and stored as snapshot
``<system>-window`` only by :func:`store_window`, which the services call once the command
on them succeeded: a failed command leaves no snapshot, artifact or report behind.

A window does not have to be clean: nulls, values of another type, missing or extra columns
are what monitoring reports (:mod:`regrow.monitor.data_quality`), so the snapshot is stored
without the schema review that other snapshots get. Only what no snapshot can hold (no rows,
duplicated column names) is refused, with a :class:`~regrow.errors.DataError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from regrow.catalog.records import SnapshotRecord, SystemVersionRecord
from regrow.data.adapters import Adapters
from regrow.data.frames import FILE_SUFFIXES, logical_dtype, to_arrow
from regrow.data.snapshot import apply_slice, prepare_snapshot
from regrow.errors import SliceError

if TYPE_CHECKING:
    from regrow.services import Services

__all__ = [
    "WINDOW_SUFFIXES",
    "Window",
    "adapted_snapshot",
    "applicable_slices",
    "open_window",
    "read_through_adapters",
    "store_window",
]

#: File suffixes a window given as a string is read from (otherwise it names a snapshot).
WINDOW_SUFFIXES = FILE_SUFFIXES


@dataclass(frozen=True)
class Window:
    """The rows a version is checked on, with the snapshot that holds them or will.

    ``pending`` is the table to store when the window came as rows (see :func:`open_window`);
    ``record`` is then what the snapshot will be, and ``notes`` say what was left out of it.
    ``source`` is the file the rows were read from (None: rows given as a table).
    """

    record: SnapshotRecord
    frame: pd.DataFrame = field(repr=False)
    notes: tuple[str, ...] = ()
    pending: pa.Table | None = field(default=None, repr=False)
    source: str | None = None


def read_through_adapters(
    version: SystemVersionRecord, frame: pd.DataFrame, notes: list[str]
) -> pd.DataFrame:
    """``frame`` as ``version`` reads it: through its boundary adapters. What they changed,
    or could not bridge, goes into ``notes``: rows such as a window or served rows are
    reported, not refused (``frame`` itself when the version has no adapters)."""
    adapters = Adapters.from_list(version.spec.get("adapters"))
    if not adapters:
        return frame
    problems: list[str] = []
    adapted = adapters.apply(frame, problems=problems)
    if adapted is not frame:
        notes.append(
            f"read through {version.ref}'s adapters: "
            + "; ".join(" ".join(a.describe().split()) for a in adapters)
            + " ("
            + "; ".join(adapters.changed(frame, adapted))
            + ")"
        )
    notes.extend(problems)
    return adapted


def _window_name(version: SystemVersionRecord) -> str:
    return f"{version.system}-window"


def applicable_slices(
    slices: Mapping[str, str], rows: pd.DataFrame, notes: list[str], what: str
) -> dict[str, str]:
    """The ``slices`` (name -> expression, e.g. a training snapshot's) that apply to ``rows``;
    a note in ``notes`` names each that does not, and why (``what`` names the rows)."""
    kept: dict[str, str] = {}
    for name, expr in slices.items():
        try:
            apply_slice(rows, name, expr)
        except SliceError as exc:
            cause = exc.__cause__ or exc
            notes.append(
                f"slice {name!r} ({expr}) does not apply to {what} "
                f"({type(cause).__name__}: {cause}): not checked"
            )
            continue
        kept[name] = expr
    return kept


def open_window(services: Services, version: SystemVersionRecord, window: Any) -> Window:
    """The rows of ``window``: a snapshot (a record or its reference), or rows not stored yet.

    Rows (a DataFrame, an Arrow table, a ``.csv`` / ``.parquet`` path) are validated as a
    snapshot named ``<system>-window`` with the time column and slices of the snapshot the
    version was trained on, but stored only by :func:`store_window`. A time column the window
    lacks or holds other values in, and slices that do not apply to it, are left out, each
    with a note; what no snapshot may hold (no rows, duplicated names) raises
    :class:`~regrow.errors.DataError` and nothing is written.
    """
    notes: list[str] = []
    stored = window if isinstance(window, SnapshotRecord) else None
    if isinstance(window, str) and not window.lower().endswith(WINDOW_SUFFIXES):
        stored = services.catalog.get_snapshot(window)
    if stored is not None:
        frame = services.frame(stored.id)
        adapted = read_through_adapters(version, frame, notes)
        if adapted is frame:
            return Window(stored, frame, tuple(notes))
        # Adapted rows are a new window, stored with the report like rows given directly.
        notes.insert(0, f"window {stored.name} ({stored.id[:12]}) adapted:")
        window = adapted
    catalog = services.catalog
    reference = catalog.get_snapshot(version.snapshot_id) if version.snapshot_id else None
    # a file's path is where the rows came from (the table read from it: "pyarrow.Table")
    source = str(Path(window).resolve()) if isinstance(window, str | os.PathLike) else None
    table = to_arrow(window)
    if version.spec.get("adapters") and stored is None:
        rows = table.to_pandas()
        adapted = read_through_adapters(version, rows, notes)
        if adapted is not rows:
            table = to_arrow(adapted)
    time_column = reference.time_column if reference is not None else None
    if time_column is not None:
        why = ""
        if time_column not in table.column_names:
            why = "is not in the window"
        elif (dtype := logical_dtype(table.schema.field(time_column).type)) != "datetime":
            why = f"holds {dtype or 'only null'} values, not datetimes"
        elif table.column(time_column).null_count:
            why = f"has {table.column(time_column).null_count:,} nulls"
        if why:
            notes.append(
                f"time column {time_column!r} {why}: the window is kept without a time column "
                "(performance is not split by time)"
            )
            time_column = None
    slices: dict[str, str] = {}
    if reference is not None and reference.slices and table.num_rows:
        slices = applicable_slices(reference.slices, table.to_pandas(), notes, "the window")
    name = _window_name(version)
    prepared = prepare_snapshot(table, time_column=time_column, slices=slices, name=name)
    record = SnapshotRecord(
        id=prepared.id,
        name=name,
        schema_id="",
        rows=prepared.rows,
        columns=prepared.columns,
        column_hashes=prepared.column_hashes,
        artifact="",
        time_column=time_column,
        slices=dict(prepared.slices),
        created_at=datetime.now(UTC),
    )
    return Window(record, prepared.table.to_pandas(), tuple(notes), prepared.table, source)


def store_window(services: Services, window: Window) -> SnapshotRecord:
    """The window's snapshot, stored now if it was not yet."""
    if window.pending is None:
        return window.record
    rec = window.record
    # Dirty data in a window is a signal to report, not a reason to refuse it.
    return services.snapshot(
        window.pending,
        name=rec.name,
        time_column=rec.time_column,
        slices=rec.slices or None,
        check_schema=False,
        source=window.source,
    )


def adapted_snapshot(
    services: Services, adapters: Adapters, snap: SnapshotRecord
) -> tuple[SnapshotRecord, pd.DataFrame]:
    """``snap`` as a system with ``adapters`` reads it, and its rows.

    Adapted rows equal to a snapshot the name already holds *are* that snapshot (a rename
    that gives back the old column trains on the old snapshot, and re-fits nothing). Other
    adapted rows are stored as ``<name>-adapted``, their parent ``snap``: the name's own schema
    stays the shape upstream sends. Rows the adapters leave as they are give ``snap`` itself.
    """
    import contextlib

    frame = services.frame(snap.id)
    adapted = adapters.apply(frame)
    if adapted is frame:
        return snap, frame
    time_column = snap.time_column if snap.time_column in adapted.columns else None
    slices = snap.slices or None
    same = prepare_snapshot(adapted, name=snap.name, time_column=time_column, slices=slices)
    with contextlib.suppress(LookupError):
        return services.catalog.get_snapshot(same.id), adapted
    stored = services.snapshot(
        adapted,
        name=f"{snap.name}-adapted",
        time_column=time_column,
        slices=slices,
        parents=(snap.id,),
        check_schema=False,
    )
    return stored, adapted
