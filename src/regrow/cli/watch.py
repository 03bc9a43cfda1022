"""`regrow watch`: keep a system fresh on its own, cycle by cycle (:mod:`regrow.loop.watch`);
``--history`` and ``--show`` read the cycles back, ``--status`` lists the watchers."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from regrow.cli._app import (
    AsJson,
    Home,
    Stopped,
    app,
    err,
    known_system,
    out,
    print_json,
    workspace,
)
from regrow.errors import ConfigError, NotFound, RegrowError

if TYPE_CHECKING:
    from regrow.catalog.watches import WatchCycleRecord, WatchLeaseRecord
    from regrow.workspace import Workspace

__all__ = ["watch"]


@app.command()
def watch(
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="SYSTEM[@ALIAS]", help="The system to keep fresh (alias: champion)."
        ),
    ] = None,
    every: Annotated[
        str | None,
        typer.Option(help="How often to look for a new window: 30s, 15m, 1h (default: [watch])."),
    ] = None,
    after: Annotated[
        int | None,
        typer.Option(min=1, help="Served windows: cut one once N new labelled rows came."),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(help='Where windows come from: "served", "files:GLOB", "snapshot:NAME".'),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Record findings and decisions; run nothing.")
    ] = False,
    once: Annotated[
        bool, typer.Option("--once", help="Run the cycles of the windows there now, then stop.")
    ] = False,
    cycles: Annotated[int | None, typer.Option(min=1, help="Stop after this many cycles.")] = None,
    policy: Annotated[
        str | None, typer.Option(help="A policy file (default: the workspace's policy).")
    ] = None,
    history: Annotated[
        bool, typer.Option("--history", help="List the system's cycles instead of watching.")
    ] = False,
    show: Annotated[
        int | None, typer.Option(help="Show cycle N of the system instead of watching.")
    ] = None,
    status: Annotated[
        bool, typer.Option("--status", help="List the watchers and their last cycles.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="Cycles --history lists.")] = 20,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Keep SYSTEM@ALIAS fresh on its own, one cycle per new window.

    Each cycle monitors the window, forecasts the SLA, decides, plans, runs what the policy's
    autonomy allows, evaluates and rolls out (or promotes); every cycle is recorded and
    audited, resumes after a crash, and only one watcher acts per system.
    """
    if status:
        _status(home, as_json)
        return
    if target is None:
        raise ConfigError("name the system to watch", hint="e.g. `regrow watch churn@champion`")
    system, _, alias = target.partition("@")
    if history or show is not None:
        _read_back(home, system, alias or None, show, limit, as_json)
        return
    _watch(target, every, after, source, dry_run, once, cycles, policy, home, as_json)


def _watch(
    target: str,
    every: str | None,
    after: int | None,
    source: str | None,
    dry_run: bool,
    once: bool,
    cycles: int | None,
    policy: str | None,
    home: Any,
    as_json: bool,
) -> None:
    from regrow.loop.watch import ServedSource, Watcher, parse_every, source_from

    with workspace(home) as ws:
        # the command line's --every and --source replace the file's (unread, unchecked)
        settings = ws.config.watch_for(target.partition("@")[0], every=every, source=source)
        span = parse_every(settings.every)
        # A --source glob is relative to where the command runs; [watch] source's to the
        # workspace.
        base = Path.cwd() if source else ws.config.home
        chosen = source_from(source or settings.source, home=base, every=span, after=after)
        if after is not None and not isinstance(chosen, ServedSource):
            raise ConfigError(
                "--after counts labelled rows served since the last window",
                hint="use it with --source served; a files or snapshot source has a window "
                "per file or snapshot",
            )
        watcher = Watcher(
            ws,
            target,
            chosen,
            policy=ws.policy() if policy is None else _policy(policy),
            dry_run=dry_run,
            notify=settings.notify,
            notify_on=settings.notify_on,
            lease_seconds=settings.lease_seconds,
            on_event=(lambda e: print_json(e)) if as_json else _print_event,
        )
        cut = (
            f"a window once {after:,} new labelled row(s) came, looked for every "
            f"{every or settings.every}"
            if after is not None
            else "the windows there now, then stop"
            if once
            else f"every {every or settings.every}"
        )
        try:
            with watcher, _terminated_as_interrupted():
                # said once the lease is held: a watcher refused it (another holds it) said
                # "watching" before the refusal
                if not as_json:
                    err.print(
                        f"watching {watcher.system}@{watcher.alias}"
                        f"{' (dry run)' if dry_run else ''}: windows from "
                        f"{source or settings.source}, {cut}; "
                        "Ctrl-C stops (a cycle in progress resumes next time)",
                        highlight=False,
                    )
                done = watcher.run(every=span, cycles=cycles, once=once)
            why = watcher.waiting_for() if not done else None
        except KeyboardInterrupt as stop:
            term = isinstance(stop, _Terminated)
            err.print(
                Text.assemble(
                    ("stopped (SIGTERM)" if term else "interrupted", "bold yellow"),
                    "; the watch lease is released; a cycle in progress "
                    "resumes on the next `regrow watch`",
                )
            )
            raise Stopped(143 if term else 130) from None
    if not as_json:
        out.print(f"{len(done)} cycle(s) run", highlight=False)
        if why is not None:
            err.print(Text.assemble(("hint: ", "yellow"), why), highlight=False)


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a service manager, `kill`, a container stopping): handled as Ctrl-C is, so
    the watcher releases its lease instead of holding it, dead, until it lapses."""


@contextmanager
def _terminated_as_interrupted() -> Iterator[None]:
    """Raise :class:`_Terminated` in the main thread on SIGTERM while the block runs."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return

    def stop(signum: int, frame: Any) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _no_probability(forecast: dict[str, Any]) -> str:
    """Why a cycle's forecast holds no probability: its notes (too few points, say)."""
    notes = "; ".join(str(n) for n in forecast.get("notes") or ())
    return f"not computed ({notes})" if notes else "not computed"


def _seconds(seconds: float) -> str:
    """``15m``, ``2h``, ``1d``, ``30s``: how often the watcher looks, as --every writes it."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _policy(path: str) -> Any:
    from regrow.plan.policy import load_policy

    return load_policy(path)


def _print_event(event: dict[str, Any]) -> None:
    kind = event.get("event")
    if kind in ("resumed",):
        out.print(f"resuming cycle {event['cycle']} after step {event['step']}", highlight=False)
        return
    if kind == "rollout":
        out.print(
            f"rollout {str(event['rollout'])[:12]}: {event['action']} ({event['state']})",
            highlight=False,
        )
        return
    if kind == "idle":  # the source can give no window yet: said once, then it waits
        err.print(
            Text.assemble(
                ("waiting: ", "yellow"),
                f"{event['why']}; looking again every {_seconds(float(event['every']))}",
            ),
            highlight=False,
        )
        return
    if kind == "notify_failed":
        err.print(Text.assemble(("notify failed: ", "yellow"), str(event["error"])))
        return
    if kind == "acted" and event.get("promoted"):
        out.print(
            f"promoted {event['promoted']} to {event['alias']}: cycle {event['cycle']}'s "
            "candidate, approved since",
            highlight=False,
        )
        return
    if "cycle" not in event or "state" not in event:
        out.print(str(event), highlight=False)
        return
    style = {"failed": "red", "waiting": "yellow", "acted": "green"}.get(str(kind), "dim")
    cost = event.get("cost") or {}
    line = Text.assemble(
        (f"cycle {event['cycle']}: {event['state']}", style),
        f" — {event.get('why') or ''}",
        (f"  ({cost.get('cpu_seconds', 0):.1f} CPU s)", "dim"),
    )
    out.print(line, highlight=False)
    if event.get("hint") and kind in ("failed", "waiting"):
        out.print(Text.assemble(("  hint: ", "yellow"), str(event["hint"])), highlight=False)


def _watched(lease: WatchLeaseRecord | None) -> bool:
    """Whether a live watcher holds ``lease``."""
    return lease is not None and lease.live


def _read_back(
    home: Any, system: str, alias: str | None, number: int | None, limit: int, as_json: bool
) -> None:
    """Cycle ``number`` of ``system``, or its newest ``limit`` cycles (those watching
    ``alias`` when one is named: a misspelt one is refused, as `regrow watch` refuses it)."""
    with workspace(home) as ws:
        ws.require("viewer", "read watch cycles")
        known_system(ws, system)
        if alias is not None:
            ws.catalog.get_alias(system, alias)  # unknown: says which exist
        watched = _watched(ws.catalog.watches.lease(system))
        if number is not None:
            cycle = _cycle(ws, system, number)
            if as_json:
                print_json(cycle.to_dict())
            else:
                plan = (cycle.body.get("plan") or {}).get("id")
                status = ws.catalog.get_plan(str(plan)).status if plan else None
                _show_cycle(cycle, watched, plan_status=status)
            return
        found = [
            c
            for c in ws.catalog.watches.cycles(system, limit=limit)
            if alias is None or c.alias == alias
        ]
        champion = any(a.name == "champion" for a in ws.catalog.list_aliases(system))
    if as_json:
        print_json([c.to_dict() for c in found])
        return
    if not found:
        start = (
            f"start one with `regrow watch {system}`"
            if champion
            else f"a watch follows an alias: promote a version first (`regrow promote "
            f"{system}:vN`), or watch another (`regrow watch {system}@ALIAS`)"
        )
        out.print(f"{system}: no watch cycle yet ({start})")
        return
    table = Table(
        title=f"{system}: watch cycles, newest first",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
    )
    for col in ("cycle", "started", "state", "CPU s", "plan", "outcome"):
        table.add_column(
            col, justify="right" if col in ("cycle", "CPU s") else "left", no_wrap=True
        )
    for c in found:
        plan = c.body.get("plan") or {}
        state, why = c.shown(watched)
        table.add_row(
            str(c.number) + (" (dry)" if c.dry_run else ""),
            f"{c.started_at:%m-%d %H:%M}",
            state,
            f"{(c.body.get('cost') or {}).get('cpu_seconds', 0):.1f}",
            _short(", ".join(plan.get("actions") or []) or ("(empty)" if plan else ""), 18),
            _short(why, max(20, out.size.width - 60)),
        )
    out.print(table)


def _cycle(ws: Workspace, system: str, number: int) -> WatchCycleRecord:
    """Cycle ``number`` of ``system``; an unknown one is refused with the numbers it has."""
    try:
        return ws.catalog.watches.cycle(system, number)
    except NotFound:
        newest = max((c.number for c in ws.catalog.watches.cycles(system, limit=5)), default=0)
    if not newest:
        raise _UnknownCycle(
            f"{system} has no watch cycle {number} (it has none yet)",
            str(number),
            hint=f"start one with `regrow watch {system}`",
        )
    has = "its only cycle is 1" if newest == 1 else f"its cycles are 1-{newest}"
    raise _UnknownCycle(
        f"{system} has no watch cycle {number} ({has})",
        str(number),
        hint=f"`regrow watch {system} --history` lists them",
    )


class _UnknownCycle(NotFound):
    """A cycle number a system has not reached, said with the numbers it has (the catalog's
    "unknown watch cycle of 'risk' '99'" said neither)."""

    def __init__(self, message: str, ref: str, *, hint: str) -> None:
        self.ref = ref
        RegrowError.__init__(self, message, hint=hint)


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _approval(status: str | None) -> str:
    """What became of a plan that needed approval, from its status now.

    >>> _approval("proposed"), _approval("executed")
    ('needs approval', 'needed approval: approved and run since')
    """
    since = {"executed": "approved and run since", "running": "approved, running now",
             "failed": "approved, failed since", "rejected": "rejected since"}  # fmt: skip
    return f"needed approval: {since[status]}" if status in since else "needs approval"


def _show_cycle(c: WatchCycleRecord, watched: bool, *, plan_status: str | None = None) -> None:
    """Cycle ``c`` in full; ``plan_status`` is its plan's status now (a plan that waited for
    approval may have been run since)."""
    body = c.body
    state, why = c.shown(watched)
    out.print(
        Text.assemble(
            (f"{c.system}@{c.alias} cycle {c.number}", "bold"),
            f" ({state}, last step {c.step}{', dry run' if c.dry_run else ''})",
        ),
        highlight=False,
    )
    window = body.get("window") or {}
    if window:
        out.print(f"window: {_window_words(window, c.window_key)}", highlight=False)
    mon = body.get("monitor")
    if mon:
        out.print(
            f"monitor: drifted {', '.join(mon['drifted']) or 'nothing'}; loss raised for "
            f"{', '.join(mon['candidates']) or 'no member'}; {len(mon['alerts'])} alert(s)",
            highlight=False,
        )
        for gone in mon.get("missing") or ():
            out.print(f"data: {gone['column']!r}: {gone['what']}", highlight=False)
        for found in mon.get("findings") or ():
            out.print(f"data: {found['column']!r}: {found['why']}", highlight=False)
    fc = body.get("forecast")
    if fc:
        p = fc.get("probability")
        now = fc.get("current")
        out.print(
            f"forecast: {fc['metric']} now {'?' if now is None else f'{now:.4g}'} "
            f"({fc.get('current_source') or 'no value'}); P(crossing {fc['threshold']:g} "
            f"within {fc['horizon']} cycles) = "
            + (f"{p:.2f}" if p is not None else _no_probability(fc))
            + (
                f"; from the labels alone ({lab['lag_cycles']} "
                f"cycle{'' if lab['lag_cycles'] == 1 else 's'} late) "
                f"{lab['probability']:.2f}"
                if (lab := fc.get("by_labels"))
                else ""
            ),
            highlight=False,
        )
        aside = (fc.get("realised") or {}).get("set_aside")
        if aside:
            out.print(
                f"data: the realised {fc['metric']} left out {aside:,} held-out row(s) the "
                "version cannot score",
                highlight=False,
            )
    decision = body.get("decision")
    if decision:
        for line in decision.get("because") or []:
            out.print(f"act: {line}", highlight=False)
        for line in decision.get("held_back") or []:  # the threat a cooldown (say) held back
            out.print(f"held back: {line}", highlight=False)
        # beside a reason to act, these are what did not trigger it: "not acting" under an
        # "act" line read as if the cycle both acted and did not
        held = "not a reason to act" if decision.get("because") else "not acting"
        for line in decision.get("not_acting") or []:
            out.print(f"{held}: {line}", highlight=False)
    plan = body.get("plan")
    if plan:
        notes = [
            n
            for n, on in (
                ("escalated", plan.get("escalated")),
                (_approval(plan_status), plan.get("needs_approval")),
            )
            if on
        ]
        if plan.get("deferred_from_cycle"):  # watch.evaluate_on: newer
            notes.append(f"planned and run by cycle {plan['deferred_from_cycle']}")
        cpu = plan.get("estimated_cpu_seconds")
        if cpu is not None:
            notes.append(f"estimated {cpu:.2f} CPU s")
        out.print(
            f"plan {plan['id'][:12]}: {', '.join(plan['actions']) or 'nothing to update'}"
            f"{' (' + '; '.join(notes) + ')' if notes else ''}",
            highlight=False,
        )
        for line in plan.get("rationale") or []:
            out.print(f"  - {line}", highlight=False)
    for key in ("run", "evaluation", "rollout", "promotion"):
        if body.get(key):
            out.print(f"{key}: {_flat(body[key])}", highlight=False)
    end = body.get("end") or {}
    if state == "interrupted":
        out.print(f"end: interrupted: {why}", highlight=False)
    elif end:
        out.print(f"end: {end.get('state')}: {end.get('why')}", highlight=False)
        if end.get("hint"):
            out.print(Text.assemble(("hint: ", "yellow"), str(end["hint"])), highlight=False)
    cost = body.get("cost") or {}
    if cost:
        out.print(f"cost: {_flat(cost)}", highlight=False)


def _window_words(window: dict[str, Any], key: str) -> str:
    """``day02.csv: 1,500 rows; 3,000 labelled rows from the last 7 files`` (the labelled
    rows are older rows whose labels came, not a part of the window's)."""
    text = f"{window.get('note') or key}: {window.get('rows', 0):,} rows"
    labelled = int(window.get("labelled_rows") or 0)
    if not labelled:
        return f"{text}; no labelled rows yet"
    where = window.get("labelled_from")
    return f"{text}; {labelled:,} labelled rows" + (f" from {where}" if where else "")


def _flat(data: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in data.items() if v not in (None, [], ""))


def _status(home: Any, as_json: bool) -> None:
    with workspace(home) as ws:
        ws.require("viewer", "read watchers")
        leases = {lease.system: lease for lease in ws.catalog.watches.leases()}
        last: dict[str, WatchCycleRecord] = {}
        for c in ws.catalog.watches.cycles(limit=200):
            last.setdefault(c.system, c)
    rows = []
    for system in sorted(set(leases) | set(last)):
        lease, cycle = leases.get(system), last.get(system)
        watched = _watched(lease)
        state, why = (None, None) if cycle is None else cycle.shown(watched)
        rows.append(
            {
                "system": system,
                "watcher": lease.describe() if lease is not None and watched else None,
                "last_cycle": None if cycle is None else cycle.number,
                "last_state": state,
                "last_started": None if cycle is None else cycle.started_at.isoformat(),
                "last_outcome": why or None,
            }
        )
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("no system is watched (start with `regrow watch SYSTEM`)")
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
    for col in ("system", "watcher", "last cycle", "state", "outcome"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["system"]),
            str(r["watcher"] or "(none running)"),
            str(r["last_cycle"] or ""),
            str(r["last_state"] or ""),
            _short(str(r["last_outcome"] or ""), 50),
        )
    out.print(table)
