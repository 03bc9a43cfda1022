"""A metric's history, one point per monitored window, read from the stored monitor reports.

Every ``Workspace.monitor`` (``regrow monitor``) stores a report (:mod:`regrow.monitoring`)
that holds, for the window it checked:

- ``performance``: with labels, the **realised** metric of the system, of each member and of
  each slice, with a bootstrap interval (:mod:`regrow.monitor.performance`);
- ``estimates``: the **estimated** metrics of the system without labels (CBPE for
  classifiers, DLE for regressors) with their bands, and the realised value next to each
  estimate when the window had labels (:mod:`regrow.monitor.signals`).

:func:`series_from_catalog` turns them into :class:`MetricPoint` values, oldest first:

- **one point per window.** A window is placed at the end of its time range (the newest value
  of its time column, from the window snapshot's stored profile); a window without a time
  column is placed at its report's creation time. Reports on the same snapshot, or on windows
  whose time ranges overlap by at least half of the shorter one (the same days, re-read once
  their labels arrived), describe one window;
- **realised wins.** For each window the realised value is taken when a report had labels,
  else the estimate; among reports of the same kind the one measured on the most rows is
  taken, the newest of those (a few rows that fall inside a larger window do not replace
  it). So a window
  first monitored without labels (an estimate) and again once its labels arrived counts once,
  with the realised value;
- members and slices have realised values only (the estimators score the system's output on
  the whole window): their series hold the labelled windows.

The series runs across every version of the system: an update shows as a change of level,
and each point names the version its report checked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from regrow.errors import ConfigError

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.catalog.records import MonitorReportRecord

__all__ = ["MetricPoint", "series_from_catalog"]

Source = Literal["realised", "estimated"]

#: Reports read per version (the newest first).
_REPORTS_PER_VERSION = 100_000


@dataclass(frozen=True)
class MetricPoint:
    """One window's value of a metric: realised (with labels) or estimated (CBPE / DLE).

    ``lower``/``upper`` is its band (95 % unless the report says otherwise), None when it has
    none; ``rows`` is the rows it was measured or estimated on; ``version`` the system version
    the report checked and ``report`` the report's id.

    >>> from datetime import datetime, UTC
    >>> MetricPoint(datetime(2026, 4, 7, tzinfo=UTC), 0.84, 0.82, 0.86, "estimated", 3000).value
    0.84
    """

    at: datetime
    value: float
    lower: float | None
    upper: float | None
    source: Source
    rows: int
    version: str | None = None
    report: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The point as JSON (``at`` as ISO text), as ``regrow forecast --json`` prints it.

        >>> from datetime import datetime, UTC
        >>> point = MetricPoint(datetime(2026, 4, 7, tzinfo=UTC), 0.84, None, None, "realised", 9)
        >>> point.to_dict()["at"]
        '2026-04-07T00:00:00+00:00'
        """
        return {
            "at": self.at.isoformat(),
            "value": self.value,
            "lower": self.lower,
            "upper": self.upper,
            "source": self.source,
            "rows": self.rows,
            "version": self.version,
        }


@dataclass(frozen=True)
class _Window:
    key: str  # the snapshot id
    start: datetime | None
    end: datetime | None
    at: datetime


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _realised(
    report: Mapping[str, Any], metric: str, member: str | None, slice: str | None
) -> tuple[float, float | None, float | None, int] | None:
    """The realised value in ``report``: the labelled performance report's row, else (for the
    system on the whole window) the realised value next to the estimate."""
    perf = report.get("performance") or {}
    if perf.get("metric") == metric:
        scope, group = ("slice", slice) if slice is not None else ("all", "all")
        for row in perf.get("rows") or ():
            who = row.get("component") == member if member else row.get("kind") == "system"
            if who and row.get("scope") == scope and row.get("group") == group:
                value = _number(row.get("value"))
                if value is not None:
                    n = int(row.get("n") or 0)
                    return value, _number(row.get("low")), _number(row.get("high")), n
    if member is None and slice is None:
        for row in _estimate_rows(report, metric):
            value = _number(row.get("realised"))
            if value is not None:
                return value, None, None, _usable_rows(report)
    return None


def _estimate_rows(report: Mapping[str, Any], metric: str) -> list[Mapping[str, Any]]:
    rows = (report.get("estimates") or {}).get("rows") or ()
    return [r for r in rows if r.get("metric") == metric and r.get("chunk") is None]


def _usable_rows(report: Mapping[str, Any]) -> int:
    summary = report.get("summary") or {}
    return int(summary.get("usable_rows") or summary.get("rows") or 0)


def estimated_value(
    report: Mapping[str, Any], metric: str
) -> tuple[float, float | None, float | None, int] | None:
    """The label-free estimate of ``metric`` in a stored monitor ``report`` (the whole
    window): value, band, usable rows; None when the report has none."""
    return _estimated(report, metric)


def _estimated(
    report: Mapping[str, Any], metric: str
) -> tuple[float, float | None, float | None, int] | None:
    for row in _estimate_rows(report, metric):
        value = _number(row.get("value"))
        if value is not None:
            return value, _number(row.get("low")), _number(row.get("high")), _usable_rows(report)
    return None


def _names(reports: Iterable[MonitorReportRecord]) -> tuple[set[str], set[str], set[str]]:
    """The metrics, members and slices the reports hold (for error messages)."""
    metrics: set[str] = set()
    members: set[str] = set()
    slices: set[str] = set()
    for record in reports:
        perf = record.report.get("performance") or {}
        if perf.get("metric"):
            metrics.add(str(perf["metric"]))
        for row in perf.get("rows") or ():
            if row.get("kind") == "member":
                members.add(str(row.get("component")))
            if row.get("scope") == "slice":
                slices.add(str(row.get("group")))
        for row in (record.report.get("estimates") or {}).get("rows") or ():
            metrics.add(str(row.get("metric")))
    return metrics, members, slices


def _window(catalog: Catalog, record: MonitorReportRecord, cache: dict[str, _Window]) -> _Window:
    """Where the report's window sits in time (see the module docstring)."""
    from regrow.logged import parse_time

    snap_id = record.snapshot_id
    if snap_id in cache:
        return cache[snap_id]
    snap = catalog.get_snapshot(snap_id)
    start = end = None
    if snap.time_column:
        try:
            stats = (catalog.get_profile(snap_id).get("columns") or {}).get(snap.time_column)
        except LookupError:
            stats = None
        if stats and stats.get("min") and stats.get("max"):
            start = parse_time("start", str(stats["min"]))
            end = parse_time("end", str(stats["max"]))
    found = _Window(snap_id, start, end, end or parse_time("at", record.created_at))
    cache[snap_id] = found
    return found


def _same(a: _Window, b: _Window) -> bool:
    """Whether two windows are one: the same snapshot, or time ranges overlapping by at least
    half of the shorter one."""
    if a.key == b.key:
        return True
    if a.start is None or a.end is None or b.start is None or b.end is None:
        return False
    overlap = (min(a.end, b.end) - max(a.start, b.start)).total_seconds()
    shorter = min((a.end - a.start).total_seconds(), (b.end - b.start).total_seconds())
    if shorter <= 0:
        return a.start == b.start and a.end == b.end
    return overlap >= 0.5 * shorter


def series_from_catalog(
    catalog: Catalog,
    system: str,
    metric: str,
    *,
    member: str | None = None,
    slice: str | None = None,
    since: datetime | str | None = None,
) -> list[MetricPoint]:
    """The history of ``metric`` for ``system`` (or one ``member``, or one ``slice``), one
    point per monitored window, oldest first (see the module docstring for how windows are
    placed in time and which value wins). ``since`` (a datetime, an ISO time or a span ago
    such as ``30d``) keeps the windows that end at or after it.

    An unknown system raises :class:`~regrow.errors.NotFound` (its hint: a close name); a
    metric, member or slice that no report holds raises :class:`~regrow.errors.ConfigError`
    naming those that exist (for a slice, those the monitored windows have). A system never
    monitored, or whose reports hold no metric value at all, has an empty history.
    """
    from regrow.logged import parse_time

    if member is not None and slice is not None:
        raise ConfigError(
            f"pass a member ({member!r}) or a slice ({slice!r}), not both",
            hint="reports hold each member on the whole window, and the system on each slice",
        )
    versions = catalog.list_system_versions(system)
    if not versions:
        raise catalog.unknown_system(system)  # its hint: a close name, else those there are
    reports = [
        (version.ref, record)
        for version in versions
        for record in catalog.list_monitor_reports(version.id, limit=_REPORTS_PER_VERSION)
    ]
    if not reports:
        return []
    cut = parse_time("since", since) if since is not None else None
    cache: dict[str, _Window] = {}
    # Oldest report first, so a later report of the same kind replaces an earlier one.
    reports.sort(key=lambda vr: (vr[1].created_at, vr[1].id))
    windows: list[tuple[_Window, dict[Source, MetricPoint]]] = []
    for ref, record in reports:
        values: dict[Source, tuple[float, float | None, float | None, int] | None] = {
            "realised": _realised(record.report, metric, member, slice),
            "estimated": None
            if member is not None or slice is not None
            else _estimated(record.report, metric),
        }
        if values["realised"] is None and values["estimated"] is None:
            continue
        win = _window(catalog, record, cache)
        slot = next((found for w, found in windows if _same(w, win)), None)
        if slot is None:
            slot = {}
            windows.append((win, slot))
        for source, value in values.items():
            if value is not None:
                v, lo, hi, n = value
                kept = slot.get(source)
                if kept is not None and kept.rows > n:  # a few rows inside a larger window
                    continue
                slot[source] = MetricPoint(win.at, v, lo, hi, source, n, ref, record.id)
    if not windows:  # raises when the reports hold other names
        _unknown(catalog, system, reports, metric, member, slice)
    points = [found.get("realised") or found["estimated"] for _, found in windows]
    points.sort(key=lambda p: p.at)
    return [p for p in points if cut is None or p.at >= cut]


def _unknown(
    catalog: Catalog,
    system: str,
    reports: list[tuple[str, MonitorReportRecord]],
    metric: str,
    member: str | None,
    slice: str | None,
) -> None:
    metrics, members, slices = _names(r for _, r in reports)
    if slice is not None and slice not in slices:
        _unknown_slice(catalog, system, reports, slice, slices)
    if not metrics:  # no report holds any value yet (estimates failed, no labels): no history
        return
    if metric not in metrics:
        watched = [
            c.number
            for c in catalog.watches.cycles(system, limit=50)
            if ((c.body.get("forecast") or {}).get("metric")) == metric
        ]
        raise ConfigError(
            f"no monitor report holds metric {metric!r}",
            hint=f"the reports hold {sorted(metrics)}"
            + (
                f"; the watcher forecasts {metric} in its cycles: `regrow watch {system} "
                f"--show {watched[0]}`"
                if watched
                else ""
            ),
        )
    if member is not None and member not in members:
        raise ConfigError(
            f"no labelled monitor report holds member {member!r}",
            hint=f"the members are {sorted(members)}" if members else "monitor a labelled window",
        )
    if slice is not None and slice not in slices:
        raise ConfigError(
            f"no labelled monitor report holds slice {slice!r}",
            hint="a slice is measured on windows with labels: monitor a labelled window",
        )
    labelled = sorted(
        {str((r.report.get("performance") or {}).get("metric")) for _, r in reports} - {"None"}
    )
    who = f"member {member!r}" if member is not None else f"slice {slice!r}"
    raise ConfigError(
        f"no monitor report holds a value of {metric!r}"
        + (f" for {who}" if member is not None or slice is not None else ""),
        hint=f"members and slices are measured in {labelled} (the labelled report's metric)"
        if labelled
        else "monitor a window with labels",
    )


def _unknown_slice(
    catalog: Catalog,
    system: str,
    reports: list[tuple[str, MonitorReportRecord]],
    slice: str,
    measured: set[str],
) -> None:
    """Raise when no monitored window of the system has ``slice`` (a window takes the slices
    of its version's training snapshot), naming those they have."""
    import difflib

    defined = measured | {
        name
        for snap in {r.snapshot_id for _, r in reports}
        for name in catalog.get_snapshot(snap).slices or {}
    }
    if slice in defined:
        return
    close = difflib.get_close_matches(slice, sorted(defined), n=1)
    raise ConfigError(
        f"unknown slice {slice!r}: the monitored windows of {system!r} have no slice of that name",
        hint=(f"did you mean {close[0]!r}? " if close else "") + f"the slices are {sorted(defined)}"
        if defined
        else f"the windows of {system!r} have no slices: a window takes those of the snapshot "
        "its version was trained on (regrow snapshot create FILE --slice NAME=EXPR)",
    )
