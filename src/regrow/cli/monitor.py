"""`regrow monitor`: drift per feature, slice and chunk, multivariate drift, estimated and
realised performance, alerts, impact per component; `regrow monitor list|show` re-read
stored reports. With ``--reference`` instead of ``--version`` it monitors any model's
predictions, no regrow system needed."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from regrow.cli._app import (
    AsJson,
    Home,
    app,
    err,
    out,
    print_json,
    report_file,
    window_of,
    workspace,
)
from regrow.cli._monitor_show import show_report
from regrow.cli._progress import print_timings, progress_line, with_progress
from regrow.errors import ConfigError, DataQualityWarning

if TYPE_CHECKING:
    import pandas as pd

    from regrow.monitor.chunks import Chunking

__all__ = ["monitor"]

monitor_app = typer.Typer(
    help="Check a version (or any model's predictions) on a window; list and show reports.",
    invoke_without_command=True,
)
app.add_typer(monitor_app, name="monitor")

Report = Annotated[
    Path | None,
    typer.Option(
        "--report", help="Write a self-contained HTML report to this file.", callback=report_file
    ),
]


@monitor_app.callback()
def monitor(
    ctx: typer.Context,
    version: Annotated[
        str | None, typer.Option("--version", help="Version to check, e.g. churn@champion.")
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(help="A snapshot (id, prefix, name) or a CSV/Parquet file."),
    ] = None,
    slices: Annotated[
        list[str] | None, typer.Option("--slice", help="Slice NAME of the window, repeatable.")
    ] = None,
    chunk_size: Annotated[
        int | None, typer.Option("--chunk-size", help="Split the window into chunks of N rows.")
    ] = None,
    chunks: Annotated[
        int | None, typer.Option("--chunks", help="Split the window into K equal chunks.")
    ] = None,
    period: Annotated[
        str | None,
        typer.Option("--period", help="One chunk per period of the time column: 1h, 1d, 1w, 1mo."),
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            "--reference",
            help="External model: a CSV/Parquet of reference rows (features, "
            "predictions, scores, labels) to compare the window with.",
        ),
    ] = None,
    prediction: Annotated[
        str | None, typer.Option("--prediction", help="External model: the prediction column.")
    ] = None,
    score: Annotated[
        list[str] | None,
        typer.Option(
            "--score",
            help="External model: the score column (binary: P(positive)); one per "
            "class for multiclass, in class order or as CLASS=COLUMN. Repeatable.",
        ),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="External model: the label column.")
    ] = None,
    task: Annotated[
        str | None,
        typer.Option("--task", help="External model: classification or regression (inferred)."),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", help="External model: the binary decision threshold."),
    ] = None,
    positive: Annotated[
        str | None, typer.Option("--positive", help="External model: the positive class.")
    ] = None,
    time_column: Annotated[
        str | None, typer.Option("--time-column", help="External model: the time column.")
    ] = None,
    alert: Annotated[
        list[str] | None,
        typer.Option(
            "--alert",
            help="An alert threshold METRIC<VALUE or METRIC>VALUE (e.g. "
            "'roc_auc<0.8'), repeatable; over the policy's monitoring.alerts.",
        ),
    ] = None,
    report: Report = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Check a version on a window: drift per feature, slice and chunk, multivariate drift,
    estimated and realised performance, alerts, impact per component. Or, with --reference,
    a window of any model's predictions."""
    if ctx.invoked_subcommand is not None:
        return
    from regrow.monitor.chunks import Chunking

    chunking = Chunking.parse(size=chunk_size, count=chunks, period=period)
    rules = _alerts(alert or [])
    if reference is not None:
        if version is not None:
            raise ConfigError(
                "--version and --reference are two ways to monitor; give one",
                hint="--version for a regrow system, --reference for any model's predictions",
            )
        if window is None or prediction is None:
            raise ConfigError(
                "monitoring a model's predictions needs --window and --prediction",
                hint="regrow monitor --reference REF.parquet --window WIN.parquet "
                "--prediction p --score s --target y",
            )
        with _data_warnings():
            result = _external(
                reference, Path(window), prediction, score or [], target, task, threshold,
                positive, time_column, chunking, rules, as_json,
            )  # fmt: skip
        _finish(result.to_dict(), result, report, as_json)
        return
    external = {"--prediction": prediction, "--score": score, "--target": target,
                "--task": task, "--threshold": threshold, "--positive": positive,
                "--time-column": time_column}  # fmt: skip
    given = [k for k, v in external.items() if v]
    if given:
        raise ConfigError(
            f"{', '.join(given)} apply to --reference (any model's predictions)",
            hint="a regrow version knows its target, scores and threshold; leave them out",
        )
    if version is None or window is None:
        raise ConfigError(
            "regrow monitor needs --version and --window (or --reference, --window and "
            "--prediction for any model's predictions)",
            hint="e.g. regrow monitor --version churn@champion --window recent.csv; "
            "regrow monitor list shows stored reports",
        )
    with _data_warnings(), workspace(home) as ws, progress_line(not as_json) as progress:
        result = with_progress(ws.monitor, progress)(
            version, window_of(ws, window), slices=slices or None, chunking=chunking,
            alerts=rules or None,
        )  # fmt: skip
    data = result.to_dict()
    _finish(
        {**data, "report_id": result.record.id if result.record else None}, result, report,
        as_json, generated=str(result.record.created_at) if result.record else None,
    )  # fmt: skip


def _finish(
    data: dict[str, Any],
    result: Any,
    report: Path | None,
    as_json: bool,
    generated: str | None = None,
) -> None:
    if report is not None:
        from regrow.monitor.report_html import write_html

        path = write_html({**data, "generated_at": generated} if generated else data, report)
    if as_json:
        print_json(data)
    else:
        show_report(data)
        if data.get("report_id"):
            out.print(f"report {data['report_id'][:12]} stored (regrow monitor show)")
    if report is not None:
        err.print(f"HTML report: {path}")
    print_timings(result)


@contextlib.contextmanager
def _data_warnings() -> Iterator[None]:
    """What reading the files found (decimal commas, stray text) as ``warning:`` lines on
    standard error, as ``regrow snapshot create`` shows them; other warnings pass on."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        try:
            yield
        finally:
            notes: list[str] = []
            for w in caught:
                if isinstance(w.message, DataQualityWarning):
                    notes += w.message.notes or [str(w.message)]
                else:  # not ours: shown as Python would have shown it
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)
            for note in dict.fromkeys(notes):
                err.print(f"warning: {note}", style="yellow")


def _alerts(given: list[str]) -> dict[str, dict[str, float]]:
    """``roc_auc<0.8`` -> {"roc_auc": {"min": 0.8}}; ``rmse>3`` -> {"rmse": {"max": 3}}."""
    rules: dict[str, dict[str, float]] = {}
    for text in given:
        op = "<" if "<" in text else ">" if ">" in text else None
        name, _, value = text.partition(op) if op else (text, "", "")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(
                f"--alert {text!r} is not METRIC<VALUE or METRIC>VALUE",
                hint="e.g. --alert 'roc_auc<0.8' or --alert 'rmse>3.5'",
            ) from None
        rules[name.strip()] = {"min" if op == "<" else "max": number}
    return rules


def _read(path: Path, what: str) -> pd.DataFrame:
    from regrow.data.frames import to_arrow, to_pandas

    if path.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise ConfigError(f"the {what} {str(path)!r} is not a CSV or Parquet file")
    if not path.is_file():
        raise ConfigError(f"no such file {str(path)!r}", hint=f"check the {what}'s path")
    return to_pandas(to_arrow(path))


def _external(
    reference: Path, window: Path, prediction: str, score: list[str], target: str | None,
    task: str | None, threshold: float | None, positive: str | None, time_column: str | None,
    chunking: Chunking, rules: dict[str, dict[str, float]], as_json: bool,
) -> Any:  # fmt: skip
    from regrow.monitor.external import monitor_predictions

    ref, win = _read(reference, "reference"), _read(window, "window")
    scores: Any = None
    if len(score) == 1 and "=" not in score[0]:
        scores = score[0]
    elif score and all("=" in s for s in score):
        scores = dict(s.split("=", 1) for s in score)
    elif score:
        scores = list(score)
    chosen_positive: Any = positive
    if positive is not None and target is not None and target in ref.columns:
        by_text = {str(v): v for v in ref[target].dropna().unique().tolist()}
        chosen_positive = by_text.get(positive, positive)
    with progress_line(not as_json) as progress:
        return monitor_predictions(
            ref, win, prediction=prediction, score=scores, target=target, task=task,
            threshold=threshold, positive=chosen_positive, chunking=chunking,
            time_column=time_column, alerts=rules, name=reference.stem, progress=progress,
        )  # fmt: skip


@monitor_app.command("list")
def list_reports(
    version: Annotated[
        str | None, typer.Option("--version", help="Only reports of this version.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="At most this many, newest first.")
    ] = 20,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Stored monitoring reports, newest first."""
    from rich.table import Table

    with workspace(home) as ws:
        version_id = ws.catalog.get_system_version(version).id if version else None
        records = ws.catalog.list_monitor_reports(version_id, limit=limit)
        refs = {r.version_id: ws.catalog.get_system_version(r.version_id).ref for r in records}
    if as_json:
        print_json([{"id": r.id, "version": refs[r.version_id], "created_at": r.created_at,
                     "summary": r.summary} for r in records])  # fmt: skip
        return
    table = Table(title="monitoring reports")
    table.add_column("id", no_wrap=True)
    for col in ("version", "created", "rows", "alerts", "multivar."):
        table.add_column(col)
    table.add_column("drifted", overflow="fold", min_width=16)
    for r in records:
        s = r.summary or {}
        table.add_row(
            r.id[:12], refs[r.version_id], f"{r.created_at:%Y-%m-%d %H:%M}", f"{s.get('rows', '')}",
            str(s.get("alerts", "-")), _multivariate_cell(s, r.report or {}),
            ", ".join(s.get("drifted") or []) or "-",
        )  # fmt: skip
    out.print(table)
    if not records:
        out.print("no reports yet: regrow monitor --version V --window W stores one")


def _multivariate_cell(summary: Mapping[str, Any], report: Mapping[str, Any]) -> str:
    """A stored report's multivariate verdict in one word: ``yes`` or ``no``; ``too few``
    when every check of the whole window had too few rows to judge (`regrow monitor`
    printed "5 rows: too few to tell"), ``-`` when none ran. The summary says None for
    both (those stored before said no drift for the former): the checks' values tell them
    apart."""
    whole = [m for m in report.get("multivariate") or [] if m.get("chunk") is None]
    if whole and all(m.get("value") is None for m in whole):
        return "too few"
    drifted = summary.get("multivariate_drifted")
    return "-" if drifted is None else "yes" if drifted else "no"


@monitor_app.command("show")
def show(
    report_id: Annotated[
        str, typer.Argument(help="A report id or id prefix (regrow monitor list).")
    ],
    report: Report = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Re-read a stored monitoring report; --report writes its HTML."""
    with workspace(home) as ws:
        record = ws.catalog.get_monitor_report(report_id)
    data = {**record.report, "report_id": record.id}
    _finish(data, None, report, as_json, generated=str(record.created_at))
