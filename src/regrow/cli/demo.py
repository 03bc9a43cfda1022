"""`regrow init` and `regrow demo`: the commands that make a workspace."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from regrow.cli._app import AsJson, Home, Stopped, app, err, out, print_json
from regrow.cli._progress import progress_line
from regrow.cli._render import run_table
from regrow.errors import ConfigError

if TYPE_CHECKING:
    from regrow.workspace import Workspace

__all__ = ["demo", "init"]


@app.command()
def init(
    directory: Annotated[Path | None, typer.Argument(help="Workspace folder.")] = None,
    home: Home = None,
    catalog_url: Annotated[str | None, typer.Option(help="Catalog database URL.")] = None,
    store_url: Annotated[str | None, typer.Option(help="Artifact store URL or folder.")] = None,
) -> None:
    """Create a workspace (default ./.regrow) with a catalog and an artifact store."""
    from regrow.workspace import Workspace

    if directory is not None and home is not None and directory.resolve() != home.resolve():
        raise ConfigError(
            f"two folders for one workspace: {str(directory)!r} and --home {str(home)!r}",
            hint="give the folder once (`regrow init DIR`)",
        )

    from regrow.config import resolve_home

    folder = directory or home
    existed = (resolve_home(folder) / "config.toml").is_file()
    with Workspace.init(folder, catalog_url=catalog_url, store_url=store_url) as ws:
        out.print(Text.assemble("workspace ready at ", (str(ws.home), "bold")))
        out.print(f"  catalog: {ws.catalog.shown_url}\n  store:   {ws.store.url}")
        given = [f"--{n}-url" for n, v in (("catalog", catalog_url), ("store", store_url)) if v]
        if existed and given:  # init opens a workspace that exists: the URLs were not used
            err.print(
                f"warning: {' and '.join(given)} ignored: the workspace exists and keeps the "
                f"URLs of {str(ws.home / 'config.toml')!r} (edit that file to change them)"
            )
        _warn_if_store_lacks_catalog(ws)


def _warn_if_store_lacks_catalog(ws: Workspace) -> None:
    """Warn when the catalog (shared by another workspace) already holds snapshots and none
    of the newest is in this workspace's store: every load would fail, and the doctor would
    report them all missing."""
    snapshots = ws.catalog.list_snapshots()
    newest = [s.artifact for s in snapshots[:20]]
    if not newest or any(ws.store.exists_many(newest).values()):
        return
    err.print(
        f"warning: the catalog already holds {len(snapshots)} snapshot(s), and none of the "
        f"newest {len(newest)} is in this workspace's store ({ws.store.url}): workspaces that "
        "share a catalog must share its artifact store too\n"
        f"hint: set [store] url in {str(ws.home / 'config.toml')!r} to the store the other "
        "workspaces use (see their config.toml)"
    )


@app.command()
def demo(
    home: Home = None,
    as_json: AsJson = False,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the data and the runs.")] = 0,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: CPUs).")] = None,
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Keep the temporary workspace (removed at the end otherwise)."),
    ] = False,
) -> None:
    """Train, drift, retrain only what drifted, evaluate, promote: in a fresh workspace.

    Without --home it runs in a temporary folder, removed at the end unless --keep.
    """
    from regrow.demo import run_demo
    from regrow.workspace import Workspace

    temporary = home is None
    folder = Path(tempfile.mkdtemp(prefix="regrow-demo-")) if home is None else home
    kept = keep or not temporary
    console = err if as_json else out
    try:
        with Workspace.init(folder) as ws, progress_line(True) as progress:
            result = run_demo(ws, seed=seed, workers=workers, progress=progress, say=console.print)
    except KeyboardInterrupt:
        if not temporary:  # --home: what it fitted is there, and running again resumes
            raise
        # a temporary workspace: nothing to resume from (a new run makes a new folder)
        where = (
            f"the workspace is kept at {folder}"
            if keep
            else ("the demo's temporary workspace is removed")
        )
        err.print(Text.assemble(("interrupted", "bold yellow"), f"; {where}"))
        raise Stopped(130) from None
    except BaseException:  # an error: say where what was done is
        if temporary and keep:
            err.print(f"the workspace is kept at {folder}")
        raise
    finally:
        if not kept:
            shutil.rmtree(folder, ignore_errors=True)
    if as_json:
        if temporary and keep:
            err.print(f"workspace kept at {folder}")
        summary = result.summary()
        if not kept and summary.get("monitor", {}).get("report"):
            # the report was in the removed workspace: no path to a file that is gone
            summary["monitor"] = {**summary["monitor"], "report": None}
        print_json({**summary, **({"home": str(folder)} if temporary and keep else {})})
        return
    out.print(run_table(result.update, title=f"{result.v1} -> {result.v2}", seconds=False))
    for d in result.drifted:
        out.print(f"  drift: {d.column}: {d.why}")
    for i in result.impacts:
        out.print(f"  impact: {i.component} ({i.kind}): {i.why}")
    if result.monitor.get("report") and not kept:
        out.print("  (the monitor's HTML report goes with the temporary workspace: "
                  "`regrow demo --keep` keeps it)")  # fmt: skip
    from regrow.cli.evaluate import gate_table

    out.print(gate_table(result.gates))
    approved = f" (approved by {', '.join(result.approvals)})" if result.approvals else ""
    verb = f"promoted to champion{approved}" if result.promoted else "not promoted"
    out.print(
        f"{result.metric} on later data: {result.before:.4f} ({result.v1}) -> "
        f"{result.after:.4f} ({result.v2}); {result.v2} {verb}"
    )
    for reason in result.reasons:
        out.print(f"  {reason}")
    bridged = result.renamed.get("version")
    if bridged:
        same = "same" if result.renamed.get("same_predictions") else "different"
        out.print(
            f"then {bridged}: the champion reading upstream's renamed column through an adapter "
            f"({len(result.renamed.get('refitted') or ())} component(s) refitted, {same} "
            "predictions); made for the new feed, not promoted"
        )
    if kept:
        where = "kept at" if temporary else "at"
        out.print(f"done in {result.seconds:.1f}s; the workspace is {where} {folder}")
        out.print(f"see the lineage with: regrow lineage {result.v2} --home {folder}")
    else:
        out.print(
            f"done in {result.seconds:.1f}s; its temporary workspace is removed "
            "(`regrow demo --keep` keeps it to explore)"
        )
