"""``regrow watch``: keep a system fresh on its own, one cycle per window.

A :class:`Watcher` holds the watch lease of ``system`` (:mod:`regrow.catalog.watches`: two
watchers on one system cannot both act) and runs **cycles**. Each cycle takes the next window
its :class:`WindowSource` has not given before, and then

1. **window**: stores the window's rows as snapshot ``<system>-watch`` and splits the
   labelled rows that came with it (labels arrive late: a source gives the newest labelled
   rows it has): the newest ``watch.evaluation_share`` of them held out for the realised
   metric and the evaluation, the rest for the plan. Those are stored (as
   ``<system>-watch-holdout`` and ``<system>-watch-labelled``) only when the cycle decides
   to act;
2. **monitor**: ``Workspace.monitor`` on the window (drift, multivariate drift, estimated and,
   with labels, measured performance; the report is stored);
3. **forecast**: the SLA metric's series over the stored reports (measured where labels came,
   estimated where not; :mod:`regrow.forecast`) and the probability that it crosses the
   policy's ``watch.sla`` within ``watch.horizon`` cycles;
4. **decide**: act when the SLA is crossed or forecast to be crossed with probability at least
   ``watch.act_probability``; without an SLA, act only on a loss raised in
   ``watch.persistence`` cycles in a row (a transient shift reverts before then): by drift,
   in a member, or measured from labels (performance past its alert threshold). It
   does not act during ``watch.cooldown`` cycles after an update, while a rollout of the alias
   is under way, or without ``watch.min_labelled_rows`` labelled rows. Every reason not to act
   is recorded;
5. **plan**: ``Workspace.plan`` on the labelled rows (the policy's planning rules: the
   smallest update, or an escalation); an empty plan ends the cycle;
6. **run**: when the policy's ``autonomy`` allows every action and the budget holds (else the
   cycle ends ``waiting`` and names the command a person runs: ``regrow run PLAN --approve``);
7. **evaluate**: the candidate against the alias's holder on the held-out rows, under the
   policy's gates. With ``watch.evaluate_on: newer`` the update learnt from every labelled
   row instead, and the candidate waits: a later cycle whose window brings
   ``watch.newer_rows`` labelled rows newer than all of them evaluates it on those (and,
   while the gates cannot tell it from the holder yet, on twice as many, up to
   ``watch.newer_looks`` looks);
8. **rollout**: a blessed candidate of a served system starts the policy's rollout
   (``rollout.strategy``; the server, or the next cycle, steps it); of a system that is not
   served, it is promoted, when the promotion rules allow (approvals included; else the cycle
   ends ``waiting`` and a later cycle promotes it once they are given).

With ``dry_run`` the cycle records what it found and decided (monitor report, forecast,
decision, the plan it would run) and runs, evaluates and rolls out nothing.

Every cycle is one record in the catalog (``regrow watch history``), with its window, what
each step found, the decision and its reasons, the ids of the plan, run, evaluation and
rollout, and its cost (CPU seconds, wall seconds, money under ``[costs]``); the end of each
is audited (``watch.cycle``). A crash in the middle leaves the cycle ``running`` at the last
step it finished: the next watcher resumes it from there, reusing what was stored. An error
in a step (bad data, a refused promotion) ends the cycle ``failed`` with the error and its
hint; the watcher goes on with the next window. Events are sent to the hook ``[watch]
notify`` names (a webhook URL or a command).
"""

from __future__ import annotations

import contextlib
import difflib
import glob
import hashlib
import itertools
import json
import os
import resource
import shlex
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import pandas as pd

from regrow.catalog.watches import STEPS, WatchBusy, WatchCycleRecord
from regrow.config import span_seconds
from regrow.errors import ConfigError, DataError, PromotionRefused, RegrowError

if TYPE_CHECKING:
    from regrow.cache import OutputCache
    from regrow.catalog.records import SystemVersionRecord
    from regrow.model import FittedSystem
    from regrow.monitor.drift_monitor import DriftMonitor
    from regrow.plan.policy import Policy
    from regrow.workspace import Workspace

__all__ = [
    "FilesSource",
    "ServedSource",
    "SnapshotSource",
    "Watcher",
    "Window",
    "WindowSource",
    "parse_every",
    "source_from",
]

#: Cycles whose points the forecast reads (the series it extends).
_SERIES = 120
#: The most rows (over all members) whose outputs a watcher keeps between cycles to measure
#: the realised metric: about 50 MB of outputs and keys for a binary classifier.
_HELD_ROWS = 1_000_000
#: A window of fewer rows shows no drift but the largest (a KS test on 3 rows has an effect
#: interval of 0 to 1): its quiet cycle says so, rather than "nothing drifted".
_FEW_ROWS = 30


def parse_every(text: str) -> timedelta:
    """A span such as ``15m``, ``1h``, ``1d`` as a timedelta.

    >>> parse_every("15m")
    datetime.timedelta(seconds=900)
    """
    seconds = span_seconds(text)
    if seconds is None:
        raise ConfigError(
            f"cannot read the span {text!r}", hint="write a number and a unit: 30s, 15m, 1h, 1d"
        )
    if seconds <= 0:
        raise ConfigError(f"the span {text!r} is not positive", hint="e.g. 15m")
    return timedelta(seconds=seconds)


# -- windows ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Rows a cycle checks: ``rows`` (what was served or arrived), ``labelled`` (the newest
    labelled rows the source has: late labels of earlier rows, or these rows' own), ``key``
    (unique per window: a cycle takes each key once), ``at`` (the window's time) and
    ``labelled_from`` (where the labelled rows come from, in words: "the last 7 files")."""

    key: str
    rows: pd.DataFrame
    labelled: pd.DataFrame | None = None
    at: datetime | None = None
    note: str = ""
    labelled_from: str = ""
    error: RegrowError | None = None  # the window could not be read: its cycle fails with it


class WindowSource(Protocol):
    """Where a watcher finds its windows: :meth:`windows` yields them oldest first, and may
    skip the keys ``seen`` says a cycle already took (the watcher skips them anyway)."""

    name: str

    def windows(
        self, ws: Workspace, system: str, seen: Callable[[str], bool]
    ) -> Iterator[Window]: ...


def _target_and_reads(ws: Workspace, system: str) -> tuple[str | None, set[str]]:
    """The target column of ``system``'s newest version (what labels are written in), and the
    raw columns its members read (directly or through transforms)."""
    from regrow.evaluate.gates.coverage import member_columns

    spec = ws.catalog.get_system_version(system).spec
    target = spec.get("target") if isinstance(spec, Mapping) else None
    if not isinstance(target, str):
        return None, set()
    return target, set().union(*member_columns(spec).values())


def _read(path: Path) -> pd.DataFrame:
    """The rows of window file ``path``, read as `regrow snapshot create` reads it (a CSV's
    delimiter is found from its first lines: :mod:`regrow.data.csv_files`)."""
    from regrow.data.frames import to_arrow, to_pandas

    if path.suffix.lower() not in (".csv", ".parquet"):
        raise DataError(
            f"window file {str(path)!r} is neither .csv nor .parquet",
            hint="name window files *.csv or *.parquet",
        )
    try:
        return to_pandas(to_arrow(path))
    except (DataError, OSError) as exc:
        why = exc.message if isinstance(exc, DataError) else str(exc)
        raise DataError(
            f"cannot read window file {str(path)!r}: "
            + why.removeprefix(f"cannot read {str(path)!r}: "),
            hint="a window file is a .parquet file, or a .csv file of rows separated by "
            "commas, semicolons, tabs or |",
        ) from exc


def _times(frame: pd.DataFrame, column: str | None) -> pd.Series | None:
    """``frame``'s time column as UTC times (None without one, or when none can be read)."""
    if column is None or column not in frame.columns:
        return None
    stamps = pd.to_datetime(frame[column], utc=True, errors="coerce")
    return None if stamps.isna().all() else stamps


def _store(ws: Workspace, frame: pd.DataFrame, name: str, time_column: str | None) -> Any:
    """``frame`` stored as snapshot ``name``, with its time column when it can be read as one."""
    if time_column is not None and time_column in frame.columns:
        try:
            return ws.snapshot(frame, name=name, check_schema=False, time_column=time_column)
        except DataError:  # times that do not parse: stored as they are, without one
            pass
    return ws.snapshot(frame, name=name, check_schema=False)


def _read_or_none(path: Path) -> pd.DataFrame | None:
    try:
        return _read(path)
    except DataError:  # its own window's cycle says why
        return None


def _labelled_part(frame: pd.DataFrame, target: str | None) -> pd.DataFrame | None:
    if target is None or target not in frame.columns:
        return None
    part = frame[frame[target].notna()]
    return part if len(part) else None


def _stack(
    parts: Sequence[tuple[str, pd.DataFrame | None]],
    like: pd.DataFrame | None = None,
    reads: Collection[str] = (),
) -> tuple[pd.DataFrame | None, list[str], list[str]]:
    """The labelled ``parts`` (each named: a file, a snapshot) stacked, why any was left out,
    and what was read as empty. With ``like`` (the window's rows), a part is left out when a
    column holds values of another kind (numbers, text, times) than most rows of the parts
    and the window have (stacked, the column would be text for every part), or when it lacks
    a column of ``reads`` (what the system reads) the window holds (a renamed column: its
    rows would have no value there). A column of numbers with a few stray strings (``'oops'``
    in one cell: read as text) is read as numbers where most rows hold numbers there, its
    stray cells as nulls (set aside downstream like any null, as `regrow monitor` sets
    aside such a row), and said so: one cell does not throw away a file's labelled rows. So is
    a column of times with a few stray strings (:func:`_strays`). A window with a stray
    string itself does not throw away the clean labelled rows before it."""
    kept = [(n, p) for n, p in parts if p is not None and len(p)]
    if like is None or not kept:
        return (pd.concat([p for _, p in kept], ignore_index=True) if kept else None), [], []
    read = [(name, part, _strays(part)) for name, part in kept]
    # a column read as numbers (times) but for its stray cells votes for numbers (times)
    kinds = _majority_kinds(
        [_with_numbers(like, _strays(like)), *(_with_numbers(p, s) for _, p, s in read)]
    )
    needed = [c for c in reads if c in like.columns]
    used: list[pd.DataFrame] = []
    left_out: list[str] = []
    emptied: list[str] = []
    for name, part, stray in read:
        numbers = {c: found for c, found in stray.items() if kinds.get(c) == _kind(found[0])}
        part = _with_numbers(part, numbers)
        lacking = [c for c in needed if c not in part.columns]
        other = [c for c in part.columns if _kind(part[c]) not in ("any", kinds.get(c, "any"))]
        if lacking:
            left_out.append(f"{name} lacks {', '.join(map(repr, lacking[:3]))}")
        elif other:
            left_out.append(
                f"{name}: {', '.join(f'{c!r} holds {_kind(part[c])}' for c in other[:3])}, "
                f"not {kinds[other[0]]}"
            )
        else:
            used.append(part)
            emptied.extend(
                _read_as_empty(name, c, found[1], _kind(found[0])) for c, found in numbers.items()
            )
    return (pd.concat(used, ignore_index=True) if used else None), left_out, emptied


#: Stray values (and their rows) a note on a column read as numbers shows.
_SHOWN = 3


def _strays(frame: pd.DataFrame) -> dict[str, tuple[pd.Series, pd.Series]]:
    """The text columns of ``frame`` that hold numbers written as text
    (:data:`~regrow.data.quality.NUMBER_TEXT`), else ISO 8601 times (as `regrow snapshot
    create` reads a CSV's times), in most of their values, and a few other strings: each read
    as numbers or times (the strays null), with the stray values (indexed by row). A column
    of words, or of no stray value, is not one. One ``'oops'`` among a file's times made its
    time column text, and the clean files before it were left out for holding times."""
    found: dict[str, tuple[pd.Series, pd.Series]] = {}
    for column in frame.columns:
        series = frame[column]
        if not isinstance(column, str) or _kind(series) != "text":
            continue
        values = series.dropna()
        # a cheap look first: a column of words costs no more
        if pd.api.types.infer_dtype(values.iloc[:1000], skipna=True) != "string":
            continue
        for reader in (_as_numbers, _as_times):
            read = reader(series, values)
            if read is not None and len(read[1]) > 0 and len(read[1]) * 2 <= len(values):
                found[column] = read
                break
    return found


def _as_numbers(series: pd.Series, values: pd.Series) -> tuple[pd.Series, pd.Series] | None:
    """``series`` (text) read as numbers, and its values that are not numbers; None when
    fewer than half of ``values`` (its non-null strings) are."""
    from regrow.data.quality import NUMBER_TEXT

    sample = values.iloc[:1000]
    if int(sample.str.match(NUMBER_TEXT).sum()) * 2 < len(sample):
        return None
    if pd.api.types.infer_dtype(values, skipna=True) != "string":
        return None
    numeric = values.str.match(NUMBER_TEXT).astype(bool)
    as_numbers = pd.to_numeric(
        series.where(numeric.reindex(series.index, fill_value=False)), errors="coerce"
    )
    return as_numbers, values[~numeric]


def _as_times(series: pd.Series, values: pd.Series) -> tuple[pd.Series, pd.Series] | None:
    """``series`` (text) read as ISO 8601 times, and its values that are not times; None when
    fewer than half of ``values`` (its non-null strings) are."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a column of words: no format to infer
        # a cheap look first (a column of words costs little), then a larger one
        if not all(_mostly_times(values.iloc[:head]) for head in (20, 1000)):
            return None
        as_times = pd.to_datetime(series, format="ISO8601", errors="coerce")
    return as_times, values[as_times.loc[values.index].isna()]


def _mostly_times(values: pd.Series) -> bool:
    """Whether most of ``values`` (strings) read as ISO 8601 times."""
    parsed = pd.to_datetime(values, format="ISO8601", errors="coerce")
    return int(parsed.notna().sum()) * 2 >= len(parsed)


def _with_numbers(
    frame: pd.DataFrame, numbers: Mapping[str, tuple[pd.Series, pd.Series]]
) -> pd.DataFrame:
    """``frame`` with the columns of ``numbers`` (:func:`_strays`) read as numbers, or
    times."""
    if not numbers:
        return frame
    return frame.assign(**{c: found[0] for c, found in numbers.items()})


def _read_as_empty(name: str, column: str, stray: pd.Series, kind: str = "number") -> str:
    """What reading ``column`` of part ``name`` as numbers (``kind``: or ``time``) did to its
    ``stray`` values.

    >>> _read_as_empty("w09.csv", "x3", pd.Series(["oops"], index=[17]))
    "w09.csv: 1 value of 'x3' is not a number ('oops', row 17): read as empty"
    >>> _read_as_empty("w09.csv", "ts", pd.Series(["oops", "?"], index=[3, 9]), "time")
    "w09.csv: 2 values of 'ts' are not times ('oops', row 3; '?', row 9): read as empty"
    """
    n = len(stray)
    shown = "; ".join(f"{v!r}, row {r}" for r, v in stray.iloc[:_SHOWN].items())
    more = f"; {n - _SHOWN:,} more" if n > _SHOWN else ""
    what = "value of" if n == 1 else "values of"
    verb = f"is not a {kind}" if n == 1 else f"are not {kind}s"
    return f"{name}: {n:,} {what} {column!r} {verb} ({shown}{more}): read as empty"


def _kind(series: pd.Series) -> str:
    """``number``, ``time``, ``text``, or ``any`` for a column with no value (read as nulls)."""
    if series.isna().all():
        return "any"
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "time"
    return "text"


def _majority_kinds(frames: Sequence[pd.DataFrame]) -> dict[str, str]:
    """Each column's kind in most of the ``frames``' rows; a tie goes to numbers, then times
    (a stray value turns numbers into text, hardly ever the other way)."""
    votes: dict[str, dict[str, int]] = {}
    for frame in frames:
        for column in frame.columns:
            kind = _kind(frame[column])
            if kind != "any":
                count = votes.setdefault(column, {})
                count[kind] = count.get(kind, 0) + len(frame)
    order = {"number": 0, "time": 1, "text": 2}
    return {c: min(v, key=lambda k: (-v[k], order[k])) for c, v in votes.items()}


def _labelled_from(recent: str, left_out: Sequence[str], emptied: Sequence[str] = ()) -> str:
    """``the last 4 files``, with the parts left out and why: ``(1 left out: ...)``, then the
    stray cells read as empty: ``; w09.csv: 1 value of 'x3' is not a number ...``."""
    said = recent
    if left_out:
        shown = "; ".join(left_out[:3]) + ("; ..." if len(left_out) > 3 else "")
        said += f" ({len(left_out)} left out: {shown})"
    if emptied:
        said += "; " + "; ".join(emptied[:3]) + ("; ..." if len(emptied) > 3 else "")
    return said


@dataclass(frozen=True)
class FilesSource:
    """Each file matching ``pattern`` (sorted by name) is a window; its key is the file's
    name and content hash, so a rewritten file is a new window. A row whose target is set
    is labelled: a window's labelled rows are those of the ``label_files`` newest files up
    to it (labels that came late, written into earlier files, are found there).

    A file still being written is not a window yet: a file changed less than
    ``settle_seconds`` ago is looked at again after that time, and one that changed in
    between is left for a later pass (write to a temporary name and rename it into place,
    and no wait is needed); the files after it in name order wait with it. Files whose name
    starts with ``.`` are never matched."""

    pattern: str
    label_files: int = 7
    name: str = "files"
    settle_seconds: float = 1.0

    def matches(self) -> int:
        """How many files match the pattern now."""
        return sum(1 for p in glob.glob(self.pattern) if Path(p).is_file())

    def waiting_for(self, ws: Workspace, system: str | None = None) -> str | None:
        """Why no window can come yet (no file matches), or None."""
        return None if self.matches() else f"no file matches {self.pattern!r}"

    def _settled(self, paths: list[Path]) -> list[Path]:
        """``paths`` without the files still being written (see the class)."""

        def state(path: Path) -> tuple[int, int] | None:
            try:
                st = path.stat()
            except OSError:  # removed meanwhile
                return None
            return st.st_size, st.st_mtime_ns

        before = {p: state(p) for p in paths}
        now = time.time_ns()
        fresh = [
            now - s[1] for s in before.values() if s is not None and now - s[1] < self.settle_ns
        ]
        if fresh:
            time.sleep((self.settle_ns - min(fresh)) / 1e9)
        after = {p: state(p) for p in paths} if fresh else before
        kept: list[Path] = []
        for path in paths:  # in order: the windows after one being written wait for it
            if before[path] is None or before[path] != after[path]:
                break
            kept.append(path)
        return kept

    @property
    def settle_ns(self) -> int:
        return int(max(0.0, self.settle_seconds) * 1e9)

    def windows(
        self, ws: Workspace, system: str, seen: Callable[[str], bool] = lambda key: False
    ) -> Iterator[Window]:
        found = sorted(Path(p) for p in glob.glob(self.pattern) if Path(p).is_file())
        paths = self._settled(found)
        target, reads = _target_and_reads(ws, system)
        for i, path in enumerate(paths):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            key = f"file:{path.name}:{digest}"
            if seen(key):
                continue
            at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            try:
                rows = _read(path)
            except DataError as exc:
                yield Window(key=key, rows=pd.DataFrame(), at=at, note=str(path), error=exc)
                continue
            recent = paths[max(0, i + 1 - self.label_files) : i + 1]
            labelled, left_out, emptied = _stack(
                [
                    (p.name, _labelled_part(frame, target))
                    for p in recent
                    if (frame := _read_or_none(p)) is not None
                ],
                like=rows,
                reads=reads,
            )
            yield Window(
                key=key,
                rows=rows,
                labelled=labelled,
                at=at,
                note=str(path),
                labelled_from=_labelled_from(_last(len(recent), "file"), left_out, emptied),
            )


@dataclass(frozen=True)
class SnapshotSource:
    """Each snapshot stored under ``snapshot`` (oldest first) is a window; labelled rows as
    for :class:`FilesSource`, over the ``label_snapshots`` newest snapshots up to it."""

    snapshot: str
    label_snapshots: int = 7
    name: str = "snapshot"

    def windows(
        self, ws: Workspace, system: str, seen: Callable[[str], bool] = lambda key: False
    ) -> Iterator[Window]:
        records = sorted(ws.catalog.list_snapshots(self.snapshot), key=lambda r: r.created_at)
        if not records:  # none yet: a watcher started before the data waits for it
            return
        target, reads = _target_and_reads(ws, system)
        for i, record in enumerate(records):
            key = f"snapshot:{record.id}"
            if seen(key):
                continue
            recent = records[max(0, i + 1 - self.label_snapshots) : i + 1]
            rows = ws.frame(record.id)
            # as for files: a snapshot with a stray string in a numeric column (stored as
            # text) does not spoil the labelled rows of the windows after it
            labelled, left_out, emptied = _stack(
                [(f"snapshot {r.id[:12]}", _labelled_part(ws.frame(r.id), target)) for r in recent],
                like=rows,
                reads=reads,
            )
            yield Window(
                key=key,
                rows=rows,
                labelled=labelled,
                at=record.created_at,
                note=f"{self.snapshot} {record.id[:12]}",
                labelled_from=_labelled_from(_last(len(recent), "snapshot"), left_out, emptied),
            )

    def waiting_for(self, ws: Workspace, system: str | None = None) -> str | None:
        """Why no window can come yet (no snapshot has the name), or None."""
        if ws.catalog.list_snapshots(self.snapshot):
            return None
        names = sorted({r.name for r in ws.catalog.list_snapshots()})
        close = difflib.get_close_matches(self.snapshot, names, n=1)
        return f"no snapshot is named {self.snapshot!r} yet" + (
            f" (did you mean {close[0]!r}?)" if close else ""
        )


@dataclass(frozen=True)
class ServedSource:
    """Windows from the prediction log: the rows served since the last window ended (a
    window every ``every``, or once ``after`` new labelled rows came), with the labelled rows
    served in the ``label_span`` before its end."""

    every: timedelta = timedelta(minutes=15)
    after: int | None = None
    label_span: timedelta = timedelta(days=7)
    name: str = "served"

    def waiting_for(self, ws: Workspace, system: str | None = None) -> str | None:
        """Why no window can come yet: nothing of ``system`` is logged, or the rows served
        since the last window are not ``every`` old yet (or, with ``after``, what the window
        waits for); None otherwise."""
        if system is None:
            return None
        span = ws.catalog.predictions.span(system)
        if span is None:
            return (
                f"nothing {system!r} served is logged yet: serve it with [serve] "
                "log_predictions = true (`regrow serve`), and send its labels back"
            )
        start = self._start(ws, system, span[0], lambda key: True)
        if self.after is not None:
            return (
                f"a window comes once {self.after:,} new labelled rows of what {system!r} "
                f"served since {start:%Y-%m-%d %H:%M:%S} UTC have come back"
            )
        if datetime.now(UTC) - start < self.every:
            since = "the first served row" if start == span[0] else "the last window's end"
            return (
                f"the next window of what {system!r} served closes at "
                f"{start + self.every:%Y-%m-%d %H:%M:%S} UTC (a window every "
                f"{_span(self.every)}, from {since})"
            )
        return None

    def _start(
        self, ws: Workspace, system: str, first: datetime, seen: Callable[[str], bool]
    ) -> datetime:
        """Where the next served window starts: where the last served window this watcher
        took ended (a cycle of another source, or a dry run's when this one is real, is no
        served window of its own), else at the first served row."""
        for cycle in ws.catalog.watches.cycles(system, limit=200):
            key = cycle.window_key
            if key.startswith("served:") and ".." in key and seen(key):
                return datetime.fromisoformat(key.rpartition("..")[2])
        return first

    def windows(
        self, ws: Workspace, system: str, seen: Callable[[str], bool] = lambda key: False
    ) -> Iterator[Window]:
        span = ws.catalog.predictions.span(system)
        if span is None:
            return
        first, last = span[0], span[1]
        start = self._start(ws, system, first, seen)
        end = datetime.now(UTC)
        if (self.after is None and end - start < self.every) or last < start:
            return
        try:
            rows = ws.frame(ws.window(system, since=start, until=end).id)
        except DataError:  # nothing served since the last window
            return
        labelled: pd.DataFrame | None = None
        with contextlib.suppress(DataError):
            since = end - self.label_span
            labelled = ws.frame(ws.window(system, since=since, until=end, labelled=True).id)
        if self.after is not None:
            try:
                fresh = ws.window(system, since=start, until=end, labelled=True).rows
            except DataError:  # no label came since the last window
                fresh = 0
            if fresh < self.after:
                return
        yield Window(
            key=f"served:{start.isoformat()}..{end.isoformat()}",
            rows=rows,
            labelled=labelled,
            at=end,
            note=f"served {start:%Y-%m-%d %H:%M}..{end:%H:%M}",
            labelled_from=f"the rows served in the {_span(self.label_span)} before its end",
        )


def _last(n: int, what: str) -> str:
    """``the last 7 files`` (this window's own and the 6 before it), or ``this file``."""
    return f"this {what}" if n == 1 else f"the last {n} {what}s"


def _span(span: timedelta) -> str:
    """``span`` in words: ``7 days``, ``12 hours``, ``90 minutes``."""
    seconds = int(span.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0 and seconds >= size:
            return _count(seconds // size, unit)
    return _count(seconds, "second")


def _count(n: int, what: str) -> str:
    """``1 cycle``, ``3 cycles``."""
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def source_from(spec: str, *, home: Path, every: timedelta, after: int | None = None) -> Any:
    """The window source ``[watch] source`` names: ``served``, ``files:GLOB`` (a relative
    glob is inside the workspace ``home``) or ``snapshot:NAME``."""
    if spec == "served":
        return ServedSource(every=every, after=after)
    kind, _, value = spec.partition(":")
    if kind in ("files", "snapshot") and not value.strip():
        what = "a glob of window files" if kind == "files" else "the name windows are stored as"
        example = "files:windows/*.csv" if kind == "files" else "snapshot:daily"
        raise ConfigError(f"window source {spec!r} names no {kind}", hint=f"give {what}: e.g. "
                          f"--source {example}")  # fmt: skip
    if spec.startswith("files:"):
        pattern = spec.removeprefix("files:")
        if not os.path.isabs(pattern):
            pattern = str(home / pattern)
        return FilesSource(pattern)
    if spec.startswith("snapshot:"):
        return SnapshotSource(spec.removeprefix("snapshot:"))
    raise ConfigError(
        f"unknown window source {spec!r}", hint='use "served", "files:GLOB" or "snapshot:NAME"'
    )


# -- the watcher ------------------------------------------------------------------------------


@dataclass
class _Clock:
    """CPU and wall seconds since it started (this process and the children it waited for)."""

    wall: float = field(default_factory=time.perf_counter)
    cpu: float = field(default_factory=lambda: _cpu_now())

    def read(self) -> dict[str, float]:
        return {
            "cpu_seconds": round(_cpu_now() - self.cpu, 3),
            "wall_seconds": round(time.perf_counter() - self.wall, 3),
        }


def _cpu_now() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class Watcher:
    """Keep ``system@alias`` fresh from ``source`` (see the module docs).

    ``policy`` defaults to the workspace's; ``notify`` is a webhook URL or a command that
    gets each event of ``notify_on`` as JSON; ``on_event`` receives the same events in
    process (the CLI prints them). Use it as a context manager, or call :meth:`stop`: the
    lease is held from the first cycle until then.
    """

    def __init__(
        self,
        ws: Workspace,
        ref: str,
        source: WindowSource,
        *,
        policy: Policy | None = None,
        dry_run: bool = False,
        notify: str | None = None,
        notify_on: Sequence[str] = ("acted", "waiting", "failed"),
        lease_seconds: int = 120,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        system, _, alias = ref.partition("@")
        if not system or ":" in system:
            raise ConfigError(
                f"watch takes SYSTEM or SYSTEM@ALIAS (got {ref!r})",
                hint="a watcher follows an alias (default champion), not a fixed version",
            )
        self.ws, self.system, self.alias = ws, system, alias or "champion"
        self.source, self.dry_run = source, dry_run
        self.policy = policy if policy is not None else ws.policy()
        self.notify, self.notify_on = notify, tuple(notify_on)
        self.lease_seconds, self.on_event = lease_seconds, on_event
        self.holder = uuid.uuid4().hex
        self._beat: threading.Thread | None = None
        self._stop = threading.Event()
        self._lost: str | None = None
        # the newest window's labelled rows, split (key, (train, holdout)): stored only when
        # its cycle acts on them
        self._labelled: tuple[str, tuple[pd.DataFrame, pd.DataFrame]] | None = None
        self._nothing_new = False  # the last look found no window no cycle had taken
        self._set_aside: str | None = None  # this cycle gave up a wait for newer labels
        self._trained: dict[str, pd.Timestamp | None] = {}  # see _trained_until
        self._scoring: tuple[str, FittedSystem, OutputCache] | None = None  # see _scorer
        # the rows a fruitless drift-led attempt learnt from, as references: see _learnt_from
        self._learnt: tuple[tuple[str, tuple[str, ...]], dict[str, DriftMonitor], int] | None
        self._learnt = None
        if self.system not in ws.catalog.list_systems():
            # its hint as every command's: a close name ("did you mean"), else those there are
            raise ws.catalog.unknown_system(self.system)
        ws.catalog.get_alias(self.system, self.alias)  # NotFound, with a hint, before anything
        self._check_sla()
        self._check_newer()

    def _check_sla(self) -> None:
        """Refuse an SLA metric of the other task (``rmse`` for a classifier): the watcher
        would never get a value of it, and never act on it."""
        from regrow.plan.policy import SLA_METRICS

        if not self.policy.watch.sla:
            return
        metric = next(iter(self.policy.watch.sla))
        spec = self.ws.catalog.get_system_version(f"{self.system}@{self.alias}").spec
        task = spec.get("task") if isinstance(spec, Mapping) else None
        if task not in SLA_METRICS or metric in SLA_METRICS[task]:
            return
        other = next((t for t, names in SLA_METRICS.items() if metric in names), "another")
        raise ConfigError(
            f"the policy's watch.sla names {metric!r}, a {other} metric, but "
            f"{self.system}@{self.alias} is a {task} system: the SLA would never be measured",
            hint=f"name one of {', '.join(SLA_METRICS[task])} in watch.sla",
        )

    def _check_newer(self) -> None:
        """Refuse ``watch.evaluate_on: newer`` without a time column: "newer labelled rows"
        would mean nothing, and a candidate would wait for good."""
        if self.policy.watch.evaluate_on != "newer" or self._time_column():
            return
        raise ConfigError(
            f"the policy's watch.evaluate_on is 'newer', but the training snapshot of "
            f"{self.system}@{self.alias} has no time column: no labelled row can be told newer "
            "than a candidate's training rows",
            hint="set watch.evaluate_on: holdout, or train a version on a snapshot taken with "
            "--time-column (of other rows: the same rows give back this version) and promote it",
        )

    # -- lease -----------------------------------------------------------------------------

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(reason="stopped" if exc[0] is None else f"stopped: {exc[0]}")

    def start(self) -> None:
        """Take the system's watch lease (:class:`~regrow.catalog.watches.WatchBusy` when
        another watcher holds it) and keep it alive in a background thread."""
        if self._beat is not None:
            return
        self.ws.require("operator", "watch a system")
        self.ws.catalog.watches.acquire(self.system, holder=self.holder, seconds=self.lease_seconds)
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True, name="regrow-watch")
        self._beat.start()

    def _heartbeat(self) -> None:
        every = max(1.0, self.lease_seconds / 3)
        while not self._stop.wait(every):
            try:
                self.ws.catalog.watches.heartbeat(
                    self.system, holder=self.holder, seconds=self.lease_seconds
                )
            except WatchBusy as lost:
                self._lost = str(lost)
                return
            except Exception:  # a catalog hiccup: try again at the next beat
                continue

    def stop(self, reason: str = "stopped") -> None:
        """Stop the heartbeat and give the lease back."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
            self._beat = None
        with contextlib.suppress(RegrowError):
            self.ws.catalog.watches.release(self.system, holder=self.holder, reason=reason)

    # -- the loop --------------------------------------------------------------------------

    def run(
        self,
        *,
        every: timedelta = timedelta(minutes=15),
        cycles: int | None = None,
        once: bool = False,
        sleep: Callable[[float], bool] | None = None,
    ) -> list[WatchCycleRecord]:
        """Resume a cycle a crash left, then run a cycle per new window; when none is new,
        wait ``every`` and look again. Stops after ``cycles`` cycles, or with ``once`` when no
        window is new; ``sleep(seconds)`` (default: wait on the stop event) returns True to
        stop. Returns the cycles run."""
        self.start()
        done: list[WatchCycleRecord] = []
        wait = sleep or (lambda seconds: self._stop.wait(seconds))
        said: str | None = None
        while cycles is None or len(done) < cycles:
            record = self.cycle()
            if record is not None:
                done.append(record)
                said = None
                continue
            if once:
                break
            why = self.waiting_for()
            if why is not None and why != said:  # said once, not at every look
                self._emit({"event": "idle", "why": why, "every": every.total_seconds()})
            said = why
            if wait(every.total_seconds()):
                break
        return done

    def waiting_for(self) -> str | None:
        """Why the source can give no window yet (no file matches its pattern, no snapshot
        has its name), or, when the last look found no new window, that earlier cycles took
        every one it has; None otherwise."""
        asks = getattr(self.source, "waiting_for", None)
        why = asks(self.ws, self.system) if callable(asks) else None
        if why is None and self._nothing_new:
            return (
                f"no new window: earlier cycles took every window the {self.source.name} "
                "source has now"
            )
        return why

    def cycle(self) -> WatchCycleRecord | None:
        """Resume the cycle a crash left running, else run one on the next new window;
        None when no window is new."""
        self.start()
        if self._lost:
            raise WatchBusy(self._lost, hint="another watcher took over; this one stops")
        self._follow_up()
        left = self.ws.catalog.watches.running(self.system)
        if left is not None and left.step == "start":  # cut short before its window was stored
            self.ws.catalog.watches.finish(
                left.id,
                holder=self.holder,
                state="failed",
                retake=True,
                body={
                    "end": {
                        "state": "failed",
                        "why": "stopped before its window was stored; "
                        "the next cycle takes the window again",
                        "interrupted": True,  # stopped (Ctrl-C, a crash), not failed
                    }
                },
            )
        elif left is not None:
            self._emit({"event": "resumed", "cycle": left.number, "step": left.step})
            return self._steps(left, window=None)

        def seen(key: str) -> bool:
            return self.ws.catalog.watches.seen(self.system, key, dry_run=self.dry_run)

        self._nothing_new = False
        for window in self.source.windows(self.ws, self.system, seen):
            if seen(window.key):
                continue
            record = self.ws.catalog.watches.start_cycle(
                self.system,
                self.alias,
                holder=self.holder,
                window_key=window.key,
                dry_run=self.dry_run,
            )
            return self._steps(record, window=window)
        self._nothing_new = True
        return None

    # -- one cycle -------------------------------------------------------------------------

    def _steps(self, record: WatchCycleRecord, window: Window | None) -> WatchCycleRecord:
        clock = _Clock()
        body = dict(record.body)
        spent = dict(body.get("cost") or {})
        start = 0 if record.step == "start" else STEPS.index(record.step) + 1
        try:
            for name in STEPS[start:]:
                if body.get("end"):  # resumed after the step that ended it: nothing more
                    break
                began = _cpu_now()
                outcome = getattr(self, f"_{name}")(body, window)
                steps = {**body.get("step_cpu_seconds", {}), name: round(_cpu_now() - began, 3)}
                outcome["step_cpu_seconds"] = steps
                # the cost so far, with each step: a cycle cut short and resumed counts
                # what it spent before the stop too
                outcome["cost"] = {
                    k: round(float(spent.get(k, 0.0)) + v, 3) for k, v in clock.read().items()
                }
                body.update(outcome)
                record = self.ws.catalog.watches.advance(
                    record.id, holder=self.holder, step=name, body=outcome
                )
                if body.get("end"):
                    break
        except KeyboardInterrupt:
            raise
        except WatchBusy:
            raise
        except RegrowError as exc:
            body["end"] = {"state": "failed", "why": exc.message, "hint": exc.hint}
        except Exception as exc:  # a bug must not stop the loop: record it, go on
            body["end"] = {
                "state": "failed",
                "why": f"{type(exc).__name__}: {exc}",
                "hint": "a defect in regrow or in a component: report it",
            }
        end = body.get("end") or {"state": "done", "why": "cycle complete"}
        cost = clock.read()
        total = {k: round(float(spent.get(k, 0.0)) + v, 3) for k, v in cost.items()}
        profile = getattr(self.ws.config, "costs", None)
        if profile is not None and profile.priced:
            rate = profile.rates(getattr(self.ws.config, "backend", "local")).cpu_hour
            total["money"] = round(total["cpu_seconds"] / 3600 * rate, 6)
            total["currency"] = profile.currency
        final = self.ws.catalog.watches.finish(
            record.id,
            holder=self.holder,
            state=str(end["state"]),
            body={**_only_new(body, record.body), "end": end, "cost": total},
        )
        self._emit(_event(final))
        return final

    def _window(self, body: dict[str, Any], window: Window | None) -> dict[str, Any]:
        assert window is not None
        if window.error is not None:
            raise window.error
        ws, system = self.ws, self.system
        if window.rows is None or len(window.rows) == 0:
            return {
                "window": {"key": window.key, "rows": 0},
                "end": {"state": "done", "why": "the window has no rows"},
            }
        time_column = self._time_column()
        at = window.at
        frame = window.rows
        stamps = _times(frame, time_column)
        if stamps is not None and not pd.isna(stamps.max()):
            at = stamps.max().to_pydatetime(warn=False)  # the data's own time, as labels have it
        rows = _store(ws, frame, f"{system}-watch", time_column)
        out: dict[str, Any] = {
            "window": {
                "key": window.key,
                "snapshot": rows.id,
                "rows": rows.rows,
                "at": (at or rows.created_at).isoformat(),
                "note": window.note,
                "labelled_rows": 0,
            },
        }
        split = self._split(window, time_column)
        if split is not None:  # stored only when the cycle acts on them (see _decide)
            train, holdout = split
            newer = self.policy.watch.evaluate_on == "newer"  # an update learns from all
            out["window"].update(
                labelled_rows=len(train) + len(holdout),
                labelled_from=window.labelled_from,
                train_rows=len(train) + len(holdout) if newer else len(train),
                holdout_rows=0 if newer else len(holdout),
            )
        return out

    def _split(
        self, window: Window, time_column: str | None
    ) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """``window``'s labelled rows split in the rows a plan learns from and the newest
        ``watch.evaluation_share`` held out (None with fewer than 2), kept for the later
        steps of its cycle (:meth:`_split_of`)."""
        self._labelled = None
        labelled = window.labelled
        if labelled is None or len(labelled) < 2:
            return None
        order = _times(labelled, time_column)
        if order is not None:  # the newest rows are held out
            labelled = labelled.iloc[order.reset_index(drop=True).argsort(kind="stable")]
        cut = max(1, round(len(labelled) * (1 - self.policy.watch.evaluation_share)))
        split = (labelled.iloc[:cut], labelled.iloc[cut:])
        self._labelled = (window.key, split)
        return split

    def _split_of(self, window: Window | None) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """The split the window step of ``window``'s cycle made (:meth:`_split`); None
        without labelled rows, or in a cycle resumed after a stop (``window`` None)."""
        held = self._labelled
        return held[1] if window is not None and held and held[0] == window.key else None

    def _store_labelled(self, body: dict[str, Any], window: Window | None) -> dict[str, Any]:
        """The window's record with its labelled rows stored as snapshots (the plan learns
        from ``train``, the evaluation uses ``holdout``); unchanged when they are stored
        already, or when they are not at hand (a cycle resumed after a stop)."""
        record = dict(body["window"])
        split = self._split_of(window)
        if record.get("train") or split is None:
            return record
        train, holdout = split
        time_column = self._time_column()
        if self.policy.watch.evaluate_on == "newer":  # the update learns from every row
            every = pd.concat([train, holdout], ignore_index=True)
            record["train"] = _store(
                self.ws, every, f"{self.system}-watch-labelled", time_column
            ).id
            stamps = _times(every, time_column)  # its candidate waits for rows newer than these
            record["labelled_until"] = None if stamps is None else stamps.max().isoformat()
            return record
        record["train"] = _store(self.ws, train, f"{self.system}-watch-labelled", time_column).id
        record["holdout"] = _store(self.ws, holdout, f"{self.system}-watch-holdout", time_column).id
        return record

    def _newer_than(self, after: str, window: Window) -> tuple[pd.DataFrame, str]:
        """The labelled rows of ``window`` newer than ``after`` (an ISO time), sorted, with
        a label, and what could not be counted (rows without a time, or no time column:
        renamed?), to say beside the count."""
        labelled = window.labelled
        if labelled is None:
            return pd.DataFrame(), ""
        column, target = self._time_column(), self._target()
        stamps = _times(labelled, column)  # UTC; a time that cannot be read is no newer
        if stamps is None or column is None:
            there = column is not None and column in labelled.columns
            return labelled.iloc[:0], (
                f"; none of the window's {len(labelled):,} labelled rows has a time that can be "
                f"read in {column!r}"
                if there
                else f"; the window's labelled rows have no time column {column!r} (renamed?)"
            )
        unread = int(stamps.isna().sum())
        cut = pd.Timestamp(after)
        cut = cut.tz_localize("UTC") if cut.tz is None else cut
        newer = labelled[(stamps > cut).to_numpy()]
        if target and target in newer.columns:
            newer = newer[newer[target].notna()]
        said = f"; {unread:,} labelled row(s) without a time are not counted" if unread else ""
        return newer.sort_values(column, kind="stable").reset_index(drop=True), said

    def _target(self) -> str | None:
        version = self.ws.catalog.get_system_version(f"{self.system}@{self.alias}")
        spec = version.spec if isinstance(version.spec, Mapping) else {}
        target = spec.get("target")
        return str(target) if target else None

    def _deferred(
        self, body: dict[str, Any], window: Window | None, history: Sequence[WatchCycleRecord]
    ) -> tuple[dict[str, Any] | None, str | None]:
        """With a candidate waiting for newer labels (``watch.evaluate_on: newer``): this
        cycle's outcome when enough have come (evaluate it on them), else why the watcher
        holds (None, the reason); (None, None) when none waits, or the wait was given up."""
        source = _newest_deferred(history[1:])
        if source is None:
            return None, None
        end = source.body["end"]
        candidate, after = str(end["candidate"]), str(end["after"])
        made_by = int(end.get("made_by") or source.number)  # an earlier look waits again
        rules = self.policy.watch
        need = int(end.get("rows") or rules.newer_rows)
        since = _usable([c for c in history if c.number > source.number])
        if since > 3 * max(rules.cooldown, 1):
            self._set_aside = (
                f"the candidate {candidate} of cycle {made_by} waited {since} cycles for "
                f"{need:,} labelled rows newer than its training rows, more than 3 x "
                "watch.cooldown: it is set aside, and a new attempt may start"
            )
            return None, None  # labels stopped coming
        waits = (
            f"the candidate {candidate} of cycle {made_by} waits for labelled rows newer "
            f"than its training rows (after {after[:19]})"
        )
        if window is None:
            return None, (
                f"{waits}; this cycle was resumed after a stop and its window's labelled rows "
                "are not at hand: the next cycle counts them"
            )
        missing = _lacks(body)
        if missing:  # a broken feed: its rows would judge the candidate on nulls
            gone = ", ".join(repr(m["column"]) for m in missing[:3])
            return (
                None,
                f"{waits}; this window lacks column(s) the model reads ({gone}): not "
                "evaluated on its rows",
            )
        newer, unread = self._newer_than(after, window)
        have = len(newer)
        if have < need or self.dry_run:
            return None, f"{waits}: {have:,} of {need:,} (watch.evaluate_on: newer){unread}"
        held = _store(self.ws, newer, f"{self.system}-watch-newer", self._time_column())
        decision = {
            "act": True,
            "because": [
                f"{have:,} labelled rows newer than the training rows of cycle "
                f"{made_by}'s candidate {candidate} came: it is evaluated on them"
            ],
            "not_acting": [],
            "streak": 0,
            "trigger": (source.body.get("decision") or {}).get("trigger"),
            "deferred": {
                "cycle": made_by,
                "plan": source.body["plan"]["id"],
                "run": source.body["run"]["id"],
                "candidate": candidate,
                "candidate_id": end["candidate_id"],
                "after": after,
                "look": int(end.get("look") or 1),
            },
        }
        return {
            "decision": decision,
            "window": {**body["window"], "holdout": held.id, "newer_rows": have},
        }, None

    def _trained_until(self, version: SystemVersionRecord) -> pd.Timestamp | None:
        """The newest time among the rows ``version`` trained on (UTC; None without times),
        read once per version."""
        if version.id not in self._trained:
            until = None
            if version.snapshot_id:
                snap = self.ws.catalog.get_snapshot(version.snapshot_id)
                column = snap.time_column
                if column:
                    stamps = _times(self.ws.frame(snap.id, columns=[column]), column)
                    until = None if stamps is None else stamps.max()
            self._trained[version.id] = until
        return self._trained[version.id]

    def _time_column(self) -> str | None:
        """The time column of the alias's version's training snapshot, if it has one."""
        version = self.ws.catalog.get_system_version(f"{self.system}@{self.alias}")
        if not version.snapshot_id:
            return None
        return self.ws.catalog.get_snapshot(version.snapshot_id).time_column

    def _monitor(self, body: dict[str, Any], window: Window | None) -> dict[str, Any]:
        ref = f"{self.system}@{self.alias}"
        result = self.ws.monitor(ref, body["window"]["snapshot"])
        summary = result.summary()
        findings = list(result.quality.findings) if result.quality else []
        missing = {f.column for f in findings if f.kind == "missing"}
        # A member's impact through a column the window lacks is the broken feed's (the
        # monitor reads the column as all null, and drawing it from the reference "helps"):
        # it is no drift, and must not grow a drift streak (the decision names the column).
        through = {i.component: set(i.features) for i in result.impacts}
        return {
            "version": result.version.ref,
            "monitor": {
                "report": result.record.id if result.record else None,
                # a column the window lacks (renamed upstream?) is a data problem, not drift
                "drifted": [c for c in summary["drifted"] if c not in missing],
                "missing": [
                    {"column": f.column, "readers": list(f.readers), "what": f.what or f.why}
                    for f in findings
                    if f.kind == "missing"
                ],
                "findings": [  # the window's other data problems: stray values, nulls...
                    {"column": f.column, "kind": f.kind, "rows": f.rows, "why": f.why}
                    for f in findings
                    if f.kind != "missing"
                ][:10],
                "candidates": [
                    c
                    for c in summary["candidates"]
                    if not (through.get(c) and through[c] <= missing)
                ],
                "multivariate_drifted": summary["multivariate_drifted"],
                "moved": {  # member -> the drifted columns it reads
                    i.component: [f for f in i.features if f not in missing]
                    for i in result.impacts
                    if i.component in result.member_names and set(i.features) - missing
                },
                "alerts": [_alert(a) for a in result.alerts][:20],
                # why no member's loss was measured, when it was not (too few usable rows)
                "impact_not_estimated": next(
                    (n for n in result.notes if n.startswith("impact is not estimated")), None
                ),
            },
        }

    def _forecast(self, body: dict[str, Any], window: Window | None) -> dict[str, Any]:
        sla = self.policy.watch.sla
        if not sla:
            return {"forecast": None}
        from regrow.forecast import MetricPoint, forecast, metric_bounds
        from regrow.forecast.points import estimated_value

        metric, rule = next(iter(sla.items()))
        report = self.ws.catalog.get_monitor_report(body["monitor"]["report"]).report
        found = estimated_value(report, metric)
        estimate = None
        if found is not None:
            value, low, high, n = found
            estimate = {
                "at": body["window"]["at"],
                "value": value,
                "lower": low,
                "upper": high,
                "rows": n,
            }
        realised = self._realised(body, metric, window)
        cycles = self._cycles(_SERIES)
        bodies = [c.body for c in cycles]
        # each value with the version it measured (a promotion starts the series again) and
        # its cycle's place, oldest first
        history = [{**(b.get("forecast") or {}), "version": b.get("version")} for b in bodies[::-1]]
        history.append({"estimate": estimate, "realised": realised, "version": body["version"]})
        known, repeats = _distinct(
            [
                {**p["realised"], "version": p["version"], "cycle": i}
                for i, p in enumerate(history)
                if p.get("realised")
            ]
        )
        guessed = [
            {**p["estimate"], "version": p["version"], "cycle": i}
            for i, p in enumerate(history)
            if p.get("estimate")
        ]
        by_time = self._time_column() is not None

        def place(entry: Mapping[str, Any]) -> Any:
            """Where a value sits in the series: at the data's time with a time column;
            without one, at its cycle's place (a value sits at its window's file or snapshot
            time, and files copied at once get times in another order than their names)."""
            return datetime.fromisoformat(entry["at"]) if by_time else entry["cycle"]

        newest = max((place(r) for r in known), default=None)
        # each version's estimates are shifted by the gap its own realised values showed: a
        # new version's scores owe nothing to the old one's (the old one's gap under a change
        # of concept put the new champion's estimates far below what its labels then said)
        biases = _biases(known, guessed)
        bias = biases.get(body["version"])
        placed = [(place(e), _point(e, "realised")) for e in known]
        for e in guessed:
            if newest is not None and place(e) <= newest:
                continue  # labels came for this time: the realised values speak for it
            shift = biases.get(e["version"]) or 0.0
            placed.append((place(e), _point(e, "estimated", shift=shift)))
        points: list[MetricPoint] = [p for _, p in sorted(placed, key=lambda pair: pair[0])]
        threshold, side = rule.threshold, rule.breach
        horizon = self.policy.watch.horizon
        fc = forecast(
            points,
            threshold=threshold,
            direction=side,
            horizon=horizon,
            bounds=metric_bounds(metric),
        )
        labelled = None
        mine = [  # the realised values of this version: a promotion starts a new series
            (b.get("forecast") or {}).get("realised")
            for b in reversed(bodies)
            if b.get("version") == body.get("version")
        ]
        own, _ = _distinct([r for r in [*mine, realised] if r])
        if newest is not None and len(own) >= 3:
            # The labels alone, looking past their delay: the estimates' shift is learned from
            # older pairs, so a change of concept that grows leaves them optimistic; the
            # realised trend, projected over the cycles the labels lag plus the horizon, is
            # the second view, and the watcher acts on the more pessimistic one.
            now = datetime.fromisoformat(body["window"]["at"])
            lag = (
                _lag_cycles(own, now, max(datetime.fromisoformat(r["at"]) for r in own))
                if by_time
                # no time column: the values sit at the windows' file or snapshot times,
                # which say nothing of the data's (files written at once a second apart read
                # as 60 cycles late): the cycles since labels last brought a new reading
                else _cycles_since_reading(
                    [
                        (c.body.get("forecast") or {}).get("realised")
                        for c in cycles
                        if c.state != "running"  # this cycle: `realised`
                    ],
                    realised,
                )
            )
            by_labels = forecast(
                # without a time column, in the cycles' order (``own`` is)
                [_point(e, "realised") for e in (sorted(own, key=place) if by_time else own)],
                threshold=threshold,
                direction=side,
                horizon=horizon + lag,
                bounds=metric_bounds(metric),
            )
            if by_labels.probability is not None:
                labelled = {
                    "probability": by_labels.probability,
                    "expected": by_labels.expected,
                    "lag_cycles": lag,
                    "points": by_labels.n_points,
                }
        last = points[-1] if points else None
        current, source = fc.last, None if last is None else last.source
        if current is None:  # too few points to filter: the newest value as it is
            latest = realised or estimate
            current = None if latest is None else float(latest["value"])
            source = "realised" if realised else "estimated" if estimate else None
        return {
            "forecast": {
                "metric": metric,
                "threshold": threshold,
                "direction": "min" if side == "below" else "max",
                "estimate": estimate,
                "realised": realised,
                "estimate_bias": bias,
                "current": None if current is None else round(current, 6),
                "current_source": source,
                "probability": fc.probability,
                "expected": fc.expected,
                "horizon": horizon,
                "by_labels": labelled,
                "points": fc.n_points,
                "method": fc.method,
                "notes": list(fc.notes)
                + (
                    [
                        f"{repeats} realised reading(s) repeated an earlier one (the same "
                        "held-out rows, no new labels since): each counted once"
                    ]
                    if repeats
                    else []
                )
                + (
                    [_RESUMED_WITHOUT_LABELS]
                    if realised is None and self._labels_lost(body, window)
                    else []
                ),
            }
        }

    def _scorer(self, version: SystemVersionRecord) -> tuple[FittedSystem, OutputCache]:
        """The fitted ``version`` and the outputs of its members on rows scored before, kept
        from cycle to cycle: a sliding window's labelled rows come back each cycle, and were
        predicted again each time (most of the realised metric's CPU). A new version, or a
        cache past :data:`_HELD_ROWS` rows, starts afresh."""
        from regrow.cache import OutputCache

        held = self._scoring
        if held is None or held[0] != version.id or held[2].held > _HELD_ROWS:
            held = (version.id, self.ws.load(version.ref), OutputCache())
            self._scoring = held
        return held[1], held[2]

    def _cycles(self, limit: int) -> list[WatchCycleRecord]:
        """The newest ``limit`` cycles of the system, newest first, of this watcher's kind: a
        dry run's cycles are counted apart from real ones (streaks, the forecast's series)."""
        found = self.ws.catalog.watches.cycles(self.system, limit=limit)
        return [c for c in found if c.dry_run == self.dry_run]

    def _realised(
        self, body: dict[str, Any], metric: str, window: Window | None
    ) -> dict[str, Any] | None:
        """The metric of the alias's version on the newest labelled rows (the held-out part),
        with a bootstrap 95% band, placed at their newest time."""
        from regrow.evaluate.metrics import METRICS

        if metric not in METRICS:
            return None
        holdout = body["window"].get("holdout")
        split = self._split_of(window)
        if holdout:
            frame = self.ws.frame(holdout)
        elif split is not None:  # read as a stored snapshot would be (one conversion)
            from regrow.data.frames import to_arrow, to_pandas

            try:
                frame = to_pandas(to_arrow(split[1]))
            except DataError:
                return None
        else:  # no labelled rows, or a cycle resumed after a stop: its rows are not at hand
            return None
        version = self.ws.catalog.get_system_version(body["version"])
        target = version.spec.get("target")
        if not isinstance(target, str) or target not in frame.columns or len(frame) < 20:
            return None
        at = body["window"]["at"]
        snap = self.ws.catalog.get_snapshot(version.snapshot_id) if version.snapshot_id else None
        stamps = _times(frame, snap.time_column if snap is not None else None)
        until = self._trained_until(version) if self.policy.watch.evaluate_on == "newer" else None
        if stamps is not None and until is not None:
            # a version that learnt from every labelled row of an earlier window: the newest
            # rows now may be some of those, and its metric there would be in-sample
            keep = (stamps > until).to_numpy()
            frame, stamps = frame[keep], stamps[keep]
            if len(frame) < 20:
                return None
        if stamps is not None:
            at = stamps.max().isoformat()
        fitted, outputs = self._scorer(version)
        set_aside = 0
        try:
            value, low, high = _measured(fitted, outputs, frame, target, metric)
        except (ValueError, KeyError, RegrowError):  # rows the version cannot score
            # measured on the rows it can score, as the monitor and the plan do: a null a
            # member cannot take in a few rows left the SLA without a realised value at all
            usable = self._scorable(version, fitted, frame)
            if usable is None or len(usable) < 20:
                return None
            try:
                value, low, high = _measured(fitted, outputs, usable, target, metric)
            except (ValueError, KeyError, RegrowError):
                return None
            set_aside, frame = len(frame) - len(usable), usable
        found = {"at": at, "value": value, "lower": low, "upper": high, "rows": len(frame)}
        return {**found, "set_aside": set_aside} if set_aside else found

    def _labels_lost(self, body: Mapping[str, Any], window: Window | None) -> bool:
        """Whether this cycle, resumed after a stop, lost its window's labelled rows: they
        were held in memory, and stored only for an update."""
        seen = body.get("window") or {}
        return window is None and not seen.get("holdout") and bool(seen.get("labelled_rows"))

    def _scorable(
        self, version: SystemVersionRecord, fitted: FittedSystem, frame: pd.DataFrame
    ) -> pd.DataFrame | None:
        """The rows of ``frame`` that ``version`` can score, read as it reads them (the
        monitor's data-quality check); None when the check itself fails."""
        from regrow.monitoring import window_quality

        try:
            check = window_quality(self.ws._services(), version, frame, fitted)
        except (ValueError, KeyError, RegrowError):
            return None
        return check.usable.reset_index(drop=True)

    def _decide(self, body: dict[str, Any], window: Window | None) -> dict[str, Any]:
        rules = self.policy.watch
        act: list[str] = []
        hold: list[str] = []
        fc = body.get("forecast")
        if fc and fc.get("current") is not None:
            crossed = (
                (fc["current"] < fc["threshold"])
                if fc["direction"] == "min"
                else (fc["current"] > fc["threshold"])
            )
            if crossed:
                fixed = fc.get("estimate_bias")
                how = f"{fc['current_source']}" + (
                    f"; estimates shifted by the realised gap {fixed:+.3f}" if fixed else ""
                )
                level = f"{fc['metric']} is {fc['current']:.4g} ({how})"
                act.append(f"{level}, past the SLA {fc['threshold']:g}")
            elif fc.get("probability") is not None and fc["probability"] >= rules.act_probability:
                act.append(
                    f"forecast: P({fc['metric']} crosses {fc['threshold']:g} within "
                    f"{fc['horizon']} cycles) = {fc['probability']:.2f} >= "
                    f"{rules.act_probability:g}"
                )
            elif (lab := fc.get("by_labels")) and lab["probability"] >= rules.act_probability:
                act.append(
                    f"forecast from the labels alone ({_count(lab['lag_cycles'], 'cycle')} late): "
                    f"P({fc['metric']} crosses {fc['threshold']:g} within "
                    f"{fc['horizon']} cycles) = {lab['probability']:.2f} >= "
                    f"{rules.act_probability:g}"
                )
            elif fc.get("probability") is not None:
                hold.append(
                    f"forecast: P(crossing {fc['threshold']:g} within {fc['horizon']} "
                    f"cycles) = {fc['probability']:.2f} < {rules.act_probability:g}"
                    + (f" (from the labels alone {lab['probability']:.2f})" if lab else "")
                )
        trigger = "sla" if act else None
        # the newest cycles, this one included: one read serves every look back below
        history = self._cycles(200)
        self._set_aside = None
        evaluate, awaited = self._deferred(body, window, history)
        if evaluate is not None:
            return evaluate
        streak = _runs(history, _loss_raised(body), _loss_raised).get("loss", 0)
        candidates, slipped = body["monitor"]["candidates"], _slipped(body)
        if candidates or slipped:
            said = [f"drift raised the loss of {', '.join(candidates)}"] if candidates else []
            if slipped:
                first, others = slipped[0], len(slipped) - 1
                said.append(
                    f"the measured {first['signal'].removeprefix('realised ')} "
                    f"{first['value']:.4g} is {first['direction']} its alert threshold "
                    f"{first['threshold']:.4g}"
                    + (f" ({others} other metric(s) past theirs)" if others else "")
                )
            seen = "; ".join(said)
            if streak >= rules.persistence and not fc:
                # the streak counts cycles in which it raised a member's loss, any member's
                act.append(
                    f"{seen}; {streak} cycles in a row with a loss raised"
                    if streak > 1
                    else f"{seen} in 1 cycle"
                )
                trigger = "loss"
            elif not fc:
                hold.append(f"{seen}: {_so_far(streak, rules.persistence)}")
            elif slipped and not candidates:
                hold.append(f"{seen}: the SLA (watch.sla) decides when to act")
        moved = body["monitor"].get("moved") or {}
        lasting: list[str] = []
        if fc and rules.drift_trigger and moved and not act:
            runs = _runs(history, _moved(body), _moved)
            lasting = [m for m, n in runs.items() if n >= rules.persistence]
            if lasting:
                seen = "; ".join(
                    f"{m} reads {', '.join(moved[m])} ({_count(runs[m], 'cycle')} in a row)"
                    for m in lasting
                )
                act.append(
                    f"the inputs of {', '.join(lasting)} drifted in "
                    + (
                        f"{rules.persistence} or more cycles in a row"
                        if rules.persistence > 1
                        else "this cycle"
                    )
                    + f" ({seen}): refreshing before the SLA is threatened"
                )
                trigger = "inputs"
            else:
                seen = "; ".join(
                    f"{m} reads {', '.join(cols)} ({_so_far(runs[m], rules.persistence)})"
                    for m, cols in moved.items()
                )
                hold.append(f"inputs of members drifted: {seen}")
        wanted = list(act)  # what called for an update, before what holds it back
        missing = _lacks(body)
        if act and missing:
            gone = "; ".join(f"{m['column']!r}: {m['what']}" for m in missing[:3])
            hold.append(
                f"the window lacks column(s) the model reads ({gone}): an update would learn "
                "from a broken feed; fix the feed, or bridge a renamed column with "
                f"`regrow adapters propose {str(body['window'].get('snapshot'))[:12]} "
                f"--system {self.system}`"
            )
            act = []
        adopt: dict[str, Any] | None = None
        pending = self._pending_plan(history)
        if act and pending is not None:
            number, record = pending
            holder = self.ws.catalog.get_alias(self.system, self.alias).version_id
            if record.status == "proposed" and record.version_id != holder:
                base = self.ws.catalog.get_system_version(record.version_id).ref
                act.append(
                    f"plan {record.id[:12]} (cycle {number}), which waited for approval, was "
                    f"made for {base}, which no longer holds {self.system}@{self.alias}: it is "
                    "set aside, and the holder is planned for"
                )
            elif record.status == "proposed":
                hold.append(
                    f"plan {record.id[:12]} (cycle {number}) waits for approval: "
                    f"`regrow run {record.id[:12]} --approve`"
                )
                act = []
            elif record.status == "executed" and record.result_version_id:
                made = self.ws.catalog.get_system_version(record.result_version_id)
                adopt = {
                    "plan": record.id,
                    "cycle": number,
                    "candidate": made.ref,
                    "candidate_id": made.id,
                    "run": record.run_id,
                }
        if awaited:  # its candidate answers any threat: another would wait alike
            hold.append(awaited)
            act = []
        elif self._set_aside:
            hold.append(self._set_aside)
        waiting = self._awaiting_promotion(history) if act and adopt is None else None
        if waiting is not None:  # a blessed candidate is there: another would wait alike
            number, candidate = waiting
            hold.append(
                f"the candidate {candidate} of cycle {number} was blessed and waits for "
                f"approval to be promoted: `regrow approve {candidate} --alias {self.alias}`"
            )
            act = []
        last = _last_attempt(history)
        escalate: str | None = None
        wait, fruitless, fruitless_attempts = rules.cooldown, 0, []
        answered: dict[str, Any] | None = None  # the attempt whose rows the inputs match
        if act and trigger == "inputs":
            # drift-led attempts that changed nothing back off: the labels may not show the
            # change yet, and each attempt costs a plan
            fruitless_attempts = _fruitless_drift_attempts(history, lasting)
            fruitless = len(fruitless_attempts)
            wait = rules.cooldown * 2 ** min(fruitless, 3)
        if act and adopt is None and last is not None and last[0] <= wait:
            backoff = (
                f", doubled {min(fruitless, 3)} time(s): the last {fruitless} drift-led "
                "attempt(s) on this drift changed nothing"
                if wait > rules.cooldown
                else ""
            )
            hold.append(
                f"cooling down: the last update attempt (cycle {last[1].number}) was {last[0]} "
                f"cycle(s) ago (cooldown {wait}{backoff})"
            )
            act = []
        elif (
            act
            and adopt is None
            and fruitless_attempts
            and (same := self._learnt_from(fruitless_attempts[0], body, history))
        ):
            hold.append(same["why"])
            answered = {k: v for k, v in same.items() if k != "why"}
            act = []
        elif (
            act
            and trigger != "inputs"
            and last is not None
            and _usable(history[: last[0]]) < 3 * max(rules.cooldown, 1)
        ):
            before = last[1].body
            promoted = (
                (before.get("promotion") or {}).get("promoted")
                or before.get("rollout")
                or self._promoted_since(before)
            )
            tried = before.get("plan") or {}
            partial = not tried.get("escalated") and not any(
                a.startswith("full-retrain") for a in tried.get("actions") or ()
            )
            if not tried.get("actions"):  # the planner found no partial update to make
                escalate = (
                    f"the plan of cycle {last[1].number} found no partial update while "
                    "the threat stays; a full retrain instead"
                )
            elif not promoted and partial:
                escalate = (
                    f"the partial update of cycle {last[1].number} "
                    f"({', '.join(tried['actions'])}) did not win: "
                    f"{_outcome(last[1], history)}; a full retrain instead"
                )
        plan_costs: list[float] = []
        remeasure = False
        if act and adopt is None and escalate is None:
            skipped = _plan_costs_more(self.policy, history)
            if skipped is not None:
                escalate, plan_costs = skipped
            else:  # the plan made to measure again stands in for a full retrain
                remeasure = (
                    _may_skip_plans(self.policy)
                    and _skipped_in_a_row(_attempts(history)) >= _REMEASURE_PLAN_AFTER
                )
        active = self.ws.catalog.rollouts.active(self.system, self.alias)
        if act and active is not None:
            hold.append(f"rollout {active.id[:12]} of {self.system}@{self.alias} is under way")
            act = []
        labelled = int(body["window"].get("labelled_rows") or 0)
        if act and labelled < rules.min_labelled_rows:
            hold.append(
                f"{labelled} labelled rows, fewer than {rules.min_labelled_rows}: "
                "waiting for labels"
            )
            act = []
        if not act and missing and not any("lacks column(s)" in h for h in hold):
            # first, whatever else holds: a broken feed is what to fix (an SLA forecast
            # alone was the cycle's outcome, and the renamed column went unsaid)
            hold.insert(
                0,
                "the window lacks column(s) the model reads: "
                + ", ".join(repr(m["column"]) for m in missing)
                + " (renamed upstream? fix the feed, or bridge it with "
                f"`regrow adapters propose {str(body['window'].get('snapshot'))[:12]} "
                f"--system {self.system}`)",
            )
        if not act and fc and _RESUMED_WITHOUT_LABELS in (fc.get("notes") or ()):
            hold.insert(0, _RESUMED_WITHOUT_LABELS)  # the forecast's reason is not the whole
        if not act and not hold:
            drifted = body["monitor"]["drifted"]
            unmeasured = body["monitor"].get("impact_not_estimated")
            rows = int(body["window"].get("rows") or 0)
            hold.append(
                f"nothing drifted that {rows} row(s) can show: too few to rule drift out (the "
                f"monitor's tests need about {_FEW_ROWS})"
                if not drifted and rows < _FEW_ROWS
                else "nothing drifted"
                if not drifted
                else f"{', '.join(drifted[:5])} drifted; {unmeasured}"
                if unmeasured
                else f"{', '.join(drifted[:5])} drifted, but no member's loss rose with it"
            )
        decision = {
            "act": bool(act),
            "because": act,
            "not_acting": hold,
            "streak": streak,
            "trigger": trigger if act else None,
        }
        if wanted and not act:  # a threat a cooldown (say) held back: said, not dropped
            decision["held_back"] = wanted
        if answered:  # the inputs as a fruitless attempt's rows (cycle, rows, columns)
            decision["inputs_as_before"] = answered
        if act and adopt:
            decision["adopt"] = adopt
            act.append(
                f"plan {adopt['plan'][:12]} of cycle {adopt['cycle']} was approved and "
                f"run since: its candidate {adopt['candidate']} is evaluated now"
            )
        elif act and escalate:
            decision["escalate"] = escalate
            if plan_costs:  # the plans' measured CPU, carried to the cycles after
                decision["plan_cpu_seconds"] = plan_costs
        elif act and remeasure:
            decision["remeasure"] = True
        if not act:
            return {"decision": decision, "end": {"state": "done", "why": "; ".join(hold)}}
        stored = self._store_labelled(body, window)
        if not stored.get("train"):
            why = (
                "this cycle was resumed after a stop and its labelled rows were not stored: "
                "the next cycle takes the labels again"
                if window is None
                else "the window has no labelled rows to learn from"
            )
            decision.update(act=False, not_acting=[*hold, why])
            return {"decision": decision, "end": {"state": "done", "why": why}}
        if self.policy.watch.evaluate_on == "newer" and not stored.get("labelled_until"):
            why = (
                "the window's labelled rows have no times that can be read: no later row could "
                "be told newer than them to evaluate a candidate on (watch.evaluate_on: newer)"
            )
            decision.update(act=False, not_acting=[*hold, why])
            return {"decision": decision, "end": {"state": "done", "why": why}}
        return {"decision": decision, "window": stored}

    def _learnt_from(
        self,
        attempt: WatchCycleRecord,
        body: Mapping[str, Any],
        history: Sequence[WatchCycleRecord],
    ) -> dict[str, Any] | None:
        """Why the drift-led ``attempt``, which changed nothing, answers the drift of this
        cycle's window (``why``, with its ``cycle``, ``rows`` and ``columns``): the columns
        the window drifted in do not differ from the labelled rows that attempt learnt from
        (the monitor's tests, each column's values in those rows as the reference). Another
        update would learn from inputs alike and come to the same. None when they differ, or
        when that cannot be told (the rows are gone, no value to compare).

        The monitor compares a window with the version's training rows. After a ramp that
        ended, a champion trained on rows from before and during it keeps seeing the inputs
        drift, cycle after cycle, though a model made from the new inputs alone was judged no
        better: only inputs that move on from those rows are news to an update. The values
        are compared as the monitor reads them: a stray string among numbers is read as
        empty, and a column's empty cells are left out (a share of nulls is the feed's, and
        no new inputs to learn from; the data-quality findings say it)."""
        from regrow.monitor.drift_monitor import DriftMonitor as Monitor
        from regrow.monitor.profile import Profile

        train = (attempt.body.get("window") or {}).get("train")
        moved = (body.get("monitor") or {}).get("moved") or {}
        members = sorted(m for m in _moved(attempt.body) if m in moved)
        columns = tuple(sorted({c for m in members for c in moved[m]}))
        if not train or not columns:
            return None
        key = (str(train), columns)
        compared: list[str] = []
        try:
            if self._learnt is None or self._learnt[0] != key:
                rows = self.ws.frame(train, columns=list(columns))
                rows = _with_numbers(rows, _strays(rows))
                # one test per column, the false discoveries of the family bounded as the
                # monitor's are (Bonferroni over its columns)
                fdr = 0.05 / len(columns)
                monitors = {
                    c: Monitor(Profile.of(rows[[c]].dropna()), seed=0, fdr=fdr)
                    for c in columns
                    if rows[c].notna().any()
                }
                self._learnt = (key, monitors, len(rows))
            now = self.ws.frame(body["window"]["snapshot"], columns=list(columns))
            now = _with_numbers(now, _strays(now))
            for column, monitor in self._learnt[1].items():
                values = now[[column]].dropna()
                if values.empty:  # no value to compare: the other columns tell
                    continue
                if monitor.check(values).drifted_columns:
                    return None
                compared.append(column)
        except (RegrowError, KeyError, ValueError):  # stored rows gone, a column missing
            return None
        if not compared:
            return None
        learnt = self._learnt[2]
        made = "learnt from" if (attempt.body.get("run") or {}).get("candidate") else "planned on"
        return {
            "why": (
                f"the inputs of {', '.join(members)} ({', '.join(compared)}) do not differ from "
                f"the {learnt:,} labelled rows cycle {attempt.number}'s attempt {made}, and "
                f"that attempt changed nothing ({_outcome(attempt, history)}): another would "
                "learn from inputs alike; a drift-led update waits until they move on (the SLA "
                "forecast still acts)"
            ),
            "cycle": attempt.number,
            "rows": learnt,
            "columns": compared,
        }

    def _plan(self, body: dict[str, Any], window: Window | None) -> dict[str, Any]:
        ref = body.get("version") or f"{self.system}@{self.alias}"
        deferred = body["decision"].get("deferred")
        if deferred:  # planned and run by an earlier cycle: evaluated now
            return self._earlier_plan(deferred["plan"], deferred_from_cycle=deferred["cycle"])
        adopted = body["decision"].get("adopt")
        if adopted:
            return self._earlier_plan(
                adopted["plan"], adopted_from_cycle=adopted["cycle"], needs_approval=True
            )
        why = [f"watch: {line}" for line in body["decision"]["because"]]
        policy = self.policy
        if body["decision"].get("trigger") == "sla":
            policy, lowered = _under_threat(policy, policy.watch.threat_gain)
            why += [f"watch: {lowered}"] if lowered else []
        escalate = body["decision"].get("escalate")
        if escalate:
            plan = self._full_retrain(ref, body, policy, why, escalate)
        else:
            plan = self.ws.plan(
                ref, body["window"]["train"], policy=policy, tags=("watch",), why=why
            )
        measured = None
        if plan.empty and body["decision"].get("remeasure"):
            # made only to measure what a plan costs now: the watcher stood by full retrains,
            # and one runs as the earlier attempts did, for the gates to judge
            measured = plan
            instead = (
                f"the plan {plan.id[:12]}, made to measure what a plan costs now after "
                f"{_REMEASURE_PLAN_AFTER} attempts that retrained in full without one, found "
                "nothing to update; a full retrain, as those attempts made, instead"
            )
            plan = self._full_retrain(ref, body, policy, why, instead)
        out: dict[str, Any] = {
            "plan": {
                "id": plan.id,
                "actions": [a.describe() for a in plan.actions],
                "escalated": plan.escalated,
                "needs_approval": plan.needs_approval,
                "estimated_cpu_seconds": plan.cost.get("estimated_cpu_seconds"),
                "rationale": list(plan.rationale),
            }
        }
        if measured is not None:
            out["plan"]["measured"] = {"id": measured.id, "actions": []}
        if plan.empty:
            out["end"] = {"state": "done", "why": "the plan found nothing to update"}
        elif self.dry_run:
            out["end"] = {"state": "done", "why": "dry run: the plan is recorded, not run"}
        return out

    def _earlier_plan(self, plan_id: str, **marks: Any) -> dict[str, Any]:
        """The cycle's record of plan ``plan_id``, which an earlier cycle made (``marks``
        say which, and how it came back)."""
        stored = self.ws.catalog.get_plan(plan_id)
        actions = [a.get("kind", "?") for a in stored.body.get("actions", [])]
        escalated = bool(stored.body.get("escalated"))
        return {"plan": {"id": stored.id, **marks, "actions": actions, "escalated": escalated}}

    def _full_retrain(
        self, ref: str, body: Mapping[str, Any], policy: Policy, why: list[str], because: str
    ) -> Any:
        """The watcher's plan of a full retrain of ``ref`` on the window's labelled rows,
        ``because`` (a decision of the watcher's, recorded as its planned updates are)."""
        from regrow.plan.actions import FullRetrain
        from regrow.plan_runs import manual_plan

        return manual_plan(
            self.ws._services(),
            ref,
            body["window"]["train"],
            [FullRetrain("*", reason=f"watch: {because}")],
            policy=policy,
            note=[*why, f"watch: {because}"],
            tags=("watch",),
            kind="plan",
        )

    def _run(self, body: dict[str, Any], window: Window | None) -> dict[str, Any]:
        from regrow.errors import PlanError

        deferred = body["decision"].get("deferred")
        if deferred:  # run by an earlier cycle
            return {
                "run": {
                    "id": deferred["run"],
                    "candidate": deferred["candidate"],
                    "candidate_id": deferred["candidate_id"],
                    "deferred_from_cycle": deferred["cycle"],
                    "look": deferred["look"],
                }
            }
        adopted = body["decision"].get("adopt")
        if adopted:  # a person approved and ran it: nothing to run again
            return {
                "run": {
                    "id": adopted["run"],
                    "candidate": adopted["candidate"],
                    "candidate_id": adopted["candidate_id"],
                    "by_hand": True,
                }
            }
        plan_id = body["plan"]["id"]
        try:
            ran = self.ws.run_plan(plan_id)
        except PlanError as refused:
            return {
                "end": {
                    "state": "waiting",
                    "why": refused.message,
                    "hint": refused.hint,
                    "waiting_for": "plan approval",
                    "plan": plan_id,
                }
            }
        made = ran.result.created_version
        candidate = ran.result.version
        return {
            "run": {
                "id": ran.result.run.id,
                "candidate": candidate.ref if made else None,
                "candidate_id": candidate.id if made else None,
                "estimated_cpu_seconds": round(ran.estimated_cpu_seconds, 3),
                "actual_cpu_seconds": round(ran.actual_cpu_seconds, 3),
            }
        }

    def _evaluate(self, body: dict[str, Any], window: Window | None) -> dict[str, Any]:
        run = body["run"]
        if not run.get("candidate"):
            return {"end": {"state": "done", "why": "the run made no new version"}}
        if self.policy.watch.evaluate_on == "newer" and not run.get("deferred_from_cycle"):
            return {"end": self._wait_for_newer(run, body)}
        record, comparison = self.ws.evaluate(
            run["candidate"], body["window"]["holdout"], baseline=body["version"]
        )
        out: dict[str, Any] = {
            "evaluation": {
                "id": record.id,
                "verdict": record.verdict,
                "metric": record.metric,
                "reasons": list(record.reasons),
            }
        }
        if record.verdict != "blessed":
            why = "; ".join(record.reasons) or record.verdict
            again = self._look_again(body, comparison.gates, why)
            deferred = body["decision"].get("deferred")
            if deferred and again is None:  # judged on newer labels: at which look, on how many
                why += (
                    f" (on {int(body['window']['newer_rows']):,} newer rows, look "
                    f"{deferred['look']} of {self.policy.watch.newer_looks})"
                )
            out["end"] = again or {"state": "done", "why": f"the candidate was not blessed: {why}"}
        return out

    def _look_again(
        self, body: Mapping[str, Any], gates: Sequence[Any], why: str
    ) -> dict[str, Any] | None:
        """The end of a cycle whose evaluation on newer labels could not yet tell the
        candidate from the holder: only the improvement gate failed, with an interval that
        reaches above its bar. It waits for twice the rows, up to ``watch.newer_looks``
        looks; None otherwise (the candidate is not blessed)."""
        deferred = body["decision"].get("deferred")
        if not deferred or deferred["look"] >= self.policy.watch.newer_looks:
            return None
        failed = [g for g in gates if g.status == "fail"]
        if len(failed) != 1 or failed[0].name != "improvement":
            return None
        gate = failed[0]
        if gate.interval is None or gate.threshold is None or gate.interval[1] <= gate.threshold:
            return None  # clearly no better: more rows would not bless it
        rows = int(body["window"]["newer_rows"])
        need = self.policy.watch.newer_rows * 2 ** deferred["look"]
        return {
            "state": "done",
            "why": f"the gates cannot tell the candidate {deferred['candidate']} from the "
            f"holder on {rows:,} newer rows yet ({why}): it waits for {need:,} (look "
            f"{deferred['look']} of {self.policy.watch.newer_looks}, watch.newer_looks)",
            "waiting_for": "newer labels",
            "candidate": deferred["candidate"],
            "candidate_id": deferred["candidate_id"],
            "after": deferred["after"],
            "made_by": deferred["cycle"],
            "rows": need,
            "look": deferred["look"] + 1,
        }

    def _wait_for_newer(self, run: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
        """The end of a cycle whose candidate learnt from every labelled row: it waits for
        newer ones (``watch.evaluate_on: newer``)."""
        after = body["window"].get("labelled_until")
        if not after:
            raise ConfigError(
                f"the labelled rows {run['candidate']} learnt from have no times that can be "
                "read: no labelled row can be told newer",
                hint="set watch.evaluate_on: holdout, or give the window's rows their times",
            )
        after = str(after)
        need = self.policy.watch.newer_rows
        return {
            "state": "done",
            "why": f"the candidate {run['candidate']} learnt from every labelled row; it is "
            f"evaluated once {need:,} labelled rows newer than them (after {after[:19]}) have "
            "come (watch.evaluate_on: newer)",
            "waiting_for": "newer labels",
            "candidate": run["candidate"],
            "candidate_id": run["candidate_id"],
            "after": after,
        }

    def _rollout(self, body: dict[str, Any], window: Window | None) -> dict[str, Any]:
        candidate = body["run"]["candidate"]
        if self.ws.catalog.predictions.span(self.system) is not None:
            from regrow.rollout import machine

            started = machine.start(
                self.ws,
                candidate,
                alias=self.alias,
                reason=f"watch cycle: {'; '.join(body['decision']['because'])}",
            )
            return {
                "rollout": {"id": started.id, "mode": started.mode, "state": started.state},
                "end": {"state": "done", "why": f"rollout {started.id[:12]} started"},
            }
        return self._promote(candidate)

    def _promote(self, candidate: str) -> dict[str, Any]:
        try:
            moved = self.ws.promote(candidate, self.alias, reason="regrow watch")
        except PromotionRefused as refused:
            return {
                "promotion": {"candidate": candidate, "promoted": False},
                "end": {
                    "state": "waiting",
                    "why": refused.message,
                    # the watcher promotes once the approvals come (it has no --force)
                    "hint": f"approve it (`regrow approve {candidate} --alias {self.alias}`): "
                    "the next cycle promotes it; or (an admin) `regrow promote "
                    f"{candidate} --alias {self.alias} --force --reason ...`",
                    "waiting_for": "promotion",
                    "candidate": candidate,
                },
            }
        return {
            "promotion": {
                "candidate": candidate,
                "promoted": True,
                "alias": f"{self.system}@{moved.name}",
            },
            "end": {"state": "done", "why": f"promoted {candidate} to {self.alias}"},
        }

    # -- between cycles --------------------------------------------------------------------

    def _follow_up(self) -> None:
        """Move what earlier cycles left waiting: step a rollout under way; promote a blessed
        candidate whose approvals came since (recorded on that cycle's events)."""
        if self.dry_run:
            return
        active = self.ws.catalog.rollouts.active(self.system, self.alias)
        if active is not None:
            from regrow.rollout import machine

            step = machine.step(self.ws, active)
            self._emit(
                {
                    "event": "rollout",
                    "rollout": active.id,
                    "action": step.action,
                    "state": step.rollout.state,
                    "why": f"rollout {active.id[:12]} of {self.system}@{self.alias}: "
                    f"{step.action}, now {step.rollout.state}",
                }
            )
        for cycle in self.ws.catalog.watches.cycles(self.system, limit=5):
            end = cycle.body.get("end") or {}
            if cycle.state != "waiting" or end.get("waiting_for") != "promotion":
                continue
            candidate = str(end["candidate"])
            if self.ws.promotion_lacks(candidate, self.alias):
                continue
            with contextlib.suppress(PromotionRefused):
                self.ws.promote(
                    candidate,
                    self.alias,
                    reason=f"regrow watch: cycle {cycle.number}'s candidate, approved since",
                )
                self._emit(
                    {
                        **_event(cycle),  # the fields of every notification (docs/loop.md)
                        "event": "acted",
                        "state": "promoted",
                        "promoted": candidate,
                        "why": f"cycle {cycle.number}'s candidate {candidate}, approved since, "
                        f"now holds {self.system}@{self.alias}",
                        "hint": None,
                    }
                )
            break

    def _promoted_since(self, body: Mapping[str, Any]) -> bool:
        """Whether the candidate a cycle made reached the alias after the cycle ended (its
        approvals came later, or a person promoted it): its record, finished, still says
        not promoted."""
        candidate = (body.get("run") or {}).get("candidate_id")
        if not candidate:
            return False
        moves = self.ws.catalog.alias_history(self.system, self.alias)
        return any(m.to_version_id == candidate for m in moves)

    def _awaiting_promotion(self, history: Sequence[WatchCycleRecord]) -> tuple[int, str] | None:
        """The blessed candidate the newest cycle that waited for its promotion left (the
        cycle's number and the candidate), while it has not reached the alias and no update
        ran since."""
        cycle = _newest_wait(history, "promotion")
        if cycle is None or self._promoted_since(cycle.body):
            return None
        return cycle.number, str(cycle.body["end"]["candidate"])

    def _pending_plan(self, history: Sequence[WatchCycleRecord]) -> tuple[int, Any] | None:
        """The plan the newest cycle that waited for a plan approval left (its number and the
        plan's record), while no update ran since (one that ran it, adopted, among them)."""
        cycle = _newest_wait(history, "plan approval")
        if cycle is None:
            return None
        return cycle.number, self.ws.catalog.get_plan(str(cycle.body["end"]["plan"]))

    def _emit(self, event: dict[str, Any]) -> None:
        event = {"system": self.system, "alias": self.alias, **event}
        if self.on_event is not None:
            self.on_event(event)
        kind = str(event.get("event"))
        if self.notify and kind in self.notify_on:
            error = send(self.notify, event)
            if error and self.on_event is not None:
                self.on_event({"event": "notify_failed", "error": error})


_RESUMED_WITHOUT_LABELS = (
    "this cycle was resumed after a stop and its window's labelled rows were not stored: its "
    "forecast has no realised value from them, only estimates (the next cycle takes the "
    "labels again)"
)


def _so_far(streak: int, persistence: int) -> str:
    """How long a drift has lasted, and how long it must to be acted on.

    >>> _so_far(1, 3)
    '1 cycle in a row so far; acting takes 3, per watch.persistence'
    """
    so_far = _count(streak, "cycle")
    return f"{so_far} in a row so far; acting takes {persistence}, per watch.persistence"


#: Realised values the estimates are checked against (the newest ones).
_BIAS_PAIRS = 7


def _runs(
    history: Sequence[WatchCycleRecord],
    now: Iterable[str],
    seen: Callable[[Mapping[str, Any]], Iterable[str]],
) -> dict[str, int]:
    """For each key of ``now`` (what this cycle found): the cycles in a row, this one included,
    whose body ``seen`` finds it in too, over the 50 newest of ``history`` (newest first; a
    running cycle is skipped, and so is one that looked at no usable window: an empty,
    unreadable or broken file is no news on whether the drift lasts, and it started the
    count again)."""
    runs = dict.fromkeys(now, 1)
    going = set(runs)
    for cycle in history[:50]:
        if not going:
            break
        if cycle.state == "running" or not _usable([cycle]):
            continue
        going &= set(seen(cycle.body))
        for key in going:
            runs[key] += 1
    return runs


def _loss_raised(body: Mapping[str, Any]) -> list[str]:
    """``["loss"]`` when the cycle's monitor found a member's loss raised by the drift, or
    the model's measured performance past its alert threshold (:func:`_slipped`)."""
    return ["loss"] if (body.get("monitor") or {}).get("candidates") or _slipped(body) else []


def _slipped(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The cycle's alerts on the model's performance measured from labels over the whole
    window (``realised roc_auc`` below the policy's or the reference's threshold): a slip
    the labels show counts as a raised loss, whatever drifted or did not."""
    alerts = (body.get("monitor") or {}).get("alerts") or ()
    return [a for a in alerts if a.get("signal", "").startswith("realised ") and not a.get("chunk")]


def _moved(body: Mapping[str, Any]) -> Iterable[str]:
    """The members whose inputs the cycle's window moved."""
    return (body.get("monitor") or {}).get("moved") or {}


def _last_attempt(history: Sequence[WatchCycleRecord]) -> tuple[int, WatchCycleRecord] | None:
    """The newest earlier real cycle of ``history`` (newest first, this one included) that
    planned an update (run or not, empty or not), and how many cycles ago it was."""
    for n, cycle in enumerate(history):
        if cycle.state != "running" and _attempted(cycle) and not cycle.dry_run:
            return n, cycle
    return None


def _lacks(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The columns the cycle's window lacks that the model reads (renamed upstream?)."""
    return [m for m in (body.get("monitor") or {}).get("missing") or () if m["readers"]]


def _attempted(cycle: WatchCycleRecord) -> bool:
    """Whether the cycle planned an update (the evaluation of an earlier cycle's candidate on
    newer labels, ``watch.evaluate_on: newer``, is that cycle's attempt, not a new one)."""
    return bool(cycle.body.get("plan")) and not _judges_earlier(cycle)


def _judges_earlier(cycle: WatchCycleRecord) -> bool:
    """Whether the cycle evaluated an earlier cycle's candidate on newer labels."""
    return bool((cycle.body.get("plan") or {}).get("deferred_from_cycle"))


def _newest_deferred(history: Sequence[WatchCycleRecord]) -> WatchCycleRecord | None:
    """The newest cycle of ``history`` (newest first; the last 50 looked at) whose candidate
    waits for newer labelled rows (``watch.evaluate_on: newer``), unless an update ran
    since (its evaluation among them): that wait is over. An evaluation that failed (the
    newer rows could not be read) ends no wait."""
    for cycle in history[:50]:
        if (cycle.body.get("end") or {}).get("waiting_for") == "newer labels":
            return cycle
        if cycle.state == "failed" and _judges_earlier(cycle):
            continue
        if cycle.body.get("run"):
            return None
    return None


def _outcome(attempt: WatchCycleRecord, history: Sequence[WatchCycleRecord]) -> str:
    """Why the update ``attempt`` made came to nothing: its cycle's end, or, for a
    candidate evaluated on newer labels by a later cycle of ``history``, that cycle's."""
    end = attempt.body.get("end") or {}
    if end.get("waiting_for") != "newer labels":
        return str(end.get("why", ""))
    judged = next(
        (
            c
            for c in history
            if (c.body.get("plan") or {}).get("deferred_from_cycle") == attempt.number
            and c.state != "running"
        ),
        None,
    )
    if judged is None:
        return f"its candidate {end.get('candidate')} waited for newer labels and was set aside"
    return str((judged.body.get("end") or {}).get("why", ""))


def _newest_wait(history: Sequence[WatchCycleRecord], what: str) -> WatchCycleRecord | None:
    """The newest cycle of ``history`` (newest first; the last 50 looked at) that ended
    waiting for ``what`` (``promotion``, ``plan approval``), unless an update ran since: that
    wait is over."""
    for cycle in history[:50]:
        end = cycle.body.get("end") or {}
        if cycle.state == "waiting" and end.get("waiting_for") == what:
            return cycle
        if cycle.body.get("run"):
            return None
    return None


def _under_threat(policy: Policy, gain: float) -> tuple[Policy, str | None]:
    """``policy`` for a plan made because the SLA is threatened: an update is worth it when
    its gain is significant and at least ``gain`` (``watch.threat_gain``) of the loss. The
    planning bars (``planning.min_relative_gain``, ``escalation.full_retrain_gain``) are for
    updates nobody asked for, that must beat what probes find on any window; with the SLA at
    stake, doing nothing is the choice they are weighed against. Returns the policy and what
    it lowered, in words (None when nothing)."""
    from regrow.plan.policy import Policy

    body = policy.to_dict()
    planning, escalation = body["planning"], body["escalation"]
    before = planning["min_relative_gain"], escalation.get("full_retrain_gain")
    planning["min_relative_gain"] = min(gain, planning["min_relative_gain"])
    if escalation.get("full_retrain_gain") is not None:
        escalation["full_retrain_gain"] = min(gain, escalation["full_retrain_gain"])
    if (planning["min_relative_gain"], escalation.get("full_retrain_gain")) == before:
        return policy, None
    said = f"planning.min_relative_gain {before[0]:g}" + (
        f" and escalation.full_retrain_gain {before[1]:g}" if before[1] is not None else ""
    )
    least = f" and at least {gain:g} of the loss" if gain else ""
    return Policy.from_dict(body), (
        f"the SLA is threatened: an update whose gain is significant{least} is worth it "
        f"(watch.threat_gain {gain:g}), not {said}: the bar for updates nobody asked for"
    )


#: Attempts in a row that skipped their plan (``watch.plan_first: auto``), after which the
#: next one plans again, to measure what a plan costs now.
_REMEASURE_PLAN_AFTER = 10

#: Once the watcher skips plans, it plans again only when they cost less than this share of
#: a full retrain (a hysteresis band: see :func:`_plan_costs_more`).
_KEEP_SKIPPING = 0.75


def _may_skip_plans(policy: Policy) -> bool:
    """Whether ``policy`` lets the watcher retrain in full without planning (``watch.
    plan_first: auto``, a full retrain may run unapproved, no money or GPU budget)."""
    budgets = policy.budgets
    return (
        policy.watch.plan_first == "auto"
        and "full-retrain" in policy.autonomy.allowed
        and budgets.max_cost is None  # what a full retrain costs there is not measured here
        and budgets.max_gpu_seconds is None
    )


def _attempts(history: Sequence[WatchCycleRecord]) -> list[WatchCycleRecord]:
    """The real cycles of ``history`` that planned an update (newest first)."""
    return [c for c in history if not c.dry_run and _attempted(c)]


def _skipped_in_a_row(attempts: Sequence[WatchCycleRecord]) -> int:
    """The newest of ``attempts`` (:func:`_attempts`) in a row that skipped their plan."""
    return next(
        (
            n
            for n, c in enumerate(attempts)
            if not (c.body.get("decision") or {}).get("plan_cpu_seconds")
        ),
        len(attempts),
    )


def _plan_costs_more(
    policy: Policy, history: Sequence[WatchCycleRecord]
) -> tuple[str, list[float]] | None:
    """Why the watcher retrains in full without planning (``watch.plan_first: auto``), and
    the plans' CPU seconds it weighed; None to plan. It skips the plan where a full retrain
    may run unapproved (``autonomy`` allows it; no money or GPU budget, and the CPU budget
    above what full retrains took) and the newest plans of ``history`` (newest first; at
    least 2 of the newest 3 the planner made) took at least the CPU of its newest full
    retrains (at least 1 of 3), each the step's CPU as the cycle recorded it: a plan cannot
    save more than the full retrain costs. A cycle that skipped its plan carries the plans'
    figures it weighed (``decision.plan_cpu_seconds``), so they hold while no plan is made
    to measure again; after :data:`_REMEASURE_PLAN_AFTER` skips in a row, the next attempt
    plans, to measure what a plan costs now (when that plan finds nothing, the full retrain
    runs after all: ``decision.remeasure``, :meth:`Watcher._plan`). Full retrains are
    measured each time. Once it skips, it goes on skipping until plans cost less than
    :data:`_KEEP_SKIPPING` of a full retrain."""
    budgets = policy.budgets
    if not _may_skip_plans(policy):
        return None
    attempts = _attempts(history)
    skipped = _skipped_in_a_row(attempts)
    if skipped >= _REMEASURE_PLAN_AFTER:
        return None
    plans: list[float] = []
    fulls: list[float] = []
    for cycle in attempts:
        body, steps = cycle.body, cycle.body.get("step_cpu_seconds") or {}
        decision = body.get("decision") or {}
        planned = not decision.get("escalate") and not decision.get("adopt")
        if planned and "plan" in steps and len(plans) < 3:
            plans.append(float(steps["plan"]))
        carried = decision.get("plan_cpu_seconds") or ()
        if carried and len(plans) < 2:
            plans.extend(float(c) for c in carried[: 3 - len(plans)])
        actions = body["plan"].get("actions") or ()
        full = any(str(a).startswith("full-retrain") for a in actions)
        if full and "run" in steps and (body.get("run") or {}).get("candidate") and len(fulls) < 3:
            fulls.append(float(steps["run"]))
        if len(plans) == 3 and len(fulls) == 3:
            break
    if len(plans) < 2 or not fulls:
        return None
    plan_cpu, full_cpu = statistics.median(plans), statistics.median(fulls)
    # Near the bar the measurements' noise (a run step took 0.57-0.81 CPU s in one year)
    # would flip the choice from cycle to cycle: a watcher that skips keeps skipping until
    # plans cost clearly less than full retrains.
    bar = full_cpu * (_KEEP_SKIPPING if skipped else 1.0)
    if plan_cpu < bar or max(fulls) > budgets.max_cpu_seconds:
        return None  # planning pays, or a full retrain may wait for approval (its budget)
    return (
        f"a plan costs this system more than the full retrain it could save: the plan steps "
        f"of its last {len(plans)} planned cycles took {plan_cpu:.2f} CPU s (median), the run "
        f"steps of its last {len(fulls)} full retrain(s) {full_cpu:.2f}; a full retrain, "
        "which the gates judge, instead (watch.plan_first: auto)"
    ), plans


def _usable(cycles: Sequence[WatchCycleRecord]) -> int:
    """How many of ``cycles`` looked at a usable window: one read and monitored that holds
    every column the model reads (an empty, unreadable or broken window is no news on
    whether the last attempt's answer still holds)."""
    return sum(
        1
        for c in cycles
        if c.body.get("monitor")
        and not any(m.get("readers") for m in c.body["monitor"].get("missing") or ())
    )


def _fruitless_drift_attempts(
    history: Sequence[WatchCycleRecord], lasting: Collection[str]
) -> list[WatchCycleRecord]:
    """The newest update attempts in a row (newest first) that the drift trigger started and
    that promoted nothing (an empty plan, a rejected candidate), while the drift was the same:
    each saw the inputs of every member in ``lasting`` (drifting now) move. A member whose
    inputs drift anew is news those attempts did not weigh, and ends the list."""
    found: list[WatchCycleRecord] = []
    for cycle in history:
        if cycle.state == "running" or cycle.dry_run or not cycle.body.get("plan"):
            continue
        body = cycle.body
        done = (body.get("promotion") or {}).get("promoted") or body.get("rollout")
        if _judges_earlier(cycle):  # an earlier attempt's candidate, evaluated on newer labels
            if done:
                break
            continue  # not blessed: the attempt it came from counts
        if (body.get("decision") or {}).get("trigger") != "inputs" or done:
            break
        if not set(lasting) <= set(_moved(body)):
            break
        found.append(cycle)
    return found


def _estimate_bias(realised: list[dict[str, Any]], estimated: list[dict[str, Any]]) -> float | None:
    """How far the label-free estimates sat from the realised values once labels came: the
    median of (realised - estimate) over the newest realised values that have an estimate
    within a day of them (at least 3), else None.

    An estimate (CBPE, DLE) trusts the model's own scores: a change of concept that only the
    labels show leaves it where it was. Once labels show the gap, the estimates of the rows
    labels have not reached yet are shifted by it, so the forecast does not wait a whole label
    delay to see what the realised values already say.
    """
    times = [(datetime.fromisoformat(e["at"]), float(e["value"])) for e in estimated]
    gaps: list[float] = []
    for r in realised[-_BIAS_PAIRS:]:
        at = datetime.fromisoformat(r["at"])
        near = [(abs((t - at).total_seconds()), v) for t, v in times]
        if near and min(near)[0] <= 86400:
            gaps.append(float(r["value"]) - min(near)[1])
    if len(gaps) < 3:
        return None
    return round(float(sorted(gaps)[len(gaps) // 2]), 6)


def _biases(
    realised: list[dict[str, Any]], estimated: list[dict[str, Any]]
) -> dict[Any, float | None]:
    """:func:`_estimate_bias` of each version's estimates, from its own realised values only
    (each entry names its ``version``).

    >>> at = [f"2026-03-0{d}T00:00:00+00:00" for d in range(1, 8)]
    >>> old = [{"at": t, "value": 0.5, "version": "v1"} for t in at[:4]]
    >>> guessed = [{"at": t, "value": 0.8, "version": "v1"} for t in at[:4]]
    >>> guessed += [{"at": t, "value": 0.8, "version": "v2"} for t in at[4:]]
    >>> _biases(old, guessed)
    {'v1': -0.3, 'v2': None}
    """
    return {
        v: _estimate_bias(
            [r for r in realised if r.get("version") == v],
            [e for e in estimated if e.get("version") == v],
        )
        for v in dict.fromkeys(e.get("version") for e in estimated)
    }


def _lag_cycles(known: list[dict[str, Any]], now: datetime, newest: datetime) -> int:
    """How many cycles the newest realised value lags ``now``: the gap over the median spacing
    of the realised values (one per cycle that had labels), at most 60."""
    times = sorted({datetime.fromisoformat(e["at"]) for e in known})
    steps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    steps = [x for x in steps if x > 0]
    if not steps:
        return 0
    spacing = sorted(steps)[len(steps) // 2]
    return max(0, min(60, round((now - newest).total_seconds() / spacing)))


def _distinct(readings: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """``readings`` (realised values, oldest first) without those that repeat an earlier
    one, and how many were left out. A cycle whose source brought no new labels measures the
    same held-out rows again: the same value, band and rows (of the same version) is one
    reading, and counted once per cycle it made the forecast surer of nothing new."""
    seen: set[tuple[Any, ...]] = set()
    kept: list[dict[str, Any]] = []
    for r in readings:
        key = (r.get("version"), r.get("value"), r.get("lower"), r.get("upper"), r.get("rows"))
        if key in seen:
            continue
        seen.add(key)
        kept.append(r)
    return kept, len(readings) - len(kept)


def _cycles_since_reading(
    earlier: Sequence[Mapping[str, Any] | None], now: Mapping[str, Any] | None
) -> int:
    """How many cycles the newest new realised reading lags: 0 when this cycle's reading
    (``now``) is new, else the cycles since the one that first measured the newest reading
    (``earlier``: the earlier cycles' readings, newest first; a repeat is no new reading),
    at most 60."""

    def key(r: Mapping[str, Any]) -> tuple[Any, ...]:
        return (r.get("value"), r.get("lower"), r.get("upper"), r.get("rows"))

    newest: tuple[Any, ...] | None = None
    first = 0
    for i, reading in enumerate([now, *earlier]):
        if not reading:  # a cycle without a reading: one more cycle the labels lag
            continue
        if newest is None:
            newest = key(reading)
        elif key(reading) != newest:  # an older reading: the newest was first made after it
            break
        first = i
    return min(60, first)


def _point(
    entry: dict[str, Any], kind: Literal["realised", "estimated"], shift: float = 0.0
) -> Any:
    from regrow.forecast import MetricPoint

    low, high = entry.get("lower"), entry.get("upper")
    return MetricPoint(
        datetime.fromisoformat(entry["at"]),
        float(entry["value"]) + shift,
        None if low is None else float(low) + shift,
        None if high is None else float(high) + shift,
        kind,
        int(entry.get("rows") or 0),
        entry.get("version"),
    )


def _measured(
    fitted: FittedSystem, outputs: OutputCache, frame: pd.DataFrame, target: str, name: str
) -> tuple[float, float, float]:
    """``name`` of ``fitted`` on ``frame`` and its 95% bootstrap band (200 resamples); its
    members' ``outputs`` on rows scored before are read, not predicted again."""
    import numpy as np

    from regrow.evaluate.metrics import METRICS, resampled_values
    from regrow.evaluate.resample import Resamples

    metric = METRICS[name]
    rows = frame[frame[target].notna()]
    y = rows[target].to_numpy()
    # what predict_proba (classification) or predict returns, from the members' outputs on
    # the rows read through the version's boundary adapters
    members = outputs.member_outputs(fitted, fitted.adapt(rows))
    score = np.asarray(fitted.output_of(members, rows), dtype=float)
    classes = getattr(fitted, "classes_", None)
    value = float(metric.fn(y, score, classes))
    boot = resampled_values(metric, y, [score], Resamples(len(y), 200, seed=0), classes=classes)
    low, high = np.nanpercentile(boot.ravel(), [2.5, 97.5])
    return value, float(low), float(high)


def _only_new(body: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if stored.get(k) != v}


def _alert(alert: Any) -> dict[str, Any]:
    data = alert.to_dict() if hasattr(alert, "to_dict") else {"alert": str(alert)}
    return {k: data[k] for k in list(data)[:8]}


def _event(cycle: WatchCycleRecord) -> dict[str, Any]:
    end = cycle.body.get("end") or {}
    acted = bool(cycle.body.get("run") or cycle.body.get("rollout"))
    kind = {"failed": "failed", "waiting": "waiting"}.get(
        cycle.state, "acted" if acted else "quiet"
    )
    return {
        "event": kind,
        "cycle": cycle.number,
        "state": cycle.state,
        "why": end.get("why"),
        "hint": end.get("hint"),
        "dry_run": cycle.dry_run,
        "decision": cycle.body.get("decision"),
        "plan": cycle.body.get("plan"),
        "run": cycle.body.get("run"),
        "evaluation": cycle.body.get("evaluation"),
        "rollout": cycle.body.get("rollout"),
        "promotion": cycle.body.get("promotion"),
        "cost": cycle.body.get("cost"),
    }


def send(hook: str, event: Mapping[str, Any], *, timeout: float = 10.0) -> str | None:
    """Send ``event`` to ``hook``: POST it as JSON to a URL, or run the command with the JSON
    on stdin (``$REGROW_EVENT`` holds its kind). Returns None, or what went wrong: a hook that
    fails never stops the watcher."""
    payload = json.dumps(event, default=str).encode()
    try:
        if hook.startswith(("http://", "https://")):
            request = urllib.request.Request(
                hook, data=payload, headers={"Content-Type": "application/json"}, method="POST"
            )
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
            return None
        done = subprocess.run(
            shlex.split(hook),
            input=payload,
            capture_output=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "REGROW_EVENT": str(event.get("event", ""))},
        )
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip()[-200:]
            return f"notify command exited {done.returncode}: {tail}"
        return None
    except (OSError, ValueError, urllib.error.URLError, subprocess.TimeoutExpired) as exc:
        return f"notify {hook!r} failed: {exc}"
