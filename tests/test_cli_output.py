"""Output a newcomer understands (#12): tables, version refs, honest reasons, counters, Ctrl-C."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from regrow import Ensemble, Member, System, Transform, Workspace
from regrow.cli import _app
from regrow.cli._progress import ProgressLine
from regrow.demo import make_window
from regrow.progress import Step
from regrow.run.runner import RunEvent
from regrow.testing import run_cli_captured as run

SYSTEM = """
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from regrow import Ensemble, Member, System, Transform

def build():
    return System("churn", target="churned", components=[
        Transform("fee_scaled", StandardScaler(), inputs=["monthly_fee"]),
        Member("account", LogisticRegression(C={c}), inputs=["tenure_months", "fee_scaled"]),
        Member("geo", LogisticRegression(), inputs=["distance_km", "network_quality"]),
        Ensemble("ensemble", weights={{"account": 1, "geo": 1}}),
    ])
"""
UUID = re.compile(r"\b[0-9a-f]{32}\b")


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables as wide as their rows, so a cell's text is on one line."""
    monkeypatch.setattr(_app.out, "width", 250)
    monkeypatch.setattr(_app.err, "width", 250)


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """churn:v1 trained and promoted, churn:v2 (geo refitted) evaluated and promoted."""
    tmp = tmp_path_factory.mktemp("flow")
    (tmp / "models.py").write_text(SYSTEM.format(c=1.0))
    make_window(1200, start="2026-01-01", days=60, seed=0).to_parquet(tmp / "old.parquet")
    later = make_window(900, start="2026-07-01", days=30, seed=1, expanded=True)
    later.iloc[:500].to_parquet(tmp / "recent.parquet")
    later.iloc[500:].to_parquet(tmp / "holdout.parquet")
    home = str(tmp / "ws")
    h = ("--home", home)
    slices = ("--slice", "north=region == 'north'", "--slice", "long=tenure_months >= 24")
    outputs: dict[str, str] = {}
    assert run("init", home)[0] == 0
    for name in ("old", "recent", "holdout"):
        code, _, err = run("snapshot", "create", str(tmp / f"{name}.parquet"), "--name", name,
                           *slices, *h)  # fmt: skip
        assert code == 0, err
    code, outputs["train"], err = run("train", f"{tmp / 'models.py'}:build", "--snapshot", "old",
                                      "--workers", "1", *h)  # fmt: skip
    assert code == 0, err
    assert run("promote", "churn:v1", "--reason", "first", "--force", *h)[0] == 0
    code, outputs["update"], err = run("update", "churn@champion", "--snapshot", "recent",
                                       "-c", "geo", "--workers", "1", *h)  # fmt: skip
    assert code == 0, err
    code, outputs["evaluate"], err = run("evaluate", "churn:v2", "--snapshot", "holdout",
                                         "--baseline", "churn:v1", *h)  # fmt: skip
    assert code == 0, err
    assert run("promote", "churn:v2", "--reason", "better", "--force", *h)[0] == 0
    return tmp, outputs


def test_evaluate_shows_a_table_of_every_slice_with_its_interval(
    flow: tuple[Path, dict[str, str]],
) -> None:
    out = flow[1]["evaluate"]
    header = next(line for line in out.splitlines() if "slice" in line and "rows" in line)
    words = re.findall(r"[a-z]+", header)
    assert words == ["slice", "rows", "baseline", "candidate", "difference", "interval"]
    for name in ("all", "north", "long"):
        row = next(line for line in out.splitlines() if re.search(rf"\b{name}\b", line))
        assert re.search(r"[+-]\d\.\d{4} .*\[[+-]\d\.\d{4}, [+-]\d\.\d{4}\]", row), row
    assert "{" not in out  # no raw dicts
    assert "verdict:" in out


def test_evaluate_json_gives_each_slice_its_difference_and_interval(
    flow: tuple[Path, dict[str, str]],
) -> None:
    home = str(flow[0] / "ws")
    code, out, err = run("evaluate", "churn:v2", "--snapshot", "holdout", "--baseline",
                         "churn:v1", "--home", home, "--json")  # fmt: skip
    assert code == 0, err
    slices = json.loads(out)["slices"]
    assert set(slices) == {"north", "long"}
    for s in slices.values():
        low, high = s["delta_ci"]
        assert low <= high
        assert s["delta"] == pytest.approx(s["candidate"] - s["baseline"])


def test_alias_history_names_versions_not_ids(flow: tuple[Path, dict[str, str]]) -> None:
    home = str(flow[0] / "ws")
    code, out, err = run("aliases", "--history", "--home", home)
    assert code == 0, err
    assert not UUID.search(out), out
    moves = [line for line in out.splitlines() if "first" in line or "better" in line]
    assert re.search(r"churn:v1\s.*churn:v2\s.*better", moves[0]), moves
    assert re.search(r"-\s.*churn:v1\s.*first", moves[1]), moves
    code, out, _ = run("aliases", "--history", "--home", home, "--json")
    history = json.loads(out)["history"]["churn@champion"]
    assert [(m["from_version"], m["to_version"]) for m in history] == [
        ("churn:v1", "churn:v2"),
        (None, "churn:v1"),
    ]


def _row(out: str, component: str) -> str:
    return next(line for line in out.splitlines() if re.search(rf"\b{component}\b", line))


def test_a_reused_component_shows_no_stale_cause(flow: tuple[Path, dict[str, str]]) -> None:
    out = flow[1]["update"]
    for name in ("fee_scaled", "account"):
        assert re.search(r"reused\s+│\s+fingerprint unchanged\s", _row(out, name)), out
    assert "not in the catalog" not in out
    assert re.search(r"trained\s+│\s+data\s", _row(out, "geo"))


def test_components_an_interrupted_run_fitted_are_reused_without_a_stale_cause(
    tmp_path: Path,
) -> None:
    (tmp_path / "models.py").write_text(SYSTEM.format(c=-1.0))  # account cannot be fitted
    make_window(400, start="2026-01-01", days=30, seed=0).to_parquet(tmp_path / "d.parquet")
    h = ("--home", str(tmp_path / "ws"))
    run("init", str(tmp_path / "ws"))
    run("snapshot", "create", str(tmp_path / "d.parquet"), "--name", "d", *h)
    train = ("train", f"{tmp_path / 'models.py'}:build", "--snapshot", "d", "--workers", "1", *h)
    code, _, err = run(*train)
    assert code == 2
    assert "'account'" in err
    (tmp_path / "models.py").write_text(SYSTEM.format(c=1.0))
    code, out, err = run(*train)
    assert code == 0, err
    assert re.search(r"reused\s+│\s+fitted by an earlier run\s+│\s+-", _row(out, "fee_scaled"))
    assert re.search(r"trained\s+│\s+new component", _row(out, "account"))
    assert "not in the catalog" not in out
    code, out, _ = run(*train, "--json")
    assert code == 0
    assert "not in the catalog" not in out
    # lineage names the run that fitted a reused component
    code, out, err = run("lineage", "churn:v1", *h, "--json")
    assert code == 0, err
    first = next(c for c in json.loads(out)["components"] if c["name"] == "fee_scaled")
    code, out, err = run("lineage", "churn:v1", *h)
    assert code == 0, err
    assert f"fitted by run {first['origin']['run'][:12]}" in _row(out, "fee_scaled")


# -- the progress counter ---------------------------------------------------------------------


class FakeBar:
    """Records what a Rich Progress would show: each task's description, done and total."""

    def __init__(self) -> None:
        self.tasks: dict[int, dict[str, Any]] = {}
        self.shown: list[tuple[str, float, float | None]] = []

    def add_task(self, description: str, total: float | None = None) -> int:
        task = len(self.tasks)
        self.tasks[task] = {"description": description, "completed": 0, "total": total}
        self._show(task)
        return task

    def update(self, task: int, **fields: Any) -> None:
        self.tasks[task].update(fields)
        self._show(task)

    def remove_task(self, task: int) -> None:
        del self.tasks[task]

    def _show(self, task: int) -> None:
        t = self.tasks[task]
        self.shown.append((t["description"], t["completed"], t["total"]))


def _never_past_the_total(bar: FakeBar) -> None:
    for description, done, total in bar.shown:
        assert total is None or done <= total, (description, done, total)


def test_the_counter_never_passes_its_total_and_restarts_with_each_run() -> None:
    bar = FakeBar()
    line = ProgressLine(bar)  # type: ignore[arg-type]
    events = [
        RunEvent("planned", total=3),
        RunEvent("reused", "t", total=3, done=0),  # found before the run: not counted
        RunEvent("started", "a", total=3),
        RunEvent("finished", "a", total=3, done=1),
        RunEvent("reused", "b", total=3, done=2),  # fitted by another run while we waited
        RunEvent("finished", "c", total=3, done=3),
        RunEvent("finished", "c", total=3, done=4),  # a bad count is still shown as 3/3
        RunEvent("planned", total=2),  # the demo's second run
        RunEvent("finished", "geo", total=2, done=1),
    ]
    for event in events:
        line(event)
    _never_past_the_total(bar)
    assert bar.shown[-1] == ("training", 1, 2)
    line(Step("drift", "start", 0, 4))
    for done in range(1, 7):
        line(Step("drift", "advance", done, 4))
    _never_past_the_total(bar)
    assert ("drift", 4, 4) in bar.shown
    line(Step("drift", "done", 4, 4, 0.5))
    line(Step("probes", "start", 0, None))
    assert bar.shown[-1] == ("probes", 0, None)


def _system() -> System:
    columns = ["tenure_months", "monthly_fee", "support_calls"]
    transforms = [Transform(f"t{i}", StandardScaler(), inputs=[c]) for i, c in enumerate(columns)]
    members = [Member(f"m{i}", LogisticRegression(), inputs=[f"t{i}"]) for i in range(3)]
    weights = {m.name: 1.0 for m in members}
    return System("race", target="churned",
                  components=[*transforms, *members, Ensemble("e", weights=weights)])  # fmt: skip


def test_racing_runs_report_every_planned_component_settled_once(tmp_path: Path) -> None:
    """Components another run fitted while this one waited count as settled: the counter
    ends at its total, and never passes it."""
    home = tmp_path / "ws"
    with Workspace.init(home) as ws:
        snap = ws.snapshot(make_window(400, start="2026-01-01", days=30, seed=0), name="d")
    events: list[list[RunEvent]] = [[], [], []]
    errors: list[BaseException] = []
    gate = threading.Barrier(3)

    def train(i: int) -> None:
        try:
            with Workspace.open(home) as ws:
                gate.wait()
                ws.train(_system(), snap.id, workers=1, progress=events[i].append)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=train, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    for seen in events:
        total = seen[0].total
        assert seen[0].kind == "planned"
        assert all(e.done <= total for e in seen[1:])
        settled = [e for e in seen if e.kind in ("finished", "reused") and e.done]
        assert [e.done for e in settled] == list(range(1, total + 1))


# -- Ctrl-C -----------------------------------------------------------------------------------


def test_ctrl_c_says_what_is_kept_and_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(ref: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("regrow.cli.train.load_system", interrupted)
    code, out, err = run("train", "models.py:build", "--snapshot", "s")
    assert code == 130
    assert err.strip() == "interrupted; finished components are kept: run again to resume"
    assert "Traceback" not in out + err


def test_ctrl_c_of_a_command_that_fits_nothing_does_not_speak_of_components(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("regrow.cli.monitor.workspace", interrupted)
    code, _, err = run("monitor", "--version", "churn@champion", "--window", "w")
    assert code == 130
    assert err.strip() == "interrupted"


@pytest.mark.parametrize("keep", [False, True], ids=["removed", "kept"])
def test_ctrl_c_of_the_demo_says_where_its_temporary_workspace_went(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, keep: bool
) -> None:
    # Nothing resumes a temporary workspace: "run again to resume" would send the user to a
    # folder that is gone (or that a new run does not use).
    made: list[Path] = []

    def folder(prefix: str) -> str:
        made.append(tmp_path / f"{prefix}x")
        made[-1].mkdir()
        return str(made[-1])

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("tempfile.mkdtemp", folder)
    monkeypatch.setattr("regrow.demo.run_demo", interrupted)
    code, out, err = run("demo", *(["--keep"] if keep else []))
    assert code == 130
    assert "Traceback" not in out + err
    if keep:
        assert err.strip() == f"interrupted; the workspace is kept at {made[0]}"
        assert made[0].is_dir()
    else:
        assert err.strip() == "interrupted; the demo's temporary workspace is removed"
        assert not made[0].exists()


SLOW_SYSTEM = """
import pathlib, time
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from regrow import Ensemble, Member, System

class Waits(ClassifierMixin, BaseEstimator):
    \"\"\"Says that its fit started (a file), then takes a minute.\"\"\"

    def __init__(self, marker=""):
        self.marker = marker

    def fit(self, X, y):
        pathlib.Path(self.marker).touch()
        time.sleep(60)
        return self

    def predict_proba(self, X):
        raise NotImplementedError

def build():
    return System("slow", target="churned", components=[
        Member("quick", LogisticRegression(), inputs=["tenure_months"]),
        Member("waits", Waits({marker!r}), inputs=["monthly_fee"]),
        Ensemble("ensemble", weights={{"quick": 1, "waits": 1}}),
    ])
"""


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_during_train_keeps_finished_components(tmp_path: Path, workers: str) -> None:
    """SIGINT to the command's process group, as a terminal's Ctrl-C sends it."""
    marker = tmp_path / "fitting"
    (tmp_path / "slow.py").write_text(SLOW_SYSTEM.format(marker=str(marker)))
    make_window(300, start="2026-01-01", days=30, seed=0).to_parquet(tmp_path / "d.parquet")
    h = ("--home", str(tmp_path / "ws"))
    run("init", str(tmp_path / "ws"))
    run("snapshot", "create", str(tmp_path / "d.parquet"), "--name", "d", *h)
    command = [sys.executable, "-m", "regrow.cli", "train", f"{tmp_path / 'slow.py'}:build",
               "--snapshot", "d", "--workers", workers, *h]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the slow fit never started"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130, err
    assert err.strip() == "interrupted; finished components are kept: run again to resume"
    assert "Traceback" not in out + err
    code, out, _ = run("status", *h)
    assert code == 0
    if workers == "1":  # `quick` was fitted (and recorded) before `waits` started
        assert "slow: no version yet (a run started but did not finish)" in out


# -- the demo's temporary workspace -----------------------------------------------------------


@pytest.fixture
def quick_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`regrow demo` with its scenario stubbed out; returns the folder it will use."""
    from types import SimpleNamespace

    folder = tmp_path / "regrow-demo-x"

    def mkdtemp(prefix: str = "") -> str:
        folder.mkdir()
        return str(folder)

    def run_demo(ws: Workspace, **_: Any) -> Any:
        report = str(ws.home / "reports" / "monitor.html")
        summary = {"retrained": ["geo"], "reused": [], "metric": "roc_auc", "before": 0.7,
                   "after": 0.8, "promoted": True, "seconds": 1.0,
                   "monitor": {"report": report}}  # fmt: skip
        return SimpleNamespace(
            v1="churn:v1", v2="churn:v2", update=SimpleNamespace(components={}), drifted=[],
            impacts=[], metric="roc_auc", before=0.7, after=0.8, promoted=True, reasons=[],
            seconds=1.0, summary=lambda: summary, gates=(), approvals=["reviewer"], monitor={},
            renamed={},
        )  # fmt: skip

    monkeypatch.setattr("regrow.cli.demo.tempfile.mkdtemp", mkdtemp)
    monkeypatch.setattr("regrow.demo.run_demo", run_demo)
    return folder


@pytest.mark.parametrize("as_json", [False, True])
def test_the_demo_removes_its_temporary_workspace(quick_demo: Path, as_json: bool) -> None:
    code, out, err = run("demo", *(("--json",) if as_json else ()))
    assert code == 0, err
    assert not quick_demo.exists()
    if as_json:
        printed = json.loads(out.splitlines()[-1])
        assert "home" not in printed
        assert printed["monitor"]["report"] is None  # it went with the workspace
    else:
        assert "`regrow demo --keep` keeps it" in out
        assert str(quick_demo) not in out


@pytest.mark.parametrize("as_json", [False, True])
def test_the_demo_keeps_its_workspace_with_keep_and_says_where(
    quick_demo: Path, as_json: bool
) -> None:
    code, out, err = run("demo", "--keep", *(("--json",) if as_json else ()))
    assert code == 0, err
    assert (quick_demo / "config.toml").is_file()
    if as_json:
        printed = json.loads(out.splitlines()[-1])
        assert printed["home"] == str(quick_demo)
        assert printed["monitor"]["report"].startswith(str(quick_demo))
        assert f"workspace kept at {quick_demo}" in err
    else:
        assert f"the workspace is kept at {quick_demo}" in out
        assert f"regrow lineage churn:v2 --home {quick_demo}" in out


def test_the_demo_never_removes_a_home_it_was_given(tmp_path: Path, quick_demo: Path) -> None:
    home = tmp_path / "mine"
    code, out, err = run("demo", "--home", str(home))
    assert code == 0, err
    assert (home / "config.toml").is_file()
    assert f"the workspace is at {home}" in out


# -- passing progress on, and the time line ---------------------------------------------------


def test_progress_goes_only_to_methods_that_take_it() -> None:
    from regrow.cli._progress import with_progress

    def takes(x: int, *, progress: Any = None) -> Any:
        return progress

    def does_not(x: int) -> int:
        return x

    def callback(event: Any) -> None:
        return None

    assert with_progress(takes, callback)(1) is callback
    assert with_progress(does_not, callback)(1) == 1
    assert with_progress(takes, None)(1) is None


def test_a_result_with_timings_ends_with_one_time_line() -> None:
    from types import SimpleNamespace

    from regrow.cli._progress import print_timings
    from regrow.progress import Timer

    timer = Timer()
    with timer.step("drift"):
        pass
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        print_timings(SimpleNamespace(timings=timer))
        print_timings(SimpleNamespace(), SimpleNamespace(timings={"probes": 1.5, "fit": 0.25}))
        print_timings(SimpleNamespace(), None)  # nothing to say: says nothing
        print_timings(SimpleNamespace(timings=Timer()))  # nothing timed
    lines = err.getvalue().splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"time: drift \d+\.\d\d s \(total \d+\.\d\d s\)", lines[0])
    assert lines[1] == "time: probes 1.50 s, fit 0.25 s (total 1.75 s)"


def test_doctor_does_not_count_the_audit_events_of_a_broken_chain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # it printed "audit events 0" of a chain of hundreds with one event changed
    import sqlalchemy as sa

    from regrow import Workspace

    with Workspace.init(tmp_path / "ws") as ws:
        ws.snapshot(make_window(100, start="2026-01-01", days=5, seed=0), name="d")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ws' / 'catalog.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 1"))
    engine.dispose()
    code, out, _ = run("doctor", "--home", str(tmp_path / "ws"))
    assert code == 1
    assert "audit events (not counted: the chain is broken, see below)" in out
    assert "audit events 0" not in out
