"""A self-contained HTML report of a monitor result.

:func:`render_html` turns the JSON form of a monitor result (``MonitorResult.to_dict()``,
``PredictionMonitorResult.to_dict()``, or a stored report read back from the catalog: plain
dicts, no Python objects) into one page with nothing outside it: the CSS is in a ``<style>``
block and every plot is inline SVG (:mod:`regrow.monitor._plots`). :func:`write_html` writes it
atomically. Each section appears only when its data is there:

=========================  ===================================================================
section                    from
=========================  ===================================================================
header and verdict         ``summary``, ``chunking``, ``generated_at``
alerts                     ``alerts``
performance                ``estimates`` (estimated and realised, one plot per metric),
                           ``performance`` (labelled), ``calibration``
multivariate drift         ``multivariate`` (one plot per method)
drift per feature          ``chunk_drift``: one heatmap of every column's effect per chunk,
                           then one plot per column and test for the first ``max_columns``
                           (drifted first); ``drift``: the whole-window table; ``fdr``
distributions              ``distributions`` (drifted columns first, at most ``max_columns``)
attribution                ``impacts``
data quality, timings      ``quality``, ``chunking.notes``, ``timings``
=========================  ===================================================================

Every string from the report is escaped; the same dict always gives the same page (the only
time shown is ``generated_at``, when the report has one).

>>> page = render_html({"summary": {"model": "churn@v3", "rows": 1200, "task": "regression"}})
>>> page.startswith("<!DOCTYPE html>"), "churn@v3" in page, "<svg" in page
(True, True, False)
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from regrow.errors import ConfigError, DataError
from regrow.monitor import _plots
from regrow.monitor._html import (
    CSS,
    Column,
    Row,
    chunk_name,
    esc,
    figure,
    flag,
    notes,
    num,
    number,
    plots,
    records,
    series_plot,
    span,
    text,
)
from regrow.monitor._report_drift import (
    distributions_section,
    drift_section,
    drifted_columns,
    whole_window,
)

__all__ = ["MAX_COLUMNS", "render_html", "write_html"]

MAX_COLUMNS = 8
"""Columns drawn one by one per section by default (drifted ones first); the heatmap and the
tables still show every column. A plot costs matplotlib about 0.05-0.2 s."""

_CHUNK = Column("chunk", lambda r: esc(chunk_name(r.get("chunk"))))


def _header(report: Row, title: str) -> str:
    s: Row = report["summary"]
    alerts = s.get("alerts", len(report.get("alerts") or ()))
    drifted = drifted_columns(report)
    listed = ", ".join(drifted[:8]) + (", …" if len(drifted) > 8 else "")
    parts = [
        f"{num(alerts)} alert{'' if alerts == 1 else 's'}",
        f"{len(drifted)} drifted column{'' if len(drifted) == 1 else 's'}"
        + (f" ({listed})" if drifted else ""),
    ]
    if s.get("multivariate_drifted") is not None:
        parts.append(f"multivariate drift: {'yes' if s['multivariate_drifted'] else 'no'}")
    if "candidates" in s:
        parts.append(f"members to update: {', '.join(map(str, s['candidates'] or ())) or 'none'}")
    bad = bool(alerts or drifted or s.get("multivariate_drifted"))
    facts = {
        "model": s.get("model") or s.get("version"),
        "version": s.get("version") if s.get("version") != s.get("model") else None,
        "window": s.get("window"),
        "rows": s.get("rows"),
        "usable rows": s.get("usable_rows") if s.get("usable_rows") != s.get("rows") else None,
        "task": s.get("task"),
        "labelled": s.get("labelled"),
        "chunking": (report.get("chunking") or {}).get("describe"),
        "generated": report.get("generated_at"),
    }
    shown = {k: v for k, v in facts.items() if v is not None and v != ""}
    dl = "".join(f"<div><dt>{k}</dt><dd>{num(v)}</dd></div>" for k, v in shown.items())
    return (
        f'<header><h1>{esc(title)}</h1><p class="verdict {"bad" if bad else "good"}">'
        f'{" · ".join(map(esc, parts))}</p><dl class="facts">{dl}</dl></header>'
    )


def _alerts(report: Row) -> str:
    threshold = Column(
        "threshold", lambda a: f"{esc(a.get('direction') or '')} {num(a.get('threshold'))}"
    )
    columns = [text("signal"), _CHUNK, number("value"), threshold, text("why")]
    return records([{**a, "alert": True} for a in report["alerts"]], columns, bad="alert")


def _with_alerts(row: Row, metric: str, alerts: Sequence[Row], realised_only: bool) -> Row:
    """``row`` with the alerts on ``metric`` in its chunk: ``alert`` (on the plotted value),
    ``realised_alert`` and the alert's ``threshold``."""
    here = {str(a.get("signal")).partition(" ")[0]: a for a in alerts
            if a.get("chunk") == row.get("chunk") and a.get("signal") in
            (f"estimated {metric}", f"realised {metric}")}  # fmt: skip
    first = here.get("realised" if realised_only else "estimated") or here.get("realised")
    return {
        **row,
        "alert": bool(row.get("alert")) or ("realised" if realised_only else "estimated") in here,
        "realised_alert": not realised_only and "realised" in here,
        "threshold": first.get("threshold") if first else None,
    }


def _performance(report: Row, order: Sequence[str]) -> str:
    estimates: Row = report.get("estimates") or {}
    rows: list[Row] = list(estimates.get("rows") or ())
    perf: Row = report.get("performance") or {}
    labelled: list[Row] = list(perf.get("rows") or ())
    out = []
    if estimates.get("method"):
        out.append(
            f'<p class="note">Estimated without labels by {esc(estimates["method"]).upper()}, '
            f"fitted on {num(estimates.get('reference_rows'))} reference rows.</p>"
        )
    alerts: list[Row] = list(report.get("alerts") or ())
    realised_only = not rows and bool(labelled) and all("chunk" in r for r in labelled)
    kind = "realised" if realised_only else "estimated"
    series = rows or (labelled if realised_only else [])
    figures = []
    for metric in dict.fromkeys(str(r.get("metric")) for r in series):
        mine = [r for r in series if str(r.get("metric")) == metric]
        mine = [_with_alerts(r, metric, alerts, realised_only) for r in mine]
        svg = series_plot(
            mine,
            order,
            metric,
            f"performance:{metric}",
            ylabel=metric,
            value_label=kind,
        )
        figures.append(figure(svg, f"{kind} {metric} per chunk with its interval; red: alerts"))
    out.append(plots(figures))
    columns = [
        _CHUNK,
        text("metric"),
        number("value", "estimate"),
        span("low", "high"),
        number("reference"),
        number("realised"),
        flag("alert"),
    ]
    if rows:
        out.append(f"<details><summary>every estimate ({len(rows)})</summary>")
        out.append(records(rows, columns, bad="alert") + "</details>")
    out.append(notes(estimates.get("warnings") or ()))
    if labelled:
        keys = [k for k in ("component", "kind", "scope", "group", "metric") if k in labelled[0]]
        columns = [
            *([_CHUNK] if "chunk" in labelled[0] else []),
            *map(text, keys),
            number("value"),
            span("low", "high"),
            number("n", "rows"),
        ]
        how = f" ({esc(perf['interval'])})" if perf.get("interval") else ""
        out.append(f"<h3>Labelled performance{how}</h3>{records(labelled, columns)}")
    calibration: Row = report.get("calibration") or {}
    if calibration:
        keys = ["observed_positive_rate", "expected_positive_rate", "ece", "calibration_z"]
        columns = [
            flag("calibration_drift", "drifted"),
            *(number(k, k.replace("_", " ")) for k in keys),
        ]
        out.append(f"<h3>Calibration</h3>{records([calibration], columns, 'calibration_drift')}")
        out.append(notes(calibration.get("warnings") or ()))
    return "".join(out)


def _multivariate(report: Row, order: Sequence[str]) -> str:
    rows: list[Row] = list(report["multivariate"])
    figures = []
    for method in dict.fromkeys(str(r.get("method")) for r in rows):
        mine = [r for r in rows if str(r.get("method")) == method]
        svg = series_plot(
            mine,
            order,
            method.replace("_", " "),
            f"multivariate:{method}",
            value_label="value",
            marked_label="drifted",
            threshold_label="threshold",
        )
        figures.append(figure(svg, f"{method} per chunk with its interval; red ring: drifted"))
    columns = [
        text("method"),
        _CHUNK,
        number("value"),
        span("low", "high"),
        number("threshold"),
        flag("drifted"),
        text("why"),
    ]
    return plots(figures) + records(rows, columns, bad="drifted")


def _impacts(report: Row) -> str:
    impacts: list[Row] = list(report["impacts"])
    svg = _plots.impact_plot(impacts, salt="impacts")
    columns = [
        text("component"),
        text("kind"),
        number("impact"),
        span("interval"),
        flag("candidate"),
        text("why"),
    ]
    return plots([figure(svg, "impact with its interval; red: a member to update", wide=True)]) + (
        records(impacts, columns, bad="candidate")
    )


def _quality(report: Row) -> str:
    quality: Row = report.get("quality") or {}
    readers = Column("read by", lambda f: esc(", ".join(map(str, f.get("readers") or ()))))
    columns = [text("column"), text("kind"), number("rows"), flag("unusable"), readers, text("why")]
    out = [records(quality["findings"], columns, bad="unusable")] if quality.get("findings") else []
    if quality.get("coerced"):
        out.append(f"<p>Read as another type: {esc(', '.join(map(str, quality['coerced'])))}.</p>")
    found = [*(quality.get("notes") or ()), *((report.get("chunking") or {}).get("notes") or ())]
    return "".join(out) + notes(found)


def _timings(report: Row) -> str:
    rows = [{"step": k, "seconds": v} for k, v in report["timings"].items()]
    return records(rows, [text("step"), number("seconds")])


def _sections(
    report: Row, order: Sequence[str], limit: int
) -> list[tuple[str, str, Callable[[], str]]]:
    """``(id, heading, body)`` of each section whose data is in ``report``."""
    est: Row = report.get("estimates") or {}
    quality: Row = report.get("quality") or {}
    chunking: Row = report.get("chunking") or {}
    candidates = [
        ("alerts", "Alerts", report.get("alerts"), lambda: _alerts(report)),
        (
            "performance",
            "Performance: estimated and realised",
            est.get("rows") or report.get("performance") or report.get("calibration"),
            lambda: _performance(report, order),
        ),
        (
            "multivariate",
            "Multivariate drift",
            report.get("multivariate"),
            lambda: _multivariate(report, order),
        ),
        (
            "drift",
            "Drift per feature",
            whole_window(report) or report.get("chunk_drift"),
            lambda: drift_section(report, order, limit),
        ),
        (
            "distributions",
            "Reference and current distributions",
            report.get("distributions"),
            lambda: distributions_section(report, limit),
        ),
        (
            "attribution",
            "Attribution: which members the drift hurts",
            report.get("impacts"),
            lambda: _impacts(report),
        ),
        (
            "quality",
            "Data quality and notes",
            quality.get("findings")
            or quality.get("notes")
            or quality.get("coerced")
            or chunking.get("notes"),
            lambda: _quality(report),
        ),
        ("timings", "Timings (seconds)", report.get("timings"), lambda: _timings(report)),
    ]
    return [(key, heading, body) for key, heading, data, body in candidates if data]


def render_html(
    report: Mapping[str, Any], *, title: str | None = None, max_columns: int = MAX_COLUMNS
) -> str:
    """The monitor result ``report`` (its JSON form) as one self-contained HTML page.

    ``title`` defaults to "Monitor report: <model>". At most ``max_columns`` drift series and
    distributions are drawn one by one (drifted columns first; the heatmap and the tables show
    them all). Raises :class:`~regrow.errors.DataError` when ``report`` has no ``summary`` or
    holds values a plot cannot take.
    """
    if not isinstance(report, Mapping) or not isinstance(report.get("summary"), Mapping):
        raise DataError(
            f"not a monitor result: a {type(report).__name__} without a 'summary' mapping",
            hint="pass MonitorResult.to_dict(), PredictionMonitorResult.to_dict() or a "
            "stored monitor report",
        )
    if isinstance(max_columns, bool) or not isinstance(max_columns, int) or max_columns < 0:
        raise ConfigError(
            f"the 'max_columns' parameter must be an int >= 0; got {max_columns!r}",
            hint=f"columns drawn one by one per section; the default is {MAX_COLUMNS}",
        )
    summary: Row = report["summary"]
    title = title or f"Monitor report: {summary.get('model') or summary.get('version') or 'model'}"
    chunks = (report.get("chunking") or {}).get("chunks") or ()
    order = [str(c.get("label")) for c in chunks]
    shown = [(key, heading, body()) for key, heading, body in _sections(report, order, max_columns)]
    nav = "".join(f'<a href="#{key}">{esc(heading)}</a>' for key, heading, _ in shown)
    sections = "".join(
        f'<section id="{key}"><h2>{esc(heading)}</h2>{body}</section>'
        for key, heading, body in shown
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
        f"{_header(report, title)}{f'<nav>{nav}</nav>' if nav else ''}{sections}"
        "</main></body></html>\n"
    )


def write_html(
    report: Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    max_columns: int = MAX_COLUMNS,
) -> Path:
    """Render ``report`` (see :func:`render_html`) and write it to ``path`` atomically.

    The page is rendered first, then written to a temporary file beside ``path`` and moved over
    it: an error leaves no file behind and an existing one untouched. Returns the path.
    """
    page = render_html(report, title=title, max_columns=max_columns)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # open(..., "x") rather than mkstemp: the file gets the usual permissions (umask), not 0600
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as out:
            out.write(page)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
