"""`regrow rollout start | status | step | pause | resume | promote | abort | history`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from regrow.cli._app import AsJson, Home, app, out, print_json, workspace

if TYPE_CHECKING:
    from regrow.catalog.rollouts import RolloutRecord
    from regrow.workspace import Workspace

__all__ = ["rollout_app"]

rollout_app = typer.Typer(
    help="Roll a candidate out on live traffic: split, shadow or blue-green, promoted or "
    "rolled back on always-valid evidence.",
    no_args_is_help=True,
)
app.add_typer(rollout_app, name="rollout")

Rollout = Annotated[str, typer.Argument(metavar="ID", help="Rollout id or id prefix.")]
Reason = Annotated[str, typer.Option(help="Why (kept in the audit log).")]


@rollout_app.command("start")
def rollout_start(
    candidate: Annotated[str, typer.Argument(metavar="CANDIDATE", help="Version, e.g. churn:v2.")],
    mode: Annotated[
        str | None, typer.Option(help="split, shadow or blue-green (default: the policy's).")
    ] = None,
    steps: Annotated[
        str | None, typer.Option(help="Candidate shares, e.g. 5,25,50,100 (default: policy).")
    ] = None,
    min_requests: Annotated[
        int | None,
        typer.Option(min=1, help="Labelled candidate requests each step needs (default: policy)."),
    ] = None,
    alias: Annotated[str, typer.Option(help="The alias the candidate would take.")] = "champion",
    tolerance: Annotated[
        float, typer.Option(help="Loss increase a candidate may cost (error rate units).")
    ] = 0.02,
    alpha: Annotated[float, typer.Option(help="Error level of the confidence sequence.")] = 0.05,
    loss_cap: Annotated[
        float | None, typer.Option(help="A regressor's absolute error counted as a total miss.")
    ] = None,
    reason: Reason = "",
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Start rolling CANDIDATE out against the holder of its system's ALIAS."""
    from regrow.rollout import machine

    with workspace(home) as ws:
        record = machine.start(
            ws, candidate, alias=alias, mode=mode, steps=steps, min_requests=min_requests,
            tolerance=tolerance, alpha=alpha, loss_cap=loss_cap, reason=reason,
        )  # fmt: skip
        _show(ws, record, as_json)


@rollout_app.command("status")
def rollout_status(
    rollout: Annotated[str | None, typer.Argument(metavar="[ID]", help="One rollout.")] = None,
    system: Annotated[str | None, typer.Option(help="Only this system's rollouts.")] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Rollouts under way (or rollout ID): state, step, candidate's share, last evidence."""
    from regrow.rollout import machine

    with workspace(home) as ws:
        records = machine.status(ws, rollout, system=system)
        if as_json:
            print_json([_as_json(ws, r) for r in records])
            return
        if not records:
            out.print("no rollout under way")
            return
        table = Table(title="rollouts")
        for col in ("id", "system@alias", "mode", "stable -> candidate", "state", "step",
                    "share", "evidence"):  # fmt: skip
            table.add_column(col, no_wrap=col == "id")
        for r in records:
            j = _as_json(ws, r)
            table.add_row(
                r.id[:12], f"{r.system}@{r.alias}", r.mode, f"{j['stable']} -> {j['candidate']}",
                r.state, f"{r.step + 1}/{len(r.steps)}", f"{r.share:.0%}", _evidence(r),
            )  # fmt: skip
        out.print(table)


@rollout_app.command("step")
def rollout_step(
    rollout: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="One rollout (default: all under way).")
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Analyse the evidence (prediction log + feedback per lane) and advance, hold, promote
    or roll back; without ID, every rollout under way (what a scheduler runs)."""
    from regrow.rollout import machine

    with workspace(home) as ws:
        records = machine.status(ws, rollout)
        results = [machine.step(ws, r) for r in records]
        if as_json:
            print_json([{"action": x.action, **_as_json(ws, x.rollout)} for x in results])
            return
        if not results:
            out.print("no rollout under way")
        for result in results:
            out.print(f"{result.action}: {result.rollout.reason or result.rollout.state}")
            _show(ws, result.rollout, False)


@rollout_app.command("pause")
def rollout_pause(rollout: Rollout, reason: Reason = "", home: Home = None) -> None:
    """Hold a rollout where it is (traffic stays as it is; `step` does nothing)."""
    from regrow.rollout import machine

    with workspace(home) as ws:
        _show(ws, machine.pause(ws, rollout, reason=reason), False)


@rollout_app.command("resume")
def rollout_resume(rollout: Rollout, reason: Reason = "", home: Home = None) -> None:
    """Resume a paused or inconclusive rollout."""
    from regrow.rollout import machine

    with workspace(home) as ws:
        _show(ws, machine.resume(ws, rollout, reason=reason), False)


@rollout_app.command("promote")
def rollout_promote(rollout: Rollout, reason: Reason = "", home: Home = None) -> None:
    """Promote the candidate now, through the policy's promotion rules."""
    from regrow.rollout import machine

    with workspace(home) as ws:
        _show(ws, machine.promote(ws, rollout, reason=reason), False)


@rollout_app.command("abort")
def rollout_abort(rollout: Rollout, reason: Reason = "", home: Home = None) -> None:
    """Roll back to the last known good: no traffic to the candidate, the alias on the stable."""
    from regrow.rollout import machine

    with workspace(home) as ws:
        _show(ws, machine.abort(ws, rollout, reason=reason), False)


@rollout_app.command("history")
def rollout_history(rollout: Rollout, home: Home = None, as_json: AsJson = False) -> None:
    """Every transition of a rollout, oldest first, with who, why and the evidence."""
    from regrow.rollout import machine

    with workspace(home) as ws:
        events = machine.history(ws, rollout)
    if as_json:
        print_json([{"at": e.at, "actor": e.actor, "action": e.action, **e.payload}
                    for e in events])  # fmt: skip
        return
    table = Table(title=f"rollout {rollout}")
    for col in ("at", "actor", "action", "state", "step", "share", "reason"):
        table.add_column(col)
    for e in events:
        p = e.payload
        table.add_row(
            f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.action.removeprefix("rollout."),
            f"{p.get('from') or '-'} -> {p.get('state')}", str(p.get("step", 0) + 1),
            f"{p.get('share', 0):.0%}", str(p.get("reason") or ""),
        )  # fmt: skip
    out.print(table)


def _evidence(r: RolloutRecord) -> str:
    e = r.evidence
    if not e:
        return "-"
    low, high = e.get("lower"), e.get("upper")
    interval = f" [{low:+.3f}, {high:+.3f}]" if isinstance(low, float | int) else ""
    diff = e.get("difference", 0.0)
    return f"{e.get('decision')}: diff {diff:+.3f}{interval} n={e.get('n_candidate')}"


def _as_json(ws: Workspace, r: RolloutRecord) -> dict[str, Any]:
    return {
        **r.__dict__,
        "stable": ws.catalog.get_system_version(r.stable_id).ref,
        "candidate": ws.catalog.get_system_version(r.candidate_id).ref,
        "share": r.share,
    }


def _show(ws: Workspace, r: RolloutRecord, as_json: bool) -> None:
    if as_json:
        print_json(_as_json(ws, r))
        return
    j = _as_json(ws, r)
    out.print(
        f"rollout {r.id[:12]} of {r.system}@{r.alias} ({r.mode}): {j['stable']} -> "
        f"{j['candidate']}, {r.state}, step {r.step + 1}/{len(r.steps)}, candidate share "
        f"{r.share:.0%}"
    )
