"""`regrow adapters propose | show`: the boundary adapters a system needs, and those it has.

``propose`` compares a snapshot's schema with the one a system version trained on (as
`regrow schema check` does, reusing its helpers) and prints the adapters that bridge the
changes (:func:`regrow.data.propose.propose`) as Python to paste into the system file, and
the changes only a person can bridge. ``show`` prints the adapters stored with a version
(:mod:`regrow.data.adapters`), their digest, and the components that read each adapted column.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from regrow.cli._app import AsJson, Home, app, err, out, print_json, workspace
from regrow.cli.schema import (
    ModeOption,
    PolicyOption,
    _given,
    _label,
    _mode,
    _print,
    _read_as_trained,
    _read_columns,
    _trained_on,
)

__all__ = ["adapters_app"]

adapters_app = typer.Typer(
    help="Propose and show a system's boundary adapters.", no_args_is_help=True
)
app.add_typer(adapters_app, name="adapters")


@adapters_app.command("propose")
def adapters_propose(
    snapshot: Annotated[str, typer.Argument(help="Snapshot id, id prefix or name (newest).")],
    system: Annotated[str, typer.Option(help="The system that should read the snapshot.")],
    version: Annotated[
        str | None,
        typer.Option(help="The system version, e.g. v3 or churn:v3 (default: its champion)."),
    ] = None,
    mode: ModeOption = None,
    policy: PolicyOption = None,
    apply: Annotated[
        bool,
        typer.Option(
            "--apply",
            help="When every change is bridged: make a version of it with the adapters "
            "(nothing re-fitted; Workspace.adapt).",
        ),
    ] = False,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Propose the adapters that let the system's champion (or --version) read SNAPSHOT.

    Compares the snapshot's schema with the one the version trained on, counting only the
    columns it reads; prints the changes, the proposed adapters as Python to paste into the
    system's adapters=[...], and each change regrow cannot bridge alone with what to write.
    With --apply, a version of it reading its rows through them is made at once. Exits 0 when
    every change is safe or bridged by a proposal, 1 otherwise (and --apply makes nothing).
    """
    from regrow.data import Schema
    from regrow.data.compat import bridge, classify
    from regrow.data.propose import propose

    given = _given(mode, policy)
    with workspace(home) as ws:
        chosen = _mode(ws, mode, given)
        trained = _trained_on(ws, system, version)
        reference = ws.catalog.snapshot_schema(str(trained.snapshot_id))
        candidate = ws.catalog.snapshot_schema(snapshot)
        old = Schema.from_dict(reference.spec)
        new = _read_as_trained(ws, snapshot, candidate.spec, reference.spec)
    reads = _read_columns(trained)
    have = trained.spec.get("adapters") or []
    result = bridge(classify(old, new, chosen, target=reads), have)
    proposal = propose(old, new, reads=reads, mode=chosen, have=have)
    if as_json:
        print_json(
            {
                "snapshot": snapshot,
                "version": trained.ref,
                "against": _label(reference),
                "bridged": proposal.bridged,
                **result.to_dict(),
                **proposal.to_dict(),
            }
        )
    else:
        out.print(f"{snapshot} against {_label(reference)} ({trained.ref} trained on it)")
        _print(result)
        if proposal.adapters:
            out.print("\nproposed adapters (paste the items into the system's adapters=[...]):")
            for line in proposal.python().splitlines():
                out.print(f"  {line}" if line else "")
        elif not proposal.undecided:
            out.print("\nno adapter needed")
        if proposal.undecided:
            out.print("\nundecided (regrow cannot choose; write these yourself):")
            for _, reason in proposal.undecided:
                out.print(f"  - {reason}")
            n = len(proposal.undecided)
            err.print(
                Text.assemble(
                    ("not bridged: ", "red"),
                    f"{n} change{'s' if n != 1 else ''} to columns {trained.ref} reads "
                    f"{'stay' if n != 1 else 'stays'} undecided; write the adapters into the "
                    "system's adapters=[...], or retrain on the new data",
                )
            )
    if not proposal.bridged:
        raise typer.Exit(1)
    if apply:
        if proposal.adapters.to_list() == list(have):
            err.print(f"nothing to apply: {trained.ref} has these adapters already")
            return
        with workspace(home) as ws:
            made = ws.adapt(trained.ref, proposal.adapters)
        err.print(
            f"{made.version.ref}: {trained.ref} reading its rows through "
            f"{len(proposal.adapters)} adapter{'s' if len(proposal.adapters) != 1 else ''} "
            f"({len(made.run.summary['trained'])} components re-fitted)"
        )


@adapters_app.command("show")
def adapters_show(
    ref: Annotated[
        str, typer.Argument(help="A system version: shop@champion, shop:v2, shop (newest).")
    ],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Show the adapters stored with a system version REF.

    One line each, with the components (transforms included) that read its column, and the
    adapters' digest; "no adapters" when the version has none.
    """
    from regrow.catalog.lineage import adapters_report

    with workspace(home) as ws:
        record = ws.catalog.get_system_version(ref)
    report = adapters_report(record.spec)
    if as_json:
        print_json(
            {
                "version": record.ref,
                "digest": report["digest"] if report else None,
                "adapters": report["adapters"] if report else [],
            }
        )
        return
    if report is None:
        out.print(f"{record.ref}: no adapters")
        return
    adapters = report["adapters"]
    out.print(f"{record.ref}: {len(adapters)} adapter{'s' if len(adapters) != 1 else ''} "
              f"(digest {report['digest']})")  # fmt: skip
    for adapter in adapters:
        names = adapter["read_by"]
        read_by = f"read by {', '.join(names)}" if names else "read by no component"
        out.print(Text.assemble(f"  {adapter['describe']}  ", (f"({read_by})", "dim")))
