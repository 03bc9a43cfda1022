"""`regrow evaluate`: judging a candidate against a baseline on the same rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from regrow.cli._app import AsJson, Home, app, out, print_json, workspace
from regrow.cli._progress import print_timings, progress_line, with_progress

if TYPE_CHECKING:
    from regrow.evaluate.evaluation import Comparison

__all__ = ["evaluate"]


@app.command()
def evaluate(
    candidate: Annotated[str, typer.Argument(help="Candidate version.")],
    snapshot: Annotated[str, typer.Option(help="Labelled snapshot to evaluate on.")],
    baseline: Annotated[str | None, typer.Option(help="Baseline version.")] = None,
    metric: Annotated[
        str | None, typer.Option(help="roc_auc, log_loss, accuracy, rmse, mae")
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Compare a candidate with a baseline on the same snapshot and slices, with intervals."""
    with workspace(home) as ws, progress_line(not as_json) as progress:
        record, result = with_progress(ws.evaluate, progress)(
            candidate, snapshot, baseline=baseline, metric=metric
        )
    if as_json:
        print_json(
            {
                "id": record.id,
                "verdict": result.verdict,
                "reasons": list(result.reasons),
                **result.as_dict(),
            }
        )
    else:
        out.print(_comparison_table(result))
        out.print(Text.assemble("verdict: ", (result.verdict, "bold")))
        for reason in result.reasons:
            out.print(f"  {reason}")
    print_timings(result, record)


def _num(value: Any, sign: bool = False) -> str:
    if value is None:
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
