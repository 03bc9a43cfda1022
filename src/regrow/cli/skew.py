"""`regrow skew`: what a version served (the prediction log) against what it was trained on,
per feature, with the drift monitor's calibrated tests (:mod:`regrow.skew`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from regrow.cli._app import AsJson, Home, Since, Until, app, out, print_json, workspace

__all__ = ["skew"]


@app.command()
def skew(
    ref: Annotated[str, typer.Argument(help="The version, e.g. shop@champion or shop:v2.")],
    since: Since,
    until: Until = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Training/serving skew: compare the rows version REF itself served in a time range
    with the snapshot it was trained on, feature by feature (the monitor's calibrated tests,
    Benjamini-Hochberg across features). Exit status 0 when no feature is skewed, 1 when one
    is, 2 on an error (such as no rows served in the range)."""
    from regrow.logged import time_range

    start, end = time_range(since, until)
    with workspace(home) as ws:
        report = ws.skew(ref, since=start, until=end)
    data = report.to_dict()
    if as_json:
        print_json(data)
    else:
        show_skew(data)
    if report.skewed:
        raise typer.Exit(1)


def show_skew(report: Mapping[str, Any]) -> None:
    """The feature table, the notes and the verdict of a skew report's JSON form."""
    since, until = (str(report[k])[:19].replace("T", " ") for k in ("since", "until"))
    table = Table(
        title=f"{report['version']}: {int(report['rows']):,} rows served {since} to {until} UTC"
        f" vs training snapshot {str(report['snapshot'])[:12]}",
        caption="nulls: share served / share in training",
    )
    for col in ("feature", "test"):
        table.add_column(col, no_wrap=True)
    for col in ("stat.", "threshold", "p (BH)"):
        table.add_column(col)
    table.add_column("nulls", no_wrap=True)
    table.add_column("skewed")
    for f in report["features"]:
        flag = Text("yes", style="yellow") if f["skewed"] else Text("-", style="dim")
        table.add_row(
            str(f["column"]), str(f["test"]), _num(f["statistic"]), _num(f["threshold"]),
            _num(f["adjusted_p_value"], ".2g"),
            f"{_rate(f['null_rate_served'])} / {_rate(f['null_rate_trained'])}", flag,
        )  # fmt: skip
    out.print(table)
    for f in report["features"]:
        if f["skewed"]:
            out.print(f"  {f['column']}: {f['why']}")
    for note in report.get("notes") or []:
        out.print(f"note: {note}")
    out.print(f"false discoveries: {report['control']}")
    out.print(report["verdict"])


def _num(value: Any, fmt: str = ".3g") -> str:
    return "" if value is None else format(float(value), fmt)


def _rate(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1%}"
