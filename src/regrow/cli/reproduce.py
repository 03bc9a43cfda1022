"""`regrow reproduce`: rebuild a version from its record and say whether it comes out the same.

Exits 0 when every component is identical or equivalent, 1 when one differs (so a script or
a CI job can gate on it), 2 on an error (an unknown version, a lost artifact).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from regrow.cli._app import AsJson, Home, app, out, print_json, workspace
from regrow.cli._progress import print_timings, progress_line

if TYPE_CHECKING:
    from regrow.reproduce import ComponentReproduction, ReproduceReport

__all__ = ["reproduce"]

#: ``regrow.reproduce.DEFAULT_TOLERANCE``, written out: importing it would load pandas.
DEFAULT_TOLERANCE = 1e-6

_STYLE = {"identical": "green", "equivalent": "cyan", "differs": "bold red"}


@app.command()
def reproduce(
    version: Annotated[str, typer.Argument(help="Version, e.g. churn:v2 or churn@champion.")],
    tolerance: Annotated[
        float,
        typer.Option(
            help="Largest difference in an output value or probability that counts as the same."
        ),
    ] = DEFAULT_TOLERANCE,
    keep: Annotated[
        Path | None,
        typer.Option(
            "--keep",
            help="Build in this new folder and keep it (a workspace: regrow --home DIR ...). "
            "Default: a temporary folder, removed afterwards.",
        ),
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Rebuild a version from its recorded snapshots, seeds, recipes and code in a scratch
    workspace; report per component whether the fingerprint, the bytes or the outputs
    match, and what explains a difference. Exits 1 if a component differs."""
    with workspace(home) as ws, progress_line(not as_json) as progress:
        report = ws.reproduce(version, tolerance=tolerance, keep=keep, progress=progress)
    if as_json:
        print_json(report.as_dict())
    else:
        show_report(report)
    print_timings(report)
    if not report.reproduced:
        raise typer.Exit(1)


def show_report(report: ReproduceReport) -> None:
    """The table of components, the verdict line, and what differs in the environment."""
    rows = max((c.rows for c in report), default=0)
    title = f"{report.version}: rebuilt from its record"
    table = Table(title=title + (f" (outputs compared on up to {rows:,} rows)" if rows else ""))
    table.add_column("component", no_wrap=True)
    for col in ("kind", "fingerprint", "bytes", "max diff", "verdict"):
        table.add_column(col, overflow="fold")
    for c in report:
        table.add_row(
            c.name,
            c.kind,
            "same" if c.fingerprint_matches else Text("differs", style="red"),
            "same" if c.bytes_match else "differ",
            _diff(c),
            Text(c.verdict, style=_STYLE[c.verdict]),
        )
    out.print(table)
    for c in report:  # below the table: a reason is a sentence, too long for a cell
        for reason in c.reasons:
            out.print(Text.assemble("  ", (c.name, "bold"), f": {reason}"))
        for note in c.notes:
            out.print(Text.assemble("  ", (c.name, "bold"), (f": {note}", "dim")))
    counts, n = report.counts, len(report.components)
    if report.reproduced:
        line = Text.assemble(
            (f"{report.version} reproduced", "bold green"),
            f": {n - counts['differs']}/{n} components match ({counts['identical']} "
            f"identical, {counts['equivalent']} equivalent within {report.tolerance:g})",
        )
    else:
        line = Text.assemble(
            (f"{report.version} not reproduced", "bold red"),
            f": {counts['differs']} of {n} components differ",
        )
    out.print(line)
    for change in report.environment:
        out.print(f"  environment: {change}")
    if report.scratch:
        out.print(f"scratch workspace kept: {report.scratch} (regrow --home {report.scratch} "
                  "versions)")  # fmt: skip


def _diff(c: ComponentReproduction) -> str:
    """The largest output difference (on ``c.rows`` rows; the JSON says how many)."""
    return "-" if c.max_diff is None else f"{c.max_diff:.3g}"
