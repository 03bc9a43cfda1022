"""`regrow rollout`: start, status, step, pause, resume, promote, abort and history from the
command line, on a real workspace; errors print a hint, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from regrow import Member, System, Workspace
from regrow.testing import routed_by, run_cli


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workspace every test starts from, built once per module (each test gets a copy)."""
    home = tmp_path_factory.mktemp("rollout-cli") / "ws"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    frame = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": (x[:, 0] > 0).astype(int)})
    with pytest.MonkeyPatch.context() as env:
        env.delenv("REGROW_TOKEN", raising=False)
        with Workspace.init(home) as ws:
            train = ws.snapshot(frame, name="train")
            for inputs in (["x1"], ["x1", "x2"]):
                ws.train(System("toy", target="y", components=[
                    Member("m", LogisticRegression(), inputs=inputs)]), train)  # fmt: skip
            v1 = ws.catalog.get_system_version("toy:v1").id
            ws.catalog.move_alias("toy", "champion", v1)
            ws.catalog.move_alias("toy", "live", v1)
    return home


@pytest.fixture
def home(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the template: toy:v1 (x1) and toy:v2 (x1, x2) trained on snapshot ``train``,
    ``champion`` and ``live`` on toy:v1."""
    monkeypatch.delenv("REGROW_TOKEN", raising=False)
    home = tmp_path / "ws"
    shutil.copytree(template, home)
    return home


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> object:
    code, out, err = run_cli(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_a_rollout_from_start_to_abort(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h = ("--home", str(home))
    started = _json(capsys, "rollout", "start", "toy:v2", "--steps", "5,25,50,100", "--alias",
                    "live", "--min-requests", "50", "--reason", "new feature", *h)  # fmt: skip
    assert isinstance(started, dict)
    rid = started["id"][:8]
    assert (started["state"], started["share"], started["candidate"]) == (
        "progressing",
        0.05,
        "toy:v2",
    )
    code, out, _ = run_cli(capsys, "rollout", "status", *h)
    assert code == 0
    assert "progressing, step 1/4, share 5%" in out  # one rollout: lines, not a table
    status = _json(capsys, "rollout", "status", rid, *h)
    assert isinstance(status, list)
    assert status[0]["state"] == "progressing"
    stepped = _json(capsys, "rollout", "step", rid, *h)
    assert isinstance(stepped, list)
    assert stepped[0]["action"] == "hold"  # nothing logged yet
    code, out, _ = run_cli(capsys, "rollout", "step", *h)  # every rollout under way
    assert code == 0
    assert "0 of 50 labelled candidate requests" in out
    for command in ("pause", "resume"):
        code, out, err = run_cli(capsys, "rollout", command, rid, "--reason", "drill", *h)
        assert code == 0, err
    code, out, _ = run_cli(capsys, "rollout", "abort", rid, "--reason", "pager", *h)
    assert code == 0
    assert "rolled_back" in out
    code, out, _ = run_cli(capsys, "rollout", "history", rid, *h)
    for action in ("start", "begin", "hold", "pause", "resume", "abort"):
        assert action in out
    history = _json(capsys, "rollout", "history", rid, *h)
    assert isinstance(history, list)
    assert history[-1]["reason"] == "pager"
    assert _json(capsys, "rollout", "status", *h) == []
    code, out, _ = run_cli(capsys, "rollout", "step", *h)
    assert "no rollout under way" in out


def test_promote_by_hand_moves_an_unprotected_alias(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = ("--home", str(home))
    started = _json(capsys, "rollout", "start", "toy:v2", "--alias", "live", "--mode", "shadow",
                    *h)  # fmt: skip
    assert isinstance(started, dict)
    assert started["state"] == "shadow"
    code, out, err = run_cli(capsys, "rollout", "promote", started["id"], *h)
    assert code == 0, err
    assert "promoted" in out
    with Workspace.open(home) as ws:
        assert ws.catalog.get_alias("toy", "live").version_id == started["candidate_id"]


def test_errors_print_a_hint_not_a_traceback(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = ("--home", str(home))
    code, _, err = run_cli(capsys, "rollout", "start", "toy:v2", "--steps", "5,x", *h)
    assert code == 2
    assert "not numbers" in err
    assert "Traceback" not in err
    code, _, err = run_cli(capsys, "rollout", "start", "toy:v1", *h)
    assert code == 2
    assert "already holds" in err
    code, _, err = run_cli(capsys, "rollout", "abort", "abcdef12", *h)
    assert code == 2
    assert "unknown rollout" in err


@pytest.fixture
def more(home: Path) -> Path:
    """``home`` with toy:v3 (a third classifier) and other:v1 (another system)."""
    with Workspace.open(home) as ws:
        train = ws.catalog.get_snapshot("train").id
        ws.train(System("toy", target="y", components=[
            Member("m", LogisticRegression(C=0.1), inputs=["x1"])]), train)  # fmt: skip
        ws.train(System("other", target="y", components=[
            Member("m", LogisticRegression(), inputs=["x2"])]), train)  # fmt: skip
    return home


def test_an_ab_rollout_shows_its_lanes_and_a_blend_its_weight(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = ("--home", str(home))
    with Workspace.open(home) as ws:  # a third classifier
        train = ws.catalog.get_snapshot("train").id
        ws.train(System("toy", target="y", components=[
            Member("m", LogisticRegression(C=0.1), inputs=["x1", "x2"])]), train)  # fmt: skip
    started = _json(capsys, "rollout", "start", "toy:v2", "toy:v3", "--mode", "ab", "--steps",
                    "10,50", "--slice", "pos=x1 > 0", "--slice", "neg=x1 <= 0", "--alias", "live",
                    *h)  # fmt: skip
    assert isinstance(started, dict)
    assert [(x["lane"], x["version"], x["share"]) for x in started["lanes"]] == [
        ("candidate", "toy:v2", 0.1),
        ("candidate-2", "toy:v3", 0.1),
    ]
    assert started["params"]["slices"] == {"pos": "x1 > 0", "neg": "x1 <= 0"}
    code, out, err = run_cli(capsys, "rollout", "status", *h)
    assert code == 0, err
    assert "lane candidate-2: toy:v3, 10%" in out
    assert "10% x 2" in out
    code, out, _ = run_cli(capsys, "rollout", "step", *h)
    assert "lane candidate" in out
    assert "inconclusive" in out  # nothing logged: each lane's analysis is inconclusive
    run_cli(capsys, "rollout", "abort", started["id"], *h)
    code, out, err = run_cli(capsys, "rollout", "start", "toy:v2", "--mode", "blend",
                             "--steps", "20,100", "--alias", "live", *h)  # fmt: skip
    assert code == 0, err
    assert "(blend)" in out
    assert "candidate blend weight 20%" in out
    status = _json(capsys, "rollout", "status", *h)
    assert isinstance(status, list)
    assert (status[0]["mode"], status[0]["share"]) == ("blend", 0.2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("toy:v2", "other:v1", "--mode", "ab"), "not of 'toy'"),
        (("toy:v2", "--mode", "bandit"), "unknown rollout mode"),
        (("toy:v2", "--slice", "old=age > 65"), "slice 'old'"),
        (("toy:v2", "--slice", "no-expression"), "NAME=EXPR"),
        (("toy:v2", "toy:v3"), "takes one candidate"),
    ],
)
def test_bad_rollouts_are_refused_with_a_hint(
    more: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, _, err = run_cli(capsys, "rollout", "start", *args, "--home", str(more))
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_step_without_an_id_goes_on_after_a_rollout_whose_analysis_fails(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = ("--home", str(home))
    good = _json(capsys, "rollout", "start", "toy:v2", "--steps", "50", "--min-requests", "5",
                 *h)  # fmt: skip
    assert isinstance(good, dict)
    with Workspace.open(home) as ws:  # a slice an older regrow accepted: ts is never served
        v1, v2 = (ws.catalog.get_system_version(f"toy:{v}").id for v in ("v1", "v2"))
        bad = ws.catalog.rollouts.start(
            system="toy", alias="live", stable_id=v1, candidate_id=v2, mode="split",
            steps=(0.5, 1.0), min_requests=5, params={"slices": {"late": "ts > 0"}},
        )  # fmt: skip
    code, _, err = run_cli(capsys, "rollout", "step", *h)  # begins both
    assert code == 0, err
    _log_labelled(home, ["r1", "r2"])
    code, out, err = run_cli(capsys, "rollout", "step", *h)
    assert code == 0, err
    assert "analysis_failed: analysis failed: slice 'late'" in out
    assert "hold:" in out  # the other rollout was stepped after it
    status = _json(capsys, "rollout", "status", bad.id[:8], *h)
    assert isinstance(status, list)
    assert status[0]["state"] == "paused"
    code, out, _ = run_cli(capsys, "rollout", "status", bad.id[:8], *h)
    assert "paused: analysis failed: slice 'late'" in out
    assert good["id"] != bad.id


def _log_labelled(home: Path, ids: list[str]) -> None:
    """Rows of toy served by toy:v2 in lane candidate, with their labels."""
    from datetime import UTC, datetime, timedelta

    from regrow.serve.predlog import PredictionLog

    with Workspace.open(home) as ws:
        log = PredictionLog(ws.catalog, ws.store, flush_seconds=60)
        n = len(ids)
        log.record(system="toy", version="toy:v2", lane="candidate", request_ids=ids,
                   rows=[0] * n, inputs=pd.DataFrame({"x1": [0.0] * n, "x2": [0.0] * n}),
                   outputs={"predict": [1] * n, "probabilities": [[0.0, 1.0]] * n},
                   classes=[0, 1], at=datetime.now(UTC) + timedelta(seconds=1),
                   rollout=routed_by(ws, "toy"))  # fmt: skip
        log.close()
        ws.feedback("toy", dict.fromkeys(ids, 1))


def test_history_collapses_holds_and_takes_a_limit(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = ("--home", str(home))
    started = _json(capsys, "rollout", "start", "toy:v2", "--alias", "live", "--steps", "50,100",
                    *h)  # fmt: skip
    assert isinstance(started, dict)
    rid = started["id"][:8]
    for _ in range(3):
        assert run_cli(capsys, "rollout", "step", rid, *h)[0] == 0
    code, out, err = run_cli(capsys, "rollout", "history", rid, *h)
    assert code == 0, err
    assert "3 holds" in out
    assert out.count("hold") == 1
    everything = _json(capsys, "rollout", "history", rid, *h)
    assert isinstance(everything, list)
    assert [e["action"] for e in everything].count("rollout.hold") == 3  # JSON unchanged
    newest = _json(capsys, "rollout", "history", rid, "--limit", "2", *h)
    assert newest == everything[-2:]
    code, _, err = run_cli(capsys, "rollout", "history", rid, "--limit", "0", *h)
    assert code == 2


def test_promote_takes_an_ab_lane_and_a_refusal_suggests_no_missing_option(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = ("--home", str(home))
    with Workspace.open(home) as ws:  # a third classifier
        train = ws.catalog.get_snapshot("train").id
        ws.train(System("toy", target="y", components=[
            Member("m", LogisticRegression(C=0.1), inputs=["x1", "x2"])]), train)  # fmt: skip
    started = _json(capsys, "rollout", "start", "toy:v2", "toy:v3", "--mode", "ab", "--alias",
                    "live", "--steps", "10,50", *h)  # fmt: skip
    assert isinstance(started, dict)
    code, _, err = run_cli(capsys, "rollout", "promote", started["id"], "--lane", "candidate-2",
                           *h)  # fmt: skip
    assert code == 0, err
    with Workspace.open(home) as ws:
        held = ws.catalog.get_alias("toy", "live").version_id
        assert ws.catalog.get_system_version(held).ref == "toy:v3"
    refused = _json(capsys, "rollout", "start", "toy:v2", "--steps", "50", *h)  # champion
    assert isinstance(refused, dict)
    code, _, err = run_cli(capsys, "rollout", "promote", refused["id"], *h)
    assert code == 2
    assert "lacks" in err
    assert "--force" not in err


def test_a_share_under_one_percent_is_shown_as_it_is() -> None:
    from regrow.rollout.validate import percent

    assert [percent(s) for s in (0.005, 0.05, 0.25, 1.0, 0.0)] == [
        "0.5%",
        "5%",
        "25%",
        "100%",
        "0%",
    ]


def test_several_rollouts_name_whose_details_follow(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With two rollouts listed, the lines under the table said `slice old: ...` or
    `paused: ...` without saying whose (from a user trial)."""
    h = ("--home", str(home))
    live = _json(capsys, "rollout", "start", "toy:v2", "--alias", "live", "--mode", "shadow", *h)
    champion = _json(capsys, "rollout", "start", "toy:v2", "--mode", "shadow", *h)
    assert isinstance(live, dict)
    assert isinstance(champion, dict)
    assert run_cli(capsys, "rollout", "pause", live["id"], "--reason", "on call", *h)[0] == 0
    code, out, _ = run_cli(capsys, "rollout", "status", *h)
    assert code == 0
    lines = out.splitlines()
    at = lines.index(f"rollout {live['id'][:12]} (toy@live):")
    assert lines[at + 1] == "  paused: on call"
    assert f"rollout {champion['id'][:12]} (toy@champion):" not in lines  # nothing to say


def test_an_unknown_rollout_hint_names_where_finished_ones_are_listed() -> None:
    """A trial: the hint sent the user to `regrow rollout status`, which lists only rollouts
    under way, for a finished one too."""
    from regrow.catalog import Catalog
    from regrow.errors import NotFound

    with Catalog("sqlite://") as catalog, pytest.raises(NotFound) as found:
        catalog.rollouts.get("abcdef123456")
    assert "rollout status` (those under way)" in str(found.value.hint)
    assert "/ui/rollouts (all)" in str(found.value.hint)
