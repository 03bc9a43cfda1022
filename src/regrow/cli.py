"""The `regrow` command: a thin layer over :class:`regrow.Workspace`.

Every command takes ``--home`` (default ``$REGROW_HOME`` or ``./.regrow``); every read command
takes ``--json``. Errors print what is wrong and a hint, and exit with status 2.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from regrow._hashing import jsonable
from regrow.catalog.records import SnapshotRecord
from regrow.errors import ConfigError, DataQualityWarning, RegrowError
from regrow.monitoring import MonitorResult
from regrow.plan.plan import Plan, diff_plans
from regrow.plan.policy import default_policy_text, load_policy
from regrow.run.backends import ExecutorBackend
from regrow.run.runner import RunEvent, RunResult
from regrow.system import System
from regrow.workspace import Workspace

__all__ = ["app", "main"]

app = typer.Typer(
    name="regrow",
    help="Keep production models fresh by retraining only what needs it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
snapshot_app = typer.Typer(help="Create and inspect snapshots.", no_args_is_help=True)
app.add_typer(snapshot_app, name="snapshot")
plans_app = typer.Typer(help="List, show and diff stored plans.", no_args_is_help=True)
app.add_typer(plans_app, name="plans")
policy_app = typer.Typer(help="Check and show policies.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")

# Markup off: names, reasons and paths are user text, printed as they are, never parsed.
out = Console(markup=False, highlight=False, soft_wrap=True)
err = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)

Home = Annotated[
    Path | None,
    typer.Option("--home", help="Workspace folder (default: $REGROW_HOME or ./.regrow)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Window = Annotated[str, typer.Option(help="A snapshot (id, prefix, name) or a CSV/Parquet file.")]


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(jsonable(value), indent=None, sort_keys=False))


@contextmanager
def _workspace(home: Path | None) -> Iterator[Workspace]:
    ws = Workspace.open(home)
    try:
        yield ws
    finally:
        ws.close()


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[RunEvent], None] | None]:
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("{task.description}", markup=False, style="bold"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("training", total=0)

        def on_event(event: RunEvent) -> None:
            if event.kind == "planned":
                bar.update(task, total=event.total)
            elif event.kind == "started":
                bar.update(task, description=f"training {event.component}")
            elif event.kind == "finished":
                bar.advance(task)

        yield on_event


def load_system(ref: str) -> System:
    """Load a System from ``path/to/file.py:NAME`` or ``package.module:NAME``.

    ``NAME`` may be a System or a function that returns one.
    """
    target, _, attr = ref.partition(":")
    if not attr:
        raise ConfigError(
            f"system reference {ref!r} has no ':NAME'",
            hint="write FILE.py:NAME or module:NAME, e.g. models.py:system",
        )
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ConfigError(f"no such file {target!r}", hint="check the path to the module")
        # As `python FILE.py` does: the file's folder is importable, so a system file can
        # `import helpers` from beside it.
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ConfigError(
                f"cannot load {target!r}: {type(exc).__name__}: {exc}", hint="fix the module"
            ) from exc
    else:
        try:
            module = importlib.import_module(target)
        except Exception as exc:
            raise ConfigError(
                f"cannot import {target!r}: {type(exc).__name__}: {exc}",
                hint="check the module name and that it imports",
            ) from exc
    if not hasattr(module, attr):
        raise ConfigError(f"{target!r} has no attribute {attr!r}", hint="check the NAME after ':'")
    obj = getattr(module, attr)
    if callable(obj) and not isinstance(obj, System):
        try:
            obj = obj()
        except Exception as exc:
            raise ConfigError(
                f"calling {ref!r} failed: {type(exc).__name__}: {exc}",
                hint="NAME must be a System or a function of no arguments returning one",
            ) from exc
    if not isinstance(obj, System):
        raise ConfigError(
            f"{ref!r} is not a regrow System (got {type(obj).__name__})",
            hint="point at a System object or a function returning one",
        )
    return obj


def _window(ws: Workspace, window: str) -> SnapshotRecord | Path:
    """A window given as a snapshot reference, or a CSV/Parquet file.

    A file is read by the command and stored as snapshot ``<system>-window`` only once the
    command on it succeeded (see :func:`regrow.monitoring.open_window`).
    """
    path = Path(window)
    if path.suffix.lower() not in (".csv", ".parquet", ".pq"):
        return ws.catalog.get_snapshot(window)
    if not path.is_file():
        raise ConfigError(f"no such file {window!r}", hint="check the window's path")
    return path


@contextmanager
def _executor(
    ws: Workspace, name: str | None, address: str | None, workers: int | None
) -> Iterator[ExecutorBackend | None]:
    """The backend the options (else the workspace's ``[run]`` settings) name; None: the
    runner's own local backend. Closed (Ray shut down if it was started here) at the end."""
    cfg = ws.config
    name = name or cfg.backend
    address = address or cfg.address
    workers = workers if workers is not None else cfg.workers
    if name == "local" and address is None:
        yield None
        return
    from regrow.run.backends import make_backend

    backend = make_backend(name, address=address, workers=workers)
    try:
        yield backend
    finally:
        backend.close()


def _show_run(result: RunResult, as_json: bool) -> None:
    if as_json:
        _print_json(
            {
                "version": result.version.ref,
                "run": result.run.id,
                "created_version": result.created_version,
                "trained": result.trained,
                "reused": result.reused,
                "causes": {n: list(o.causes) for n, o in result.components.items() if o.causes},
                "seconds": round(result.seconds, 3),
            }
        )
        return
    table = Table(title=f"{result.version.ref} (run {result.run.id[:12]})")
    for col in ("component", "kind", "action", "why", "seconds"):
        table.add_column(col)
    for o in result.components.values():
        style = "green" if o.action == "trained" else "dim"
        why = ", ".join(o.causes) or "fingerprint unchanged"
        table.add_row(o.name, o.kind, Text(o.action, style=style), why, f"{o.seconds:.2f}")
    out.print(table)
    if not result.created_version:
        out.print("nothing changed: no new version")


# -- commands -------------------------------------------------------------------------------


@app.command()
def init(
    directory: Annotated[Path | None, typer.Argument(help="Workspace folder.")] = None,
    home: Home = None,
    catalog_url: Annotated[str | None, typer.Option(help="Catalog database URL.")] = None,
    store_url: Annotated[str | None, typer.Option(help="Artifact store URL or folder.")] = None,
) -> None:
    """Create a workspace (default ./.regrow) with a catalog and an artifact store."""
    with Workspace.init(directory or home, catalog_url=catalog_url, store_url=store_url) as ws:
        out.print(Text.assemble("workspace ready at ", (str(ws.home), "bold")))
        out.print(f"  catalog: {ws.catalog.url}\n  store:   {ws.store.url}")


@app.command()
def demo(
    home: Home = None,
    as_json: AsJson = False,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the data and the runs.")] = 0,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: CPUs).")] = None,
) -> None:
    """Train, drift, retrain only what drifted, evaluate, promote: in a fresh workspace."""
    from regrow.demo import run_demo

    folder = home if home is not None else Path(tempfile.mkdtemp(prefix="regrow-demo-"))
    console = err if as_json else out

    def say(message: str) -> None:
        console.print(message)

    with Workspace.init(folder) as ws, _progress(True) as progress:
        result = run_demo(ws, seed=seed, workers=workers, progress=progress, say=say)
    if not as_json:
        table = Table(title=f"{result.v1} -> {result.v2}")
        table.add_column("component")
        table.add_column("action")
        table.add_column("why")
        for o in result.update.components.values():
            why = ", ".join(o.causes) if o.action == "trained" else "fingerprint unchanged"
            table.add_row(o.name, o.action, why)
        out.print(table)
        for d in result.drifted:
            out.print(f"  drift: {d.column}: {d.why}")
        for i in result.impacts:
            out.print(f"  impact: {i.component} ({i.kind}): {i.why}")
        verb = "promoted to champion" if result.promoted else "not promoted"
        out.print(
            f"{result.metric} on later data: {result.before:.4f} ({result.v1}) -> "
            f"{result.after:.4f} ({result.v2}); {result.v2} {verb}"
        )
        for reason in result.reasons:
            out.print(f"  {reason}")
        out.print(f"done in {result.seconds:.1f}s; see the lineage with:")
        out.print(f"  regrow lineage {result.v2} --home {result.home}")
    else:
        _print_json(result.summary())


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
    with _workspace(home) as ws, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
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
        _print_json({**snap.__dict__, "warnings": notes})
    else:
        out.print(
            f"snapshot {snap.id[:12]} {snap.name}: {snap.rows:,} rows, {len(snap.columns)} columns"
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
    with _workspace(home) as ws:
        snaps = ws.catalog.list_snapshots(name if name is not None else dataset)
    if as_json:
        _print_json([s.__dict__ for s in snaps])
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
    with _workspace(home) as ws:
        info = ws.catalog.describe_snapshot(snapshot)
    if as_json:
        _print_json(info)
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
        _workspace(home) as ws,
        _executor(ws, backend, address, workers) as chosen,
        _progress(not as_json) as progress,
    ):
        result = ws.train(
            sys_obj, snapshot, seed=seed, workers=workers, backend=chosen, progress=progress
        )
    _show_run(result, as_json)


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
        _workspace(home) as ws,
        _executor(ws, backend, address, workers) as chosen,
        _progress(not as_json) as progress,
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
    _show_run(result, as_json)


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
    with _workspace(home) as ws:
        unversioned: list[str] = []
        if version is not None:
            refs = [version]
        else:
            with_versions = {v.system for v in ws.catalog.list_system_versions()}
            systems = ws.catalog.list_systems()
            # A system whose first run failed has components but no version: say so, and
            # report the others.
            unversioned = [s for s in systems if s not in with_versions]
            refs = [
                f"{s}@champion" if _has_alias(ws, s, "champion") else s
                for s in systems
                if s in with_versions
            ]
        reports = {}
        for ref in refs:
            v = ws.catalog.get_system_version(ref)
            reports[v.ref] = ws.status(ref, system=sys_obj, snapshot=snapshot)
    if as_json:
        _print_json({ref: [s.as_dict() for s in rows] for ref, rows in reports.items()})
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
    with _workspace(home) as ws:
        rows = ws.catalog.list_system_versions(system)
        aliases = ws.catalog.list_aliases(system)
    by_version: dict[str, list[str]] = {}
    for a in aliases:
        by_version.setdefault(a.version_id, []).append(a.name)
    if as_json:
        _print_json(
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
    with _workspace(home) as ws:
        result = ws.monitor(version, _window(ws, window), slices=slices or None)
    if as_json:
        _print_json({**result.to_dict(), "report_id": result.record.id if result.record else None})
        return
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


Backend = Annotated[
    str | None,
    typer.Option("--backend", help="Executor backend: local or ray (default: config, else local)."),
]
Address = Annotated[
    str | None, typer.Option("--address", help="Ray cluster address (with --backend ray).")
]


def _show_plan(plan: Plan, plan_id: str) -> None:
    verdict = (
        "escalated to a full retrain"
        if plan.escalated
        else "nothing to do"
        if plan.empty
        else f"{len(plan.actions)} action(s)"
    )
    out.print(f"plan {plan_id[:12]} for {plan.version} on window {plan.window[:12]}: {verdict}")
    sig = plan.signals
    out.print(
        f"signals: {len(sig.get('drifted_columns', []))}/{sig.get('columns_read', 0)} features "
        f"drifted {sig.get('drifted_columns') or ''}; impact candidates "
        f"{sig.get('impact_candidates') or 'none'}; labelled rows {sig.get('labelled_rows', 0):,}"
        + (
            f"; data quality: {len(sig['data_quality'])} finding(s), "
            f"{sig.get('set_aside_rows', 0):,} row(s) set aside"
            if sig.get("data_quality")
            else ""
        )
    )
    if plan.actions:
        table = Table(title="actions")
        for col in ("#", "action", "component", "params", "expected gain", "interval",
                    "est. CPU s", "approval"):  # fmt: skip
            table.add_column(col)
        for n, a in enumerate(plan.actions, 1):
            gain = f"{a.gain.value:+.4g}" if a.gain else ""
            interval = f"[{a.gain.low:.4g}, {a.gain.high:.4g}]" if a.gain else ""
            cost = f"{a.cost.cpu_seconds:.2f}" if a.cost else ""
            params = ", ".join(f"{k}={v}" for k, v in a.params().items())
            table.add_row(
                str(n), a.kind, a.component, params, gain, interval, cost,
                Text("needed", style="yellow") if a.approval else "no",
            )  # fmt: skip
        out.print(table)
        for n, a in enumerate(plan.actions, 1):
            out.print(f"  {n}. why: {a.reason}" + (f"  (cost: {a.cost.basis})" if a.cost else ""))
    out.print("rationale:")
    for line in plan.rationale:
        out.print(f"  - {line}")
    if plan.expected:
        e = plan.expected
        out.print(
            f"expected {e.get('loss')}: {e.get('before')} now -> {e.get('after')} after "
            f"(on {e.get('on_rows')} held-out rows of the window)"
        )
    c = plan.cost
    out.print(
        f"cost: estimated {c.get('estimated_cpu_seconds', 0):.2f} CPU s (a full retrain: "
        f"{c.get('full_retrain_cpu_seconds', 0):.2f}); diagnostics spent "
        f"{c.get('diagnostics_cpu_seconds', 0):.2f} CPU s"
    )
    out.print(f"contingency: {plan.contingency}")
    if plan.needs_approval:
        out.print(f"needs approval: run it with `regrow run {plan_id[:12]} --approve`")
    elif not plan.empty:
        out.print(f"run it with `regrow run {plan_id[:12]}`")


@app.command()
def plan(
    version: Annotated[
        str, typer.Option("--version", help="Version to update, e.g. churn@champion.")
    ],
    window: Window,
    policy: Annotated[
        Path | None, typer.Option(help="Policy YAML (default: the shipped default policy).")
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Plan the smallest update that fixes what a window shows, and explain it."""
    chosen = load_policy(policy)
    with _workspace(home) as ws:
        result = ws.plan(version, _window(ws, window), policy=chosen)
    if as_json:
        _print_json({"id": result.id, **result.to_dict()})
        return
    _show_plan(result, result.id)


@app.command("run")
def run_command(
    plan_id: Annotated[str, typer.Argument(metavar="PLAN", help="Plan id or id prefix.")],
    approve: Annotated[
        bool, typer.Option("--approve", help="Approve actions the policy reserves for humans.")
    ] = False,
    seed: Annotated[int | None, typer.Option(help="Run seed (default: the system's).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    backend: Backend = None,
    address: Address = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Run a stored plan: only its actions, every other component reused."""
    with (
        _workspace(home) as ws,
        _executor(ws, backend, address, workers) as chosen,
        _progress(not as_json) as progress,
    ):
        ran = ws.run_plan(
            plan_id, approve=approve, seed=seed, workers=workers, backend=chosen,
            progress=progress,
        )  # fmt: skip
    if as_json:
        _print_json(
            {
                "plan": ran.record.id,
                "version": ran.result.version.ref,
                "trained": ran.result.trained,
                "reused": ran.result.reused,
                "estimated_cpu_seconds": round(ran.estimated_cpu_seconds, 4),
                "actual_cpu_seconds": round(ran.actual_cpu_seconds, 4),
            }
        )
        return
    _show_run(ran.result, False)
    out.print(
        f"plan {ran.record.id[:12]} executed: CPU {ran.actual_cpu_seconds:.2f} s "
        f"(estimated {ran.estimated_cpu_seconds:.2f} s)"
    )


@plans_app.command("list")
def plans_list(
    system: Annotated[str | None, typer.Argument(help="Only this system's plans.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Stored plans, newest first, with their status."""
    with _workspace(home) as ws:
        records = ws.catalog.list_plans(system, limit=limit)
        versions = {r.version_id: ws.catalog.get_system_version(r.version_id).ref for r in records}
    if as_json:
        _print_json([{"id": r.id, "version": versions[r.version_id], "status": r.status,
                      "summary": r.body.get("summary"), "created_at": r.created_at.isoformat()}
                     for r in records])  # fmt: skip
        return
    table = Table(title="plans")
    for col in ("id", "version", "window", "status", "actions", "created"):
        table.add_column(col)
    for r in records:
        actions = ", ".join((r.body.get("summary") or {}).get("actions", [])) or "-"
        table.add_row(r.id[:12], versions[r.version_id], r.window_id[:12], r.status, actions,
                      r.created_at.strftime("%Y-%m-%d %H:%M:%S"))  # fmt: skip
    out.print(table)


@plans_app.command("show")
def plans_show(
    plan_id: Annotated[str, typer.Argument(metavar="PLAN", help="Plan id or id prefix.")],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Show a stored plan with its reasons, and its outcome once run."""
    with _workspace(home) as ws:
        record = ws.catalog.get_plan(plan_id)
    stored = Plan.from_dict(record.body)
    if as_json:
        _print_json({"id": record.id, "status": record.status, "outcome": record.outcome,
                     **stored.to_dict()})  # fmt: skip
        return
    _show_plan(stored, record.id)
    out.print(f"status: {record.status}")
    if record.outcome:
        o = record.outcome
        out.print(
            f"outcome: {o.get('version', '-')}; CPU {o.get('actual_cpu_seconds', '-')} s "
            f"(estimated {o.get('estimated_cpu_seconds', '-')} s)"
            + (f"; error: {o['error']}" if "error" in o else "")
        )


@plans_app.command("diff")
def plans_diff(
    old: Annotated[str, typer.Argument(help="Plan id or prefix.")],
    new: Annotated[str, typer.Argument(help="Plan id or prefix.")],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """What changed between two plans: actions, escalation, expected loss, cost, policy."""
    with _workspace(home) as ws:
        a = Plan.from_dict(ws.catalog.get_plan(old).body)
        b = Plan.from_dict(ws.catalog.get_plan(new).body)
    lines = diff_plans(a, b)
    if as_json:
        _print_json(lines)
        return
    for line in lines or ["the plans do the same"]:
        out.print(line)


@policy_app.command("check")
def policy_check(
    file: Annotated[Path, typer.Argument(help="Policy YAML file.")],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Validate a policy file; errors name the key and the value.

    A policy is a file of its own, so ``--home`` is accepted (every command takes it) and
    not needed.
    """
    del home
    checked = load_policy(file)
    if as_json:
        _print_json({"ok": True, "id": checked.id, "policy": checked.to_dict()})
        return
    allowed = ", ".join(checked.autonomy.allowed)
    out.print(f"{file}: valid (policy {checked.id}); runs without approval: {allowed}")


@policy_app.command("show")
def policy_show(home: Home = None) -> None:
    """Print the default policy, with the comments that document every key."""
    del home  # accepted like every command's; the default policy is the same everywhere
    typer.echo(default_policy_text(), nl=False)


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
    with _workspace(home) as ws:
        record, result = ws.evaluate(candidate, snapshot, baseline=baseline, metric=metric)
    if as_json:
        _print_json(
            {
                "id": record.id,
                "verdict": result.verdict,
                "reasons": list(result.reasons),
                **result.as_dict(),
            }
        )
        return
    out.print(
        f"{result.metric}: candidate {result.candidate:.4f}"
        + (f", baseline {result.baseline:.4f}" if result.baseline is not None else "")
    )
    for name, s in result.slices.items():
        out.print(f"  slice {name} ({s['rows']} rows): {s}")
    out.print(Text.assemble("verdict: ", (result.verdict, "bold")))
    for reason in result.reasons:
        out.print(f"  {reason}")


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="Version to point the alias at.")],
    alias: Annotated[str, typer.Option(help="Alias name.")] = "champion",
    reason: Annotated[str, typer.Option(help="Why (kept in the history).")] = "",
    expect_revision: Annotated[
        int | None, typer.Option(help="Fail unless the alias is at this revision.")
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Point an alias at a version (compare-and-set; recorded with who, when, why)."""
    with _workspace(home) as ws:
        moved = ws.promote(version, alias, reason=reason, expected_revision=expect_revision)
        ref = ws.catalog.get_system_version(moved.version_id).ref
    if as_json:
        _print_json({**moved.__dict__, "version": ref})
    else:
        out.print(f"{moved.system}@{moved.name} -> {ref} (revision {moved.revision})")


@app.command()
def rollback(
    system: Annotated[str | None, typer.Argument(help="System (default: the only one).")] = None,
    alias: Annotated[str, typer.Option(help="Alias name.")] = "champion",
    reason: Annotated[str, typer.Option(help="Why (kept in the history).")] = "",
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Move an alias back to the version it pointed at before its latest move."""
    with _workspace(home) as ws:
        if system is None:
            systems = ws.catalog.list_systems()
            if len(systems) != 1:
                raise ConfigError(
                    f"{len(systems)} systems in this workspace: {systems}",
                    hint="name the system: regrow rollback SYSTEM --alias ...",
                )
            system = systems[0]
        moved = ws.rollback(system, alias, reason=reason)
        ref = ws.catalog.get_system_version(moved.version_id).ref
    if as_json:
        _print_json({**moved.__dict__, "version": ref})
    else:
        out.print(f"{moved.system}@{moved.name} rolled back to {ref} (revision {moved.revision})")


@app.command()
def aliases(
    system: Annotated[str | None, typer.Argument(help="System (default: all).")] = None,
    history: Annotated[bool, typer.Option(help="Show every move.")] = False,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """List aliases, and with --history every move (who, when, why)."""
    with _workspace(home) as ws:
        rows = ws.catalog.list_aliases(system)
        refs = {a.version_id: ws.catalog.get_system_version(a.version_id).ref for a in rows}
        moves = (
            {f"{a.system}@{a.name}": ws.catalog.alias_history(a.system, a.name) for a in rows}
            if history
            else {}
        )
    if as_json:
        _print_json(
            {
                "aliases": [{**a.__dict__, "version": refs[a.version_id]} for a in rows],
                "history": {k: [m.__dict__ for m in v] for k, v in moves.items()},
            }
        )
        return
    table = Table()
    for col in ("alias", "version", "revision", "updated"):
        table.add_column(col)
    for a in rows:
        table.add_row(
            f"{a.system}@{a.name}",
            refs[a.version_id],
            str(a.revision),
            a.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    out.print(table)
    for key, items in moves.items():
        out.print(Text(key, style="bold"))
        for m in items:
            out.print(
                f"  r{m.revision} {m.at:%Y-%m-%d %H:%M:%S} {m.actor}: "
                f"{(m.from_version_id or '-')[:12]} -> {m.to_version_id[:12]} {m.reason}"
            )


@app.command()
def lineage(
    version: Annotated[str, typer.Argument(help="Version, e.g. churn:v2 or churn@champion.")],
    depth: Annotated[int | None, typer.Option(help="Parent levels to show.")] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Where a version came from: snapshots, components (trained or reused, and why), run."""
    with _workspace(home) as ws:
        report = ws.lineage(version, depth=depth)
    if as_json:
        _print_json(report)
        return
    out.print(
        Text.assemble((report["version"], "bold"), f" ({report['id'][:12]}) {report['note']}")
    )
    chain = " <- ".join(p["version"] for p in report["parents"])
    out.print(f"  parents: {chain or '-'}")
    run = report["run"]
    if run:
        env = run["environment"]
        git = env.get("git") or {}
        out.print(
            f"  run {run['id'][:12]} ({run['kind']}, seed {run['seed']}, {run['status']}); "
            f"python {env.get('python')}, git {str(git.get('commit', '-'))[:12]}"
        )
    for s in report["snapshots"]:
        out.print(f"  snapshot {s['id'][:12]} {s['name']} ({s['rows']:,} rows)")
    table = Table()
    for col in ("component", "action", "why", "version", "fingerprint", "snapshot", "seed"):
        table.add_column(col)
    for c in report["components"]:
        table.add_row(
            c["name"],
            c["action"],
            ", ".join(c["why"]),
            c["version_id"][:12],
            c["fingerprint"][:12],
            (c["snapshot"] or "-")[:12],
            str(c["seed"]),
        )
    out.print(table)


@app.command()
def audit(
    limit: Annotated[int, typer.Option(min=1, help="Events to show.")] = 20,
    verify: Annotated[bool, typer.Option(help="Verify the hash chain.")] = False,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Show the audit log; --verify checks its hash chain end to end."""
    with _workspace(home) as ws:
        verified = ws.catalog.verify_audit() if verify else None
        events = ws.catalog.audit_events(limit=limit)
    if as_json:
        _print_json({"verified": verified, "events": [e.__dict__ for e in events]})
        return
    if verified is not None:
        out.print(Text.assemble(("audit chain verified", "green"), f": {verified} events"))
    table = Table()
    for col in ("seq", "at", "actor", "action", "subject"):
        table.add_column(col)
    for e in events:
        table.add_row(str(e.seq), f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.action, e.subject)
    out.print(table)


@app.command()
def doctor(
    quick: Annotated[bool, typer.Option(help="Check existence and size only; no hashing.")] = False,
    repair: Annotated[bool, typer.Option(help="Rebuild, delete, abandon what can be.")] = False,
    grace: Annotated[str, typer.Option(help="Leave unreferenced files younger than this.")] = "1h",
    stuck_after: Annotated[str, typer.Option(help="A run running longer is stuck.")] = "12h",
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Check every artifact, run, alias and the audit chain; --repair fixes what it can."""
    with _workspace(home) as ws:
        report = ws.doctor(quick=quick, repair=repair, grace=grace, stuck_after=stuck_after)
    if as_json:
        _print_json(report.as_dict())
    else:
        c = report.checked
        out.print(
            f"checked: artifacts {c['artifacts']} ({c['hashed']} hashed), component versions "
            f"{c['component_versions']}, snapshots {c['snapshots']}, store files "
            f"{c['store_files']}, audit events {c['audit_events']}"
        )
        repairs = {r.subject: r for r in report.repairs}
        if report.problems:
            table = Table()
            for col in ("problem", "subject", "what", "repair"):
                table.add_column(col)
            for p in report.problems:
                r = repairs.get(p.subject)
                style = "green" if r is not None and r.ok else "red"
                done = Text(f"{r.action}: {r.detail}", style=style) if r is not None else ""
                kind, _, ident = p.subject.partition(":")
                shown = f"{kind}:{ident[:12]}" if kind != "alias" and len(ident) > 12 else p.subject
                table.add_row(Text(p.kind, style="yellow"), shown, p.message, done)
            out.print(table)
        for hint in dict.fromkeys(p.hint for p in report.remaining):
            out.print(Text.assemble(("hint: ", "yellow"), hint))
        left = len(report.remaining)
        out.print(
            Text("no problems found", style="green")
            if not report.problems
            else Text(f"problems: {len(report.problems)} found, {left} remaining", style="bold")
        )
    if not report.ok:
        raise typer.Exit(1)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `regrow` console script."""
    try:
        app(args=argv, standalone_mode=True)
    except RegrowError as exc:
        err.print(Text.assemble(("error: ", "bold red"), exc.message), highlight=False)
        if exc.hint:
            err.print(Text.assemble(("hint: ", "yellow"), exc.hint), highlight=False)
        raise SystemExit(2) from None
