"""`regrow rollout start | status | step | pause | resume | promote | abort | history`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from regrow.cli._app import AsJson, Home, app, err, known_system, out, print_json, workspace
from regrow.rollout.validate import percent, served_share

if TYPE_CHECKING:
    from regrow.catalog.records import AuditEventRecord
    from regrow.catalog.rollouts import RolloutRecord
    from regrow.workspace import Workspace

__all__ = ["rollout_app"]

rollout_app = typer.Typer(
    help="Roll a candidate out on live traffic: split, ab, blend, shadow or blue-green, "
    "promoted or rolled back on always-valid evidence.",
    no_args_is_help=True,
)
app.add_typer(rollout_app, name="rollout")

Rollout = Annotated[str, typer.Argument(metavar="ID", help="Rollout id or id prefix.")]
Reason = Annotated[str, typer.Option(help="Why (kept in the audit log).")]


@rollout_app.command("start")
def rollout_start(
    candidates: Annotated[
        list[str],
        typer.Argument(metavar="CANDIDATE...", help="Version(s), e.g. churn:v2 (ab: several)."),
    ],
    mode: Annotated[
        str | None,
        typer.Option(help="split, ab, blend, shadow or blue-green (default: the policy's)."),
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
    slice_: Annotated[
        list[str] | None,
        typer.Option(
            "--slice",
            metavar="NAME=EXPR",
            help="Analyse a slice on its own (a pandas query over the inputs); repeatable.",
        ),
    ] = None,
    reason: Reason = "",
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Start rolling CANDIDATE out against the holder of its system's ALIAS (mode ab: one
    lane per CANDIDATE; blend: the steps are the candidate's weight in the blend)."""
    from regrow.rollout import machine

    slices = _slices(slice_ or [])
    with workspace(home) as ws:
        record = machine.start(
            ws, candidates[0] if len(candidates) == 1 else candidates, alias=alias, mode=mode,
            steps=steps, min_requests=min_requests, tolerance=tolerance, alpha=alpha,
            loss_cap=loss_cap, reason=reason, slices=slices,
        )  # fmt: skip
        _show(ws, record, as_json)


def _slices(items: list[str]) -> dict[str, str]:
    """``NAME=EXPR`` options as ``{name: expression}``."""
    from regrow.errors import ConfigError

    out: dict[str, str] = {}
    for item in items:
        name, sep, expression = item.partition("=")
        if not sep or not name.strip() or not expression.strip() or name.strip() in out:
            raise ConfigError(
                f"--slice {item!r} is not NAME=EXPR (or names a slice twice)",
                hint="e.g. --slice seniors='age >= 65' --slice young='age < 30'",
            )
        out[name.strip()] = expression.strip()
    return out


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
        known_system(ws, system)  # a typo said "no rollout under way", exit 0
        records = machine.status(ws, rollout, system=system)
        if as_json:
            print_json([_as_json(ws, r) for r in records])
            return
        if not records:
            out.print("no rollout under way")
            return
        if len(records) == 1:  # one rollout: lines, readable in any terminal's width
            r = records[0]
            j = _as_json(ws, r)
            out.print(f"rollout {r.id[:12]} of {r.system}@{r.alias} ({r.mode})")
            out.print(f"  versions  {j['stable']} (stable) -> {_versions(j)}")
            share = _share(r) if r.mode == "blend" else f"share {_share(r)}"
            out.print(f"  state     {_ended(ws, r) or f'{r.state}, {_step(r)}, {share}'}")
            out.print(f"  evidence  {_evidence(r)}")
            _details(ws, r)
            return
        table = Table(title="rollouts")
        for col in ("id", "system@alias", "mode", "stable -> candidate", "state", "step",
                    "share", "evidence"):  # fmt: skip
            table.add_column(col, no_wrap=col == "id")
        for r in records:
            j = _as_json(ws, r)
            table.add_row(
                r.id[:12], f"{r.system}@{r.alias}", r.mode, f"{j['stable']} -> {_versions(j)}",
                r.state, f"{r.step + 1}/{len(r.steps)}", _share(r), _evidence(r),
            )  # fmt: skip
        out.print(table)
        for r in records:
            _details(ws, r, named=len(records) > 1)


@rollout_app.command("step")
def rollout_step(
    rollout: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="One rollout (default: all under way).")
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Analyse the evidence (prediction log + feedback per lane) and advance, hold, promote
    or roll back; without ID, every rollout under way (what a scheduler runs): one that
    fails does not stop the others, each is reported, and the exit code is 2 if any failed."""
    from regrow.errors import RegrowError
    from regrow.rollout import machine

    with workspace(home) as ws:
        records = machine.status(ws, rollout)
        results: list[dict[str, Any]] = []
        for r in records:
            try:
                x = machine.step(ws, r)
            except RegrowError as exc:
                if rollout is not None:
                    raise
                results.append({"id": r.id, "action": "error", "error": exc.message,
                                "hint": exc.hint})  # fmt: skip
                if not as_json:
                    err.print(f"error: rollout {r.id[:12]}: {exc.message}")
                    err.print(f"hint: {exc.hint}" if exc.hint else "")
                continue
            results.append({"action": x.action, **_as_json(ws, x.rollout)})
            if not as_json:
                out.print(f"{x.action}: {x.rollout.reason or x.rollout.state}")
                _show(ws, x.rollout, False)
        if as_json:
            print_json(results)
        elif not results:
            out.print("no rollout under way")
        if any(x["action"] == "error" for x in results):
            raise typer.Exit(2)


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
def rollout_promote(
    rollout: Rollout,
    lane: Annotated[
        str | None,
        typer.Option(help="An A/B rollout's lane (default: the live lane of lowest mean loss)."),
    ] = None,
    reason: Reason = "",
    home: Home = None,
) -> None:
    """Promote the candidate now, through the policy's promotion rules."""
    from regrow.rollout import machine

    with workspace(home) as ws:
        _show(ws, machine.promote(ws, rollout, reason=reason, lane=lane), False)


@rollout_app.command("abort")
def rollout_abort(rollout: Rollout, reason: Reason = "", home: Home = None) -> None:
    """Roll back to the last known good: no traffic to the candidate, the alias on the stable."""
    from regrow.rollout import machine

    with workspace(home) as ws:
        _show(ws, machine.abort(ws, rollout, reason=reason), False)


@rollout_app.command("history")
def rollout_history(
    rollout: Rollout,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the newest N transitions (default: all).")
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Every transition of a rollout, oldest first, with who, why and the evidence (holds in
    a row are one line: "37 holds")."""
    from regrow.rollout import machine

    with workspace(home) as ws:
        events = machine.history(ws, rollout, limit=limit)
    if as_json:
        print_json([{"at": e.at, "actor": e.actor, "action": e.action, **e.payload}
                    for e in events])  # fmt: skip
        return
    table = Table(title=f"rollout {rollout}")
    for col in ("at", "actor", "action", "state", "step", "share", "reason"):
        table.add_column(col)
    for run in _runs(events):
        e, p = run[-1], run[-1].payload
        action = f"{len(run)} holds" if len(run) > 1 else e.action.removeprefix("rollout.")
        at = f"{run[0].at:%Y-%m-%d %H:%M:%S}" + (f" .. {e.at:%H:%M:%S}" if len(run) > 1 else "")
        share = percent(served_share(p.get("state"), p.get("share", 0)))
        table.add_row(
            at, ", ".join(dict.fromkeys(x.actor for x in run)), action,
            f"{run[0].payload.get('from') or '-'} -> {p.get('state')}",
            str(p.get("step", 0) + 1), share, str(p.get("reason") or ""),
        )  # fmt: skip
    out.print(table)


def _runs(events: list[AuditEventRecord]) -> list[list[AuditEventRecord]]:
    """The events with each run of holds in a row as one group (the last one's reason)."""
    runs: list[list[AuditEventRecord]] = []
    for e in events:
        if e.action == "rollout.hold" and runs and runs[-1][-1].action == "rollout.hold":
            runs[-1].append(e)
        else:
            runs.append([e])
    return runs


def _versions(j: dict[str, Any]) -> str:
    return ", ".join(x["version"] for x in j["lanes"]) or str(j["candidate"])


def _share(r: RolloutRecord) -> str:
    if r.mode == "blend":
        return f"weight {percent(r.share)}"
    if r.lanes:
        live = sum(1 for x in r.lanes if not x.dropped)
        return f"{percent(r.share)} x {live}"
    return percent(r.share)


def _step(r: RolloutRecord) -> str:
    return f"step {r.step + 1}/{len(r.steps)}"


def _ended(ws: Workspace, r: RolloutRecord) -> str | None:
    """How a finished rollout ended and what its alias holds now; None while it is under way.

    A finished rollout's candidate has no share of traffic: "promoted, step 1/3, candidate
    share 0%" read as if the promoted candidate served nothing.
    """
    from regrow.errors import NotFound

    if r.state not in ("promoted", "rolled_back"):
        return None
    alias = f"{r.system}@{r.alias}"
    held: str | None = None
    try:
        held = ws.catalog.get_alias(r.system, r.alias).version_id
    except NotFound:  # the alias was removed since
        now = "no longer exists"
    else:
        now = f"holds {ws.catalog.get_system_version(held).ref}"
    if r.state == "rolled_back":
        return f"rolled_back at {_step(r)}: the candidate serves no traffic; {alias} {now}"
    chosen = (r.evidence or {}).get("promoted_version") or r.candidate_id
    ref = ws.catalog.get_system_version(chosen).ref
    if held == chosen:
        return f"promoted at {_step(r)}: the candidate {ref} holds {alias}"
    return f"promoted at {_step(r)}: the candidate {ref} took {alias}, which {now} now"


def _details(ws: Workspace, r: RolloutRecord, *, named: bool = False) -> None:
    """Why a rollout is paused, an A/B rollout's lanes and the last analysis of each lane and
    slice; under a line naming the rollout when ``named`` (several are listed)."""
    lines = []
    if r.state == "paused" and r.reason:
        lines.append(f"  paused: {r.reason}")
    e = r.evidence or {}
    verdicts = e.get("verdicts") or {}
    for x in r.lanes:
        ref = ws.catalog.get_system_version(x.version_id).ref
        state = "dropped" if x.dropped else percent(x.share)
        lines.append(f"  lane {x.name}: {ref}, {state}" + _line(verdicts.get(x.name)))
    slices = e.get("slices") or {}
    for name, v in slices.items() if not verdicts else ():
        lines.append(f"  slice {name}: " + _line(v).removeprefix(", "))
    for lane, v in verdicts.items():
        for name, cut in (v.get("slices") or {}).items():
            lines.append(f"  lane {lane}, slice {name}: " + _line(cut).removeprefix(", "))
    if named and lines:
        out.print(f"rollout {r.id[:12]} ({r.system}@{r.alias}):")
    for line in lines:
        out.print(line)


def _line(v: dict[str, Any] | None) -> str:
    if not v:
        return ""
    return (f", {v.get('decision')}: diff {v.get('difference', 0.0):+.3f}, "
            f"n={v.get('n_candidate')}/{v.get('n_stable')}")  # fmt: skip


def _evidence(r: RolloutRecord) -> str:
    e = r.evidence
    if not e:
        return "-"
    if "error" in e:
        return f"analysis failed: {str(e['error'])[:80]}"
    if r.lanes:
        return "per lane, below"
    low, high = e.get("lower"), e.get("upper")
    interval = f" [{low:+.3f}, {high:+.3f}]" if isinstance(low, float | int) else ""
    diff = e.get("difference", 0.0)
    return f"{e.get('decision')}: diff {diff:+.3f}{interval} n={e.get('n_candidate')}"


def _as_json(ws: Workspace, r: RolloutRecord) -> dict[str, Any]:
    ref = {v: ws.catalog.get_system_version(v).ref for v in (r.stable_id, *r.candidates)}
    return {
        **r.__dict__,
        "stable": ref[r.stable_id],
        "candidate": ref[r.candidate_id],
        "share": r.share,
        "lanes": [
            {
                "lane": x.name,
                "version": ref[x.version_id],
                "version_id": x.version_id,
                "dropped": x.dropped,
                "share": x.share,
            }
            for x in r.lanes
        ],
    }


def _show(ws: Workspace, r: RolloutRecord, as_json: bool) -> None:
    if as_json:
        print_json(_as_json(ws, r))
        return
    j = _as_json(ws, r)
    what = "blend weight" if r.mode == "blend" else "share per lane" if r.lanes else "share"
    cands = _versions(j)
    where = _ended(ws, r) or f"{r.state}, {_step(r)}, candidate {what} {percent(r.share)}"
    out.print(
        f"rollout {r.id[:12]} of {r.system}@{r.alias} ({r.mode}): {j['stable']} -> {cands}, {where}"
    )
    _details(ws, r)
