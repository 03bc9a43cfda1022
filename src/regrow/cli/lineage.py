"""`regrow lineage | audit | doctor`: where versions came from, what happened, what is wrong."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from regrow.cli._app import AsJson, Home, app, out, print_json, workspace
from regrow.cli._render import why_text

__all__ = ["audit", "doctor", "lineage"]


@app.command()
def lineage(
    version: Annotated[str, typer.Argument(help="Version, e.g. churn:v2 or churn@champion.")],
    depth: Annotated[int | None, typer.Option(min=0, help="Parent levels to show.")] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Where a version came from: snapshots, components (trained or reused, and why, and the
    recipe of the plan action that built each), run."""
    with workspace(home) as ws:
        report = ws.lineage(version, depth=depth)
    if as_json:
        print_json(report)
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
    from regrow._adapter_text import describe_adapter

    for c in report["components"]:
        for a in c.get("adapters") or ():
            out.print(
                f"  {c['name']} reads through its own {' '.join(describe_adapter(a).split())}"
            )
    adapters = report.get("adapters")
    if adapters:
        out.print(f"  adapters {adapters['digest']}:")
        for a in adapters["adapters"]:
            read_by = ", ".join(a["read_by"]) or "no component"
            out.print(f"    {' '.join(a['describe'].split())} (read by {read_by})")
    table = Table()
    for col in ("component", "action", "why", "recipe", "version", "fingerprint", "snapshot",
                "seed"):  # fmt: skip
        table.add_column(col, no_wrap=col == "recipe")  # a name@version is read, and copied, whole
    for c in report["components"]:
        table.add_row(
            c["name"],
            c["action"],
            _why(c),
            (c.get("recipe") or {}).get("ref") or "-",
            c["version_id"][:12],
            c["fingerprint"][:12],
            (c["snapshot"] or "-")[:12],
            str(c["seed"]),
        )
    out.print(table)


def _why(component: dict[str, Any]) -> str:
    """Why a component is in the version; a reused one fitted by another run names it."""
    why = why_text(component["action"], component["why"])
    run = (component.get("origin") or {}).get("run")
    if run and why.startswith("fitted by an earlier run"):
        why = why.replace("an earlier run", f"run {run[:12]}", 1)
    return why


@app.command()
def audit(
    limit: Annotated[int, typer.Option(min=1, help="Events to show.")] = 20,
    verify: Annotated[
        bool, typer.Option(help="Verify the hash chain and every row it covers.")
    ] = False,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Show the audit log; --verify checks its hash chain end to end, and that every covered
    record (alias moves, runs, plans, evaluations, approvals, users, tokens, ...) still
    matches the event that recorded it. A broken chain names the table, row and event, and
    exits 1."""
    from regrow.errors import AuditChainBroken

    broken: AuditChainBroken | None = None
    with workspace(home) as ws:
        try:
            verified = ws.catalog.verify_audit() if verify else None
        except AuditChainBroken as exc:
            verified, broken = None, exc
        events = ws.catalog.audit_events(limit=limit)
    if as_json:
        print_json(
            {
                "verified": False if broken is not None else verified,
                **({"broken": broken.message, "hint": broken.hint} if broken else {}),
                "events": [e.__dict__ for e in events],
            }
        )
    else:
        if broken is not None:
            out.print(Text.assemble(("audit chain BROKEN", "bold red"), f": {broken.message}"))
            out.print(Text.assemble(("hint: ", "yellow"), broken.hint or ""))
        elif verified is not None:
            out.print(
                Text.assemble(
                    ("audit chain verified", "green"),
                    f": {verified} events, every covered record matches",
                )
            )
        table = Table()
        for col in ("seq", "at", "actor", "action", "subject"):
            table.add_column(col)
        for e in events:
            table.add_row(str(e.seq), f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.action, e.subject)
        out.print(table)
    if broken is not None:
        raise typer.Exit(1)


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
    with workspace(home) as ws:
        report = ws.doctor(quick=quick, repair=repair, grace=grace, stuck_after=stuck_after)
        store = ws.store.url
    if as_json:
        print_json(report.as_dict())
    else:
        c = report.checked
        if "database" in c:  # damaged: nothing else was checked
            out.print("checked: the catalog database file (damaged: nothing else is checked)")
        else:
            out.print(
                f"checked: artifacts {c['artifacts']} ({c['hashed']} hashed), component versions "
                f"{c['component_versions']}, snapshots {c['snapshots']}, store files "
                f"{c['store_files']}, audit events "
                + (
                    "(not counted: the chain is broken, see below)"
                    if any(p.kind == "audit-chain" for p in report.problems)
                    else f"{c['audit_events']}"
                )
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
        missing = sum(p.kind == "missing" for p in report.remaining)
        if c.get("artifacts", 0) > 1 and missing >= c["artifacts"]:  # the store, not the artifacts
            out.print(
                Text.assemble(
                    ("hint: ", "yellow"),
                    f"none of the {c['artifacts']} artifacts the catalog references is in the "
                    f"store at {store}: check that it is this catalog's store ([store] url in "
                    "the workspace's config.toml, or $REGROW_STORE_URL) before repairing",
                )
            )
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
