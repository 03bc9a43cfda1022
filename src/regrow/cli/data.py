"""`regrow snapshot create | list | show`: storing data as immutable snapshots."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from regrow.cli._app import AsJson, Home, app, err, out, print_json, workspace
from regrow.errors import ConfigError, DataQualityWarning

__all__ = ["snapshot_app"]

snapshot_app = typer.Typer(help="Create and inspect snapshots.", no_args_is_help=True)
app.add_typer(snapshot_app, name="snapshot")


@snapshot_app.command("create")
def snapshot_create(
    path: Annotated[Path, typer.Argument(help="A CSV or Parquet file.")],
    name: Annotated[str, typer.Option(help="Dataset name (schemas are versioned per name).")],
    time_column: Annotated[str | None, typer.Option(help="The time column, if any.")] = None,
    slices: Annotated[
        list[str] | None, typer.Option("--slice", help="NAME=EXPR (a pandas query), repeatable.")
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            help="The label column: nulls in it are refused (default: the target of "
            "the newest version trained on this name)."
        ),
    ] = None,
    allow_schema_change: Annotated[
        bool,
        typer.Option(
            help="Store a removed column, a changed type or a null target anyway, "
            "as a new schema version (audited)."
        ),
    ] = False,
    delimiter: Annotated[
        str | None,
        typer.Option(help="The CSV delimiter, e.g. ';' or tab (default: found from the file)."),
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Store a CSV/Parquet file as an immutable, content-hashed snapshot.

    Under an existing name it is compared with the name's newest schema: a removed column,
    a changed type or nulls in the target are refused unless --allow-schema-change. Nulls,
    stray text in numeric columns and infinite values are reported on standard error.
    """
    parsed: dict[str, str] = {}
    for item in slices or []:
        key, sep, expr = item.partition("=")
        if not sep or not key.strip() or not expr.strip():
            raise ConfigError(f"bad --slice {item!r}", hint="write NAME=EXPR, e.g. eu=region=='eu'")
        parsed[key.strip()] = expr.strip()
    with workspace(home) as ws, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        started = datetime.now(UTC)
        snap = ws.snapshot(
            str(path),
            name=name,
            time_column=time_column,
            slices=parsed,
            target=target,
            allow_schema_change=allow_schema_change,
            delimiter=delimiter,
        )
    notes: list[str] = []
    for w in caught:
        if isinstance(w.message, DataQualityWarning):
            notes += w.message.notes
        else:  # not ours: shown as Python would have shown it
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    for note in notes:
        err.print(Text.assemble(("warning: ", "yellow"), note), highlight=False)
    if as_json:
        print_json({**snap.__dict__, "warnings": notes})
    else:
        out.print(
            f"snapshot {snap.id[:12]} {snap.name}: {snap.rows:,} rows, {len(snap.columns)} columns"
            + (
                f" (already stored on {snap.created_at:%Y-%m-%d %H:%M}: the same rows)"
                if snap.created_at < started
                else ""
            )
        )


@snapshot_app.command("list")
def snapshot_list(
    dataset: Annotated[str | None, typer.Argument(help="Only snapshots with this name.")] = None,
    name: Annotated[str | None, typer.Option(help="Only snapshots with this name.")] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """List snapshots (all, or those of one name), newest first."""
    if dataset is not None and name is not None and dataset != name:
        raise ConfigError(
            f"two names given: {dataset!r} and --name {name!r}", hint="give the name once"
        )
    with workspace(home) as ws:
        snaps = ws.catalog.list_snapshots(name if name is not None else dataset)
    if as_json:
        print_json([s.__dict__ for s in snaps])
        return
    table = Table()
    for col in ("id", "name", "rows", "columns", "created"):
        table.add_column(col)
    for s in snaps:
        table.add_row(
            s.id[:12],
            s.name,
            f"{s.rows:,}",
            str(len(s.columns)),
            s.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    out.print(table)


@snapshot_app.command("show")
def snapshot_show(
    snapshot: Annotated[str, typer.Argument(help="Snapshot id, id prefix or name (newest).")],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Show a snapshot: schema, per-column profile, slices, source and data-quality notes."""
    with workspace(home) as ws:
        info = ws.catalog.describe_snapshot(snapshot)
    if as_json:
        print_json(info)
        return
    out.print(Text.assemble(("snapshot ", "bold"), (info["id"], "bold"), f"  {info['name']}"))
    out.print(
        f"  {info['rows']:,} rows, {len(info['columns'])} columns; schema v"
        f"{info['schema']['version']} ({info['schema']['id'][:12]}); created "
        f"{info['created_at']:%Y-%m-%d %H:%M:%S}"
    )
    out.print(f"  source: {info['source'] or '(not recorded)'}")
    if info["time_column"]:
        out.print(f"  time column: {info['time_column']}")
    table = Table()
    for col in ("column", "dtype", "nullable", "nulls", "null rate", "values"):
        table.add_column(col)
    for c in info["columns"]:
        rate = "-" if c["null_rate"] is None else f"{c['null_rate']:.2%}"
        nulls = "-" if c["nulls"] is None else f"{c['nulls']:,}"
        nullable = "yes" if c["nullable"] else "no"
        table.add_row(c["name"], c["dtype"], nullable, nulls, rate, _values(c))
    out.print(table)
    for s in info["slices"]:
        rows = "?" if s["rows"] is None else f"{s['rows']:,}"
        out.print(f"  slice {s['name']}: {rows} rows ({s['expr']})")
    for note in info["notes"] or []:
        out.print(f"  note: {note}")


def _values(column: dict[str, Any]) -> str:
    if "top" in column:
        top = ", ".join(f"{t['value']} ({t['count']:,})" for t in column["top"])
        return f"{column['distinct']:,} distinct: {top}" if top else "-"
    if column.get("min") is None:
        return "-"
    low, high = (
        f"{v:.6g}" if isinstance(v, float) else str(v) for v in (column["min"], column["max"])
    )
    mean = column.get("mean")
    return f"{low} .. {high}" + (f", mean {mean:.6g}" if mean is not None else "")
