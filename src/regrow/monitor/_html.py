"""HTML building blocks of the monitor report: escaping, number cells, tables, the stylesheet.

Every value that comes from a report passes through :func:`esc` or :func:`num` before it
reaches the page. Tables are described by columns: a header and a function from a row (a dict
of the report) to the cell's HTML.

>>> page = records([{"column": "<b>", "effect": 0.12345}], [text("column"), number("effect")])
>>> page[page.index("<tbody>") : page.index("</table>")]
'<tbody><tr><td>&lt;b&gt;</td><td class="num">0.1235</td></tr></tbody>'
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from regrow.monitor._plots import Point, chunk_plot

__all__ = [
    "CSS",
    "Column",
    "Row",
    "chunk_name",
    "esc",
    "figure",
    "flag",
    "notes",
    "num",
    "number",
    "ordered",
    "pair",
    "plots",
    "records",
    "series_plot",
    "span",
    "table",
    "text",
]

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Column:
    """A table column: its header, the cell's HTML for a row, and whether it is a number."""

    header: str
    cell: Callable[[Row], str]
    numeric: bool = False


CSS = """
:root{--ink:#222;--muted:#5f6670;--line:#e1e4e8;--bad:#c62828;--good:#2e7d32;--bg:#f6f7f9}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
  font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:1280px;margin:0 auto;padding:20px 28px 60px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0 0 10px}
h3{font-size:14px;margin:16px 0 6px}
header,section{background:#fff;border:1px solid var(--line);border-radius:8px;
  padding:16px 20px;margin:0 0 16px}
nav{margin:0 0 16px;font-size:13px}nav a{margin-right:14px;color:#2f6db5;text-decoration:none}
.verdict{font-size:15px;font-weight:600;padding:8px 12px;border-radius:6px;margin:10px 0}
.verdict.bad{background:#fdecea;color:var(--bad)}
.verdict.good{background:#e8f5e9;color:var(--good)}
dl.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));
  gap:4px 18px;margin:0}
dl.facts div{display:flex;gap:8px;min-width:0}dt{color:var(--muted);white-space:nowrap}
dd{margin:0;font-weight:600;overflow-wrap:anywhere}
.scroll{overflow-x:auto;max-width:100%;max-height:640px;overflow-y:auto}
table{border-collapse:collapse;font-size:13px}
th,td{text-align:left;padding:4px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#fafbfc;position:sticky;top:0;white-space:nowrap}
td:not(:last-child){white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#fff5f5}tr.bad td:first-child{box-shadow:inset 3px 0 var(--bad)}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:12px;
  margin:0 0 12px}
figure{margin:0;border:1px solid var(--line);border-radius:6px;padding:6px;background:#fff}
figure.wide{grid-column:1/-1}
figure.wide svg{width:auto;max-width:100%;margin:0 auto}
figure svg{width:100%;height:auto;display:block}
svg *{stroke-linejoin:round;stroke-linecap:butt}
figcaption,.note{color:var(--muted);font-size:12px}
ul.notes{margin:6px 0;padding-left:20px}
details{margin:8px 0}summary{cursor:pointer;color:var(--muted)}
"""


def esc(value: object) -> str:
    """``value`` as escaped HTML text (quotes too, so it is safe in attributes)."""
    return html.escape(str(value), quote=True)


def num(value: object) -> str:
    """A value for a cell: thousands separators, 4 significant digits, an en dash for none.

    >>> num(1234567), num(0.000123456), num(True), num(None) == num(float("nan")) == "\u2013"
    ('1,234,567', '0.0001235', 'yes', True)
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return esc(value)


def pair(bounds: object) -> tuple[Any, Any]:
    """An interval ``[low, high]`` of the report as two values (None, None when missing)."""
    if isinstance(bounds, Sequence) and not isinstance(bounds, str) and len(bounds) == 2:
        return bounds[0], bounds[1]
    return None, None


def chunk_name(label: object) -> str:
    """A chunk's label; None (not split) is the whole window."""
    return "whole window" if label is None else str(label)


def ordered(rows: Iterable[Row], order: Sequence[str]) -> list[Row]:
    """``rows`` sorted by their ``chunk`` in the chunking's ``order`` (unknown labels last)."""
    rank = {label: i for i, label in enumerate(order)}
    return sorted(rows, key=lambda r: rank.get(str(r.get("chunk")), len(rank)))


def text(key: str, header: str | None = None) -> Column:
    """A column showing ``row[key]`` as text."""
    return Column(header or key, lambda r: esc("" if r.get(key) is None else r.get(key)))


def number(key: str, header: str | None = None) -> Column:
    """A column showing ``row[key]`` as a number."""
    return Column(header or key, lambda r: num(r.get(key)), numeric=True)


def flag(key: str, header: str | None = None) -> Column:
    """A column showing whether ``row[key]`` is true (yes/no)."""
    return Column(header or key, lambda r: num(bool(r.get(key))))


def span(low: str, high: str | None = None, header: str = "interval") -> Column:
    """A column showing the interval ``[row[low], row[high]]``, or ``row[low]`` as a pair."""

    def cell(r: Row) -> str:
        lo, hi = (r.get(low), r.get(high)) if high else pair(r.get(low))
        return "–" if lo is None and hi is None else f"[{num(lo)}, {num(hi)}]"

    return Column(header, cell, numeric=True)


def table(
    head: Sequence[str],
    rows: Iterable[Sequence[str]],
    bad: Iterable[bool] = (),
    numeric: Sequence[bool] = (),
) -> str:
    """A scrolling table of HTML cells; rows whose ``bad`` flag is set are marked in red,
    columns whose ``numeric`` flag is set are right-aligned."""
    flags = list(bad)
    right = [i < len(numeric) and numeric[i] for i in range(len(head))]
    body = []
    for i, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{c}</td>' if j < len(right) and right[j] else f"<td>{c}</td>"
            for j, c in enumerate(row)
        )
        mark = ' class="bad"' if i < len(flags) and flags[i] else ""
        body.append(f"<tr{mark}>{cells}</tr>")
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    return (
        f'<div class="scroll"><table><thead><tr>{th}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def records(rows: Iterable[Row], columns: Sequence[Column], bad: str | None = None) -> str:
    """A :func:`table` of ``rows`` with ``columns``; ``bad`` names a key that marks a row."""
    rows = list(rows)
    return table(
        [c.header for c in columns],
        ([c.cell(r) for c in columns] for r in rows),
        (bool(r.get(bad)) for r in rows) if bad else (),
        [c.numeric for c in columns],
    )


def notes(items: Iterable[object]) -> str:
    """A list of notes, or nothing when there are none."""
    lis = "".join(f"<li>{esc(n)}</li>" for n in items)
    return f'<ul class="notes">{lis}</ul>' if lis else ""


def figure(svg: str, caption: str, *, wide: bool = False) -> str:
    """A plot with its caption (``wide`` spans the whole row of the grid)."""
    cls = ' class="wide"' if wide else ""
    return f"<figure{cls}>{svg}<figcaption>{esc(caption)}</figcaption></figure>"


def plots(figures: Sequence[str]) -> str:
    """A responsive grid of figures, or nothing."""
    return f'<div class="plots">{"".join(figures)}</div>' if figures else ""


def series_plot(
    rows: Sequence[Row], order: Sequence[str], title: str, salt: str, **options: Any
) -> str:
    """:func:`~regrow.monitor._plots.chunk_plot` of report rows (``chunk``, ``value``, ``low``,
    ``high``, ``alert`` or ``drifted``, ``realised``, ``realised_alert``, ``threshold``,
    ``reference``) in the chunks' ``order``; the first row alone (the whole window) when none
    has a chunk."""
    shown = ordered([r for r in rows if r.get("chunk") is not None], order) or rows[:1]
    points = [
        Point(
            chunk_name(r.get("chunk")),
            r.get("value"),
            r.get("low"),
            r.get("high"),
            marked=bool(r.get("alert") or r.get("drifted")),
            realised=r.get("realised"),
            realised_marked=bool(r.get("realised_alert")),
            threshold=r.get("threshold"),
        )
        for r in shown
    ]
    reference = next((r["reference"] for r in shown if r.get("reference") is not None), None)
    return chunk_plot(points, title=title, salt=salt, reference=reference, **options)
