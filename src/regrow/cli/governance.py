"""`regrow promote | approve | approvals | rollback | aliases`: moving aliases under the policy.

A protected alias (the policy's ``promotion.protected``, default ``champion``) moves only with a
blessed evaluation against its holder and the policy's approvals (see
:mod:`regrow.catalog.promotion`); the rest of the commands show and walk the history.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from regrow.cli._app import AsJson, Home, app, known_system, out, print_json, workspace
from regrow.errors import ConfigError

__all__ = ["aliases", "approvals", "approve", "promote", "rollback"]


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="Version to point the alias at.")],
    alias: Annotated[str, typer.Option(help="Alias name.")] = "champion",
    reason: Annotated[str, typer.Option(help="Why (kept in the history).")] = "",
    expect_revision: Annotated[
        int | None, typer.Option(min=0, help="Fail unless the alias is at this revision.")
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(help="Policy YAML whose `promotion` section applies (default: shipped)."),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Admin only: move past missing gates/approvals (needs --reason).")
    ] = False,
    new: Annotated[
        bool, typer.Option(help="Create the alias even if its name is close to an existing one.")
    ] = False,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Point an alias at a version: a protected one needs a blessed evaluation and approvals."""
    with workspace(home) as ws:
        moved = ws.promote(
            version, alias, reason=reason, expected_revision=expect_revision, policy=policy,
            force=force, new=new,
        )  # fmt: skip
        ref = ws.catalog.get_system_version(moved.version_id).ref
    if as_json:
        print_json({**moved.__dict__, "version": ref})
    else:
        out.print(f"{moved.system}@{moved.name} -> {ref} (revision {moved.revision})")


@app.command()
def approve(
    version: Annotated[str, typer.Argument(help="Version to approve (e.g. churn:v2).")],
    alias: Annotated[str, typer.Option(help="The alias it is approved for.")] = "champion",
    note: Annotated[str, typer.Option(help="A note kept with the approval.")] = "",
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Approve a version for an alias, as yourself (approver role; not the version's author)."""
    with workspace(home) as ws:
        record = ws.approve(version, alias, note=note)
        ref = ws.catalog.get_system_version(record.version_id).ref
        # the approvals that count now (a revoked approver's, or one given to replace an
        # earlier holder, do not)
        count = len(ws.catalog.approvals.counting(record.version_id, alias))
    if as_json:
        print_json({**record.__dict__, "version": ref, "approvals": count})
    else:
        out.print(
            f"{record.approver} approved {ref} for {record.system}@{alias} "
            f"({count} approval{'s' if count != 1 else ''} counting so far)"
        )


@app.command()
def approvals(
    version: Annotated[str | None, typer.Argument(help="Version (default: every one).")] = None,
    alias: Annotated[str | None, typer.Option(help="Only approvals for this alias.")] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """List approvals: who approved which version for which alias, and when."""
    with workspace(home) as ws:
        version_id = ws.catalog.get_system_version(version).id if version else None
        rows = ws.catalog.approvals.list(alias=alias, version_id=version_id)
        refs = {v.id: v.ref for v in ws.catalog.list_system_versions()}
    if as_json:
        print_json([{**r.__dict__, "version": refs.get(r.version_id)} for r in rows])
        return
    table = Table()
    for col in ("version", "alias", "approver", "at", "note"):
        table.add_column(col, no_wrap=col in ("version", "at"))
    for r in rows:
        table.add_row(
            _ref(refs, r.version_id), f"{r.system}@{r.alias}", r.approver,
            f"{r.at:%Y-%m-%d %H:%M:%S}", r.note,
        )  # fmt: skip
    out.print(table if rows else "no approvals")


@app.command()
def rollback(
    system: Annotated[str | None, typer.Argument(help="System (default: the only one).")] = None,
    alias: Annotated[str, typer.Option(help="Alias name.")] = "champion",
    reason: Annotated[str, typer.Option(help="Why (kept in the history).")] = "",
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Move an alias back one step in its history (again: one more step back; never toggles)."""
    with workspace(home) as ws:
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
        print_json({**moved.__dict__, "version": ref})
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
    with workspace(home) as ws:
        known_system(ws, system)
        rows = ws.catalog.list_aliases(system)
        refs = {v.id: v.ref for v in ws.catalog.list_system_versions(system)}
        moves = (
            {f"{a.system}@{a.name}": ws.catalog.alias_history(a.system, a.name) for a in rows}
            if history
            else {}
        )
    if as_json:
        print_json(
            {
                "aliases": [{**a.__dict__, "version": refs[a.version_id]} for a in rows],
                "history": {
                    k: [
                        {
                            **m.__dict__,
                            "from_version": refs.get(m.from_version_id or ""),
                            "to_version": refs.get(m.to_version_id),
                        }
                        for m in v
                    ]
                    for k, v in moves.items()
                },
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
        moved = Table(title=f"moves of {key}, newest on top")
        for col in ("revision", "at", "actor", "from", "to", "reason"):
            moved.add_column(col, no_wrap=col in ("at", "from", "to"))
        for m in items:
            before = "-" if m.from_version_id is None else _ref(refs, m.from_version_id)
            moved.add_row(
                str(m.revision) + ("" if m.kind == "move" else f" {m.kind}"),
                f"{m.at:%Y-%m-%d %H:%M:%S}", m.actor, before,
                _ref(refs, m.to_version_id), m.reason,
            )  # fmt: skip
        out.print(moved)


def _ref(refs: dict[str, str], version_id: str) -> str:
    """``churn:v2`` for a version id (its id prefix if the version is not in ``refs``)."""
    return refs.get(version_id) or version_id[:12]
