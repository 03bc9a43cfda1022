"""`regrow adapters propose | show` as a user runs them: proposals that train, undecided
changes that fail, stored adapters with their readers, and errors without tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer.main

from regrow.cli import app, main
from regrow.data.adapters import Adapters, Cast, MapCategories, Rename
from regrow.testing import run_cli as run

SYSTEM_MODULE = """
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder
from regrow import Member, System, Transform

ADAPTERS = []

def build():
    return System("churn", target="churned", adapters=ADAPTERS, components=[
        Transform("enc", OneHotEncoder(sparse_output=False, handle_unknown="ignore"),
                  inputs=["plan"]),
        Member("m", LogisticRegression(), inputs=["enc", "spend", "tenure", "seats"]),
    ])
"""


def _base(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "spend": rng.normal(10, 3, rows),
            "tenure": rng.integers(1, 40, rows),
            "seats": rng.integers(1, 10, rows),
            "plan": rng.choice(["free", "pro", "other"], rows),
            "churned": rng.integers(0, 2, rows),
        }
    )


def _cli(*args: str) -> None:
    """Run ``regrow ARGS`` for the module's setup (capsys is per test): it must succeed."""
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    assert code == 0, args


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """churn:v1 trained on 'c'; 'moved': 'tenure' renamed to 'months', 'seats' as float and
    a new plan 'team'; 'short': 'seats' gone. No adapters yet."""
    folder = tmp_path_factory.mktemp("adapters")
    base = _base()
    base.to_csv(folder / "base.csv", index=False)
    moved = base.rename(columns={"tenure": "months"}).assign(seats=base["seats"] + 0.0)
    moved.loc[:4, "plan"] = "team"
    moved.to_csv(folder / "moved.csv", index=False)
    base.drop(columns=["seats"]).to_csv(folder / "short.csv", index=False)
    (folder / "models.py").write_text(SYSTEM_MODULE)
    h = ("--home", str(folder / "ws"))
    _cli("init", str(folder / "ws"))
    _cli("snapshot", "create", str(folder / "base.csv"), "--name", "c", *h)
    _cli("train", f"{folder / 'models.py'}:build", "--snapshot", "c", "--workers", "1", *h)
    _cli("snapshot", "create", str(folder / "moved.csv"), "--name", "moved", *h)
    _cli("snapshot", "create", str(folder / "short.csv"), "--name", "short", *h)
    return folder


def _propose(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str, str]:
    return run(capsys, "adapters", "propose", *args, "--system", "churn", "--version", "v1",
               "--home", str(home / "ws"))  # fmt: skip


def test_propose_bridges_a_rename_a_widened_int_and_a_new_category(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    code, out, err = _propose(capsys, home, "moved")
    assert code == 0, err
    assert "moved against c:v1 (churn:v1 trained on it)" in out
    assert "adaptable 'tenure' renamed to 'months' (rename)" in out
    assert "adaptable 'seats' widened int → float (cast)" in out
    assert "adaptable 'plan' categories added 'team' (category mapping)" in out
    assert "from regrow.data.adapters import Cast, MapCategories, Rename" in out
    assert 'Rename("tenure", source="months"),' in out
    assert 'Cast("seats", dtype="int"),' in out
    assert 'MapCategories("plan", known=("free", "other", "pro"), unseen="other"),' in out
    assert "undecided" not in out + err


def test_the_proposed_python_builds_the_proposal_and_trains_on_the_new_data(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    code, out, _ = _propose(capsys, home, "moved", "--json")
    assert code == 0
    report = json.loads(out)
    assert (report["version"], report["against"], report["bridged"]) == ("churn:v1", "c:v1", True)
    namespace: dict[str, object] = {}
    exec(report["python"], namespace)
    built = Adapters(namespace["adapters"])  # type: ignore[arg-type]
    assert built == Adapters.from_list(report["adapters"])
    assert built == Adapters(
        [
            Rename("tenure", source="months"),
            Cast("seats", "int"),
            MapCategories("plan", known=("free", "other", "pro"), unseen="other"),
        ]
    )
    # Pasted into the system file, the adapters let it train on the new data.
    source = report["python"].replace("adapters = [", "ADAPTERS = [")
    (home / "adapted.py").write_text(SYSTEM_MODULE.replace("ADAPTERS = []", source))
    code, _, err = run(capsys, "train", f"{home / 'adapted.py'}:build", "--snapshot", "moved",
                       "--workers", "1", "--home", str(home / "ws"))  # fmt: skip
    assert code == 0, err
    code, out, err = run(capsys, "adapters", "show", "churn:v2", "--home", str(home / "ws"))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"churn:v2: 3 adapters (digest {built.digest()})"
    assert lines[1:] == [
        "  rename   'months' → 'tenure'  (read by m)",
        "  cast     'seats' to int  (read by m)",
        "  map      'plan': unseen → 'other'  (read by enc)",  # a transform reads it
    ]


def test_a_dropped_column_stays_undecided_and_fails_naming_the_column(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    code, out, err = _propose(capsys, home, "short")
    assert code == 1
    assert "breaking  'seats' dropped (int)" in out
    assert "undecided (regrow cannot choose; write these yourself):" in out
    assert "'seats' dropped (int): a Default needs the value" in out
    assert 'write Default("seats", ...) with an int from 1 to 9' in out
    assert "not bridged: 1 change to columns churn:v1 reads stays undecided" in err
    assert "proposed adapters" not in out
    code, out, _ = _propose(capsys, home, "short", "--json")
    assert code == 1
    report = json.loads(out)
    assert not report["bridged"]
    assert [(u["column"], u["kind"]) for u in report["undecided"]] == [("seats", "dropped")]


def test_the_mode_decides_what_needs_an_adapter(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    code, out, _ = _propose(capsys, home, "short", "--mode", "none")
    assert code == 0
    assert "no adapter needed" in out


def test_show_says_when_a_version_has_no_adapters(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    code, out, _ = run(capsys, "adapters", "show", "churn:v1", "--home", str(home / "ws"))
    assert (code, out) == (0, "churn:v1: no adapters\n")
    code, out, _ = run(capsys, "adapters", "show", "churn:v1", "--json",
                       "--home", str(home / "ws"))  # fmt: skip
    assert json.loads(out) == {"version": "churn:v1", "digest": None, "adapters": []}


def test_bad_input_is_an_error_with_a_hint_not_a_traceback(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    h = ("--home", str(home / "ws"))
    cases = [
        (("adapters", "show", "nope"), "unknown version 'nope'"),
        (("adapters", "show", "churn:v9"), "unknown version 'churn:v9'"),
        (("adapters", "show", "churn@best"), "churn@best"),
        (("adapters", "propose", "moved", "--system", "churn"), "churn@champion"),
        (("adapters", "propose", "zzz", "--system", "churn", "--version", "v1"), "'zzz'"),
        (("adapters", "propose", "moved", "--system", "churn", "--version", "v1", "--mode",
          "loose"), "unknown --mode 'loose'"),
        (("adapters", "propose", "moved", "--system", "other", "--version", "churn:v1"),
         "not of 'other'"),
    ]  # fmt: skip
    for args, message in cases:
        code, out, err = run(capsys, *args, *h)
        assert code == 2, (args, out, err)
        assert message in err
        assert "hint" in err
        assert "Traceback" not in out + err


def test_every_adapters_command_has_help() -> None:
    group = typer.main.get_group(app)
    adapters = group.commands["adapters"]
    assert adapters.help
    for command in adapters.commands.values():  # type: ignore[attr-defined]
        assert command.help


def test_changes_a_versions_own_adapters_bridge_are_safe_for_it(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    from regrow import Workspace

    module = SYSTEM_MODULE.replace(
        "ADAPTERS = []",
        "from regrow.data.adapters import Default\nADAPTERS = [Default('seats', 1)]",
    )
    (home / "defaulted.py").write_text(module)
    code, _, err = run(capsys, "train", f"{home / 'defaulted.py'}:build", "--snapshot", "c",
                       "--workers", "1", "--home", str(home / "ws"))  # fmt: skip
    assert code == 0, err
    with Workspace.open(home / "ws") as ws:
        ref = next(
            v.ref
            for v in ws.catalog.list_system_versions("churn")
            if v.spec.get("adapters") and v.spec["adapters"][0]["kind"] == "default"
        )
    h = ("--system", "churn", "--version", ref, "--home", str(home / "ws"))
    code, out, err = run(capsys, "schema", "check", "short", *h)
    assert code == 0, out + err
    assert "safe      'seats' dropped (int) (bridged by its default adapter)" in out
    code, out, err = run(capsys, "adapters", "propose", "short", *h)
    assert code == 0, out + err
    assert 'Default("seats", value=1),' in out  # its own adapters, first: the whole list to paste


def test_a_component_checked_under_its_own_mode(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    """contracts.systems.churn.components: m's columns under 'none', the rest under backward."""
    (home / "policy.yaml").write_text(
        "contracts:\n  systems:\n    churn:\n      components: {m: none}\n"
    )
    h = ("--system", "churn", "--version", "v1", "--home", str(home / "ws"))
    code, out, err = run(capsys, "schema", "check", "short", *h)
    assert code == 1  # the shipped policy: backward for every component, and m reads 'seats'
    assert "'seats' dropped breaks backward" in err
    code, out, err = run(capsys, "schema", "check", "short", *h, "--policy",
                         str(home / "policy.yaml"), "--json")  # fmt: skip
    assert code == 0, out + err
    checks = json.loads(out)["checks"]
    assert [(c["mode"], c["components"], c["compatible"]) for c in checks] == [
        ("backward", ["enc"], True),
        ("none", ["m"], True),
    ]


def test_apply_makes_a_version_with_the_proposal_refitting_nothing(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    from regrow import Workspace

    with Workspace.open(home / "ws") as ws:
        before = len(ws.catalog.list_system_versions("churn"))
    code, _, err = _propose(capsys, home, "short", "--apply")
    assert code == 1  # 'seats' undecided: nothing is made
    code, _, err = _propose(capsys, home, "moved", "--apply")
    assert code == 0, err
    assert "churn:v1 reading its rows through 3 adapters (0 components re-fitted)" in err
    with Workspace.open(home / "ws") as ws:
        versions = ws.catalog.list_system_versions("churn")
        assert len(versions) == before + 1
        made = max(versions, key=lambda v: v.number)
        assert [a["kind"] for a in made.spec["adapters"]] == ["rename", "cast", "category mapping"]
        assert made.manifest == ws.catalog.get_system_version("churn:v1").manifest


def test_a_few_rows_of_a_known_category_are_no_change_of_type(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    """Three rows hold too few repeats for inference to call 'plan' a category: stored under
    a new name, they were a string column, and propose and check reported 'plan' widened
    category → string with a mapping to write, for values the model knows."""
    few = _base().head(3).assign(plan=["free", "pro", "other"])
    few.to_csv(home / "few.csv", index=False)
    stray = few.assign(plan=["free", "pro", "team"])
    stray.to_csv(home / "stray.csv", index=False)
    h = ("--home", str(home / "ws"))
    for name in ("few", "stray"):
        _cli("snapshot", "create", str(home / f"{name}.csv"), "--name", name, *h)
    code, out, err = _propose(capsys, home, "few")
    assert code == 0, err
    assert "plan" not in out
    assert "no adapter needed" in out
    code, out, err = run(
        capsys, "schema", "check", "few", "--system", "churn", "--version", "v1", *h
    )
    assert code == 0, err
    assert "plan" not in out
    # a value the model does not know is still one, said as what it is
    code, out, err = _propose(capsys, home, "stray")
    assert code == 0, err
    assert "adaptable 'plan' categories added 'team' (category mapping)" in out
    assert "widened" not in out
