"""`regrow watch` as a new user meets it: windows with nulls, a renamed column, an empty file,
files without labels yet, a workspace whose snapshot named no time column; and what `regrow
watch --show` says of a cycle that acted."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from regrow import Ensemble, Member, System, Transform, Workspace
from regrow.demo import make_window
from regrow.loop.watch import FilesSource, Watcher
from regrow.plan.policy import Policy
from regrow.testing import run_cli


def build() -> System:
    return System(
        "churn",
        target="churned",
        components=[
            Transform("scaled", StandardScaler(), inputs=["sessions_per_week", "support_calls"]),
            Member("geo", LogisticRegression(), inputs=["distance_km", "network_quality"]),
            Member("usage", LogisticRegression(), inputs=["scaled"]),
            Ensemble("ensemble", weights={"usage": 1, "geo": 1}),
        ],
    )


def _policy(**watch: Any) -> Policy:
    body = Policy.default().to_dict()
    body["promotion"]["protected"] = []
    body["watch"].update({"persistence": 2, "cooldown": 1, **watch})
    return Policy.from_dict(body)


def _train(home: Path, time_column: str | None) -> Path:
    with Workspace.init(home) as ws:
        ws.set_policy(_policy())
        history = make_window(3000, start="2026-01-01", days=60, seed=1)
        snap = ws.snapshot(history, name="customers", time_column=time_column)
        ws.promote(ws.train(build(), snap, workers=1).version.ref, "champion")
    return home


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """churn:v1 as champion, trained on a snapshot without a time column (as `regrow
    snapshot create FILE --name N` makes one)."""
    return _train(tmp_path_factory.mktemp("trial") / "ws", None)


@pytest.fixture
def ws(trained: Path, tmp_path: Path) -> Iterator[Workspace]:
    home = tmp_path / "ws"
    shutil.copytree(trained, home)
    with Workspace.open(home) as workspace:
        yield workspace


def _files(folder: Path, frames: list[pd.DataFrame], *, later: int | None = None) -> FilesSource:
    """``frames`` written as day00.parquet, day01.parquet... with file times a second apart
    an hour ago (written at once, as a backfill does), those from number ``later`` on ten
    minutes after the others (they came since); every file's labels count."""
    folder.mkdir(exist_ok=True)
    past = pd.Timestamp.now().timestamp() - 3600
    for i, frame in enumerate(frames):
        path = folder / f"day{i:02d}.parquet"
        frame.to_parquet(path)
        at = past + i + (600 if later is not None and i >= later else 0)
        os.utime(path, (at, at))
    return FilesSource(str(folder / "*.parquet"), label_files=7)


def _day(i: int, *, labelled: bool = True, rows: int = 1500) -> pd.DataFrame:
    frame = make_window(rows, start=f"2026-03-{1 + i * 2:02d}", days=2, seed=10 + i)
    if not labelled:
        frame["churned"] = np.nan  # labels come later
    return frame


def test_a_cycle_without_new_labels_adds_no_reading_and_the_lag_counts_cycles(
    ws: Workspace,
) -> None:
    # Files 4 and 5 have no labels yet: their cycles measured the same held-out rows of
    # files 1-3 again, and each repeat was one more point of the forecast (the probability
    # fell from one cycle to the next on no news). With no time column, the values sat at
    # the files' times: labelled files written a second apart, and the next one ten minutes
    # later, made its cycle "60 cycles late".
    frames = [_day(i) for i in range(3)] + [_day(i, labelled=False) for i in (3, 4)]
    source = _files(ws.config.home / "windows", frames, later=3)
    policy = _policy(sla={"roc_auc": {"min": 0.3}}, persistence=9)
    with Watcher(ws, "churn", source, policy=policy, dry_run=True) as watcher:
        cycles = watcher.run(once=True)
    forecasts = [c.body["forecast"] for c in cycles]
    assert [f["realised"] is not None for f in forecasts] == [True] * 5
    assert forecasts[3]["realised"]["value"] == forecasts[2]["realised"]["value"]
    labels = [f["by_labels"] for f in forecasts[2:]]
    assert [lab["points"] for lab in labels] == [3, 3, 3]  # one reading is one point
    assert [lab["lag_cycles"] for lab in labels] == [0, 1, 2]
    assert forecasts[4]["points"] == 3 + 2  # the realised three, and two new estimates
    assert any("2 realised reading(s) repeated an earlier one" in n for n in forecasts[4]["notes"])


def test_a_reading_repeated_with_a_time_column_counts_once(tmp_path: Path) -> None:
    home = _train(tmp_path / "ws", "ts")
    frames = [_day(i) for i in range(3)] + [_day(i, labelled=False) for i in (3, 4)]
    with Workspace.open(home) as ws:
        source = _files(home / "windows", frames)
        policy = _policy(sla={"roc_auc": {"min": 0.3}}, persistence=9)
        with Watcher(ws, "churn", source, policy=policy, dry_run=True) as watcher:
            cycles = watcher.run(once=True)
    labels = [c.body["forecast"]["by_labels"] for c in cycles[2:]]
    assert [lab["points"] for lab in labels] == [3, 3, 3]
    assert [lab["lag_cycles"] for lab in labels] == [0, 1, 2]  # from the data's own times


def test_nulls_a_member_cannot_take_leave_the_realised_metric_on_the_other_rows(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    # 20% nulls in a column a LogisticRegression reads, in the held-out rows: the realised
    # metric failed on them and was left out, and the SLA was judged on estimates alone.
    frames = [_day(i) for i in range(3)]
    frames[2].loc[frames[2].sample(frac=0.2, random_state=0).index, "distance_km"] = np.nan
    source = _files(ws.config.home / "windows", frames)
    policy = _policy(sla={"roc_auc": {"min": 0.3}}, persistence=9)
    with Watcher(ws, "churn", source, policy=policy, dry_run=True) as watcher:
        *_, last = watcher.run(once=True)
    realised = last.body["forecast"]["realised"]
    assert realised is not None
    holdout = last.body["window"]["holdout_rows"]
    assert 0 < realised["set_aside"] < holdout
    assert realised["rows"] == holdout - realised["set_aside"]
    assert 0.5 < realised["value"] <= 1
    assert last.body["forecast"]["current_source"] == "realised"
    code, out, _ = run_cli(capsys, "watch", "churn", "--show", str(last.number),
                           "--home", str(ws.config.home))  # fmt: skip
    assert code == 0, out
    assert (
        f"data: the realised roc_auc left out {realised['set_aside']:,} held-out row(s) the "
        "version cannot score"
    ) in out


def test_a_renamed_column_is_named_first_even_when_the_sla_forecast_holds_too(
    ws: Workspace,
) -> None:
    # With an SLA the forecast's hold was the cycle's only reason: "done — forecast: P(...)
    # = 0.01 < 0.5" for a window whose feed lost a column the model reads.
    frames = [_day(i) for i in range(3)]
    frames.append(_day(3).rename(columns={"distance_km": "dist_km"}))
    source = _files(ws.config.home / "windows", frames)
    policy = _policy(sla={"roc_auc": {"min": 0.3}}, persistence=9)
    with Watcher(ws, "churn", source, policy=policy, dry_run=True) as watcher:
        *_, last = watcher.run(once=True)
    held = last.body["decision"]["not_acting"]
    assert held[0].startswith("the window lacks column(s) the model reads: 'distance_km'")
    snapshot = last.body["window"]["snapshot"][:12]
    assert f"`regrow adapters propose {snapshot} --system churn`" in held[0]
    assert any(h.startswith("forecast: P(crossing 0.3") for h in held[1:])
    assert last.body["end"]["why"].startswith("the window lacks column(s)")


def test_an_empty_file_between_drifted_windows_does_not_start_the_drift_count_again(
    ws: Workspace,
) -> None:
    # An empty file (a feed's hiccup) was a cycle without drift: the next drifted window
    # was "1 cycle in a row so far" again, and acting waited persistence cycles more.
    drifted = [
        make_window(1500, start=f"2026-03-{1 + 4 * i:02d}", days=2, seed=20 + i, expanded=True)
        for i in range(2)
    ]
    source = _files(ws.config.home / "windows", [drifted[0], drifted[0].iloc[:0], drifted[1]])
    with Watcher(ws, "churn", source, policy=_policy(persistence=2), dry_run=True) as watcher:
        first, empty, third = watcher.run(once=True)
    assert first.body["decision"]["act"] is False
    assert empty.body["window"]["rows"] == 0
    assert third.body["decision"]["act"] is True, third.body["decision"]
    assert "2 cycles in a row" in third.body["decision"]["because"][0]


def test_show_does_not_say_not_acting_beside_the_reason_a_cycle_acted(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    # A cycle that acted on the SLA printed "act: ..." and then "not acting: ..." lines.
    source = _files(ws.config.home / "windows", [_day(i) for i in range(2)])
    body = _policy(sla={"roc_auc": {"min": 0.99}}, persistence=9).to_dict()
    body["monitoring"]["alerts"] = {"roc_auc": {"min": 0.99}}  # the SLA decides: a hold
    ws.set_policy(Policy.from_dict(body))  # the monitor's alerts are the workspace's
    with Watcher(ws, "churn", source, dry_run=True) as watcher:
        first, _ = watcher.run(once=True)
    decision = first.body["decision"]
    assert decision["act"] is True
    assert decision["not_acting"][0].endswith("the SLA (watch.sla) decides when to act")
    code, out, _ = run_cli(capsys, "watch", "churn", "--show", str(first.number),
                           "--home", str(ws.config.home))  # fmt: skip
    assert code == 0, out
    assert "act: " in out
    assert "not acting:" not in out
    assert "not a reason to act: " in out


def test_one_stray_cell_is_read_as_empty_not_a_reason_to_drop_the_files_labels(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    # 'oops' in one cell of a numeric column made the file's column text: all its labelled
    # rows were left out ("1 left out: day02.csv: 'distance_km' holds text, not number"),
    # where `regrow monitor` sets aside only that row.
    folder = ws.config.home / "windows"
    folder.mkdir()
    for i in range(3):
        frame = _day(i)
        if i == 2:
            frame["distance_km"] = frame["distance_km"].astype(object)
            frame.loc[17, "distance_km"] = "oops"
        frame.to_csv(folder / f"day{i:02d}.csv", index=False)
        at = pd.Timestamp.now().timestamp() - 3600 + i
        os.utime(folder / f"day{i:02d}.csv", (at, at))
    source = FilesSource(str(folder / "*.csv"))
    with Watcher(ws, "churn", source, policy=_policy(persistence=9), dry_run=True) as watcher:
        *_, last = watcher.run(once=True)
    window = last.body["window"]
    assert window["labelled_rows"] == 3 * 1500
    assert window["labelled_from"] == (
        "the last 3 files; day02.csv: 1 value of 'distance_km' is not a number ('oops', row 17):"
        " read as empty"
    )
    code, out, _ = run_cli(capsys, "watch", "churn", "--show", str(last.number),
                           "--home", str(ws.config.home))  # fmt: skip
    assert code == 0, out
    assert "4,500 labelled rows from the last 3 files; day02.csv: 1 value of" in out


def test_a_column_of_words_still_leaves_its_file_out_and_strays_are_counted() -> None:
    from regrow.loop.watch import _stack

    clean = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [1, 0, 1, 0]})
    stray = clean.assign(x=["1.5", "n/a", "2", "-"])  # numbers but for two cells
    words = clean.assign(x=["low", "high", "mid", "3"])  # text, not a stray cell
    stacked, left_out, emptied = _stack(
        [("a.csv", clean), ("b.csv", stray), ("c.csv", words)], like=clean, reads=["x"]
    )
    assert stacked is not None
    assert len(stacked) == 8
    assert stacked["x"].iloc[4:].fillna(-1).tolist() == [1.5, -1, 2.0, -1]  # nulls, set aside
    assert left_out == ["c.csv: 'x' holds text, not number"]
    assert emptied == ["b.csv: 2 values of 'x' are not numbers ('n/a', row 1; '-', row 3): "
                       "read as empty"]  # fmt: skip


def test_without_a_time_column_the_forecast_follows_the_cycles_not_the_file_times(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After `cp -r` of the window files, their times came out in another order than their
    # names (w07 a few ms before w05), and the forecast's points followed the file times.
    import regrow.forecast

    source = _files(ws.config.home / "windows", [_day(i) for i in range(5)])
    past = pd.Timestamp.now().timestamp() - 3600
    for i, shift in enumerate([3, 1, 4, 0, 2]):
        os.utime(ws.config.home / "windows" / f"day{i:02d}.parquet", (past + shift,) * 2)
    series: list[list[float]] = []
    real = regrow.forecast.forecast

    def spy(points: Any, **how: Any) -> Any:
        series.append([p.value for p in points])
        return real(points, **how)

    monkeypatch.setattr(regrow.forecast, "forecast", spy)
    policy = _policy(sla={"roc_auc": {"min": 0.3}}, persistence=9)
    with Watcher(ws, "churn", source, policy=policy, dry_run=True) as watcher:
        cycles = watcher.run(once=True)
    readings = [c.body["forecast"]["realised"]["value"] for c in cycles]
    assert len(set(readings)) == 5
    main, by_labels = series[-2:]  # the last cycle's: its series, and the labels' alone
    assert main == readings
    assert by_labels == readings


def test_a_refused_watcher_does_not_say_it_is_watching(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    # "watching churn@champion: ... Ctrl-C stops" came first, then the refusal.
    ws.catalog.watches.acquire("churn", holder="another", seconds=120)
    code, _, err = run_cli(capsys, "watch", "churn", "--once", "--source", "files:none/*.csv",
                           "--home", str(ws.config.home))  # fmt: skip
    assert code == 2
    assert "'churn' is already watched by watcher" in err
    assert "watching" not in err
    ws.catalog.watches.release("churn", holder="another")
    code, _, err = run_cli(capsys, "watch", "churn", "--once", "--source", "files:none/*.csv",
                           "--home", str(ws.config.home))  # fmt: skip
    assert code == 0, err
    assert "watching churn@champion: windows from files:none/*.csv" in err
    assert "the windows there now, then stop" in err  # not "every 15m": it stops


@pytest.mark.parametrize(
    ("args", "error", "hint"),
    [
        (
            ["chrun", "--once"],
            "unknown system 'chrun'",
            "no system is named 'chrun'; did you mean 'churn'?",
        ),
        (
            ["churn", "--show", "99"],
            "churn has no watch cycle 99 (its cycles are 1-2)",
            "`regrow watch churn --history` lists them",
        ),
    ],
)
def test_watch_says_what_other_commands_say_of_a_bad_name_or_number(
    ws: Workspace, capsys: pytest.CaptureFixture[str], args: list[str], error: str, hint: str
) -> None:
    # "the systems are churn" where other commands say "did you mean"; "unknown watch cycle
    # of 'churn' '99'"
    source = _files(ws.config.home / "windows", [_day(i) for i in range(2)])
    with Watcher(ws, "churn", source, policy=_policy(persistence=9), dry_run=True) as watcher:
        watcher.run(once=True)
    code, _, err = run_cli(capsys, "watch", *args, "--home", str(ws.config.home))
    assert code == 2
    assert f"error: {error}\n" in err
    assert f"hint: {hint}\n" in err
