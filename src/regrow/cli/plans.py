"""`regrow plan | run | plans | policy`: planning updates, running them, and the policy."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from regrow.cli._app import (
    Address,
    AsJson,
    Backend,
    Home,
    Stopped,
    Window,
    app,
    err,
    executor,
    known_system,
    note_bare_ref,
    out,
    print_json,
    window_of,
    workspace,
)
from regrow.cli._progress import print_timings, progress_line, with_progress
from regrow.cli._render import show_run

if TYPE_CHECKING:
    from datetime import datetime

    from regrow.plan.plan import Plan
    from regrow.plan_runs import PlanRun
    from regrow.workspace import Workspace

__all__ = ["plans_app", "policy_app"]

plans_app = typer.Typer(help="List, show and diff stored plans.", no_args_is_help=True)
app.add_typer(plans_app, name="plans")
policy_app = typer.Typer(help="Check and show policies.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


def _show_signals(sig: Mapping[str, Any]) -> None:
    if not sig:  # a plan made by hand (`Workspace.apply`, the watcher's escalation)
        out.print("signals: none measured: a plan made by hand or escalated (see its rationale)")
        return
    drifted = sig.get("drifted_columns") or []
    out.print(
        f"signals: {len(drifted)}/{sig.get('columns_read', 0)} features drifted"
        + (f" ({', '.join(drifted)})" if drifted else "")
        + f"; impact candidates {', '.join(sig.get('impact_candidates') or []) or 'none'}"
        f"; labelled rows {sig.get('labelled_rows', 0):,}"
        + (
            f"; data quality: {len(sig['data_quality'])} finding(s), "
            f"{sig.get('set_aside_rows', 0):,} row(s) set aside"
            if sig.get("data_quality")
            else ""
        )
    )


def _show_refresh(record: Mapping[str, Any]) -> None:
    """A refresh plan's signals: each member's loss and weight before -> after."""
    losses, before, after = dict(record["losses"]), record["before"], record["after"]
    newcomer = record.get("newcomer") or {}
    if newcomer.get("name") and newcomer.get("loss") is not None:  # scored by cross-validation
        losses.setdefault(newcomer["name"], newcomer["loss"])

    def loss(member: str) -> str:
        value = losses.get(member)
        return "-" if value is None else f"{value:.3f}"

    moves = ", ".join(
        f"{m} {loss(m)}: {before.get(m, 0.0):.3f} -> {w:.3f}" for m, w in after.items()
    )
    events = "; ".join(f"{e['member']} {e['kind']}" for e in record.get("events", []))
    out.print(
        f"ensemble refresh of {record['ensemble']} ({record['loss']}, weight before -> after): "
        f"{moves}" + (f"; events: {events}" if events else "")
    )


def _show_plan(plan: Plan, plan_id: str, status: str = "proposed") -> None:
    verdict = (
        "escalated to a full retrain"
        if plan.escalated
        else "nothing to do"
        if plan.empty
        else f"{len(plan.actions)} action(s)"
    )
    out.print(f"plan {plan_id[:12]} for {plan.version} on window {plan.window[:12]}: {verdict}")
    sig = plan.signals
    if "refresh" in sig:
        _show_refresh(sig["refresh"])
    else:
        _show_signals(sig)
    if plan.actions:
        table = Table(title="actions")
        for col in ("#", "action", "component", "recipe", "params", "expected gain",
                    "interval", "est. CPU s", "approval"):  # fmt: skip
            table.add_column(col, no_wrap=col == "recipe")  # a name@version is read whole
        # a plan over its budget needs approval as a whole, whatever each action's kind
        whole = plan.needs_approval and not any(a.approval for a in plan.actions)
        for n, a in enumerate(plan.actions, 1):
            gain = f"{a.gain.value:+.4g}" if a.gain else ""
            interval = f"[{a.gain.low:.4g}, {a.gain.high:.4g}]" if a.gain else ""
            cost = f"{a.cost.cpu_seconds:.2f}" if a.cost else ""
            params = ", ".join(f"{k}={v}" for k, v in a.params().items())
            table.add_row(
                str(n), a.kind, a.component, a.recipe or "-", params, gain, interval, cost,
                Text("needed", style="yellow")
                if a.approval
                else Text("budget", style="yellow")  # one word: a narrow table wraps text
                if whole
                else "no",
            )  # fmt: skip
        out.print(table)
        for n, a in enumerate(plan.actions, 1):
            out.print(f"  {n}. why: {a.reason}" + (f"  (cost: {a.cost.basis})" if a.cost else ""))
    out.print("rationale:")
    for line in plan.rationale:
        out.print(f"  - {line}")
    if plan.expected:
        e = plan.expected
        of = (
            " the partial update the probes weighed (the full retrain this plan makes was "
            "not probed)"
            if e.get("after_of") == "partial"
            else ""
        )
        out.print(
            f"expected {e.get('loss')}: {e.get('before')} now -> {e.get('after')} after{of} "
            f"(on {e.get('on_rows')} held-out rows of the window)"
        )
    c = plan.cost
    full = c.get("full_retrain_cpu_seconds")  # a plan by hand has neither
    spent = c.get("diagnostics_cpu_seconds")
    out.print(
        f"cost: estimated {c.get('estimated_cpu_seconds', 0):.2f} CPU s"
        + (f" (a full retrain: {full:.2f})" if full is not None else "")
        + (f"; diagnostics spent {spent:.2f} CPU s" if spent is not None else "")
    )
    if plan.actions and plan.data.get("mode") == "recent+reference":
        out.print(
            f"data: the window's {plan.data.get('window_rows', 0):,} rows and up to "
            f"{plan.data.get('retained_rows', 0):,} of the version's training rows older than "
            "them (planning.data: recent+reference)"
        )
    out.print(f"contingency: {plan.contingency}")
    if status not in ("proposed", "failed"):  # executed, running or rejected: nothing to run
        return
    again = " again" if status == "failed" else ""
    if plan.needs_approval:
        out.print(f"needs approval: run it{again} with `regrow run {plan_id[:12]} --approve`")
    elif not plan.empty:
        out.print(f"run it{again} with `regrow run {plan_id[:12]}`")


@app.command()
def plan(
    version: Annotated[
        str, typer.Option("--version", help="Version to update, e.g. churn@champion.")
    ],
    window: Window,
    policy: Annotated[
        Path | None,
        typer.Option(
            help="Policy YAML (default: the workspace's, pinned by `regrow policy set`, else "
            "the shipped default)."
        ),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="Tag the plan's experiment record (repeatable)."),
    ] = None,
    contingency: Annotated[
        str | None,
        typer.Option(help="What happens if it fails (default: keep or roll back to VERSION)."),
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Plan the smallest update that fixes what a window shows, and explain it.

    A plan with actions is recorded as an experiment (see `regrow experiments`).
    """
    from regrow.catalog.experiments import check_contingency, check_tags
    from regrow.plan.policy import load_policy

    tags = check_tags(tag or ())  # refused before the workspace opens
    if contingency is not None:
        check_contingency(contingency)
    chosen = load_policy(policy) if policy is not None else None  # None: the workspace's
    with workspace(home) as ws, progress_line(not as_json) as progress:
        note_bare_ref(ws, version)
        result = with_progress(ws.plan, progress)(
            version, window_of(ws, window), policy=chosen, tags=tags, contingency=contingency
        )
        experiment = next(iter(ws.catalog.experiments.list(subject_id=result.id)), None)
    if as_json:
        print_json(
            {"id": result.id, **result.to_dict(),
             "experiment": experiment.id if experiment is not None else None}
        )  # fmt: skip
    else:
        _show_plan(result, result.id)
        if experiment is not None:
            out.print(
                f"experiment {experiment.id[:12]}"
                + (f" tagged {', '.join(experiment.tags)}" if experiment.tags else "")
                + f": `regrow experiments show {experiment.id[:12]}`"
            )
            if contingency is not None:
                out.print(f"the experiment's contingency: {experiment.contingency}")
    print_timings(result)


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
    from datetime import UTC, datetime

    started = datetime.now(UTC)
    try:
        with (
            workspace(home) as ws,
            executor(ws, backend, address, workers) as chosen,
            progress_line(not as_json) as progress,
        ):
            if not as_json:
                _resuming(ws, plan_id)
            ran = with_progress(ws.run_plan, progress)(
                plan_id, approve=approve, seed=seed, workers=workers, backend=chosen
            )
        _show_ran(ran, as_json)
    except KeyboardInterrupt:
        _stopped_after_the_run(home, plan_id, started)
        raise  # stopped before: what it fitted is kept, and running again resumes


def _resuming(ws: Workspace, plan_id: str) -> None:
    """Say so when ``plan_id``'s earlier run was interrupted: this run resumes it (the rows
    "reused" below are what that run finished)."""
    from regrow.errors import NotFound

    try:
        record = ws.catalog.get_plan(plan_id)
    except NotFound:  # the run itself names the unknown plan
        return
    if record.status == "failed" and _interrupted(record.outcome):
        at = record.updated_at.strftime("%Y-%m-%d %H:%M:%S")
        out.print(
            f"resuming plan {record.id[:12]}, interrupted at {at}: the components its run "
            "finished then are reused"
        )


def _stopped_after_the_run(home: Path | None, plan_id: str, started: datetime) -> None:
    """On Ctrl-C: when the plan was executed since ``started`` (the signal came once its run
    was recorded), say what it made and stop with 130; "run again to resume" sent the user
    to a plan that "ran already". Else return: the run stopped before its end."""
    try:
        with workspace(home) as ws:
            record = ws.catalog.get_plan(plan_id)
            made = (
                ws.catalog.get_system_version(record.result_version_id).ref
                if record.status == "executed"
                and record.result_version_id
                and record.updated_at >= started
                else None
            )
    except Exception:  # a look on the way out: failing it, the usual line is printed
        return
    if made is None:
        return
    err.print(
        Text.assemble(
            ("interrupted", "bold yellow"),
            f" after the run finished: plan {record.id[:12]} made {made} "
            f"(`regrow plans show {record.id[:12]}`)",
        )
    )
    raise Stopped(130) from None


def _show_ran(ran: PlanRun, as_json: bool) -> None:
    """What `regrow run` prints once the plan ran."""
    if as_json:
        print_json(
            {
                "plan": ran.record.id,
                "version": ran.result.version.ref,
                "trained": ran.result.trained,
                "reused": ran.result.reused,
                "estimated_cpu_seconds": round(ran.estimated_cpu_seconds, 4),
                "actual_cpu_seconds": round(ran.actual_cpu_seconds, 4),
                "estimated_gpu_seconds": round(ran.estimated_gpu_seconds, 4),
                "actual_gpu_seconds": round(ran.actual_gpu_seconds, 4),
                "estimated_cost": ran.estimated_cost,
                "actual_cost": ran.actual_cost,
                "currency": ran.currency or None,
                "notes": list(ran.notes),
            }
        )
    else:
        show_run(ran.result, False)
        out.print(f"plan {ran.record.id[:12]} executed: " + _costs(ran.record.outcome or {}))
        for note in ran.notes:
            out.print(f"note: {note}")
    print_timings(ran, ran.result)


@plans_app.command("list")
def plans_list(
    system: Annotated[str | None, typer.Argument(help="Only this system's plans.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 20,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Stored plans, newest first, with their status."""
    with workspace(home) as ws:
        known_system(ws, system)
        records = ws.catalog.list_plans(system, limit=limit)
        versions = {r.version_id: ws.catalog.get_system_version(r.version_id).ref for r in records}
    if as_json:
        print_json([{"id": r.id, "kind": r.body.get("kind", "plan"),
                      "version": versions[r.version_id], "status": r.status,
                      "summary": r.body.get("summary"), "created_at": r.created_at.isoformat()}
                     for r in records])  # fmt: skip
        return
    table = Table(title="plans")
    for col in ("id", "kind", "version", "window", "status", "actions", "created"):
        table.add_column(col)
    for r in records:
        named = (r.body.get("summary") or {}).get("actions", [])
        actions = ", ".join(named) or "-"
        status = _status(r.status, bool(named), r.outcome)
        table.add_row(r.id[:12], r.body.get("kind", "plan"), versions[r.version_id],
                      r.window_id[:12], status, actions,
                      r.created_at.strftime("%Y-%m-%d %H:%M:%S"))  # fmt: skip
    out.print(table)


@plans_app.command("show")
def plans_show(
    plan_id: Annotated[str, typer.Argument(metavar="PLAN", help="Plan id or id prefix.")],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Show a stored plan with its reasons, its estimate at the workspace's prices and
    budgets, and its outcome once run (what it used next to the estimate)."""
    from regrow.plan.plan import Plan
    from regrow.run.budget import RunBudget, estimate_plan

    with workspace(home) as ws:
        record = ws.catalog.get_plan(plan_id)
        stored = Plan.from_dict(record.body)
        where = ws.config.backend  # the backend `regrow run` uses unless told otherwise
        estimate = estimate_plan(ws.catalog, stored, ws.config.costs, where)
        budget = RunBudget.of(ws.policy().budgets, ws.config.costs, where)
    over = budget.crossed(estimate)
    if as_json:
        print_json({"id": record.id, "status": record.status, "outcome": record.outcome,
                     **stored.to_dict(),
                     "estimate": {"cpu_seconds": estimate.cpu_seconds,
                                  "gpu_seconds": estimate.gpu_seconds, "cost": estimate.money,
                                  "currency": estimate.currency or None,
                                  "notes": list(budget.notes_on(estimate))},
                     "over_budget": [str(c) for c in over]})  # fmt: skip
        return
    _show_plan(stored, record.id, record.status)
    if estimate.money is not None or estimate.gpu_seconds:
        out.print(
            f"estimate at this workspace's prices ({where} backend): {estimate.cpu_seconds:.2f} "
            f"CPU s, {estimate.gpu_seconds:.2f} GPU s"
            + (f", {estimate.currency} {estimate.money:.4f}" if estimate.money is not None else "")
        )
    if over and record.status == "proposed":
        out.print(f"over the workspace's budgets: estimated {' and '.join(map(str, over))}")
    if record.status != "executed":  # once run, the outcome's notes say it
        for note in budget.notes_on(estimate):
            out.print(f"note: {note}")
    status = _status(record.status, bool(stored.actions), record.outcome)
    if status == "interrupted":
        approve = " --approve" if stored.needs_approval else ""  # without it, refused
        status += f": finished components are kept; `regrow run {record.id[:12]}{approve}` resumes"
    out.print(f"status: {status}")
    if record.outcome and not _interrupted(record.outcome):
        o = record.outcome
        if "version" not in o and not any(k.startswith("actual_") for k in o):
            # failed before anything was fitted: no version, nothing used to set beside the
            # estimate (it printed "outcome: -; CPU - s (estimated - s)")
            out.print(
                "outcome: no version was made" + (f"; error: {o['error']}" if "error" in o else "")
            )
        else:
            out.print(
                f"outcome: {o.get('version', 'no version was made')}; "
                + _costs(o)
                + (f"; error: {o['error']}" if "error" in o else "")
            )
        for note in o.get("notes") or ():
            out.print(f"note: {note}")


def _status(status: str, has_actions: bool, outcome: Mapping[str, Any] | None = None) -> str:
    """A plan's status as `plans list` and `plans show` print it: a plan with no action
    stays proposed for ever, so it is ``nothing to run``; a run stopped by Ctrl-C (or
    SIGTERM) left it ``failed`` in the catalog, and it is ``interrupted``."""
    if not has_actions and status == "proposed":
        return "nothing to run"
    return "interrupted" if status == "failed" and _interrupted(outcome) else status


def _interrupted(outcome: Mapping[str, Any] | None) -> bool:
    """Whether a plan's run was stopped by Ctrl-C or SIGTERM."""
    from regrow.catalog.records import stopped_by_signal

    return stopped_by_signal(dict(outcome) if outcome else None)


def _costs(outcome: Mapping[str, Any]) -> str:
    """What a plan's run used next to its estimate: CPU seconds, GPU seconds when either is
    above zero, and money when it was priced (outcomes recorded before: what they hold)."""

    def num(key: str, digits: int) -> str:
        value = outcome.get(key)
        return f"{value:.{digits}f}" if isinstance(value, int | float) else "-"

    said = [f"CPU {num('actual_cpu_seconds', 2)} s (estimated {num('estimated_cpu_seconds', 2)} s)"]
    if outcome.get("actual_gpu_seconds") or outcome.get("estimated_gpu_seconds"):
        said.append(
            f"GPU {num('actual_gpu_seconds', 2)} s (estimated {num('estimated_gpu_seconds', 2)} s)"
        )
    if outcome.get("currency"):
        cur = outcome["currency"]
        said.append(f"{cur} {num('actual_cost', 4)} (estimated {cur} {num('estimated_cost', 4)})")
    return "; ".join(said)


@plans_app.command("diff")
def plans_diff(
    old: Annotated[str, typer.Argument(help="Plan id or prefix.")],
    new: Annotated[str, typer.Argument(help="Plan id or prefix.")],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """What changed between two plans: actions, escalation, expected loss, cost, policy."""
    from regrow.plan.plan import Plan, diff_plans

    with workspace(home) as ws:
        a = Plan.from_dict(ws.catalog.get_plan(old).body)
        b = Plan.from_dict(ws.catalog.get_plan(new).body)
    lines = diff_plans(a, b)
    if as_json:
        print_json(lines)
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
    from regrow.plan.policy import load_policy

    del home
    checked = load_policy(file)
    if as_json:
        print_json({"ok": True, "id": checked.id, "policy": checked.to_dict()})
        return
    allowed = ", ".join(checked.autonomy.allowed)
    out.print(f"{file}: valid (policy {checked.id}); runs without approval: {allowed}")


@policy_app.command("show")
def policy_show(home: Home = None, as_json: AsJson = False) -> None:
    """Print the default policy, with the comments that document every key (--json: its
    values and id, without the comments)."""
    del home  # accepted like every command's; the default policy is the same everywhere
    if as_json:
        from regrow.plan.policy import Policy

        default = Policy.default()
        print_json({"id": default.id, "policy": default.to_dict()})
        return
    from regrow.plan.policy import default_policy_text

    typer.echo(default_policy_text(), nl=False)


@policy_app.command("set")
def policy_set(
    file: Annotated[Path, typer.Argument(help="Policy YAML file.")],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Pin a policy as the workspace's (admin): promotions follow its `promotion` section,
    only evaluations under its gates count, plans and runs use it by default."""
    with workspace(home) as ws:
        pinned = ws.set_policy(file)
    if as_json:
        print_json({"id": pinned.id, "source": str(file), "policy": pinned.to_dict()})
        return
    out.print(f"the workspace's policy is now {pinned.id} (from {file})")


@policy_app.command("current")
def policy_current(home: Home = None, as_json: AsJson = False) -> None:
    """Show the workspace's policy: its id, where it came from, who pinned it and when."""
    with workspace(home) as ws:
        pinned = ws.catalog.policies.pinned()
        current = ws.policy()
    if as_json:
        print_json(
            {
                "id": current.id,
                "pinned": pinned is not None,
                "source": pinned.source if pinned else "the default policy",
                "policy": current.to_dict(),
            }
        )
        return
    if pinned is None:
        out.print(f"the default policy ({current.id}): `regrow policy set FILE` pins another")
    else:
        out.print(
            f"policy {pinned.id} from {pinned.source}, registered by {pinned.actor} at "
            f"{pinned.created_at:%Y-%m-%d %H:%M:%S}"
        )
    gates = ", ".join(current.gates.to_dict().get("checks", {})) or "none"
    protected = ", ".join(current.promotion.protected) or "none"
    out.print(
        f"protected aliases: {protected}; approvals: {current.promotion.approvals}; gates: {gates}"
    )
