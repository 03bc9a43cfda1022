"""`regrow snapshot create | list | show` as a user runs them: refusals, warnings, delimiters."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer.main
from typer.testing import CliRunner

from regrow.cli import app
from regrow.testing import run_cli as run

BASE = pd.DataFrame(
    {
        "spend": [12.5, 3.0, 8.25, 1.0, 7.5, 2.0],
        "plan": ["pro", "free", "free", "pro", "free", "pro"],
        "churned": [0, 1, 0, 1, 0, 1],
    }
)


@pytest.fixture
def home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    folder = str(tmp_path / "ws")
    assert run(capsys, "init", folder)[0] == 0
    BASE.to_csv(tmp_path / "base.csv", index=False)
    code, _, err = run(capsys, "snapshot", "create", str(tmp_path / "base.csv"), "--name", "c",
                       "--target", "churned", "--home", folder)  # fmt: skip
    assert code == 0, err
    return folder


def create(capsys: pytest.CaptureFixture[str], home: str, path: Path, *extra: str) -> tuple:
    return run(capsys, "snapshot", "create", str(path), "--name", "c", "--home", home, *extra)


def listed(capsys: pytest.CaptureFixture[str], home: str) -> list[str]:
    code, out, _ = run(capsys, "snapshot", "list", "--home", home, "--json")
    assert code == 0
    return [s["id"] for s in json.loads(out)]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (BASE.drop(columns="plan"), "column 'plan' (category) is missing"),
        (BASE.assign(spend=["1.5", "x", "2", "3", "4", "5"]), "dtype float → string"),
        (BASE.assign(churned=[0, None, 1, 0, 1, 0]), "target 'churned' has 1 null"),
    ],
    ids=["missing-column", "strings-in-numbers", "null-target"],
)
def test_a_breaking_csv_is_refused_with_the_diff_and_a_hint(
    capsys: pytest.CaptureFixture[str], home: str, tmp_path: Path, frame: pd.DataFrame, message: str
) -> None:
    frame.to_csv(tmp_path / "new.csv", index=False)
    before = listed(capsys, home)
    code, _, err = create(capsys, home, tmp_path / "new.csv", "--target", "churned")
    assert code == 2
    assert "error: snapshot 'c' does not match its schema v1" in err
    assert message in err
    assert "hint:" in err
    assert "--allow-schema-change" in err
    assert "Traceback" not in err
    assert listed(capsys, home) == before
    code, out, err = create(
        capsys, home, tmp_path / "new.csv", "--target", "churned", "--allow-schema-change"
    )
    assert code == 0, err
    assert "warning: allowed schema change:" in err
    code, out, _ = run(capsys, "audit", "--home", home, "--json")
    assert "schema.change" in out


def test_warnings_go_to_stderr_and_into_the_json(
    capsys: pytest.CaptureFixture[str], home: str, tmp_path: Path
) -> None:
    BASE.assign(spend=[None, 1.0, float("inf"), 3.0, 4.0, 5.0], extra=1).to_csv(
        tmp_path / "dirty.csv", index=False
    )
    code, out, err = create(capsys, home, tmp_path / "dirty.csv", "--json")
    assert code == 0, err
    assert "warning: column 'spend': 2 nulls (33.33%)" in err
    assert "warning: column 'extra' (int) is new since schema v1 (a compatible change)" in err
    warnings = json.loads(out)["warnings"]
    assert "column 'spend': 1 infinite value (inf) stored as nulls" in warnings


def test_a_semicolon_csv_is_sniffed_or_refused_with_a_hint(
    capsys: pytest.CaptureFixture[str], home: str, tmp_path: Path
) -> None:
    BASE.to_csv(tmp_path / "semi.csv", index=False, sep=";")
    code, out, err = run(capsys, "snapshot", "create", str(tmp_path / "semi.csv"), "--name", "s",
                         "--home", home, "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["columns"] == ["spend", "plan", "churned"]
    code, _, err = run(capsys, "snapshot", "create", str(tmp_path / "semi.csv"), "--name", "t",
                       "--delimiter", ",", "--home", home)  # fmt: skip
    assert code == 2
    assert "read as one column named 'spend;plan;churned'" in err
    assert "hint: give the delimiter: --delimiter ';'" in err
    BASE.to_csv(tmp_path / "tabs.csv", index=False, sep="\t")
    code, out, err = run(capsys, "snapshot", "create", str(tmp_path / "tabs.csv"), "--name", "u",
                         "--delimiter", "tab", "--home", home, "--json")  # fmt: skip
    assert code == 0, err
    assert len(json.loads(out)["columns"]) == 3


def test_show_prints_schema_profile_slices_and_source(
    capsys: pytest.CaptureFixture[str], home: str, tmp_path: Path
) -> None:
    BASE.assign(spend=[None, 1.0, 2.0, 3.0, 4.0, 5.0]).to_csv(tmp_path / "v2.csv", index=False)
    code, _, err = create(capsys, home, tmp_path / "v2.csv", "--slice", "pro=plan == 'pro'")
    assert code == 0, err
    code, out, err = run(capsys, "snapshot", "show", "c", "--home", home)
    assert code == 0, err
    assert "schema v2" in out
    assert f"source: {tmp_path / 'v2.csv'}" in out
    assert "slice pro: 3 rows (plan == 'pro')" in out
    assert "note: column 'spend': 1 null (16.67%)" in out
    assert "16.67%" in out
    assert "1 .. 5" in out
    assert "pro (3)" in out
    code, out, _ = run(capsys, "snapshot", "show", "c", "--home", home, "--json")
    info = json.loads(out)
    assert info["schema"]["version"] == 2
    assert info["rows"] == 6
    spend = next(c for c in info["columns"] if c["name"] == "spend")
    assert (spend["dtype"], spend["nullable"], spend["nulls"]) == ("float", True, 1)
    assert info["slices"] == [{"name": "pro", "expr": "plan == 'pro'", "rows": 3}]
    code, _, err = run(capsys, "snapshot", "show", "nope", "--home", home)
    assert code == 2
    assert "unknown snapshot 'nope'" in err


def test_list_takes_the_name_as_an_option_or_an_argument(
    capsys: pytest.CaptureFixture[str], home: str, tmp_path: Path
) -> None:
    BASE.to_csv(tmp_path / "other.csv", index=False)
    run(capsys, "snapshot", "create", str(tmp_path / "other.csv"), "--name", "o", "--home", home)
    for args in (("--name", "o"), ("o",)):
        code, out, _ = run(capsys, "snapshot", "list", *args, "--home", home, "--json")
        assert code == 0
        assert [s["name"] for s in json.loads(out)] == ["o"]
    code, _, err = run(capsys, "snapshot", "list", "o", "--name", "c", "--home", home)
    assert code == 2
    assert "two names given: 'o' and --name 'c'" in err


def test_every_snapshot_command_has_help_and_docs() -> None:
    docs = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    group = typer.main.get_group(app)
    snapshot = group.commands["snapshot"]
    assert isinstance(snapshot, typer.main.TyperGroup)
    for name, command in snapshot.commands.items():
        assert command.help, f"`regrow snapshot {name}` has no help"
        assert f"### `regrow snapshot {name}`" in docs, f"`regrow snapshot {name}` has no docs"
        result = CliRunner().invoke(app, ["snapshot", name, "--help"])
        assert result.exit_code == 0
    create_help = CliRunner().invoke(app, ["snapshot", "create", "--help"]).output
    for option in ("--target", "--allow-schema-change", "--delimiter"):
        assert option in create_help


def test_storing_the_same_rows_again_says_they_were_already_stored(
    home: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "snapshot", "create", str(tmp_path / "base.csv"), "--name", "c",
                         "--target", "churned", "--home", home)  # fmt: skip
    assert code == 0, err
    assert "(already stored on " in out
    assert out.strip().endswith(": the same rows)")
    BASE.iloc[:5].to_csv(tmp_path / "fewer.csv", index=False)
    code, out, err = run(capsys, "snapshot", "create", str(tmp_path / "fewer.csv"), "--name", "c",
                         "--target", "churned", "--home", home)  # fmt: skip
    assert code == 0, err
    assert "already stored" not in out
