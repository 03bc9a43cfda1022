"""`regrow train | update | status | versions`: fitting systems and reading their state."""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer
from rich.table import Table
from rich.text import Text

from regrow.cli._app import (
    Address,
    AsJson,
    Backend,
    Home,
    app,
    err,
    executor,
    out,
    print_json,
    workspace,
)
from regrow.cli._progress import progress_line
from regrow.cli._render import show_run
from regrow.cli._systems import load_system
from regrow.errors import DataQualityWarning, VersionNotFound

if TYPE_CHECKING:
    from regrow.workspace import Workspace

__all__ = ["status", "train", "update", "versions"]


@app.command()
def train(
    system: Annotated[str, typer.Argument(help="FILE.py:NAME or module:NAME of a System.")],
    snapshot: Annotated[str, typer.Option(help="Snapshot id, id prefix or name.")],
    seed: Annotated[int | None, typer.Option(help="Run seed (default: the system's).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    backend: Backend = None,
    address: Address = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Train a system on a snapshot, reusing every component whose fingerprint exists."""
    sys_obj = load_system(system)
    with (
        workspace(home) as ws,
        executor(ws, backend, address, workers) as chosen,
        _data_warnings(),
        progress_line(not as_json) as progress,
    ):
        result = ws.train(
            sys_obj, snapshot, seed=seed, workers=workers, backend=chosen, progress=progress
        )
    show_run(result, as_json)


@app.command()
def update(
    version: Annotated[str, typer.Argument(help="Parent version, e.g. churn@champion.")],
    snapshot: Annotated[str, typer.Option(help="Snapshot to refit the components on.")],
    component: Annotated[list[str], typer.Option("--component", "-c", help="Repeatable.")],
    system: Annotated[str | None, typer.Option(help="FILE.py:NAME of the current System.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    backend: Backend = None,
    address: Address = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Refit only the named components on new data; reuse every other component version."""
    sys_obj = load_system(system) if system else None
    with (
        workspace(home) as ws,
        executor(ws, backend, address, workers) as chosen,
        _data_warnings(),
        progress_line(not as_json) as progress,
    ):
        result = ws.update(
            version,
            snapshot,
            components=component,
            system=sys_obj,
            workers=workers,
            backend=chosen,
            progress=progress,
        )
    show_run(result, as_json)


@contextlib.contextmanager
def _data_warnings() -> Iterator[None]:
    """What the training data deserves a look for (few rows) as ``warning:`` lines on standard
    error as they come, before the run's progress; other warnings pass on."""
    shown = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if not isinstance(message, DataQualityWarning):
            shown(message, category, filename, lineno, file, line)
            return
        for note in message.notes or (str(message),):
            err.print(f"warning: {note}", style="yellow")

    with warnings.catch_warnings():
        warnings.simplefilter("always", DataQualityWarning)
        warnings.showwarning = show
        yield


@app.command()
def status(
    version: Annotated[
        str | None, typer.Argument(help="Version (default: every champion).")
    ] = None,
    system: Annotated[str | None, typer.Option(help="FILE.py:NAME of the current System.")] = None,
    snapshot: Annotated[str | None, typer.Option(help="Compare against this data.")] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Show each component as fresh or stale, with the causes (code, parameters, data...)."""
    sys_obj = load_system(system) if system else None
    with workspace(home) as ws:
        unversioned: list[str] = []
        found = []
        if version is not None:
            found.append(ws.catalog.get_system_version(version))
        else:
            for name in ws.catalog.list_systems():
                ref = f"{name}@champion" if _has_alias(ws, name, "champion") else name
                try:
                    found.append(ws.catalog.get_system_version(ref))
                except VersionNotFound:
                    # Its first run failed: components but no version. Say so, report the rest.
                    unversioned.append(name)
        reports = {v.ref: ws.status(v.ref, system=sys_obj, snapshot=snapshot) for v in found}
    if as_json:
        print_json({ref: [s.as_dict() for s in rows] for ref, rows in reports.items()})
        return
    for name in unversioned:
        out.print(
            f"{name}: no version yet (a run started but did not finish); "
            f"run `regrow train` again: finished components are reused"
        )
    if not reports and not unversioned:
        out.print("no versions yet: train a system first (`regrow train`, or `regrow demo`)")
    for ref, rows in reports.items():
        table = Table(title=ref)
        for col in ("component", "kind", "state", "causes"):
            table.add_column(col)
        for s in rows:
            state = Text("fresh", style="green") if s.fresh else Text("stale", style="yellow")
            causes = "; ".join(f"{c}: {_short(s.details.get(c))}" for c in s.causes)
            table.add_row(s.name, s.kind, state, causes)
        out.print(table)


def _short(value: Any) -> str:
    from regrow._hashing import jsonable

    text = json.dumps(jsonable(value)) if value is not None else ""
    return text if len(text) <= 80 else text[:77] + "..."


def _has_alias(ws: Workspace, system: str, alias: str) -> bool:
    return any(a.name == alias for a in ws.catalog.list_aliases(system))


@app.command()
def versions(
    system: Annotated[str | None, typer.Argument(help="System name (default: all).")] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """List system versions, newest first, with their aliases."""
    with workspace(home) as ws:
        rows = ws.catalog.list_system_versions(system)
        aliases = ws.catalog.list_aliases(system)
        if system is not None and not rows:
            raise ws.catalog.unknown_system(system)
    by_version: dict[str, list[str]] = {}
    for a in aliases:
        by_version.setdefault(a.version_id, []).append(a.name)
    if as_json:
        print_json(
            [
                {
                    "version": v.ref,
                    "id": v.id,
                    "parent": v.parent_id,
                    "note": v.note,
                    "aliases": by_version.get(v.id, []),
                    "created_at": v.created_at,
                }
                for v in rows
            ]
        )
        return
    table = Table()
    for col in ("version", "id", "aliases", "created", "note"):
        table.add_column(col)
    for v in rows:
        table.add_row(
            v.ref,
            v.id[:12],
            ", ".join(by_version.get(v.id, [])),
            v.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            v.note,
        )
    out.print(table)
