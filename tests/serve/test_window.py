"""Windows from the prediction log (:mod:`regrow.logged`): logged rows in a time range joined
with their labels, stored as ``<system>-served``; the errors a user can make; ``regrow window``;
and the loop end to end: serve, log, label, window, plan."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from regrow import Member, System, Workspace
from regrow.errors import ConfigError, DataError, NotFound
from regrow.logged import _coerce, parse_time, time_range
from regrow.serve.predlog import PredictionLog
from regrow.testing import run_cli

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
DAY = ("--since", "2026-03-01", "--until", "2026-03-02")


def _data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "ts": pd.date_range("2026-01-01", periods=n, freq="h"),
            "x": x,
            "plan": rng.choice(["basic", "pro"], n),
            "y": (x + rng.normal(scale=0.5, size=n) > 0).astype(int),
        }
    )


def _system(name: str = "toy") -> System:
    return System(name, target="y", components=[Member("m", LogisticRegression(), inputs=["x"])])


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with ``toy:v1`` (trained on a snapshot with time column ``ts`` and a
    slice) and ``bare:v1`` (trained on one without a time column)."""
    home = tmp_path_factory.mktemp("served") / "ws"
    with Workspace.init(home) as ws:
        data = _data(300, 0)
        snap = ws.snapshot(data, name="toy", time_column="ts", slices={"pro": "plan == 'pro'"})
        ws.train(_system(), snap)
        ws.train(_system("bare"), ws.snapshot(data.drop(columns="ts"), name="bare"))
    return home


@pytest.fixture
def ws(template: Path, tmp_path: Path) -> Iterator[Workspace]:
    shutil.copytree(template, tmp_path / "ws")
    with Workspace.open(tmp_path / "ws") as opened:
        yield opened


def serve(ws: Workspace, requests: int, *, system: str = "toy", start: datetime = T0) -> None:
    """Predict ``requests`` requests of 3 rows with the version, 10 minutes apart, and log
    them as a server does: request ``r<i>`` at ``start + 10 min * i``."""
    model = ws.load(f"{system}:v1")
    rows = _data(3 * requests, 1)[["x", "plan"]]
    log = PredictionLog(ws.catalog, ws.store, flush_seconds=3600)
    try:
        for i in range(requests):
            frame = rows.iloc[3 * i : 3 * i + 3].reset_index(drop=True)
            log.record(
                system=system, version=f"{system}:v1", lane="main",
                request_ids=[f"r{i}"] * 3, rows=[0, 1, 2], inputs=frame,
                outputs={"predict": model.predict(frame)},
                at=start + timedelta(minutes=10 * i),
            )  # fmt: skip
    finally:
        log.close()


def test_a_window_holds_the_inputs_and_the_time_served_in_the_range(ws: Workspace) -> None:
    serve(ws, 12)  # 10:00 .. 11:50, two hourly files
    snap = ws.window("toy", since=T0 + timedelta(minutes=15), until=T0 + timedelta(minutes=65))
    assert (snap.name, snap.columns, snap.time_column) == ("toy-served", ("x", "plan", "ts"), "ts")
    assert snap.slices == {"pro": "plan == 'pro'"}
    frame = ws.frame(snap.id)
    assert len(frame) == 5 * 3  # requests at 10:20, 10:30, 10:40, 10:50, 11:00
    assert frame["ts"].dt.tz is None  # naive, like the training snapshot's time column
    assert frame["ts"].min() == pd.Timestamp("2026-03-01 10:20")
    assert frame["ts"].max() == pd.Timestamp("2026-03-01 11:00")
    assert "y" not in frame.columns
    again = ws.window("toy", since=T0 + timedelta(minutes=15), until=T0 + timedelta(minutes=65))
    assert again.id == snap.id  # the same rows: the same snapshot


def test_without_a_training_time_column_the_time_column_is_served_at(ws: Workspace) -> None:
    serve(ws, 2, system="bare")
    snap = ws.window("bare", since=T0, until=T0 + timedelta(hours=1))
    assert (snap.columns, snap.time_column) == (("x", "plan", "served_at"), "served_at")
    assert str(ws.frame(snap.id)["served_at"].dt.tz) == "UTC"


def test_a_labelled_window_keeps_labelled_rows_with_labels_in_the_targets_dtype(
    ws: Workspace,
) -> None:
    ws.feedback("toy", [("r0", 0, 1), ("r0", 1, "0"), ("r1", 2, 1.0)])  # before the rows are logged
    serve(ws, 4)
    ws.feedback("toy", {"r3": True})  # row 0
    ws.feedback("toy", [{"id": "r0", "row": 0, "label": 0}])  # replaces the first label of r0/0
    plain = ws.window("toy", since="2026-03-01", until="2026-03-02")
    snap = ws.window("toy", since="2026-03-01", until="2026-03-02", labelled=True)
    assert plain.rows == 12
    assert (snap.rows, snap.columns) == (4, ("x", "plan", "ts", "y"))
    frame = ws.frame(snap.id)
    assert str(frame["y"].dtype) == "int64"
    assert frame["y"].tolist() == [0, 0, 1, 1]


def test_a_label_that_is_not_of_the_targets_dtype_is_named(ws: Workspace) -> None:
    serve(ws, 2)
    # stored past feedback()'s check (which refuses them): the window names them too
    ws.catalog.predictions.add_feedback("toy", [("r0", 0, 1), ("r1", 2, "yes"), ("r1", 1, 0.5)])
    with pytest.raises(DataError) as caught:
        ws.window("toy", since="2026-03-01", until="2026-03-02", labelled=True)
    message = str(caught.value)
    assert "2 labels of 'toy' cannot be read as its target 'y' (int)" in message
    assert "request 'r1' row 2: 'yes'" in message
    assert "request 'r1' row 1: 0.5" in message


@pytest.mark.parametrize(
    ("dtype", "labels", "expected"),
    [
        ("int", [1, "1", 1.0, True, " 2 "], [1, 1, 1, 1, 2]),
        ("float", [1, "0.5", 2.5, False], [1.0, 0.5, 2.5, 0.0]),
        ("bool", [True, 0, "true", "0", 1.0], [True, False, True, False, True]),
        ("string", ["yes", 1, 2.0, True], ["yes", "1", "2", "true"]),
        ("category", ["a", 3], ["a", "3"]),
    ],
)
def test_labels_are_coerced_to_the_targets_dtype(
    dtype: str, labels: list[Any], expected: list[Any]
) -> None:
    keys = [("r", n) for n in range(len(labels))]
    assert _coerce(labels, keys, dtype, "y", "toy").to_pylist() == expected


@pytest.mark.parametrize(
    ("dtype", "label"),
    [
        ("int", 1.5),
        ("int", "one"),
        ("int", 2**64 - 1),
        ("int", 1e308),
        ("int", "1e308"),
        ("float", "nan"),
        ("bool", 2),
    ],
)
def test_labels_that_cannot_be_coerced_are_refused(dtype: str, label: Any) -> None:
    with pytest.raises(DataError, match=f"cannot be read as its target 'y' \\({dtype}\\)"):
        _coerce([label], [("r", 0)], dtype, "y", "toy")


def test_no_logged_rows_in_the_range_names_the_range_and_what_is_logged(ws: Workspace) -> None:
    with pytest.raises(DataError, match="nothing of it is logged yet"):
        ws.window("toy", since="2026-03-01")
    serve(ws, 3)
    with pytest.raises(DataError) as caught:
        ws.window("toy", since="2026-02-01", until="2026-02-02")
    assert caught.value.message == (
        "no logged predictions of 'toy' between 2026-02-01 00:00:00 UTC and 2026-02-02 00:00:00 UTC"
    )
    assert caught.value.hint is not None
    assert "9 rows served from 2026-03-01 10:00:00 UTC to 2026-03-01 10:20:00 UTC" in (
        caught.value.hint
    )
    with pytest.raises(DataError, match="none of the 9 rows 'toy' served"):
        ws.window("toy", since="2026-03-01", until="2026-03-02", labelled=True)


def test_unknown_systems_and_bad_ranges_are_refused(ws: Workspace) -> None:
    with pytest.raises(NotFound, match=r"unknown system 'nope'.*known systems: bare, toy"):
        ws.window("nope", since="1d")
    with pytest.raises(ConfigError, match="--since 2026-03-02 00:00:00 UTC is not before --until"):
        ws.window("toy", since="2026-03-02", until="2026-03-01")
    with pytest.raises(ConfigError, match="cannot read --since 'yesterday' as a time"):
        ws.window("toy", since="yesterday")


def test_times_are_iso_dates_and_times_or_spans_ago() -> None:
    now = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
    assert parse_time("since", "24h", now=now) == now - timedelta(days=1)
    assert parse_time("since", "1.5d", now=now) == now - timedelta(hours=36)
    assert parse_time("since", "2w", now=now) == now - timedelta(days=14)
    assert parse_time("since", "90m", now=now) == now - timedelta(minutes=90)
    assert parse_time("until", "now", now=now) == now
    assert parse_time("since", "2026-03-01T12:00+02:00") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert parse_time("since", "2026-03-01T12:00Z") == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert parse_time("since", "2026-03-01 12:00") == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert parse_time("since", date(2026, 3, 1)) == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_time("since", datetime(2026, 3, 1)) == datetime(2026, 3, 1, tzinfo=UTC)
    assert time_range("2d", now=now) == (now - timedelta(days=2), now)
    for bad in ("", "3 parsecs", "-1d", "2026-13-01", 5):
        with pytest.raises(ConfigError, match="cannot read --since"):
            parse_time("since", bad, now=now)
    with pytest.raises(ConfigError, match="further back than a date can go"):
        parse_time("since", "99999999999d", now=now)


def test_a_reused_request_id_labels_only_its_latest_prediction(ws: Workspace) -> None:
    serve(ws, 2)  # r0 at 10:00, r1 at 10:10
    serve(ws, 1, start=T0 + timedelta(minutes=30))  # r0 again, at 10:30
    ws.feedback("toy", [("r0", 0, 1)])
    snap = ws.window("toy", since="2026-03-01", until="2026-03-02", labelled=True)
    frame = ws.frame(snap.id)
    assert frame["ts"].tolist() == [pd.Timestamp("2026-03-01 10:30")]


def test_the_cli_stores_a_window_and_reports_errors_without_a_traceback(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    serve(ws, 4)
    ws.feedback("toy", {"r0": 1, "r1": 0})
    home = ("--home", str(ws.home))
    code, out, err = run_cli(capsys, "window", "toy", *DAY, *home)
    assert code == 0, err
    assert out.startswith("window toy-served ")
    # the range asked for, said as one: it read as when the rows were served
    assert "the 12 rows served between 2026-03-01 00:00:00 and 2026-03-02 00:00:00 UTC" in out
    code, out, err = run_cli(capsys, "window", "toy", *DAY, "--labelled", "--json", *home)
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["rows"], shown["target"], shown["time_column"]) == (2, "y", "ts")
    assert shown["columns"] == ["x", "plan", "ts", "y"]
    assert ws.catalog.get_snapshot("toy-served").id == shown["id"]
    for args, message in [
        (("nope", "--since", "1d"), "unknown system 'nope'"),
        (("toy", "--since", "soon"), "cannot read --since 'soon' as a time"),
        (("toy", "--since", "2026-03-02", "--until", "2026-03-01"), "is not before --until"),
        (("toy", "--since", "2026-01-01", "--until", "2026-01-02"), "no logged predictions"),
    ]:
        code, out, err = run_cli(capsys, "window", *args, *home)
        assert code == 2, (args, out, err)
        assert message in err
        assert "hint:" in err
        assert "Traceback" not in out + err


def test_served_rows_and_their_labels_become_a_window_the_planner_plans_on(
    ws: Workspace,
) -> None:
    """The loop closes: serve the version, log its predictions, take labels, build the
    window, monitor, plan and evaluate on it."""
    serve(ws, 40)  # 120 rows over 6.5 hours
    truth = _data(120, 1)["y"].tolist()
    labels = [(f"r{i // 3}", i % 3, truth[i]) for i in range(0, 120, 2)]  # half come back
    assert ws.feedback("toy", labels) == 60
    snap = ws.window("toy", since=T0, until=T0 + timedelta(days=1), labelled=True)
    assert snap.rows == 60
    report = ws.monitor("toy:v1", snap.id)
    assert report.window.id == snap.id
    plan = ws.plan("toy:v1", "toy-served")
    assert plan.window == snap.id
    assert ws.catalog.get_plan(plan.id).window_id == snap.id
    assert plan.signals["labelled_rows"] == 60  # the planner read the labels
    evaluation, _ = ws.evaluate("toy:v1", snap.id)
    assert evaluation.snapshot_id == snap.id


def test_labels_that_are_none_of_a_classifiers_classes_are_named(ws: Workspace) -> None:
    serve(ws, 2)
    ws.catalog.predictions.add_feedback("toy", [("r0", 0, 1), ("r1", 1, 7)])  # past the check
    with pytest.raises(DataError) as caught:
        ws.window("toy", since="2026-03-01", until="2026-03-02", labelled=True)
    assert "1 labels of 'toy' are none of the classes [0, 1] that toy:v1 predicts" in str(
        caught.value
    )
    assert "request 'r1' row 1: 7" in str(caught.value)
    ws.feedback("toy", [("r1", 1, 0)])  # a later label replaces the wrong one
    assert ws.window("toy", since="2026-03-01", until="2026-03-02", labelled=True).rows == 2
