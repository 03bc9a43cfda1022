"""`regrow forecast`: where a system's metric is heading (:mod:`regrow.forecast`): its history
from the stored monitor reports, and the probability that it crosses the SLA within a horizon."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from regrow.cli._app import AsJson, Home, app, known_system, out, print_json, workspace
from regrow.errors import ConfigError

if TYPE_CHECKING:
    from regrow import Workspace
    from regrow.forecast import MetricPoint
    from regrow.plan.policy import Policy

__all__ = ["forecast"]


@app.command()
def forecast(
    system: Annotated[str, typer.Argument(help="The system, e.g. churn.")],
    metric: Annotated[
        str | None,
        typer.Option(help="The metric, e.g. roc_auc (default: the policy's watch.sla metric)."),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="The SLA value (default: the policy's watch.sla, else its monitoring.alerts "
            "threshold for the metric)."
        ),
    ] = None,
    direction: Annotated[
        str | None,
        typer.Option(
            help="below (higher is better) or above (error metrics); default: from the SLA "
            "rule, else from the metric."
        ),
    ] = None,
    horizon: Annotated[
        int | None,
        typer.Option(help="Windows ahead (default: the policy's watch.horizon)."),
    ] = None,
    member: Annotated[str | None, typer.Option(help="Forecast one member's metric.")] = None,
    slice: Annotated[str | None, typer.Option("--slice", help="Forecast one slice.")] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only windows ending at or after: an ISO time, or a span ago (30d)."),
    ] = None,
    alias: Annotated[
        str | None,
        typer.Option(
            help="Forecast the version this alias holds (default: champion, when the system "
            "has one); windows of other versions monitored since it took over are left out."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the simulated paths.")] = 0,
    policy: Annotated[
        str | None,
        typer.Option(help="A policy file for the SLA (default: the workspace's policy)."),
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """The probability that SYSTEM's metric crosses its SLA within a horizon.

    Also the metric expected there, and the series it was forecast from (one point per
    monitored window: realised where labels came, estimated where not).
    """
    from regrow.forecast import forecast as forecast_series
    from regrow.forecast import metric_bounds, series_from_catalog
    from regrow.plan.policy import load_policy

    with workspace(home) as ws:
        known_system(ws, system)  # a misspelt system is named before the SLA is looked up
        rules = ws.policy() if policy is None else load_policy(policy)
        chosen, limit, side = _sla(rules, metric, threshold, direction)
        steps = horizon if horizon is not None else rules.watch.horizon
        points = series_from_catalog(
            ws.catalog, system, chosen, member=member, slice=slice, since=since
        )
        holder = _holder(ws, system, alias)
        plain = member is None and slice is None  # the watcher forecasts the system only
        watched = _watchers_forecast(ws, system, chosen) if plain else None
    points, left_out = _of_holder(points, holder)
    found = forecast_series(
        points,
        threshold=limit,
        direction=side,
        horizon=steps,
        seed=seed,
        bounds=metric_bounds(chosen),
    )
    data: dict[str, Any] = {
        "system": system,
        "metric": chosen,
        "member": member,
        "slice": slice,
        **found.to_dict(),
        "series": [p.to_dict() for p in points],
    }
    if holder is not None:
        data["version"] = holder[1]
    data["notes"] = [*left_out, *data["notes"], *([watched] if watched else [])]
    if as_json:
        print_json(data)
    else:
        show_forecast(data)


def _watchers_forecast(ws: Workspace, system: str, metric: str) -> str | None:
    """A note on the newest watch cycle that forecast ``metric``: its series holds the
    realised values of the labels that came late (on the rows it held out), which the
    monitor's reports this command reads do not, so the two can differ."""
    for cycle in ws.catalog.watches.cycles(system, limit=50):
        fc = cycle.body.get("forecast") or {}
        if fc.get("metric") != metric or fc.get("probability") is None:
            continue
        realised = (fc.get("realised") or {}).get("value")
        said = f", realised {realised:.4g}" if isinstance(realised, int | float) else ""
        return (
            f"the watcher's cycle {cycle.number} forecast P = {fc['probability']:.2f}{said}, "
            "from a series that also holds the realised values of late labels, which the "
            f"monitor's reports read here do not: `regrow watch {system} --show "
            f"{cycle.number}`"
        )
    return None


def _holder(ws: Workspace, system: str, alias: str | None) -> tuple[str, str] | None:
    """``(alias, version ref)`` of the alias forecast: ``alias`` (NotFound, with the aliases
    there are, when the system has none of that name), else ``champion`` if it exists."""
    from regrow.errors import NotFound

    name = alias or "champion"
    try:
        return name, ws.catalog.get_system_version(f"{system}@{name}").ref
    except NotFound:
        if alias is None:
            return None
        raise


def _of_holder(
    points: list[MetricPoint], holder: tuple[str, str] | None
) -> tuple[list[MetricPoint], list[str]]:
    """The points a forecast of the alias's holder reads: every point up to the holder's
    first, then the holder's own (a window of another version monitored since, by hand,
    is not the served model's: read as a promotion, it restarted the series at the wrong
    version); and a note of what was left out."""
    if holder is None:
        return points, []
    alias, ref = holder
    first = next((i for i, p in enumerate(points) if p.version == ref), None)
    if first is None:
        return points, (
            [f"no window of {ref}, which holds @{alias}, was monitored: the forecast is of the "
             f"versions before it"] if points else []
        )  # fmt: skip
    kept = points[:first] + [p for p in points[first:] if p.version in (ref, None)]
    others = sorted({str(p.version) for p in points[first:] if p.version not in (ref, None)})
    if not others:
        return kept, []
    return kept, [
        f"{len(points) - len(kept)} window(s) of {', '.join(others)} monitored since {ref} "
        f"took @{alias} are left out: the forecast is of {ref}"
    ]


def _sla(
    policy: Policy, metric: str | None, threshold: float | None, direction: str | None
) -> tuple[str, float, Literal["below", "above"]]:
    """The metric, threshold and direction: as given, else from the policy, else refused."""
    from regrow.monitor.signals import HIGHER_IS_BETTER, LOWER_IS_BETTER

    sla = policy.watch.sla
    if metric is None:
        if not sla:
            raise ConfigError(
                "no --metric given and the policy names no SLA",
                hint="pass the metric and its SLA (a classification: --metric roc_auc --threshold "
                "0.8; a regression: --metric rmse --threshold 3.5), or set watch.sla in the policy",
            )
        metric = next(iter(sla))
    rule = sla.get(metric) or policy.monitoring.alerts.get(metric)
    if threshold is None:
        if rule is None:
            known = [*HIGHER_IS_BETTER, *LOWER_IS_BETTER]
            if metric not in known:  # a misspelt metric is named first, not its threshold
                import difflib

                close = difflib.get_close_matches(metric, known, n=1)
                raise ConfigError(
                    f"unknown metric {metric!r}",
                    hint=(f"did you mean {close[0]!r}? " if close else "")
                    + f"the metrics: {', '.join(sorted(known))}",
                )
            # the side that breaks the SLA: a min for a metric better higher, else a max
            side = "min" if metric in HIGHER_IS_BETTER else "max"
            raise ConfigError(
                f"no --threshold given and the policy has none for {metric!r}",
                hint=f"pass --threshold, or set watch.sla: {{{metric}: {{{side}: ...}}}}",
            )
        threshold = rule.threshold
    if direction is None:
        if rule is not None:
            direction = rule.breach
        elif metric in HIGHER_IS_BETTER:
            direction = "below"
        elif metric in LOWER_IS_BETTER:
            direction = "above"
        else:
            import difflib

            close = difflib.get_close_matches(metric, [*HIGHER_IS_BETTER, *LOWER_IS_BETTER], n=1)
            raise ConfigError(
                f"cannot tell which side of the threshold is a breach for {metric!r}",
                hint=f"did you mean {close[0]!r}? otherwise pass --direction"
                if close
                else "pass --direction below (higher is better) or --direction above",
            )
    if direction not in ("below", "above"):
        raise ConfigError(
            f"--direction must be below or above; got {direction!r}",
            hint="below: the metric breaches by falling (roc_auc); above: by rising (rmse)",
        )
    from regrow.forecast import metric_bounds

    low, high = metric_bounds(metric) or (-math.inf, math.inf)
    if not low <= threshold <= high:
        raise ConfigError(
            f"--threshold {threshold:g} lies outside what {metric} can be ([{low:g}, {high:g}])",
            hint=f"give a threshold {metric} can reach, e.g. --threshold "
            f"{0.8 if high == 1 else 3.5:g}",
        )
    return metric, threshold, "below" if direction == "below" else "above"


_SHOWN = 8  # the series' newest points that the text view lists


def show_forecast(data: dict[str, Any]) -> None:
    """The series' last points, then the forecast in a sentence or two."""
    who = (
        data["system"]
        + (f" member {data['member']}" if data["member"] else "")
        + (f" slice {data['slice']}" if data["slice"] else "")
        + (f" ({data['version']})" if data.get("version") else "")
    )
    series = data["series"]
    if series:
        shown = series[-_SHOWN:]
        last = f"; the last {len(shown)}:" if len(shown) < len(series) else ":"
        out.print(f"{who}: {data['metric']} over {len(series)} window(s){last}")
        if len(shown) < len(series):
            out.print(f"  ... {len(series) - len(shown)} earlier (--json lists every point)")
        for p in shown:
            band = "" if p["lower"] is None else f"  [{p['lower']:.4g}, {p['upper']:.4g}]"
            out.print(f"  {p['at'][:16].replace('T', ' ')}  {p['value']:.4g}{band}  {p['source']}")
    if data["probability"] is None:
        out.print(f"{who}: no forecast of {data['metric']}: {'; '.join(data['notes'])}")
        return
    if data["crossed"]:
        out.print(
            f"{data['metric']} is already {data['direction']} the SLA {data['threshold']:g}: "
            f"{data['last']:.4g} now (the filtered metric)"
        )
    sign = "<" if data["direction"] == "below" else ">"
    when = (
        f"; median first crossing in {data['steps_to_cross']} window(s)"
        if data["steps_to_cross"] is not None and not data["crossed"]  # crossed: said above
        else ""
    )
    out.print(
        f"P({data['metric']} {sign} {data['threshold']:g} within {data['horizon']} windows) = "
        f"{data['probability']:.2f}{when}"
    )
    out.print(
        f"expected in {data['horizon']} windows: {data['expected']:.4g} "
        f"({data['level']:.0%} band {data['lower']:.4g} to {data['upper']:.4g})"
    )
    for note in data["notes"]:
        if not (data["crossed"] and note.startswith("the metric is already")):  # said above
            out.print(f"note: {note}")
