"""`regrow experiments list | show | tag`: every change, expected next to actual."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from regrow.cli._app import AsJson, Home, app, known_system, out, print_json, workspace

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.catalog.experiments import ExperimentRecord

__all__ = ["experiments_app"]

experiments_app = typer.Typer(
    help="Experiment records: why each change was made, what it expected and what it did.",
    no_args_is_help=True,
)

Experiment = Annotated[str, typer.Argument(metavar="ID", help="Experiment id or id prefix.")]


app.add_typer(experiments_app, name="experiments")


@experiments_app.command("list")
def experiments_list(
    tag: Annotated[str | None, typer.Option(help="Only experiments with this tag.")] = None,
    system: Annotated[str | None, typer.Option(help="Only this system's experiments.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only plan, manual or rollout.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 20,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Experiments, newest first: what changed, the gain expected and the delta measured."""
    with workspace(home) as ws:
        known_system(ws, system)  # a typo listed "no experiments", exit 0
        records = ws.catalog.experiments.list(system=system, tag=tag, kind=kind, limit=limit)
        refs = _refs(ws.catalog, records)
        rollouts = _rollout_states(ws.catalog, records)
    if as_json:
        print_json([_as_json(r, refs, rollouts) for r in records])
        return
    if not records:
        out.print("no experiments" + (f" tagged {tag!r}" if tag else ""))
        return
    # Gains are positive when better: the expected one in the plan's loss on the window's
    # held-out rows, the actual one in the evaluation's metric, each labelled with it. A
    # rollout's outcome (promoted, rolled back, or the state it is in) is its own column:
    # the verdict is the offline evaluation's.
    table = Table(title="experiments")
    for col in ("id", "kind", "system", "from -> candidate", "tags", "expected gain",
                "actual gain", "verdict", "rollout"):  # fmt: skip
        table.add_column(col, no_wrap=col in ("id", "kind"))
    for r in records:
        e, a = r.expected, r.actual or {}
        table.add_row(
            r.id[:12], r.kind, r.system,
            f"{_ref(refs, r.version_id)} -> {_ref(refs, r.candidate_id)}", ", ".join(r.tags),
            _change(e.get("gain"), e.get("gain_interval"), e.get("loss"), digits=3, sep="\n"),
            _change(a.get("improvement"), a.get("improvement_ci"), a.get("metric"), digits=3,
                    sep="\n"),
            _verdict(a.get("verdict")), _rollout_state(rollouts.get(r.id)),
        )  # fmt: skip
    out.print(table)


@experiments_app.command("show")
def experiments_show(experiment: Experiment, home: Home = None, as_json: AsJson = False) -> None:
    """An experiment: rationale, expected vs actual side by side, contingency, tags, links."""
    with workspace(home) as ws:
        record = ws.catalog.experiments.get(experiment)
        refs = _refs(ws.catalog, [record])
        links = _links(ws.catalog, record)
        rollouts = _rollout_states(ws.catalog, [record])
    if as_json:
        print_json({**_as_json(record, refs, rollouts), "links": links})
        return
    from regrow.experiments import expectation_met

    out.print(
        f"experiment {record.id[:12]}: {record.kind} of {record.system} by {record.actor}, "
        f"{record.created_at:%Y-%m-%d %H:%M:%S}"
    )
    out.print(
        f"from {_ref(refs, record.version_id)} -> candidate {_ref(refs, record.candidate_id)}"
    )
    out.print("links: " + (", ".join(f"{k} {v}" for k, v in links.items()) or "-"))
    out.print("tags: " + (", ".join(record.tags) or "-"))
    out.print("rationale:")
    for line in record.rationale or ("-",):
        out.print(f"  - {line}")
    out.print(_side_by_side(record, refs, links))
    met = expectation_met(record)
    if met is not None:
        out.print(
            Text.assemble(
                "borne out: ",
                ("yes", "green") if met else ("no", "red"),
                " (the candidate " + str((record.actual or {}).get("outcome")) + ")",
            )
        )
    if record.id in rollouts:
        out.print(Text.assemble("rollout: ", _rollout_state(rollouts[record.id])))
    out.print(f"contingency: {record.contingency}")


@experiments_app.command("tag")
def experiments_tag(
    experiment: Experiment,
    tags: Annotated[list[str], typer.Argument(metavar="TAG...", help="Tags to add.")],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Add tags to an experiment (recorded in the audit log)."""
    with workspace(home) as ws:
        record = ws.tag_experiment(experiment, tags)
    if as_json:
        print_json({"id": record.id, "tags": list(record.tags)})
    else:
        out.print(f"experiment {record.id[:12]} tags: {', '.join(record.tags)}")


def _refs(catalog: Catalog, records: list[ExperimentRecord]) -> dict[str, str]:
    """Version id -> ``system:vN`` for the versions the records name."""
    refs: dict[str, str] = {}
    for system in sorted({r.system for r in records}):
        refs.update((v.id, v.ref) for v in catalog.list_system_versions(system))
    return refs


def _ref(refs: dict[str, str], version_id: str | None) -> str:
    if version_id is None:
        return "-"
    return refs.get(version_id, version_id[:12])


def _rollout_states(catalog: Catalog, records: list[ExperimentRecord]) -> dict[str, str]:
    """Experiment id -> the state of the rollout it records (``promoted``, ``rolled_back``,
    or the state it is in), for the records of kind ``rollout`` whose rollout is found."""
    from regrow.errors import NotFound

    states: dict[str, str] = {}
    for r in records:
        if r.kind != "rollout":
            continue
        try:
            states[r.id] = catalog.rollouts.get(r.subject_id).state
        except NotFound:  # a record made by hand, or its rollout's rows were not kept
            continue
    return states


def _rollout_state(state: str | None) -> Text | str:
    if state is None:
        return "-"
    style = {"promoted": "green", "rolled_back": "red"}.get(state, "yellow")
    return Text(state.replace("_", " "), style=style)


def _links(catalog: Catalog, record: ExperimentRecord) -> dict[str, str]:
    """The plan (with its status), run and evaluation the experiment is linked to."""
    from regrow.errors import NotFound

    links: dict[str, str] = {}
    if record.kind in ("plan", "manual"):
        try:
            plan = catalog.get_plan(record.subject_id)
        except NotFound:
            links["run"] = record.subject_id  # a manual update made without a plan
        else:
            links["plan"] = f"{plan.id[:12]} ({plan.status})"
            if plan.run_id:
                links["run"] = plan.run_id[:12]
            cpu = plan.outcome.get("actual_cpu_seconds")
            if cpu is not None:
                links["run CPU s"] = f"{cpu:.2f}"
    else:
        links[record.kind] = record.subject_id[:12]
    if record.evaluation_id:
        links["evaluation"] = record.evaluation_id[:12]
    return links


def _side_by_side(record: ExperimentRecord, refs: dict[str, str], links: dict[str, str]) -> Table:
    e, a = record.expected, record.actual or {}
    table = Table(title="expected vs actual")
    for col in ("", "expected (planning)", "actual (evaluation)"):
        table.add_column(col)
    where = f"on {e['on_rows']:,} held-out rows of the window" if e.get("on_rows") else ""
    measured = f"on {a['rows']:,} rows of {str(a.get('snapshot_id'))[:12]}" if a.get("rows") else ""
    table.add_row("metric", f"{e.get('loss') or '-'} {where}".strip(),
                  f"{a.get('metric') or 'not evaluated yet'} {measured}".strip())  # fmt: skip
    baseline = _ref(refs, a.get("baseline_id")) if a.get("baseline_id") else "-"
    table.add_row("before / baseline", _num(e.get("before")),
                  f"{_num(a.get('baseline'))} ({baseline})" if a else "-")  # fmt: skip
    table.add_row("after / candidate", _num(e.get("after")), _num(a.get("candidate")))
    table.add_row(
        "gain / improvement",
        _change(e.get("gain"), e.get("gain_interval")),
        _change(a.get("improvement"), a.get("improvement_ci")),
    )
    cpu = e.get("estimated_cpu_seconds", e.get("actual_cpu_seconds"))
    table.add_row("CPU seconds", _num(cpu, 2), links.get("run CPU s", "-"))
    table.add_row("verdict", "-", _verdict(a.get("verdict")))
    for n, item in enumerate(e.get("actions") or [], 1):
        gain = _change(item.get("gain"), item.get("interval"))
        table.add_row(f"action {n}", f"{item.get('action')}: {gain}", "")
    return table


def _change(
    value: Any, interval: Any = None, unit: Any = None, *, digits: int = 4, sep: str = " "
) -> str:
    """``+0.03123 roc_auc [0.01, 0.05]`` (``digits`` significant), ``-`` for nothing."""
    if value is None:
        return "-"
    text = f"{value:+.{digits}g}" + (f" {unit}" if unit else "")
    if interval and None not in interval:
        text += f"{sep}[{interval[0]:.{digits}g}, {interval[1]:.{digits}g}]"
    return text


def _num(value: Any, decimals: int | None = None) -> str:
    """``value`` to 4 significant digits (or ``decimals`` places); ``-`` for none."""
    if value is None:
        return "-"
    return f"{value:.4g}" if decimals is None else f"{value:.{decimals}f}"


def _verdict(verdict: Any) -> Text | str:
    if verdict is None:
        return "-"
    style = {"blessed": "green", "rejected": "red"}.get(str(verdict), "")
    return Text(str(verdict), style=style)


def _as_json(
    record: ExperimentRecord, refs: dict[str, str], rollouts: dict[str, str]
) -> dict[str, Any]:
    from regrow.experiments import expectation_met

    return {
        **record.__dict__,
        "version": _ref(refs, record.version_id) if record.version_id else None,
        "candidate": _ref(refs, record.candidate_id) if record.candidate_id else None,
        "borne_out": expectation_met(record),
        "rollout_state": rollouts.get(record.id),
    }
