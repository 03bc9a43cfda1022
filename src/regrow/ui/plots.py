"""The dashboard's plots: the monitor HTML report's SVG plots (:mod:`regrow.monitor._plots`,
drawn by matplotlib on the server), served as images and remembered.

A plot costs matplotlib 0.05-0.2 s, and what it shows is immutable (a stored report, a
rollout's transitions up to a revision), so each SVG is kept in a small LRU cache under a key
that names its data: a page seen twice draws nothing the second time. matplotlib's settings
are process-wide, so plots are drawn one at a time.

>>> svg = effect_svg("age", "ks", None, [{"label": "a", "value": 0.1, "low": 0.05,
...                                       "high": 0.15, "drifted": True, "margin": 0.05}])
>>> svg.startswith("<svg"), "age" in svg
(True, True)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from regrow.errors import DataError
from regrow.monitor import _plots
from regrow.monitor._html import series_plot

__all__ = [
    "PlotCache",
    "distribution_svg",
    "effect_svg",
    "impacts_svg",
    "over_time_svg",
    "performance_svg",
    "rollout_evidence_svg",
    "rollout_share_svg",
]


class PlotCache:
    """SVG text by key, the ``size`` most recently used; drawing is serialised by a lock."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._svgs: OrderedDict[tuple[Any, ...], str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], draw: Callable[[], str]) -> str:
        """The SVG under ``key``, drawn by ``draw`` the first time."""
        with self._lock:
            svg = self._svgs.get(key)
            if svg is None:
                svg = draw()
                self._svgs[key] = svg
                while len(self._svgs) > self.size:
                    self._svgs.popitem(last=False)
            else:
                self._svgs.move_to_end(key)
            return svg


def effect_svg(column: str, test: str, cut: str | None, points: Sequence[Mapping[str, Any]]) -> str:
    """A feature's effect over time (one point per stored report) with its interval shaded,
    drifted points ringed, and the margin (the effect never flagged) red."""
    if not points:
        raise DataError(f"no drift of {column!r} by {test!r} to plot", hint="pick another test")
    margins = [float(p["margin"]) for p in points if _plots.is_number(p.get("margin"))]
    shown = [
        _plots.Point(str(p.get("label")), p.get("value"), p.get("low"), p.get("high"),
                     marked=bool(p.get("drifted")))
        for p in points
    ]  # fmt: skip
    where = f", slice {cut}" if cut else ""
    return _plots.chunk_plot(
        shown,
        title=f"{column}: {test} effect{where}",
        salt=f"effect:{column}:{test}:{cut}",
        ylabel="effect",
        thresholds=margins[-1:],
        value_label="effect",
        marked_label="drifted",
        threshold_label="margin",
    )


def distribution_svg(column: str, dist: Mapping[str, Any]) -> str:
    """``column``'s reference and window shares, overlaid (:func:`_plots.distribution`)."""
    return _plots.distribution(column, dist, salt=f"distribution:{column}")


def performance_svg(estimates: Mapping[str, Any], chunks: Sequence[str], metric: str) -> str:
    """Estimated ``metric`` per chunk with its band, realised values as dots, the reference
    dashed and alerts ringed (as the monitor HTML report draws it)."""
    rows = [r for r in estimates.get("rows") or () if str(r.get("metric")) == metric]
    if not rows:
        raise DataError(f"no estimate of {metric!r} in this report",
                        hint="pick one of the report's metrics")  # fmt: skip
    return series_plot(rows, chunks, metric, f"performance:{metric}", ylabel=metric,
                       value_label="estimated")  # fmt: skip


def over_time_svg(data: Mapping[str, Any]) -> str:
    """The metric over the monitored windows (estimated: the line with its band; realised:
    ringed), then the forecast's expected value and band ``horizon`` windows ahead, and the
    threshold as a red line."""
    series = data.get("series") or []
    if not series:
        raise DataError(f"no value of {data.get('metric')!r} to plot", hint="monitor a window")
    points = [
        _plots.Point(str(p["at"])[5:16].replace("T", " "), p.get("value"), p.get("lower"),
                     p.get("upper"), marked=p.get("source") == "realised")
        for p in series
    ]  # fmt: skip
    fc = data.get("forecast") or {}
    if fc.get("expected") is not None:
        points.append(
            _plots.Point(f"+{fc['horizon']} (forecast)", fc["expected"], fc.get("lower"),
                         fc.get("upper"))
        )  # fmt: skip
    threshold = data.get("threshold")
    return _plots.chunk_plot(
        points, title=f"{data['metric']} over the monitored windows", salt="over-time",
        ylabel=str(data["metric"]), value_label="value (band)", marked_label="realised",
        threshold_label=str(data.get("rule") or "threshold"),
        thresholds=[threshold] if threshold is not None else [],
    )  # fmt: skip


def impacts_svg(impacts: Sequence[Mapping[str, Any]]) -> str:
    """Each component's impact with its interval; members to update in red."""
    if not impacts:
        raise DataError("this report attributes nothing", hint="it has no impacts")
    return _plots.impact_plot(impacts, salt="impacts")


def rollout_share_svg(history: Sequence[Mapping[str, Any]], mode: str) -> str:
    """The candidate's share of requests (its weight in a blend) after each transition."""
    points = [
        _plots.Point(f"{h['n']} {h['action']}", h.get("share"),
                     marked=h.get("action") in ("rollback", "abort"))
        for h in history
    ]  # fmt: skip
    what = "blend weight" if mode == "blend" else "share of requests"
    return _plots.chunk_plot(
        points, title=f"candidate {what} per transition", salt="rollout:share",
        ylabel=what, value_label=what, marked_label="rolled back", legend=False,
    )  # fmt: skip


def rollout_evidence_svg(history: Sequence[Mapping[str, Any]], tolerance: float | None) -> str:
    """The candidate's loss minus the stable's at each analysis, with its always-valid
    interval; the tolerance the candidate may cost as a red line."""
    analysed = [h for h in history if h.get("difference") is not None and h.get("n_candidate")]
    if not analysed:
        raise DataError("no analysis with evidence yet", hint="wait for labelled requests")
    points = [
        _plots.Point(f"{h['n']} {h['action']}", h["difference"], h.get("low"), h.get("high"),
                     marked=h.get("decision") == "fail")
        for h in analysed
    ]  # fmt: skip
    return _plots.chunk_plot(
        points, title="loss difference (candidate - stable) with its interval",
        salt="rollout:evidence", ylabel="difference", value_label="difference",
        marked_label="failed", threshold_label="tolerance",
        thresholds=[tolerance] if tolerance is not None else [],
    )  # fmt: skip
