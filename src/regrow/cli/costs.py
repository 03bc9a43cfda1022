"""`regrow costs`: what a system's runs used and cost (:mod:`regrow.costs`), run by run, with
the estimated next to the actual CPU of each plan's actions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from regrow.cli._app import AsJson, Home, app, known_system, out, print_json, workspace

__all__ = ["costs"]


@app.command()
def costs(
    system: Annotated[str, typer.Option("--system", help="The system, e.g. churn.")],
    since: Annotated[
        str | None,
        typer.Option(
            help="Runs started at or after: an ISO date or time (UTC if naive), or a span ago: "
            "24h, 7d (default: every run)."
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Runs started before (in the same forms; default: now).")
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """What each run of a system used: components trained, CPU, GPU and wall seconds, peak
    memory, rows, and money at the [costs] prices of config.toml; for plan runs, each
    action's estimated CPU seconds next to the actual ones; then what `regrow watch`'s
    cycles used outside those runs (monitoring, forecasting, planning...)."""
    from regrow.costs import cost_report
    from regrow.logged import parse_time, time_range

    start: datetime | None = None
    end: datetime | None = None
    if since is not None:
        start, end = time_range(since, until)
    elif until is not None:
        end = parse_time("until", until)
    with workspace(home) as ws:
        if not ws.catalog.list_runs(system, limit=1):  # runs and no version yet are fine
            known_system(ws, system)  # with a did-you-mean
        report = cost_report(ws.catalog, system, since=start, until=end, profile=ws.config.costs)
    data = report.to_dict()
    if as_json:
        print_json(data)
    else:
        show_costs(data)


def show_costs(report: Mapping[str, Any]) -> None:
    """The runs table, the plan runs' estimated vs actual CPU, and the totals line."""
    currency = report["currency"]
    since = str(report["since"])[:19].replace("T", " ") if report["since"] else "the first run"
    until = str(report["until"])[:19].replace("T", " ")
    runs = report["runs"]
    if not runs:
        out.print(f"{report['system']}: no run started from {since} to {until} UTC")
        show_watch(report)
        return
    gpu = any(r["gpu_seconds"] for r in runs)  # a GPU column only when a run used one
    table = Table(
        title=f"{report['system']}: runs started from {since} to {until} UTC",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
    )
    table.add_column("run", no_wrap=True)
    table.add_column("kind")
    table.add_column("started", no_wrap=True)
    heads = ["trained", "CPU s", *(["GPU s"] if gpu else []), "wall s", "memory", "rows"]
    for col in [*heads, *([currency] if currency else [])]:
        table.add_column(col, justify="right", no_wrap=True)
    for r in runs:
        state = "" if r["status"] == "succeeded" else f" ({r['status']})"
        row = [
            r["run"][:8], r["kind"] + state, str(r["started_at"])[5:16].replace("T", " "),
            str(len(r["trained"])), _seconds(r["cpu_seconds"]),
            *([_seconds(r["gpu_seconds"])] if gpu else []),
            _seconds(r["wall_seconds"]), _bytes(r["peak_memory_bytes"]), _count(r["rows"]),
            *([_money(r["money"])] if currency else []),
        ]  # fmt: skip
        table.add_row(*row)
    out.print(table)
    show_estimates(runs)
    t = report["totals"]
    money = f", {_money(t['money'])} {currency}" if currency else ""
    out.print(
        f"total: {t['runs']} run(s), {t['components_trained']} component(s) trained, "
        f"{_seconds(t['cpu_seconds'])} CPU s, {_seconds(t['gpu_seconds'])} GPU s, "
        f"{_seconds(t['wall_seconds'])} wall s, peak {_bytes(t['peak_memory_bytes'])}, "
        f"{_count(t['rows'])} rows{money}"
    )
    if t["plan_runs"]:
        tries = (
            f" ({t['plan_runs']} runs of {t['plans']} plan(s): a plan run again after a stop "
            "is estimated once, and its actual counts every try)"
            if t["plan_runs"] > t["plans"]
            else ""
        )
        out.print(
            f"plan runs: estimated {_seconds(t['estimated_cpu_seconds'])} CPU s, "
            f"actual {_seconds(t['actual_cpu_seconds'])}{tries}"
        )
    show_watch(report)


def show_watch(report: Mapping[str, Any]) -> None:
    """What the watch cycles used outside their runs, by step, and the CPU in all."""
    watch = report.get("watch")
    if not watch:
        return
    steps = ", ".join(
        f"{name} {_seconds(seconds)}" for name, seconds in watch["steps"].items() if seconds
    )
    dry = f" ({watch['dry_run_cycles']} dry run)" if watch["dry_run_cycles"] else ""
    money = f", {_money(watch['money'])} {report['currency']}" if report["currency"] else ""
    out.print(
        f"watch: {watch['cycles']} cycle(s){dry}, {_seconds(watch['cpu_seconds'])} CPU s "
        f"outside the runs ({steps or 'none'}){money}"
    )
    out.print(f"in all: {_seconds(report['totals']['all_cpu_seconds'])} CPU s")


def show_estimates(runs: list[Mapping[str, Any]]) -> None:
    """Each plan run's actions: estimated and actual CPU seconds (when the plan is stored)."""
    planned = [r for r in runs if r["actions"]]
    if not planned:
        return
    table = Table(
        title="plan runs: estimated vs actual CPU seconds", box=box.SIMPLE_HEAD, show_edge=False
    )
    for col in ("run", "plan", "action", "component"):
        table.add_column(col, no_wrap=True)
    for col in ("estimated", "actual"):
        table.add_column(col, justify="right")
    for r in planned:
        for a in r["actions"]:
            action = a["action"] or "(follows)"
            table.add_row(
                r["run"][:8], str(r["plan"])[:8], action, a["component"],
                _seconds(a["estimated_cpu_seconds"]), _seconds(a["actual_cpu_seconds"]),
            )  # fmt: skip
    out.print(table)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _money(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value >= 0.01 or value == 0 else "<0.01"


def _bytes(value: int | None) -> str:
    """Bytes in the largest unit that keeps the number at or above 1 (decimal units)."""
    if value is None:
        return "-"
    amount = float(value)
    for unit in ("B", "kB", "MB", "GB"):
        if amount < 1000:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{amount:.1f} TB"
