"""`regrow refresh`: an ensemble's weights follow its members' losses on a labelled window."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from regrow.cli._app import AsJson, Home, Window, app, out, print_json, window_of, workspace
from regrow.errors import PlanError

if TYPE_CHECKING:
    from regrow.refreshing import EnsembleRefresh

__all__ = ["refresh"]


@app.command()
def refresh(
    system: Annotated[
        str,
        typer.Argument(
            metavar="SYSTEM", help="A system (its champion) or a version, e.g. churn:v3."
        ),
    ],
    window: Window,
    add_member: Annotated[
        str | None,
        typer.Option(
            "--add-member",
            metavar="LIKE",
            help="Add a copy of member LIKE fitted on the window, weighed by 3-fold CV.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the new weights; store nothing.")
    ] = False,
    run: Annotated[bool, typer.Option("--run", help="Run the plan: make the new version.")] = False,
    approve: Annotated[
        bool, typer.Option("--approve", help="With --run: approve add-member / retire-member.")
    ] = False,
    policy: Annotated[
        Path | None, typer.Option(help="Policy YAML (default: the workspace's policy).")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why (kept in the plan's rationale).")] = "",
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Refresh an ensemble's weights on a labelled window (Hedge + fixed share), as a plan.

    Members whose weight stays low retire to a pool at weight 0 and come back when they win
    a window; --add-member LIKE lets a newcomer in within the policy's reserved share.
    Every event is audited (`regrow audit`).
    """
    if dry_run and run:
        raise PlanError("--dry-run stores nothing, so there is no plan to --run",
                        hint="drop one of the two options")  # fmt: skip
    if approve and not run:  # it approved nothing, silently
        raise PlanError(
            "--approve approves the plan's run, and there is no --run",
            hint="add --run to make the new version now, or run the plan later with "
            "`regrow run PLAN --approve`",
        )
    with workspace(home) as ws:  # a policy file given is registered, as `regrow plan` does
        done = ws.refresh(
            system, window_of(ws, window), add_member=add_member, dry_run=dry_run,
            reason=reason, policy=policy,
        )  # fmt: skip
        version, ran_before, created = None, False, False
        if run:
            stored = ws.catalog.get_plan(done.plan.id)
            ran_before = stored.status == "executed"  # the same refresh: not run again
            if ran_before:
                version = str(stored.outcome["version"])
            else:
                result = ws.run_plan(done.plan.id, approve=approve).result
                version, created = result.version.ref, result.created_version
    if as_json:
        print_json({**_as_json(done, version if created else None),
                    "result_version": version, "ran_before": ran_before})  # fmt: skip
        return
    _show(done, version, _outcome(version, ran_before, created))


def _outcome(version: str | None, ran_before: bool, created: bool) -> str:
    """What --run did: made a version, found the refresh already run, or the weights held."""
    if version is None:
        return ""
    if ran_before:
        return f"the same refresh ran before: version {version}"
    if not created:
        return f"no new version: {version}, which exists already, has these weights"
    return f"new version {version}"


def _as_json(done: EnsembleRefresh, version: str | None) -> dict[str, object]:
    return {
        "plan": done.plan.id if done.stored else None,
        "dry_run": not done.stored,
        "version": done.plan.version,
        "loss": done.loss,
        "members": [
            {
                "member": r.member,
                "loss": r.loss,
                "before": round(r.before, 6),
                "after": round(r.after, 6),
                "events": list(r.events),
            }
            for r in done.rows
        ],
        "ensemble_loss": done.plan.signals["refresh"]["ensemble_loss"],
        "state_from": done.state_from,
        "notes": list(done.notes),
        "needs_approval": done.plan.needs_approval,
        "new_version": version,
    }


def _show(done: EnsembleRefresh, version: str | None, outcome: str) -> None:
    plan = done.plan
    record = plan.signals["refresh"]
    table = Table(title=f"ensemble {record['ensemble']} of {plan.version}")
    for col in ("member", f"loss ({done.loss})", "weight before -> after", "event"):
        table.add_column(col)
    for r in done.rows:
        loss = f"{r.loss:.3f}" if r.loss is not None else "-"
        table.add_row(r.member, loss, f"{r.before:.3f} -> {r.after:.3f}",
                      ", ".join(r.events) or "-")  # fmt: skip
    out.print(table)
    blend = record["ensemble_loss"]
    if blend["after"] is not None:
        after = f"-> {blend['after']:.3f} (in sample)"
    else:  # the newcomer is scored by cross-validation only
        after = "before (after: not scored in sample, the newcomer is fitted on this window)"
    out.print(f"ensemble {done.loss} on the window: {blend['before']:.3f} {after}")
    for note in done.notes:
        out.print(f"note: {note}")
    out.print(
        f"state from the refresh that made {done.state_from}"
        if done.state_from
        else "no earlier refresh: every weighted member counted as established"
    )
    if not done.stored:
        out.print("dry run: nothing stored")
        return
    out.print(f"plan {plan.id[:12]}: " + "; ".join(a.describe() for a in plan.actions))
    if version is not None:
        out.print(outcome)
        if version != plan.version:
            out.print(f"next: `regrow rollout start {version} --mode blend`")
    elif plan.needs_approval:
        out.print(f"needs approval: `regrow run {plan.id[:12]} --approve`")
    else:
        out.print(f"run it with `regrow run {plan.id[:12]}` (or refresh again with --run)")
