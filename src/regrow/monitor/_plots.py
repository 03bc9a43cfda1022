"""The plots of a monitor result, drawn by matplotlib as inline SVG text.

Shared by the HTML report (:mod:`regrow.monitor.report_html`) and the dashboard. Every function
takes plain values and returns one ``<svg>`` element as a string, ready to paste into HTML:

=====================  ==========================================================================
function               draws
=====================  ==========================================================================
:func:`chunk_plot`     a value over chunks with its interval shaded, realised values as markers,
                       a dashed reference line, red threshold lines and marked (alert) chunks
:func:`heatmap`        a value per row (column) and chunk as coloured cells, marked cells ringed:
                       every column's drift on one plot
:func:`distribution`   the reference and the window's shares of one column: overlaid histograms
                       for a numeric column, side-by-side bars for a categorical one
:func:`impact_plot`    horizontal bars of each component's impact with its interval,
                       candidates in red
=====================  ==========================================================================

The output is deterministic and small: text stays text (``svg.fonttype='none'``), ids come from
a salt per plot (so plots on one page do not share ids), and the XML prologue, the metadata
(with its date) and unreferenced ids are removed. matplotlib is imported inside the functions,
off-screen and never through pyplot, so ``import regrow`` does not pay for it. A plot costs
roughly 0.05-0.2 s (matplotlib lays out every tick label), so callers cap how many they draw.

>>> points = [Point("week 1", 0.9, 0.88, 0.92), Point("week 2", 0.8, 0.77, 0.83, marked=True)]
>>> svg = chunk_plot(points, title="roc_auc", salt="doctest", reference=0.91, thresholds=[0.85])
>>> svg.startswith("<svg"), svg.rstrip().endswith("</svg>")
(True, True)
>>> svg == chunk_plot(points, title="roc_auc", salt="doctest", reference=0.91, thresholds=[0.85])
True
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

from regrow.errors import DataError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "Point",
    "chunk_plot",
    "distribution",
    "heatmap",
    "impact_plot",
    "is_number",
    "svg_of",
]

BLUE, GREY, RED, INK, GRID = "#2f6db5", "#8a8f98", "#c62828", "#222222", "#e4e6ea"
MAX_TICKS = 12  # chunk labels written on the x axis; with more chunks every k-th one

_PROLOGUE = re.compile(r"\A.*?(?=<svg)", re.S)
_DROP = re.compile(r"<metadata>.*?</metadata>\s*|<style[^>]*>.*?</style>\s*", re.S)
_REF = re.compile(r"url\(#([^)]+)\)|href=\"#([^\"]+)\"")
_ID = re.compile(r' id="([^"]+)"')


@dataclass(frozen=True)
class Point:
    """One value of a series over chunks: its x-axis label, the value and its interval.

    ``marked`` rings the value in red (an alert, a drifted chunk); ``realised`` is the labelled
    value next to an estimate, drawn as a black dot and ringed when ``realised_marked``;
    ``threshold`` is this chunk's alert threshold. None stands for a missing value (a gap).
    """

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    marked: bool = False
    realised: float | None = None
    realised_marked: bool = False
    threshold: float | None = None


@contextmanager
def _style() -> Iterator[None]:
    """The house style: small sans-serif text, no top or right spine, left-aligned titles."""
    import matplotlib

    with matplotlib.rc_context(
        {
            "svg.fonttype": "none",
            "font.size": 8,
            "font.family": "sans-serif",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titlesize": 9,
            "axes.titleweight": "bold",
            "axes.titlelocation": "left",
            "legend.fontsize": 7,
            "legend.frameon": False,
            "xtick.labelsize": 7,
            "ytick.labelsize": 7,
            "path.simplify": True,
        }
    ):
        yield


def svg_of(fig: Figure, salt: str) -> str:
    """``fig`` as one ``<svg>`` element, without prologue, metadata or unreferenced ids.

    ``salt`` seeds the ids matplotlib gives clip paths and markers: give each plot of a page
    its own, so that their ids do not collide.
    """
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"regrow:{salt}", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = _DROP.sub("", _PROLOGUE.sub("", buf.getvalue(), count=1))
    used = {a or b for a, b in _REF.findall(text)}
    return _ID.sub(lambda m: m.group(0) if m.group(1) in used else "", text)


def _figure(
    width: float,
    height: float,
    *,
    left: float = 0.6,
    right: float = 0.15,
    bottom: float = 0.4,
    top: float = 0.3,
) -> Figure:
    """A figure of ``width`` x ``height`` inches with fixed margins (in inches).

    Fixed margins rather than a layout engine: constrained layout draws every figure twice,
    which more than doubled the time of a report with dozens of plots.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(
        left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height
    )
    return fig


def is_number(v: object) -> TypeGuard[int | float]:
    """Whether ``v`` is a finite number (not a bool, not None, not NaN).

    >>> is_number(0.5), is_number(None), is_number(True), is_number(float("inf"))
    (True, False, False, False)
    """
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _float(v: object) -> float:
    """``v`` as a float; None and anything not a finite number become NaN (a gap)."""
    return float(v) if is_number(v) else math.nan


def _short(text: str, width: int = 28) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _chunk_axis(ax: Axes, labels: Sequence[str]) -> None:
    step = max(1, math.ceil(len(labels) / MAX_TICKS))
    ticks = list(range(0, len(labels), step))
    ax.set_xticks(ticks, [_short(labels[i], 20) for i in ticks], rotation=30, ha="right")
    ax.set_xlim(-0.5, len(labels) - 0.5)


def chunk_plot(
    points: Sequence[Point],
    *,
    title: str,
    salt: str,
    ylabel: str = "",
    reference: float | None = None,
    thresholds: Sequence[float] = (),
    value_label: str = "estimate",
    marked_label: str = "alert",
    threshold_label: str = "alert threshold",
    reference_label: str = "reference",
    legend: bool = True,
    width: float = 6.4,
) -> str:
    """A series over chunks as SVG: the value as a line (a dot with an error bar when there is
    one point), its interval shaded, ``realised`` values as black dots, ``reference`` dashed,
    marked points ringed in red. Each of ``thresholds`` is a red line, and so are the points'
    own thresholds when they all share one; thresholds that change from chunk to chunk are a
    short red segment at each chunk.
    """
    if not points:
        raise DataError(f"no points to plot for {title!r}", hint="leave the plot out instead")
    import numpy as np

    x = np.arange(len(points), dtype=np.float64)
    value = np.array([_float(p.value) for p in points])
    low = np.array([_float(p.low) for p in points])
    high = np.array([_float(p.high) for p in points])
    realised = np.array([_float(p.realised) for p in points])
    has_band = bool(np.isfinite(low).any() and np.isfinite(high).any())
    with _style():
        fig = _figure(width, 2.5, right=1.35 if legend else 0.15, bottom=0.85)
        ax = fig.add_subplot()
        if len(points) == 1 or not np.isfinite(value).any():
            err = np.nan_to_num(np.abs(np.vstack([value - low, high - value])))
            yerr = err if has_band else None
            ax.errorbar(
                x, value, yerr=yerr, fmt="o", color=BLUE, ms=4, capsize=3, label=value_label
            )
        else:
            if has_band:
                ax.fill_between(x, low, high, color=BLUE, alpha=0.18, lw=0, label="interval")
            ax.plot(x, value, color=BLUE, marker="o", ms=2.5, lw=1.3, label=value_label)
        if np.isfinite(realised).any():
            ax.plot(x, realised, ls="none", marker="o", ms=4, color=INK, label="realised")
        if reference is not None and math.isfinite(reference):
            ax.axhline(reference, color=GREY, ls="--", lw=1, label=reference_label)
        limit = np.array([_float(p.threshold) for p in points])
        has = np.isfinite(limit)
        lines, label = set(thresholds), threshold_label
        if has.all() and len(set(limit.tolist())) == 1:  # one threshold for every chunk
            lines.add(float(limit[0]))
        elif has.any():  # a threshold per chunk: a short segment at each
            ax.hlines(limit[has], x[has] - 0.4, x[has] + 0.4, color=RED, lw=1.4, label=label)
            label = ""
        for i, t in enumerate(sorted(lines)):
            ax.axhline(t, color=RED, lw=1, label=label if i == 0 and label else None)
        fallback = np.where(np.isfinite(value), value, realised)
        ring_x = [*x[[p.marked for p in points]], *x[[p.realised_marked for p in points]]]
        ring_y = [*fallback[[p.marked for p in points]],
                  *realised[[p.realised_marked for p in points]]]  # fmt: skip
        if ring_x:
            ax.plot(ring_x, ring_y, ls="none", marker="o", ms=8, mfc="none", mec=RED, mew=1.5,
                    label=marked_label)  # fmt: skip
        _chunk_axis(ax, [p.label for p in points])
        ax.grid(axis="y", color=GRID, lw=0.6)
        ax.set_axisbelow(True)
        ax.set_title(_short(title, 60))
        ax.set_ylabel(ylabel)
        if legend:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return svg_of(fig, salt)


def heatmap(
    rows: Sequence[str],
    chunks: Sequence[str],
    values: Sequence[Sequence[float | None]],
    marked: Sequence[Sequence[bool]],
    *,
    title: str,
    salt: str,
    scale: str,
    vmax: float = 2.0,
) -> str:
    """``values[i][j]`` (row ``i``, chunk ``j``) as coloured cells, white at 0 and dark red at
    ``vmax`` or above; ``marked`` cells get a white dot, missing values stay grey. ``scale``
    names the colour bar.
    """
    if not rows or not chunks:
        raise DataError(f"no cells to plot for {title!r}", hint="leave the plot out instead")
    import numpy as np

    widths = {len(r) for r in [*values, *marked]}
    if len(values) != len(rows) or len(marked) != len(rows) or widths != {len(chunks)}:
        raise DataError(
            f"the heatmap {title!r} has {len(values)} rows of values and {len(marked)} of "
            f"marks, {sorted(widths)} long, for {len(rows)} rows and {len(chunks)} chunks",
            hint="give one value and one mark per row and chunk",
        )
    grid = np.array([[_float(v) for v in row] for row in values], dtype=np.float64)
    left = min(2.4, 0.3 + 0.055 * max(len(_short(r)) for r in rows))
    with _style():
        fig = _figure(7.6, 1.35 + 0.17 * len(rows), left=left, right=1.0, bottom=0.85)
        ax = fig.add_subplot()
        cmap = _reds()
        image = ax.imshow(
            np.ma.masked_invalid(grid),
            cmap=cmap,
            vmin=0.0,
            vmax=vmax,
            aspect="auto",
            interpolation="nearest",
        )
        ii, jj = np.nonzero(np.asarray(marked, dtype=bool))
        if len(ii):
            ax.plot(jj, ii, ls="none", marker="o", ms=4, mfc="white", mec=INK, mew=0.8)
        ax.set_yticks(range(len(rows)), [_short(r) for r in rows])
        _chunk_axis(ax, chunks)
        ax.tick_params(length=0)
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
        ax.set_title(_short(title, 80))
        bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, extend="max")
        bar.set_label(scale)
        bar.outline.set_visible(False)
        return svg_of(fig, salt)


def _reds() -> Any:
    from matplotlib import colormaps

    return colormaps["Reds"].with_extremes(bad="#eeeeee")


def distribution(column: str, dist: Mapping[str, Any], *, salt: str) -> str:
    """The reference and window shares of ``column`` as SVG.

    ``dist`` is one entry of a monitor result's ``distributions``: ``{"kind": "numeric",
    "edges": [...], "reference": [...], "window": [...]}`` (one more edge than shares) or
    ``{"kind": "categorical", "categories": [...], "reference": [...], "window": [...]}``.
    """
    import numpy as np

    kind = dist.get("kind")
    ref = np.nan_to_num(np.array([_float(v) for v in dist.get("reference") or ()]))
    cur = np.nan_to_num(np.array([_float(v) for v in dist.get("window") or ()]))
    edges = np.array([_float(v) for v in dist.get("edges") or ()])
    names = [_short(str(c), 16) for c in dist.get("categories") or ()]
    if kind == "numeric" and (
        not len(edges) == len(ref) + 1 == len(cur) + 1 or not np.isfinite(edges).all()
    ):
        raise DataError(
            f"the distribution of {column!r} has {len(edges)} edges for {len(ref)} reference "
            f"and {len(cur)} window shares",
            hint="numeric distributions need finite edges, one more than shares on each side",
        )
    if kind == "categorical" and not len(names) == len(ref) == len(cur):
        raise DataError(
            f"the distribution of {column!r} has {len(names)} categories for {len(ref)} "
            f"reference and {len(cur)} window shares",
            hint="categorical distributions need one share per category on each side",
        )
    if kind not in ("numeric", "categorical"):
        raise DataError(
            f"the distribution of {column!r} has kind {kind!r}",
            hint="use 'numeric' (with edges) or 'categorical' (with categories)",
        )
    tilt = kind == "categorical" and len(names) > 4
    with _style():
        fig = _figure(4.6, 2.3, bottom=0.8 if tilt else 0.4)
        ax = fig.add_subplot()
        if kind == "numeric":
            ax.stairs(ref, edges, fill=True, color=GREY, alpha=0.45, label="reference")
            ax.stairs(cur, edges, color=BLUE, lw=1.4, label="window")
        else:
            x = np.arange(len(names), dtype=np.float64)
            ax.bar(x - 0.2, ref, width=0.4, color=GREY, alpha=0.7, label="reference")
            ax.bar(x + 0.2, cur, width=0.4, color=BLUE, label="window")
            ax.set_xticks(x, names, rotation=30 if tilt else 0, ha="right" if tilt else "center")
        ax.set_title(_short(column, 50))
        ax.set_ylabel("share of rows")
        ax.legend(loc="upper right")
        return svg_of(fig, salt)


def impact_plot(impacts: Sequence[Mapping[str, Any]], *, salt: str) -> str:
    """Each component's ``impact`` with its ``interval`` (entries of a monitor result's
    ``impacts``) as a horizontal bar; candidates in red, in the order given (top first)."""
    if not impacts:
        raise DataError("no impacts to plot", hint="leave the plot out instead")
    import numpy as np

    names = [_short(str(i.get("component"))) for i in impacts]
    value = np.array([_float(i.get("impact")) for i in impacts])
    bounds = [[*(i.get("interval") or ()), None, None][:2] for i in impacts]
    low = np.array([_float(b[0]) for b in bounds])
    high = np.array([_float(b[1]) for b in bounds])
    err = np.nan_to_num(np.abs(np.vstack([value - low, high - value])))
    colors = [RED if i.get("candidate") else GREY for i in impacts]
    y = np.arange(len(impacts), dtype=np.float64)
    left = min(2.4, 0.3 + 0.055 * max(len(n) for n in names))
    with _style():
        fig = _figure(6.4, 0.95 + 0.26 * len(impacts), left=left, bottom=0.5)
        ax = fig.add_subplot()
        ax.barh(
            y,
            np.nan_to_num(value),
            xerr=err,
            color=colors,
            height=0.6,
            error_kw={"ecolor": INK, "elinewidth": 0.8, "capsize": 2},
        )
        ax.axvline(0, color=INK, lw=0.8)
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        ax.set_xlabel("impact: loss now − loss with the drifted features as in the reference")
        ax.set_title("impact of the drift per component (red: candidate)")
        ax.grid(axis="x", color=GRID, lw=0.6)
        ax.set_axisbelow(True)
        return svg_of(fig, salt)
