"""`regrow refresh`: the table, the plan, --run and --dry-run on a real workspace; bad input
prints an error and a hint, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from regrow import Ensemble, Member, System, Workspace
from regrow.testing import run_cli


def rows(n: int, seed: int, concept: str) -> pd.DataFrame:
    x = np.random.default_rng(seed).normal(size=(n, 2))
    score = {"both": x[:, 0] + x[:, 1], "a": x[:, 0]}[concept]
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": (score > 0).astype(int)})


def members(method: str) -> list[Member | Ensemble]:
    return [
        Member("a", LogisticRegression(), inputs=["x1"]),
        Member("b", LogisticRegression(), inputs=["x2"]),
        Ensemble("ens", weights={"a": 1.0, "b": 1.0}, method=method),  # type: ignore[arg-type]
    ]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workspace every test starts from, built once per module (each test gets a copy)."""
    home = tmp_path_factory.mktemp("refresh") / "ws"
    with pytest.MonkeyPatch.context() as env:
        env.delenv("REGROW_TOKEN", raising=False)
        with Workspace.init(home) as ws:
            train = ws.snapshot(rows(300, 0, "both"), name="train")
            v1 = ws.train(System("toy", target="y", components=members("mean")), train).version
            ws.catalog.move_alias("toy", "champion", v1.id)
            ws.train(System("stacked", target="y", components=members("stack")), train)
            ws.snapshot(rows(200, 1, "a"), name="wa")
            ws.snapshot(rows(200, 1, "a").drop(columns=["y"]), name="unlabelled")
            ws.snapshot(rows(200, 1, "a").rename(columns={"x1": "first"}), name="renamed")
            ws.snapshot(rows(200, 1, "a").assign(x1="abc"), name="text")
            ws.snapshot(rows(200, 1, "a").assign(y=lambda f: f.y.map({0: "no", 1: "yes"})),
                        name="yesno")  # fmt: skip
    return home


@pytest.fixture
def home(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the template: toy:v1 (champion, a mean of members a and b), stacked:v1, and
    windows wa, unlabelled, renamed, text and yesno."""
    monkeypatch.delenv("REGROW_TOKEN", raising=False)
    home = tmp_path / "ws"
    shutil.copytree(template, home)
    return home


def test_refresh_prints_the_weights_and_the_plan_then_runs_it(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = ("--home", str(home))
    code, out, err = run_cli(capsys, "refresh", "toy", "--window", "wa", *h)
    assert code == 0, err
    assert "ensemble ens of toy:v1" in out
    assert "0.500 -> 0.95" in out  # member a, the better one on the window
    assert "0.500 -> 0.04" in out
    plan_id = out.split("plan ")[1][:12]
    assert f"regrow run {plan_id}" in out
    code, out, err = run_cli(capsys, "refresh", "toy:v1", "--window", "wa", "--run", *h)
    assert code == 0, err
    assert "new version toy:v2" in out
    assert "regrow rollout start toy:v2 --mode blend" in out
    code, out, err = run_cli(capsys, "refresh", "toy:v1", "--window", "wa", "--run", *h)
    assert code == 0, err
    assert "the same refresh ran before: version toy:v2" in out
    code, out, _ = run_cli(capsys, "plans", "show", plan_id, *h)
    assert "ensemble refresh of 'ens'" in out
    assert "status: executed" in out


def test_a_newcomer_waits_for_approval_and_is_audited(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = ("--home", str(home))
    code, out, err = run_cli(capsys, "refresh", "toy", "--window", "wa", "--add-member", "a",
                             "--run", *h)  # fmt: skip
    assert code == 2
    assert "needs approval" in err
    assert "Traceback" not in err
    code, out, err = run_cli(capsys, "refresh", "toy", "--window", "wa", "--add-member", "a",
                             "--run", "--approve", "--json", *h)  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert result["new_version"] == "toy:v2"
    newcomer = next(m for m in result["members"] if m["member"] == "a_r1")
    assert newcomer["events"] == ["admitted"]
    assert 0 < newcomer["after"] <= 0.8  # the policy's reserved share
    code, out, _ = run_cli(capsys, "plans", "show", result["plan"], *h)
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("ensemble refresh of"))
    assert "nan" not in line  # the newcomer's loss is its cross-validated one
    assert f"a_r1 {newcomer['loss']:.3f}: 0.000 -> " in line
    code, out, _ = run_cli(capsys, "plans", "show", result["plan"], "--json", *h)
    recipes = [(a["kind"], a["recipe"]) for a in json.loads(out)["actions"]]
    assert recipes == [("add-member", "add-member-copy@1"),
                       ("reweight", "ensemble-hedge-refresh@1")]  # fmt: skip
    code, out, _ = run_cli(capsys, "lineage", "toy:v2", "--json", *h)
    built = {c["name"]: (c["recipe"] or {}).get("ref") for c in json.loads(out)["components"]}
    assert (built["a_r1"], built["ens"]) == ("add-member-copy@1", "ensemble-hedge-refresh@1")
    code, out, _ = run_cli(capsys, "audit", *h, "--json")
    assert code == 0
    assert "ensemble.admitted" in out
    assert "ensemble.weights" in out


def test_the_same_refresh_with_a_newcomer_again_names_the_version_it_made(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("refresh", "toy:v1", "--window", "wa", "--add-member", "a", "--run", "--approve",
            "--home", str(home))  # fmt: skip
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "new version toy:v2" in out
    assert "after: not scored in sample" in out
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "the same refresh ran before: version toy:v2" in out
    assert "new version" not in out
    code, out, _ = run_cli(capsys, "audit", "--json", "--home", str(home))
    assert out.count('"ensemble.admitted"') == 1


def test_a_run_that_makes_no_new_version_says_so(
    home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = tmp_path / "policy.yaml"
    rules.write_text("ensemble:\n  eta: 50\n  alpha: 0.1\n")
    h = ("--window", "wa", "--run", "--policy", str(rules), "--home", str(home))
    code, out, err = run_cli(capsys, "refresh", "toy:v1", *h)
    assert code == 0, err
    assert "new version toy:v2" in out
    code, out, err = run_cli(capsys, "refresh", "toy:v2", *h)
    assert code == 0, err  # a fixed point: the weights do not move
    assert "no new version: toy:v2, which exists already, has these weights" in out
    assert "rollout start" not in out  # nothing new to roll out
    code, out, err = run_cli(capsys, "refresh", "toy:v2", *h, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["ran_before"]
    assert (result["new_version"], result["result_version"]) == (None, "toy:v2")


def test_a_dry_run_stores_no_plan(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h = ("--home", str(home))
    code, out, err = run_cli(capsys, "refresh", "toy", "--window", "wa", "--dry-run", *h)
    assert code == 0, err
    assert "dry run: nothing stored" in out
    code, out, _ = run_cli(capsys, "plans", "list", "--json", *h)
    assert json.loads(out) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", "--window", "wa"), "unknown version 'nope@champion'"),
        (("toy", "--window", "unlabelled"), "no target column 'y'"),
        (("stacked:v1", "--window", "wa"), "is a stack"),
        (("toy", "--window", "renamed"), "'x1': the column is missing from the window"),
        (("toy", "--window", "text"), "'x1': 200 of 200 values are not of the column's trained"),
        (("toy", "--window", "yesno"), "its classes: [0, 1]"),
        (("toy", "--window", "wa", "--add-member", "ens"), "copies a member"),
        (("toy", "--window", "wa", "--dry-run", "--run"), "no plan to --run"),
        (("toy", "--window", "wa", "--approve"), "--approve approves the plan's run, and there"),
    ],
)
def test_bad_input_prints_an_error_and_a_hint(
    home: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, _, err = run_cli(capsys, "refresh", *args, "--home", str(home))
    assert code == 2
    assert message in err
    assert "hint:" in err
    assert "Traceback" not in err
