"""The drift sections of the HTML report: drift per feature and the distributions.

Per chunk, every column and test becomes one series of effects. All series go on one heatmap
in units of their margin (the effect never flagged: the report's ``margin`` when it has one,
else the test's default), so a 60-column report still shows every column; the first
``limit`` series are then drawn one by one, drifted ones first, then by their largest effect.

>>> f = {"column": "age", "test": "ks", "effect": 0.04, "drifted": False}
>>> _margin(f), _ratio(f)
(0.02, 2.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from regrow.monitor import _plots
from regrow.monitor._html import (
    Column,
    Row,
    chunk_name,
    esc,
    figure,
    flag,
    number,
    pair,
    plots,
    records,
    series_plot,
    span,
    text,
)
from regrow.monitor.drift.registry import TESTS

__all__ = ["distributions_section", "drift_section", "drifted_columns", "whole_window"]


def whole_window(report: Row) -> list[Row]:
    """Every feature of the whole-window drift reports, with the ``reference`` it was
    compared with (None where the window has one reference)."""
    return [
        {**f, "reference": r.get("reference")}
        for r in report.get("drift") or ()
        for f in r.get("features") or ()
    ]


def drifted_columns(report: Row) -> list[str]:
    """Columns drifted on the whole window: the summary's list, else the drift reports'."""
    listed = report["summary"].get("drifted")
    found = (str(f.get("column")) for f in whole_window(report) if f.get("drifted"))
    return [str(c) for c in listed] if listed is not None else list(dict.fromkeys(found))


def _margin(feature: Row) -> float | None:
    """The effect never flagged: ``margin`` when the report has it, else the test's default."""
    margin = feature.get("margin")
    if _plots.is_number(margin):
        return float(margin)
    test = TESTS.get(str(feature.get("test")))
    return test.margin if test is not None else None


def _ratio(feature: Row) -> float | None:
    """The effect in margins (1 = the margin), None when either is unknown."""
    effect, margin = feature.get("effect"), _margin(feature)
    if not _plots.is_number(effect) or margin is None or margin <= 0:
        return None
    return float(effect) / margin


def drift_section(report: Row, order: Sequence[str], limit: int) -> str:
    """The heatmap of every series, the first ``limit`` series one by one, the FDR line and
    the whole-window table."""
    whole = whole_window(report)
    drifted = set(drifted_columns(report))
    series: dict[tuple[str, str], list[Row]] = {}
    column_of: dict[tuple[str, str], str] = {}
    for chunk in report.get("chunk_drift") or ():
        # Members trained on different snapshots: one series per reference, named by it.
        within = f" ({chunk['reference']})" if chunk.get("reference") else ""
        for f in chunk.get("features") or ():
            if f.get("slice") is None and f.get("effect") is not None:
                key = (str(f.get("column")) + within, str(f.get("test")))
                column_of[key] = str(f.get("column"))
                series.setdefault(key, []).append({**f, "chunk": chunk.get("chunk")})

    def rank(key: tuple[str, str]) -> tuple[bool, bool, float]:
        top = max((_ratio(f) or 0.0 for f in series[key]), default=0.0)
        return column_of[key] not in drifted, not any(f.get("drifted") for f in series[key]), -top

    ranked = sorted(series, key=rank)
    seen = dict.fromkeys(chunk_name(f["chunk"]) for s in series.values() for f in s)
    labels = [c for c in order if c in seen] + [c for c in seen if c not in order]
    out = []
    if ranked:
        cells = [{chunk_name(f["chunk"]): f for f in series[k]} for k in ranked]
        svg = _plots.heatmap(
            [f"{c} · {t}" for c, t in ranked],
            labels,
            [[_ratio(row[c]) if c in row else None for c in labels] for row in cells],
            [[bool(row[c].get("drifted")) if c in row else False for c in labels] for row in cells],
            title="effect per chunk, in margins",
            salt="drift:heatmap",
            scale="effect / margin (1 = the margin)",
        )
        out.append(figure(svg, "every column's drift per chunk; white dot: drifted", wide=True))
    for column, test in ranked[:limit]:
        margin = _margin(series[(column, test)][0])
        rows = [
            {**f, "value": f.get("effect"), "low": pair(f.get("effect_interval"))[0],
             "high": pair(f.get("effect_interval"))[1], "threshold": margin}
            for f in series[(column, test)]
        ]  # fmt: skip
        svg = series_plot(rows, order, f"{column} · {test}", f"drift:{column}:{test}",
                          ylabel="effect", value_label="effect", marked_label="drifted",
                          threshold_label="margin", legend=False, width=5.2)  # fmt: skip
        line = "" if margin is None else f"; red line: the margin {margin:g}"
        out.append(figure(svg, f"effect per chunk with its interval{line}; ringed: drifted"))
    html = plots(out)
    if len(ranked) > limit:
        html += f'<p class="note">{len(ranked) - limit} more column × test series are in the '
        html += "heatmap only (drifted ones are drawn first).</p>"
    if report.get("fdr"):
        html += f'<p class="note">Multiple testing: {esc(report["fdr"])}.</p>'
    if whole:
        columns = [
            *([text("reference")] if any(f.get("reference") for f in whole) else []),
            text("column"),
            Column("slice", lambda f: esc(f.get("slice") or "all rows")),
            text("test"),
            number("effect"),
            span("effect_interval"),
            number("adjusted_p_value", "adjusted p"),
            flag("drifted"),
            text("why"),
        ]
        first = sorted(whole, key=lambda f: not f.get("drifted"))
        html += f"<h3>Whole window</h3>{records(first, columns, bad='drifted')}"
    return html


def distributions_section(report: Row, limit: int) -> str:
    """The first ``limit`` columns' distributions, drifted ones first, then by effect."""
    dists: Mapping[str, Row] = report["distributions"]
    drifted = set(drifted_columns(report))
    effect = {str(f.get("column")): _ratio(f) or 0.0 for f in whole_window(report)}
    columns = sorted(dists, key=lambda c: (c not in drifted, -effect.get(c, 0.0)))
    figures = [
        figure(
            _plots.distribution(str(c), dists[c], salt=f"distribution:{c}"),
            f"reference (grey) and window (blue){'; drifted' if c in drifted else ''}",
        )
        for c in columns[:limit]
    ]
    more = len(columns) - limit
    return plots(figures) + (
        f'<p class="note">{more} more columns not drawn.</p>' if more > 0 else ""
    )
