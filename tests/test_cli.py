"""The `regrow` command: every command through main(), as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regrow.cli import app, main
from regrow.demo import make_window
from regrow.testing import run_cli as run

SYSTEM_MODULE = """
from sklearn.linear_model import LogisticRegression
from regrow import Ensemble, Member, System

def build():
    return System("churn", target="churned", components=[
        Member("account", LogisticRegression(), inputs=["tenure_months", "monthly_fee"]),
        Member("geo", LogisticRegression(C={c}), inputs=["distance_km", "network_quality"]),
        Ensemble("ensemble", weights={{"account": 1, "geo": 1}}),
    ])
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "models.py").write_text(SYSTEM_MODULE.format(c=1.0))
    make_window(1500, start="2026-01-01", days=60, seed=0).to_parquet(tmp_path / "old.parquet")
    later = make_window(900, start="2026-07-01", days=30, seed=1, expanded=True)
    later.iloc[:600].to_csv(tmp_path / "recent.csv", index=False)
    later.iloc[600:].to_parquet(tmp_path / "holdout.parquet")
    return tmp_path


def test_full_flow_through_the_cli(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    home = str(project / "ws")
    h = ("--home", home)
    assert run(capsys, "init", home)[0] == 0
    code, out, _ = run(
        capsys,
        "snapshot",
        "create",
        str(project / "old.parquet"),
        "--name",
        "old",
        "--time-column",
        "ts",
        "--slice",
        "north=region == 'north'",
        *h,
        "--json",
    )
    assert code == 0
    assert json.loads(out)["rows"] == 1500
    for name, file in (("recent", "recent.csv"), ("holdout", "holdout.parquet")):
        assert run(capsys, "snapshot", "create", str(project / file), "--name", name, *h)[0] == 0
    code, out, _ = run(
        capsys,
        "train",
        f"{project / 'models.py'}:build",
        "--snapshot",
        "old",
        "--workers",
        "1",
        *h,
        "--json",
    )
    assert code == 0, out
    assert json.loads(out)["trained"] == ["account", "geo", "ensemble"]
    assert run(capsys, "promote", "churn:v1", "--reason", "first", "--force", *h)[0] == 0
    code, out, err = run(capsys, "monitor", "--version", "churn@champion", "--window", "recent",
                         *h, "--json")  # fmt: skip
    assert code == 0, err
    monitored = json.loads(out)
    assert {"distance_km", "network_quality"} <= set(monitored["summary"]["drifted"])
    assert monitored["summary"]["candidates"] == ["geo"]
    code, out, err = run(capsys, "monitor", "--version", "churn:v1", "--window",
                         str(project / "holdout.parquet"), *h)  # fmt: skip
    assert code == 0, err
    assert "members to update" in out
    code, out, _ = run(
        capsys,
        "update",
        "churn@champion",
        "--snapshot",
        "recent",
        "-c",
        "geo",
        "--workers",
        "1",
        *h,
        "--json",
    )
    assert code == 0
    assert json.loads(out)["reused"] == ["account"]
    code, out, _ = run(
        capsys,
        "evaluate",
        "churn:v2",
        "--snapshot",
        "holdout",
        "--baseline",
        "churn:v1",
        *h,
        "--json",
    )
    assert code == 0
    assert json.loads(out)["verdict"] in {"blessed", "rejected"}
    assert run(capsys, "promote", "churn:v2", "--reason", "newer", "--force", *h)[0] == 0
    code, out, _ = run(capsys, "status", *h, "--json")
    assert code == 0
    assert all(r["fresh"] for r in json.loads(out)["churn:v2"])
    code, out, _ = run(capsys, "status", "churn:v2", "--snapshot", "holdout", *h, "--json")
    stale = {r["name"]: r["causes"] for r in json.loads(out)["churn:v2"]}
    assert stale["account"] == ["data"]
    assert stale["ensemble"] == ["upstream"]
    code, out, _ = run(capsys, "lineage", "churn:v2", *h, "--json")
    report = json.loads(out)
    assert [c["action"] for c in report["components"]] == ["reused", "trained", "trained"]
    code, out, _ = run(capsys, "rollback", "--reason", "oops", *h, "--json")
    assert code == 0
    assert json.loads(out)["version"] == "churn:v1"
    # 'churn' alone is the newest version: a note says it is not the champion.
    from regrow import Workspace
    from regrow.cli._app import note_bare_ref

    capsys.readouterr()
    with Workspace.open(home) as ws:
        note_bare_ref(ws, "churn")
        note_bare_ref(ws, "churn@champion")
    assert capsys.readouterr().err.splitlines() == [
        "note: 'churn' is the newest version, churn:v2; the champion is churn:v1 (write "
        "churn@champion for it)"
    ]
    code, out, _ = run(capsys, "aliases", "--history", *h, "--json")
    moves = json.loads(out)["history"]["churn@champion"]
    assert [m["reason"] for m in moves] == ["oops", "newer", "first"]
    code, out, _ = run(capsys, "audit", "--verify", *h, "--json")
    assert code == 0
    assert json.loads(out)["verified"] > 5
    code, out, _ = run(capsys, "versions", *h, "--json")
    assert [v["version"] for v in json.loads(out)] == ["churn:v2", "churn:v1"]
    # A misspelt system is refused with the close name, not shown as an empty table.
    code, out, err = run(capsys, "versions", "chrun", *h)
    assert code == 2
    assert "unknown system 'chrun'" in err
    assert "did you mean 'churn'?" in err
    # Human output works too.
    for args in (
        ("status",),
        ("lineage", "churn:v2"),
        ("versions",),
        ("aliases", "--history"),
        ("audit",),
        ("snapshot", "list"),
    ):
        code, out, err = run(capsys, *args, *h)
        assert code == 0, (args, err)
        assert out.strip(), args


def test_status_with_the_current_system_names_parameter_changes(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    h = ("--home", str(project / "ws"))
    run(capsys, "init", *h)
    run(capsys, "snapshot", "create", str(project / "old.parquet"), "--name", "old", *h)
    run(
        capsys, "train", f"{project / 'models.py'}:build", "--snapshot", "old", "--workers", "1", *h
    )
    (project / "models2.py").write_text(SYSTEM_MODULE.format(c=0.25))
    _code, out, _ = run(
        capsys, "status", "churn:v1", "--system", f"{project / 'models2.py'}:build", *h, "--json"
    )
    rows = {r["name"]: r for r in json.loads(out)["churn:v1"]}
    assert "parameters" in rows["geo"]["causes"]
    assert rows["geo"]["details"]["parameters"]["C"] == [1.0, 0.25]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("status",), "no regrow workspace"),
        (("lineage", "churn:v9"), "unknown version 'churn:v9'"),
        (("snapshot", "create", "missing.csv", "--name", "x"), "missing.csv"),
        (("snapshot", "create", "x.csv", "--name", "x", "--slice", "oops"), "bad --slice 'oops'"),
        (("train", "nofile.py:build", "--snapshot", "s"), "no such file 'nofile.py'"),
        (("train", "models", "--snapshot", "s"), "has no ':NAME'"),
        (("promote", "churn:v1", "--alias", "champion"), "unknown version"),
        (
            ("train", "{tmp}/broken.py:build", "--snapshot", "s"),
            "(line 1: import no_such_module_xyz): ModuleNotFoundError",
        ),
        (
            ("train", "{tmp}/broken_call.py:build", "--snapshot", "s"),
            "failed (line 2: raise RuntimeError('boom')): RuntimeError: boom",
        ),
        (("train", "{tmp}/broken_call.py:nothing", "--snapshot", "s"), "has no attribute"),
        (("train", "{tmp}/sys.py:build", "--snapshot", "s"), "has the name of the module 'sys'"),
        (("train", "os.path:join", "--snapshot", "s"), "calling 'os.path:join' failed"),
        (("train", "no_such_module_xyz:build", "--snapshot", "s"), "cannot import"),
        (("init", "{tmp}/pg", "--catalog-url", "postgresql://nobody@127.0.0.1:1/x"), "cannot open"),
    ],
)
def test_errors_name_the_value_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    home = tmp_path / "ws"
    (tmp_path / "broken.py").write_text("import no_such_module_xyz\n")
    (tmp_path / "broken_call.py").write_text("def build():\n    raise RuntimeError('boom')\n")
    (tmp_path / "sys.py").write_text("def build():\n    raise RuntimeError('boom')\n")
    args = tuple(a.format(tmp=tmp_path) for a in args)
    if args[0] not in ("status", "init"):
        run(capsys, "init", str(home))
    extra = () if args[0] == "init" else ("--home", str(home))
    code, _out, err = run(capsys, *args, *extra)
    assert code == 2
    assert message in err
    assert "hint:" in err
    assert "Traceback" not in err


def test_bad_input_leaves_nothing_behind(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    home = str(tmp_path / "ws")
    run(capsys, "init", home)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    code, _, err = run(
        capsys,
        "snapshot",
        "create",
        str(tmp_path / "bad.csv"),
        "--name",
        "bad",
        "--slice",
        "s=nonexistent > 1",
        "--home",
        home,
    )
    assert code == 2
    assert "'s'" in err
    code, out, _ = run(capsys, "snapshot", "list", "--home", home, "--json")
    assert json.loads(out) == []
    artifacts = [p for p in (tmp_path / "ws" / "artifacts").rglob("*") if p.is_file()]
    assert artifacts == []


def test_every_command_has_help_and_docs() -> None:
    import typer.main

    docs = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    group = typer.main.get_group(app)
    for name, command in group.commands.items():
        assert command.help, f"`regrow {name}` has no help"
        assert f"## `regrow {name}`" in docs, f"`regrow {name}` is not documented in docs/cli.md"


def test_user_text_is_printed_as_is_never_as_markup(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    h = ("--home", str(project / "ws[/x]"))
    assert run(capsys, "init", *h)[0] == 0
    code, _, err = run(
        capsys, "snapshot", "create", str(project / "old.parquet"), "--name", "[/x]", *h
    )
    assert code == 2
    assert "invalid snapshot name '[/x]'" in err
    run(capsys, "snapshot", "create", str(project / "old.parquet"), "--name", "old", *h)
    run(
        capsys, "train", f"{project / 'models.py'}:build", "--snapshot", "old", "--workers", "1", *h
    )
    assert run(capsys, "promote", "churn:v1", "--reason", "[/oops] [bold]x", "--force", *h)[0] == 0
    code, out, err = run(capsys, "aliases", "--history", *h)
    assert code == 0, err
    assert "[/oops] [bold]x" in out
    for args in (("snapshot", "list"), ("audit",), ("lineage", "churn:v1")):
        assert run(capsys, *args, *h)[0] == 0


def test_help_paragraphs_wrap_to_the_terminal_not_to_the_docstring(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Typer keeps a docstring's line breaks after its first paragraph: in an 80-column
    # terminal that gave ragged lines ("runs what the policy's" / "autonomy allows").
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as done:
        main(["watch", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    lines = [line.strip() for line in out.splitlines()]
    start = lines.index("Keep SYSTEM@ALIAS fresh on its own, one cycle per new window.") + 2
    paragraph = lines[start : lines.index("", start)]
    assert len(paragraph) >= 3
    assert all(len(line) >= 60 for line in paragraph[:-1]), paragraph


def test_help_shows_no_value_for_a_flag(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as done:
        main(["plan", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "<bool>" not in out  # --json takes no value
    json_line = next(line for line in out.splitlines() if "--json" in line)
    assert "Print JSON" in json_line
    assert "<str>" in next(line for line in out.splitlines() if "--version" in line)


def test_help_lists_keep_their_lines() -> None:
    from regrow.cli._app import _unwrap_help

    class Command:
        help = "Summary.\n\nOne paragraph\nwrapped here.\n\n- an item\n- another item"

    command = Command()
    _unwrap_help(command)
    assert command.help == "Summary.\n\nOne paragraph wrapped here.\n\n- an item\n- another item"


def test_help_shows_square_brackets_as_written(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Typer read "[costs]" in a docstring as a Rich style tag and dropped it.
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit):
        main(["costs", "--help"])
    assert "money at the [costs] prices of config.toml" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "within [serve] poll_seconds" in out
    assert "\\[" not in out


def test_version_prints_regrow_and_its_version(capsys: pytest.CaptureFixture[str]) -> None:
    import regrow

    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"regrow {regrow.__version__}"
