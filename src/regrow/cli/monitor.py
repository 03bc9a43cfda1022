"""`regrow monitor`: drift per feature and slice, and its impact on each component."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from regrow.cli._app import AsJson, Home, Window, app, out, print_json, window_of, workspace
from regrow.cli._progress import print_timings, progress_line, with_progress

if TYPE_CHECKING:
    from regrow.monitoring import MonitorResult

__all__ = ["monitor"]


@app.command()
def monitor(
    version: Annotated[
        str, typer.Option("--version", help="Version to check, e.g. churn@champion.")
    ],
    window: Window,
    slices: Annotated[
        list[str] | None, typer.Option("--slice", help="Slice NAME of the window, repeatable.")
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Check a version on a window: drift per feature and slice, impact per component."""
    with workspace(home) as ws, progress_line(not as_json) as progress:
        result = with_progress(ws.monitor, progress)(
            version, window_of(ws, window), slices=slices or None
        )
    if as_json:
        print_json({**result.to_dict(), "report_id": result.record.id if result.record else None})
    else:
        _show_monitor(result)
    print_timings(result)


def _show_monitor(result: MonitorResult) -> None:
    """Drift per feature and slice, impact per component, data quality, and the verdict."""
    snap = result.window
    table = Table(title=f"{result.version.ref} on window {snap.id[:12]} ({snap.rows:,} rows)")
    for col in ("column", "slice", "test", "effect", "p (BH)", "drifted"):
        table.add_column(col)
    for report in result.drift:
        for f in report.features:
            flag = Text("drifted", style="yellow") if f.drifted else Text("-", style="dim")
            effect = "" if f.effect != f.effect else f"{f.effect:.3g}"
            p = "" if f.adjusted_p_value != f.adjusted_p_value else f"{f.adjusted_p_value:.2g}"
            table.add_row(f.column, f.slice or "all", f.test, effect, p, flag)
    out.print(table)
    impacts = Table(title="impact on components (change in loss)")
    for col in ("component", "kind", "impact", "interval", "candidate"):
        impacts.add_column(col)
    for i in result.impacts:
        lo, hi = i.interval
        impacts.add_row(
            i.component, i.kind, f"{i.impact:+.4f}", f"[{lo:+.4f}, {hi:+.4f}]",
            Text("yes", style="green") if i.candidate else "no",
        )  # fmt: skip
    if result.impacts:
        out.print(impacts)
    _show_quality(result)
    out.print(
        f"drifted: {result.drifted_columns or 'none'}; "
        f"members to update: {result.candidates or 'none'}"
    )


def _show_quality(result: MonitorResult) -> None:
    """The window's data-quality findings: what the version cannot take, and who reads it."""
    findings = result.quality.findings if result.quality else ()
    if findings:
        table = Table(title="data quality (rows count from 0)")
        for col in ("column", "finding", "rows", "read by", "cannot take", "rows set aside"):
            table.add_column(col)
        for f in findings:
            table.add_row(
                f.column, f.kind, f"{f.rows:,}", ", ".join(f.readers) or "-",
                Text(", ".join(f.blocked), style="red") if f.blocked else "-",
                Text("yes", style="yellow") if f.unusable else "no",
            )  # fmt: skip
        out.print(table)
        for f in findings:
            out.print(f"  {f.column}: {f.why}")
    for note in result.notes:
        out.print(f"note: {note}")
