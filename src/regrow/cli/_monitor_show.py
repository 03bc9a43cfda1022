"""Print a monitor result from its JSON form: the live result and a stored report alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from regrow.cli._app import out

__all__ = ["show_report"]

_CHUNK_METRICS = 3  # metrics shown per chunk in the chunk table
_MAX_ROWS = 60


def show_report(report: Mapping[str, Any]) -> None:
    """Every section a person reads first: drift, chunks, multivariate drift, estimated and
    realised performance, impact, data quality, alerts, and the verdict."""
    summary = report.get("summary", {})
    _drift(report, summary)
    _chunks(report)
    _multivariate(report)
    _estimates(report)
    _impacts(report.get("impacts") or [])
    _quality(report.get("quality") or {})
    _alerts(report.get("alerts") or [])
    if report.get("fdr"):
        out.print(f"false discoveries: {report['fdr']}")
    drifted = _names(summary.get("drifted"))
    sliced = summary.get("drifted_in_slices") or {}
    if sliced:  # drift only some slices show
        drifted = (
            f"{drifted} (in slice "
            + "; ".join(f"{name}: {', '.join(cols)}" for name, cols in sliced.items())
            + " only)"
        )
    line = f"drifted: {drifted}; multivariate drift: "
    whole = [m for m in report.get("multivariate") or [] if m.get("chunk") is None]
    if whole and all(m.get("value") is None for m in whole):
        line += _too_few(whole[0])
    else:
        line += {True: "yes", False: "no"}.get(summary.get("multivariate_drifted"), "not checked")
    line += f"; alerts: {summary.get('alerts', 0)}"
    if "candidates" in summary:
        line += f"; members to update: {_names(summary.get('candidates'))}"
    out.print(line)


def _names(names: Any) -> str:
    """Column or member names for people: ``a, b`` (a stored list printed as a Python list
    read ``['a', 'b']``), ``none`` for none."""
    if not names:
        return "none"
    if isinstance(names, str):
        return names
    return ", ".join(str(n) for n in names)


def _too_few(check: Mapping[str, Any]) -> str:
    """What a check that could not be judged shows instead of its value."""
    rows = check.get("rows")
    return "not judged" if rows is None else f"{int(rows):,} rows: too few to tell"


def _num(value: Any, fmt: str = ".3g") -> str:
    return "" if value is None else format(float(value), fmt)


def _drift(report: Mapping[str, Any], summary: Mapping[str, Any]) -> None:
    title = f"{summary.get('model') or 'model'}"
    if summary.get("window"):
        title += f" on window {str(summary['window'])[:12]}"
    title += f" ({int(summary.get('rows') or 0):,} rows)"
    table = Table(title=title)
    drifts = report.get("drift") or []
    # Members trained on different snapshots: a column read by both is compared with each.
    referenced = any(d.get("reference") for d in drifts)
    columns = ("column", "slice", "test", "effect", "p (BH)", "drifted")
    for col in ("reference", *columns) if referenced else columns:
        table.add_column(col)
    for drift in drifts:
        for f in drift.get("features", []):
            flag = Text("drifted", style="yellow") if f.get("drifted") else Text("-", style="dim")
            cells = (
                str(f["column"]), f.get("slice") or "all", str(f["test"]),
                _num(f.get("effect")), _num(f.get("adjusted_p_value"), ".2g"), flag,
            )  # fmt: skip
            table.add_row(*((str(drift.get("reference") or ""), *cells) if referenced else cells))
    out.print(table)
    if referenced:
        out.print("reference: the training snapshot each row was compared with (its members)")


def _chunks(report: Mapping[str, Any]) -> None:
    chunking = report.get("chunking") or {}
    chunks = chunking.get("chunks") or []
    if not chunks:
        return
    by_chunk: dict[str, list[str]] = {}
    for drift in report.get("chunk_drift") or []:
        cols = [f["column"] for f in drift.get("features", []) if f.get("drifted")
                and f.get("slice") is None]  # fmt: skip
        by_chunk.setdefault(str(drift.get("chunk")), []).extend(cols)
    multi: dict[str, list[str]] = {}
    for m in report.get("multivariate") or []:
        if m.get("chunk") is not None:
            mark = "!" if m.get("drifted") else ""
            value = _num(m.get("value")) if m.get("value") is not None else "too few rows"
            multi.setdefault(str(m["chunk"]), []).append(f"{value}{mark}")
    estimates = (report.get("estimates") or {}).get("rows") or []
    metrics = _chunk_metrics(estimates)
    cells: dict[tuple[str, str], str] = {}
    for r in estimates:
        if r.get("chunk") is not None and r["metric"] in metrics:
            text = f"{_num(r.get('value'))} [{_num(r.get('low'))}, {_num(r.get('high'))}]"
            if r.get("realised") is not None:
                text += f" ({_num(r['realised'])})"
            cells[(str(r["chunk"]), r["metric"])] = text + (" !" if r.get("alert") else "")
    table = Table(title=f"chunks: {chunking.get('describe', '')}")
    for col in ("chunk", "rows", "drifted columns", "multivariate", *metrics):
        table.add_column(col)
    for c in chunks[:_MAX_ROWS]:
        label = str(c["label"])
        drifted = ", ".join(dict.fromkeys(by_chunk.get(label, []))) or "-"
        table.add_row(
            label, f"{int(c['rows']):,}", drifted, " / ".join(multi.get(label, [])) or "-",
            *(cells.get((label, m), "") for m in metrics),
        )  # fmt: skip
    out.print(table)
    if len(chunks) > _MAX_ROWS:
        out.print(f"({len(chunks) - _MAX_ROWS} more chunks in --json and the HTML report)")
    if metrics:
        out.print("estimate [band] (realised); ! an alert; multivariate: " + " / ".join(
            dict.fromkeys(str(m["method"]) for m in report.get("multivariate") or [])
        ))  # fmt: skip


def _chunk_metrics(estimates: Sequence[Mapping[str, Any]]) -> list[str]:
    """The metrics the chunk table shows: those that alerted in a chunk first, then the
    headline ones (AUC, accuracy, F1; RMSE, MAE), at most three."""
    alerted = [r["metric"] for r in estimates if r.get("alert") and r.get("chunk") is not None]
    known = {r["metric"] for r in estimates}
    headline = [m for m in ("roc_auc", "accuracy", "f1", "rmse", "mae", "mape") if m in known]
    rest = [r["metric"] for r in estimates]
    return list(dict.fromkeys([*alerted, *headline, *rest]))[:_CHUNK_METRICS]


def _multivariate(report: Mapping[str, Any]) -> None:
    rows = [m for m in report.get("multivariate") or [] if m.get("chunk") is None]
    if not rows:
        return
    table = Table(title="multivariate drift (whole window)")
    for col in ("method", "value", "interval", "threshold", "drifted"):
        table.add_column(col)
    for m in rows:
        if m.get("value") is None:  # too few rows to judge: say so instead of empty cells
            table.add_row(str(m["method"]), _too_few(m), "-", "-", Text("-", style="dim"))
            continue
        table.add_row(
            str(m["method"]), _num(m.get("value"), ".4g"),
            f"[{_num(m.get('low'), '.4g')}, {_num(m.get('high'), '.4g')}]",
            _num(m.get("threshold"), ".4g"),
            Text("drifted", style="yellow") if m.get("drifted") else Text("-", style="dim"),
        )  # fmt: skip
    out.print(table)


def _estimates(report: Mapping[str, Any]) -> None:
    estimates = report.get("estimates") or {}
    rows = [r for r in estimates.get("rows") or [] if r.get("chunk") is None]
    for warning in estimates.get("warnings") or []:
        out.print(f"note: {warning}")
    if not rows:
        return
    method = str(estimates.get("method") or "").upper()
    # the alerts of the whole window on realised values (the rows' own flag is the estimate's)
    realised = {
        str(a["signal"]).removeprefix("realised ")
        for a in report.get("alerts") or []
        if str(a.get("signal", "")).startswith("realised ") and a.get("chunk") is None
    }
    cells = [r for r in rows if str(r["metric"]).startswith("confusion_matrix[")]
    if len(cells) > 8:  # a multiclass matrix: k x k rows would bury the metrics
        rows = [r for r in rows if r not in cells]
    table = Table(title=f"performance, whole window (estimated by {method}; realised with labels)")
    for col in ("metric", "estimate", "band", "reference", "realised", "alert at", "alert"):
        table.add_column(col)
    for r in rows:
        flagged = [w for w, on in (("estimate", r.get("alert")), ("realised", r["metric"] in
                   realised)) if on]  # fmt: skip
        table.add_row(
            str(r["metric"]), _num(r.get("value"), ".4f"),
            f"[{_num(r.get('low'), '.4f')}, {_num(r.get('high'), '.4f')}]",
            _num(r.get("reference"), ".4f"), _num(r.get("realised"), ".4f") or "-",
            _num(r.get("threshold"), ".4f"),
            Text(", ".join(flagged), style="red") if flagged else Text("-", style="dim"),
        )  # fmt: skip
    out.print(table)
    if len(cells) > 8:
        out.print(
            f"the confusion matrix's {len(cells)} cells are estimated too: `--json` or the HTML "
            "report (`regrow monitor show REPORT --report FILE.html`) lists them"
        )
    calibration = report.get("calibration")
    if calibration and calibration.get("calibration_drift"):
        warnings = list(calibration.get("warnings") or [])
        outside = [w.split()[1] for w in warnings if w.startswith("realised ")]
        matrix = [m for m in outside if m.startswith("confusion_matrix[")]
        if len(matrix) > 3:  # a multiclass matrix: its cells by count
            outside = [m for m in outside if m not in matrix] + [
                f"{len(matrix)} confusion-matrix cells"
            ]
        for warning in warnings:
            if not warning.startswith("realised "):
                out.print(f"calibration: {warning}")
        notes = (report.get("quality") or {}).get("notes") or []
        in_sample = any("in-sample" in str(n) for n in notes)
        if outside:
            one = len(outside) == 1 and len(matrix) <= 3  # not "8 confusion-matrix cells"
            fall = (
                "falls outside its estimated band" if one else "fall outside their estimated bands"
            )
            out.print(
                f"calibration: the realised {', '.join(outside)} {fall}: the labels no longer "
                "follow the scores as on the reference (a concept shift, which estimates "
                "without labels cannot see"
                + (
                    "; or, since the reference is the training data, a model that scores its "
                    "own training rows better than new ones: `regrow evaluate` on held-out rows "
                    "gives the estimates a fairer reference)"
                    if in_sample
                    else ")"
                )
            )


def _impacts(impacts: Sequence[Mapping[str, Any]]) -> None:
    if not impacts:
        return
    table = Table(title="impact on components (change in loss)")
    for col in ("component", "kind", "impact", "interval", "candidate"):
        table.add_column(col)
    for i in impacts:
        lo, hi = (i.get("interval") or [None, None])[:2]
        table.add_row(
            str(i["component"]), str(i.get("kind", "")), _num(i.get("impact"), "+.4f"),
            f"[{_num(lo, '+.4f')}, {_num(hi, '+.4f')}]",
            Text("yes", style="green") if i.get("candidate") else "no",
        )  # fmt: skip
    out.print(table)


def _quality(quality: Mapping[str, Any]) -> None:
    findings = quality.get("findings") or []
    if findings:
        table = Table(title="data quality (rows count from 0)")
        for col in ("column", "finding", "rows", "read by", "cannot take", "rows set aside"):
            table.add_column(col)
        for f in findings:
            blocked = f.get("blocked") or []
            table.add_row(
                str(f["column"]), str(f["kind"]), f"{int(f['rows']):,}",
                ", ".join(f.get("readers") or []) or "-",
                Text(", ".join(blocked), style="red") if blocked else "-",
                Text("yes", style="yellow") if f.get("unusable") else "no",
            )  # fmt: skip
        out.print(table)
        for f in findings:
            out.print(f"  {f['column']}: {f.get('why', '')}")
        missing = [
            str(f["column"]) for f in findings if f["kind"] == "missing" and f.get("readers")
        ]
        extra = [str(f["column"]) for f in findings if f["kind"] == "extra"]
        if missing and extra:  # as `regrow plan` and `regrow watch` say it
            out.print(
                f"hint: {', '.join(map(repr, missing))} is missing and "
                f"{', '.join(map(repr, extra))} is new: renamed upstream? `regrow adapters propose "
                "SNAPSHOT --system SYSTEM` proposes an adapter that reads the new name"
            )
    for note in quality.get("notes") or []:
        out.print(f"note: {note}")


def _alerts(alerts: Sequence[Mapping[str, Any]]) -> None:
    """One line per signal: where it crossed (whole window, chunks) and the first why."""
    if not alerts:
        return
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for a in alerts:
        grouped.setdefault(str(a["signal"]), []).append(a)
    out.print(Text(f"alerts ({len(alerts)}, by signal):", style="bold red"))
    for signal, found in grouped.items():
        # One alert per reference and test that crossed: each chunk is named once.
        where = list(dict.fromkeys(str(a.get("chunk") or "whole window") for a in found))
        shown = ", ".join(where[:4]) + (f" and {len(where) - 4} more" if len(where) > 4 else "")
        out.print(f"  {signal} [{shown}]: {found[0].get('why', '')}")
    out.print("  (every alert: --json or the HTML report)")
