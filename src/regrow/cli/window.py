"""`regrow window`: what a system served (the prediction log), joined with its labels, as a
snapshot that `regrow monitor`, `regrow plan` and `regrow evaluate` take as a window."""

from __future__ import annotations

from typing import Annotated

import typer

from regrow.cli._app import (
    AsJson,
    Home,
    Since,
    Until,
    app,
    known_system,
    out,
    print_json,
    workspace,
)

__all__ = ["window"]


@app.command()
def window(
    system: Annotated[str, typer.Argument(help="The served system, e.g. churn.")],
    since: Since,
    until: Until = None,
    labelled: Annotated[
        bool,
        typer.Option("--labelled", help="Only rows with a feedback label, in the target column."),
    ] = False,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Store the predictions a system served in a time range (with their labels, if
    --labelled) as snapshot SYSTEM-served, a window for monitor, plan and evaluate."""
    from regrow.logged import time_range

    start, end = time_range(since, until)
    with workspace(home) as ws:
        known_system(ws, system)  # with a did-you-mean
        snap = ws.window(system, since=start, until=end, labelled=labelled)
    target = snap.columns[-1] if labelled else None  # a labelled window ends with its target
    if as_json:
        print_json(
            {
                "id": snap.id,
                "name": snap.name,
                "rows": snap.rows,
                "columns": list(snap.columns),
                "time_column": snap.time_column,
                "labelled": labelled,
                "target": target,
                "since": start.isoformat(),
                "until": end.isoformat(),
            }
        )
        return
    # the range asked for: the rows may have been served in any part of it
    span = f"between {start:%Y-%m-%d %H:%M:%S} and {end:%Y-%m-%d %H:%M:%S} UTC"
    labels = f", labelled (target {target!r})" if labelled else ""
    out.print(f"window {snap.name} {snap.id[:12]}: the {snap.rows:,} rows served {span}{labels}")
    out.print(
        f"use it as a window, e.g. regrow plan --version {system}@champion --window {snap.id[:12]}"
    )
