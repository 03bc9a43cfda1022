"""Small CLI messages a user trial found unclear: each reproduced on a real workspace, then
fixed (a misspelt --system, a misspelt FILE:NAME, a renamed column in `regrow predict`, and a
promoted rollout's status)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from regrow import Member, System, Workspace
from regrow.testing import run_cli


def _rows(n: int = 200, seed: int = 0) -> pd.DataFrame:
    x = np.random.default_rng(seed).normal(size=(n, 2))
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": (x[:, 0] > 0).astype(int)})


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workspace every test starts from, built once per module (each test gets a copy)."""
    home = tmp_path_factory.mktemp("messages") / "ws"
    with pytest.MonkeyPatch.context() as env:
        env.delenv("REGROW_TOKEN", raising=False)
        with Workspace.init(home) as ws:
            train = ws.snapshot(_rows(), name="train")
            for inputs in (["x1"], ["x1", "x2"]):
                ws.train(System("toy", target="y", components=[
                    Member("m", LogisticRegression(), inputs=inputs)]), train)  # fmt: skip
            ws.train(System("gbm", target="y", components=[
                Member("m", HistGradientBoostingClassifier(max_iter=5), inputs=["x1", "x2"])]),
                train)  # fmt: skip
            for system in ("toy", "gbm"):
                ws.catalog.move_alias(system, "champion", ws.catalog.get_system_version(
                    f"{system}:v1").id)  # fmt: skip
            ws.catalog.move_alias("toy", "live", ws.catalog.get_system_version("toy:v1").id)
    return home


@pytest.fixture
def home(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the template: toy:v1 (x1) and toy:v2 (x1, x2), a logistic regression that
    refuses missing values, ``champion`` and ``live`` on toy:v1; gbm:v1 (x1, x2), a
    gradient-boosting member that takes them, ``champion`` on it."""
    monkeypatch.delenv("REGROW_TOKEN", raising=False)
    home = tmp_path / "ws"
    shutil.copytree(template, home)
    return home


# --- 1. a misspelt --system is refused, with a did-you-mean ------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("experiments", "list", "--system", "tyo"),
        ("rollout", "status", "--system", "tyo"),
        ("costs", "--system", "tyo"),
        ("window", "tyo", "--since", "7d"),
        ("plans", "list", "tyo"),
        ("versions", "tyo"),
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_a_misspelt_system_is_refused_with_a_did_you_mean(
    home: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    code, out, err = run_cli(capsys, *args, "--home", str(home))
    assert code == 2, out + err  # experiments and rollout status said "no ..." and exit 0
    assert "unknown system 'tyo'" in err
    assert "did you mean 'toy'?" in err  # costs and window listed every system instead
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("experiments", "list", "--system", "toy"), "no experiments"),
        (("rollout", "status", "--system", "toy"), "no rollout under way"),
    ],
)
def test_a_known_system_with_nothing_to_list_still_says_so(
    home: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], said: str
) -> None:
    code, out, err = run_cli(capsys, *args, "--home", str(home))
    assert (code, out.strip()) == (0, said), err


# --- 2. a misspelt FILE.py:NAME names what the file holds ---------------------------------

ONE_SYSTEM = """
from sklearn.linear_model import LogisticRegression
from regrow import Member, System

system = System("credit", target="y", components=[
    Member("m", LogisticRegression(), inputs=["x1"])])
threshold = 0.5
"""

BUILDERS = """
from sklearn.linear_model import LogisticRegression
from regrow import Member, System

def build():
    return System("credit", target="y", components=[
        Member("m", LogisticRegression(), inputs=["x1"])])

def helper(rows):
    return rows
"""


@pytest.mark.parametrize(
    ("text", "ref", "said"),
    [
        (ONE_SYSTEM, "sytem", "did you mean {file}:system? the file holds the System(s) "
         "'system'"),
        (ONE_SYSTEM, "threshold", "the file holds the System(s) 'system'"),
        (BUILDERS, "buidl", "did you mean {file}:build? the file holds no System object; its "
         "functions of no arguments (one may return a System): 'build'"),
        ("x = 1\n", "system", "the file holds no System object and no function of no "
         "arguments"),
    ],
    ids=["typo", "not-a-system", "a-function", "nothing"],
)  # fmt: skip
def test_a_name_the_system_file_lacks_lists_what_it_holds(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, ref: str, said: str
) -> None:
    file = tmp_path / "credit.py"
    file.write_text(text)
    code, _, err = run_cli(capsys, "train", f"{file}:{ref}", "--snapshot", "train",
                           "--home", str(home))  # fmt: skip
    assert code == 2
    assert said.format(file=file) in " ".join(err.split())  # the hint said "check the NAME"
    assert "Traceback" not in err


# --- 3. `regrow predict` on a file with a renamed column ----------------------------------


@pytest.mark.parametrize("ref", ["toy:v2", "gbm:v1"])
def test_predict_names_a_renamed_column_and_how_to_bridge_it(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], ref: str
) -> None:
    source = tmp_path / "renamed.csv"
    _rows(20, 1).rename(columns={"x2": "x_2"}).to_csv(source, index=False)
    code, _, err = run_cli(capsys, "predict", ref, str(source), "-o", str(tmp_path / "o.csv"),
                           "--home", str(home))  # fmt: skip
    said = " ".join(err.split())
    assert code == 2
    # as `regrow monitor` says it (gbm takes missing values, so no finding blocked it and
    # the error was the server's bare "the data lacks input column(s) ['x2']")
    assert "'x_2', which the" in said
    assert "lacks: renamed?" in said
    system = ref.split(":")[0]
    assert "in the file, rename 'x_2' back to 'x2'; or bridge the rename:" in said
    assert (
        f"`regrow snapshot create {source} --name {system}-new`, then `regrow adapters propose "
        f"{system}-new --system {system} --version {ref}`"
    ) in said
    assert "Traceback" not in err


def test_predict_on_a_file_without_a_column_says_what_to_add(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "narrow.csv"
    _rows(20, 1).drop(columns=["x2"]).to_csv(source, index=False)
    code, _, err = run_cli(capsys, "predict", "gbm:v1", str(source), "-o",
                           str(tmp_path / "o.csv"), "--home", str(home))  # fmt: skip
    said = " ".join(err.split())
    assert code == 2
    assert "lacks input column(s) ['x2']" in said
    assert "renamed?" not in said  # no column of the file is close to it
    assert "add 'x2' to the file; if upstream renamed or dropped it:" in said
    assert "regrow adapters propose gbm-new --system gbm --version gbm:v1" in said


def test_the_commands_the_predict_hint_names_bridge_the_rename(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The commands the hint names work as written: the new version scores the file."""
    source = tmp_path / "renamed.csv"
    _rows(20, 1).rename(columns={"x2": "x_2"}).to_csv(source, index=False)
    h = ("--home", str(home))
    assert run_cli(capsys, "snapshot", "create", str(source), "--name", "toy-new", *h)[0] == 0
    code, out, err = run_cli(capsys, "adapters", "propose", "toy-new", "--system", "toy",
                             "--version", "toy:v2", "--apply", *h)  # fmt: skip
    assert code == 0, out + err
    code, _, err = run_cli(capsys, "predict", "toy:v3", str(source), "-o",
                           str(tmp_path / "o.csv"), *h)  # fmt: skip
    assert code == 0, err


# --- 4. a finished rollout's status says how it ended -------------------------------------


def _start(capsys: pytest.CaptureFixture[str], home: Path) -> str:
    code, out, err = run_cli(capsys, "rollout", "start", "toy:v2", "--steps", "5,25,100",
                             "--alias", "live", "--min-requests", "50", "--json",
                             "--home", str(home))  # fmt: skip
    assert code == 0, err
    return str(json.loads(out)["id"])[:8]


def test_a_promoted_rollout_says_the_candidate_holds_the_alias(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = ("--home", str(home))
    rid = _start(capsys, home)
    code, out, err = run_cli(capsys, "rollout", "promote", rid, "--reason", "good", *h)
    assert code == 0, err
    assert "promoted at step 1/3: the candidate toy:v2 holds toy@live" in out
    code, out, _ = run_cli(capsys, "rollout", "status", rid, *h)
    assert code == 0
    assert "state     promoted at step 1/3: the candidate toy:v2 holds toy@live" in out
    assert "0%" not in out  # it read "promoted, step 1/3, share 0%"
    # the alias moved on by hand: the status says where it is now
    assert run_cli(capsys, "promote", "toy:v1", "--alias", "live", "--reason", "back", *h)[0] == 0
    code, out, _ = run_cli(capsys, "rollout", "status", rid, *h)
    assert "promoted at step 1/3: the candidate toy:v2 took toy@live, which holds toy:v1 now" in (
        out
    )


def test_a_rolled_back_rollout_says_what_holds_the_alias(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = ("--home", str(home))
    rid = _start(capsys, home)
    assert run_cli(capsys, "rollout", "abort", rid, "--reason", "bad", *h)[0] == 0
    code, out, _ = run_cli(capsys, "rollout", "status", rid, *h)
    assert code == 0
    assert "rolled_back at step 1/3: the candidate serves no traffic; toy@live holds toy:v1" in out


# --- a window file that is not CSV or Parquet ---------------------------------------------


@pytest.mark.parametrize("command", ["plan", "monitor"])
def test_a_window_file_that_is_not_csv_or_parquet_is_named_as_such(
    home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    # it was looked up as a snapshot name: "unknown snapshot 'bad.txt'; did you mean ...?"
    bad = tmp_path / "bad.txt"
    bad.write_text("x1,x2,y\n1,2,0\n")
    code, out, err = run_cli(capsys, command, "--version", "toy@champion", "--window", str(bad),
                             "--home", str(home))  # fmt: skip
    assert code == 2, out + err
    assert f"the window {str(bad)!r} is a file, but not a CSV or Parquet one" in err
    assert "rename it, if it is one" in err
    assert "Traceback" not in err
    # a name that is no file is still looked up as a snapshot
    code, _, err = run_cli(capsys, command, "--version", "toy@champion", "--window", "trian",
                           "--home", str(home))  # fmt: skip
    assert code == 2
    assert "unknown snapshot 'trian'" in err
