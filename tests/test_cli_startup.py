"""The `regrow` command starts at once: heavy libraries load only in the commands that need them.

Wall times are measured by ``benchmarks/orchestration.py`` (``cli_help_s``, ``cli_status_s``);
these tests check what the times rest on, which does not depend on how busy the machine is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

from regrow import Member, System, Workspace
from regrow.demo import make_window

HEAVY = ("sklearn", "pandas", "sqlalchemy", "numpy", "scipy", "pyarrow", "regrow.workspace")

PROBE = """
import json, sys
from regrow.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
"""


def probe(*args: str) -> tuple[dict[str, object], str]:
    """Run the command in a new interpreter; what it printed, and which heavy modules loaded."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report, done.stdout


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = f"import sys, regrow.cli; print([m for m in {HEAVY!r} if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_help_loads_no_heavy_library() -> None:
    report, out = probe("--help")
    assert report == {"code": 0, "heavy": []}
    assert "status" in out


def test_python_dash_m_runs_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "regrow.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout


@pytest.fixture
def trained(tmp_path: Path) -> Path:
    home = tmp_path / "ws"
    system = System(
        "churn",
        target="churned",
        components=[Member("m", LogisticRegression(), inputs=["tenure_months", "monthly_fee"])],
    )
    with Workspace.init(home) as ws:
        snap = ws.snapshot(make_window(300, start="2026-01-01", days=30, seed=0), name="d")
        v1 = ws.train(system, snap, workers=1).version.ref
        ws.promote(v1, "champion", force=True, reason="setup")
    return home


@pytest.mark.parametrize(
    "command",
    [
        ("status", "--json"),
        ("versions", "--json"),
        ("aliases", "--history"),
        ("audit",),
        ("lineage", "churn:v1"),
    ],
    ids=lambda c: c[0],
)
def test_reading_the_catalog_loads_neither_scikit_learn_nor_pandas(
    trained: Path, command: tuple[str, ...]
) -> None:
    report, out = probe(*command, "--home", str(trained))
    assert report["code"] == 0, out
    assert out.strip()
    # SQLAlchemy is the catalog's; nothing of the models or the data is needed to read it.
    assert set(report["heavy"]) <= {"sqlalchemy", "regrow.workspace"}  # type: ignore[arg-type]
    if command[0] == "status":
        assert [r["fresh"] for r in json.loads(out)["churn:v1"]] == [True]


def test_showing_a_plan_loads_neither_scikit_learn_nor_pandas(trained: Path) -> None:
    """`regrow plans show` read the stored plan through the planner's modules, which loaded
    scikit-learn, SciPy and pandas: 1.5 s where the other reads took 0.5."""
    with Workspace.open(trained) as ws:
        window = make_window(300, start="2026-02-01", days=30, seed=1, expanded=True)
        plan = ws.plan("churn:v1", ws.snapshot(window, name="w"))
    report, out = probe("plans", "show", plan.id[:12], "--home", str(trained))
    assert report["code"] == 0, out
    assert f"plan {plan.id[:12]}" in out
    assert set(report["heavy"]) <= {"sqlalchemy", "regrow.workspace", "numpy"}  # type: ignore[arg-type]


def test_the_cli_starts_with_a_typer_that_has_no_type_column_to_patch() -> None:
    """typer before 0.29 has no ``display_type_rich`` (the help column regrow blanks for
    flags): importing the CLI must not fail on it (it did, while ``typer>=0.12`` admitted
    those versions)."""
    code = (
        "import typer.core as core\n"
        "for cls in core.TyperOption.__mro__:\n"
        "    if 'display_type_rich' in vars(cls):\n"
        "        delattr(cls, 'display_type_rich')\n"
        "from regrow.cli import main\n"
        "main(['--version'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("regrow ")


def test_a_command_builds_only_itself_and_help_lists_every_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Typer built the options of all 133 commands on every call; the root builds the one it
    runs, and its help (from stand-ins) reads as Typer's own."""
    import typer.main

    from regrow.cli import _app, app, main

    built: list[str] = []
    real = typer.main.get_group

    def counting(instance: typer.Typer) -> object:
        built.extend(i.name or "" for i in instance.registered_groups)
        built.extend(
            i.name or getattr(i.callback, "__name__", "") for i in instance.registered_commands
        )
        return real(instance)

    monkeypatch.setattr(typer.main, "get_group", counting)
    monkeypatch.setenv("COLUMNS", "120")
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    lazy_help = capsys.readouterr().out
    assert built == []

    with pytest.raises(SystemExit):
        main(["recipes", "--help"])
    capsys.readouterr()
    assert built == ["recipes"]
    with pytest.raises(SystemExit):
        main(["stauts"])
    assert "Did you mean 'status'?" in capsys.readouterr().err

    monkeypatch.setattr(typer.main, "get_group", real)
    eager = typer.main.get_command(app)  # every command built, as Typer does it
    _app._unwrap_help(eager)
    with pytest.raises(SystemExit):
        eager(args=["--help"])
    assert capsys.readouterr().out == lazy_help
    assert list(_app._root().commands) == list(eager.commands)  # type: ignore[attr-defined]


def test_a_command_collects_garbage_rarely_and_gives_the_callers_thresholds_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python's thresholds collect ~500 times in a plan (9-16% of its CPU); a command runs
    with ``COMMAND_GC``, a server with Python's, and the caller's come back after either."""
    import gc

    import click

    from regrow.cli import _app
    from regrow.cli.serve import _run_stopping_cleanly

    seen: list[tuple[int, int, int]] = []

    @click.command()
    def probe_command() -> None:
        seen.append(gc.get_threshold())
        _run_stopping_cleanly(lambda: seen.append(gc.get_threshold()))
        seen.append(gc.get_threshold())

    monkeypatch.setattr(_app, "_root", lambda: probe_command)
    callers = gc.get_threshold()
    try:
        gc.set_threshold(1234, 5, 6)
        with pytest.raises(SystemExit) as done:
            _app.main([])
        assert done.value.code == 0
        assert seen == [_app.COMMAND_GC, _app.PYTHON_GC, _app.COMMAND_GC]
        assert gc.get_threshold() == (1234, 5, 6)
    finally:
        gc.set_threshold(*callers)
