"""A self-contained HTML report of an evaluation: the verdict, the gates, the slices.

One file, no network: styles inline, the plot of each slice's difference with its interval
drawn as inline SVG (a forest plot: a dot per slice, a bar for the interval, the zero line).
Every piece of user text (names, reasons) is escaped.

>>> from regrow.evaluate.evaluation import Comparison
>>> c = Comparison("roc_auc", True, 0.81, 0.78, 0.03, (0.01, 0.05), 500,
...                {"north": {"rows": 200, "candidate": 0.8, "baseline": 0.79, "delta": 0.01,
...                           "delta_ci": [-0.02, 0.04]}}, "blessed", ("improvement: ok",))
>>> html = render(c, candidate="churn:v2", baseline="churn:v1", snapshot="holdout")
>>> html.startswith("<!DOCTYPE html>") and "<svg" in html and "http" not in html
True
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regrow.evaluate.evaluation import Comparison

__all__ = ["render"]

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}
h1{font-size:1.3rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;width:100%}td,th{padding:.3rem .6rem;border-bottom:1px solid #ddd;
text-align:right;vertical-align:top}td:first-child,th:first-child,td.why{text-align:left}
.pass{color:#1a7f37}.fail{color:#cf222e}.inconclusive{color:#9a6700}.verdict{font-size:1.2rem}
.muted{color:#666}
"""
_WIDTH, _LABEL, _ROW = 720, 160, 26


def render(
    comparison: Comparison,
    *,
    candidate: str,
    baseline: str | None,
    snapshot: str,
    policy: str | None = None,
) -> str:
    """The report of ``comparison`` as one HTML document."""
    c = comparison
    title = f"{candidate} vs {baseline or 'no baseline'} on {snapshot}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>regrow evaluation: {escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Evaluation: {escape(title)}</h1>",
        f'<p class="verdict">verdict: <b class="{_verdict_class(c.verdict)}">'
        f"{escape(c.verdict)}</b></p>",
        "<ul>" + "".join(f"<li>{escape(r)}</li>" for r in c.reasons) + "</ul>",
        "<h2>Gates</h2>",
        _gates(c),
        f"<h2>{escape(c.metric)}: candidate − baseline, per slice</h2>",
        _plot(c),
        _metric_table(c),
        f'<p class="muted">{c.level:.0%} paired bootstrap intervals over {c.resamples:,} '
        f"resamples of {c.rows:,} rows"
        + (f"; policy {escape(policy)}" if policy else "")
        + ".</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


def _verdict_class(verdict: str) -> str:
    return {"blessed": "pass", "rejected": "fail"}.get(verdict, "inconclusive")


def _num(value: Any, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:+.4f}" if sign else f"{value:.4g}" if abs(value) >= 1e4 else f"{value:.4f}"


def _interval(ci: Any, sign: bool = True) -> str:
    if not ci or any(v is None or not math.isfinite(v) for v in ci):
        return "–"
    return f"[{_num(ci[0], sign)}, {_num(ci[1], sign)}]"


def _gates(c: Comparison) -> str:
    if not c.gates:
        return "<p>No gate is configured: nothing is blessed.</p>"
    rows = "".join(
        f"<tr><td>{escape(g.name)}</td><td>{_num(g.value)}</td><td>{_interval(g.interval, False)}"
        f'</td><td>{_num(g.threshold)}</td><td class="{g.status}">{g.status}</td>'
        f'<td class="why">{escape(g.why)}</td></tr>'
        for g in c.gates
    )
    head = "".join(
        f"<th>{h}</th>" for h in ("gate", "value", "interval", "threshold", "status", "why")
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _groups(c: Comparison) -> list[tuple[str, dict[str, Any]]]:
    whole = {"rows": c.rows, "candidate": c.candidate, "baseline": c.baseline,
             "delta": c.delta, "delta_ci": list(c.delta_ci) if c.delta_ci else None}  # fmt: skip
    return [("all", whole), *c.slices.items()]


def _metric_table(c: Comparison) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in ("slice", "rows", "baseline", "candidate", "difference", "interval")
    )
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td>{s.get('rows', 0):,}</td><td>{_num(s.get('baseline'))}"
        f"</td><td>{_num(s.get('candidate'))}</td><td>{_num(s.get('delta'), True)}</td>"
        f"<td>{_interval(s.get('delta_ci'))}</td></tr>"
        for name, s in _groups(c)
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _plot(c: Comparison) -> str:
    """A forest plot of each group's difference and interval, as inline SVG."""
    groups = [(n, s) for n, s in _groups(c) if _finite(s.get("delta"))]
    if not groups:
        return '<p class="muted">No difference to plot (no baseline, or undefined values).</p>'
    limit = _slice_limit(c)
    ends = [0.0] if limit is None else [0.0, limit]
    for _, s in groups:
        ends.append(s["delta"])
        ends.extend(v for v in (s.get("delta_ci") or []) if _finite(v))
    data_low, data_high = min(ends), max(ends)
    pad = (data_high - data_low) * 0.08 or 0.01
    low, high = data_low - pad, data_high + pad
    plot = _WIDTH - _LABEL - 20

    def x(v: float) -> float:
        return _LABEL + (v - low) / (high - low) * plot

    height = _ROW * len(groups) + 40
    better = "higher" if c.higher_is_better else "lower"
    out = [
        f'<svg width="{_WIDTH}" height="{height}" '
        f'role="img" aria-label="difference per slice with intervals">',
        f'<line x1="{x(0):.1f}" y1="10" x2="{x(0):.1f}" y2="{height - 25}" stroke="#999" '
        'stroke-dasharray="4 3"/>',
    ]
    for i, (name, s) in enumerate(groups):
        y = 20 + i * _ROW
        ci = s.get("delta_ci") or []
        good = (s["delta"] > 0) == c.higher_is_better
        colour = "#1a7f37" if good else "#cf222e"
        out.append(
            f'<text x="{_LABEL - 8}" y="{y + 4}" text-anchor="end" font-size="12">'
            f"{escape(name)} ({s.get('rows', 0):,})</text>"
        )
        if len(ci) == 2 and all(_finite(v) for v in ci):
            out.append(
                f'<line x1="{x(ci[0]):.1f}" y1="{y}" x2="{x(ci[1]):.1f}" y2="{y}" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
        out.append(f'<circle cx="{x(s["delta"]):.1f}" cy="{y}" r="4" fill="{colour}"/>')
    if limit is not None:
        out.append(
            f'<line x1="{x(limit):.1f}" y1="10" x2="{x(limit):.1f}" y2="{height - 25}" '
            'stroke="#cf222e" stroke-dasharray="2 3"/>'
        )
    axis = height - 8
    shown: list[float] = []
    for v in sorted({data_low, 0.0, data_high}):
        if all(abs(x(v) - x(u)) > 60 for u in shown):
            shown.append(v)
            out.append(
                f'<text x="{x(v):.1f}" y="{axis}" text-anchor="middle" font-size="11" '
                f'fill="#666">{v:+.4f}</text>'
            )
    out.append("</svg>")
    red = "; red dotted line: the worst a slice may do" if limit is not None else ""
    out.append(f'<p class="muted">{escape(c.metric)}: {better} is better; grey dashed line: '
               f"no difference{red}.</p>")  # fmt: skip
    return "".join(out)


def _slice_limit(c: Comparison) -> float | None:
    """Where the slice_regression gate's limit lies on the difference axis, if it ran."""
    for g in c.gates:
        if g.name == "slice_regression" and g.threshold is not None and _finite(g.threshold):
            return -g.threshold if c.higher_is_better else g.threshold
    return None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
