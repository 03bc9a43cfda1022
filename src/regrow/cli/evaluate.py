"""`regrow evaluate`: judging a candidate against a baseline on the same rows, through gates."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from regrow.cli._app import AsJson, Home, app, out, print_json, report_file, workspace
from regrow.cli._progress import print_timings, progress_line, with_progress

if TYPE_CHECKING:
    from regrow.evaluate.evaluation import Comparison
    from regrow.evaluate.gates import GateResult

__all__ = ["evaluate", "gate_table"]


@app.command()
def evaluate(
    candidate: Annotated[str, typer.Argument(help="Candidate version.")],
    snapshot: Annotated[str, typer.Option(help="Labelled snapshot to evaluate on.")],
    baseline: Annotated[
        str | None,
        typer.Option(help="Baseline version (default: the system's champion, if another)."),
    ] = None,
    metric: Annotated[
        str | None, typer.Option(help="roc_auc, log_loss, accuracy, rmse, mae")
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(help="Policy file whose gates section decides (default: the default policy)."),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            help="Also write the self-contained HTML report to this file.", callback=report_file
        ),
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Compare a candidate with a baseline on the same snapshot and slices, with intervals, and
    run the policy's gates: blessed only when every gate passes.

    Without --baseline, the baseline is the system's champion when it exists and is not the
    candidate itself. Gates that judge intervals are inconclusive on too few rows (fewer than
    30 by default, per gate `min_rows` in the policy), so such an evaluation is not blessed."""
    with workspace(home) as ws, progress_line(not as_json) as progress:
        record, result = with_progress(ws.evaluate, progress)(
            candidate, snapshot, baseline=baseline, metric=metric, policy=policy
        )
        html = ws.store.get(record.results["report"]) if report is not None else b""
    if report is not None:
        report.write_bytes(html)
    if as_json:
        print_json(
            {
                "id": record.id,
                "verdict": result.verdict,
                "reasons": list(result.reasons),
                **result.as_dict(),
                "baseline_ref": record.results.get("baseline_ref"),
                "baseline_source": record.results.get("baseline_source"),
                "policy": record.results.get("policy"),
                "report": record.results.get("report"),
            }
        )
    else:
        out.print(f"baseline: {record.results.get('baseline_source') or 'none'}")
        out.print(_comparison_table(result))
        out.print(gate_table(result.gates))
        for note in result.notes:
            out.print(f"note: {note}")
        out.print(Text.assemble("verdict: ", (result.verdict, "bold")))
        for reason in result.reasons:
            out.print(f"  {reason}")
        if report is not None:
            out.print(f"report: {report}")
    print_timings(result, record)


def _num(value: Any, sign: bool = False) -> str:
    if value is None or value != value:  # None, or NaN: undefined on these rows
        return "-"
    return f"{value:+.4f}" if sign else f"{value:.4f}"


def _interval(ci: Any) -> str:
    if not ci or any(v is None for v in ci):
        return "-"
    return f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"


def _comparison_table(result: Comparison) -> Table:
    """The whole data, then each slice: rows, baseline, candidate, difference, interval."""
    table = Table(
        title=f"{result.metric}: candidate vs baseline (difference: candidate - baseline)"
    )
    for col in ("slice", "rows", "baseline", "candidate", "difference", "interval"):
        if col == "slice":  # a long name wraps, never loses its end
            table.add_column(col, overflow="fold")
        else:
            table.add_column(col, justify="right", no_wrap=True)
    table.add_row(
        "all", f"{result.rows:,}", _num(result.baseline), _num(result.candidate),
        _num(result.delta, sign=True), _interval(result.delta_ci),
    )  # fmt: skip
    for name, s in result.slices.items():
        table.add_row(
            name, f"{s['rows']:,}", _num(s.get("baseline")), _num(s.get("candidate")),
            _num(s.get("delta"), sign=True), _interval(s.get("delta_ci")),
        )  # fmt: skip
    return table


_STYLES = {"pass": "green", "fail": "red", "inconclusive": "yellow"}


def gate_table(results: tuple[GateResult, ...]) -> Table | Text:
    """One row per gate: value, interval, threshold, status and why."""
    if not results:
        return Text("gates: none configured, so nothing is blessed")
    table = Table(title="gates")
    for col in ("gate", "value", "interval", "threshold", "status"):
        right = col not in ("gate", "status")
        table.add_column(col, justify="right" if right else "left", no_wrap=True)
    table.add_column("why", overflow="fold", min_width=30, ratio=1)
    for g in results:
        table.add_row(
            g.name, _value(g.value), _span(g.interval), _value(g.threshold),
            Text(g.status, style=_STYLES.get(g.status, "")), g.why,
        )  # fmt: skip
    return table


def _value(value: float | None) -> str:
    if value is None or value != value:  # NaN
        return "-"
    if float(value).is_integer():  # a count, a byte size, a threshold of 0
        return f"{int(value):,}"
    return f"{value:.4g}" if abs(value) >= 1e4 else f"{value:.4f}"


def _span(interval: tuple[float, float] | None) -> str:
    if interval is None or any(v is None or v != v for v in interval):
        return "-"
    return f"[{_value(interval[0])}, {_value(interval[1])}]"
