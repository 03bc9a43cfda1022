"""Smaller CLI faults from the reliability review (#11): each reproduced, then fixed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer.main

from regrow.cli import app
from regrow.demo import make_window
from regrow.testing import run_cli as _run

FAILING = """
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from regrow import Member, System, Transform

def build():
    return System("s", target="churned", components=[
        Transform("scaled", StandardScaler(), inputs=["tenure_months"]),
        Member("m", LogisticRegression(C=-1.0), inputs=["scaled"]),
    ])
"""


def test_status_reports_the_workspace_after_a_systems_first_run_failed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "failing.py").write_text(FAILING)
    make_window(400, start="2026-01-01", days=30, seed=0).to_parquet(tmp_path / "d.parquet")
    home = ("--home", str(tmp_path / "ws"))
    assert _run(capsys, "init", str(tmp_path / "ws"))[0] == 0
    assert (
        _run(capsys, "snapshot", "create", str(tmp_path / "d.parquet"), "--name", "d", *home)[0]
        == 0
    )
    code, _, err = _run(
        capsys, "train", f"{tmp_path / 'failing.py'}:build", "--snapshot", "d", *home
    )
    assert code == 2
    assert "'m'" in err  # the failing component is named
    code, out, err = _run(capsys, "status", *home)
    assert code == 0, err
    assert "s: no version yet" in out
    assert "Traceback" not in out + err
    code, out, _ = _run(capsys, "status", "--json", *home)
    assert (code, out.strip()) == (0, "{}")


def _commands() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for name, cmd in typer.main.get_group(app).commands.items():
        subs = getattr(cmd, "commands", None)  # a command group (snapshot, plans, policy)
        if subs:
            found += [(f"{name} {sub}", c) for sub, c in subs.items()]
        else:
            found.append((name, cmd))
    return found


@pytest.mark.parametrize(("name", "command"), _commands(), ids=lambda v: str(v))
def test_every_command_takes_home(name: str, command: Any) -> None:
    if name in ("init", "demo"):  # they create a workspace: the folder is their argument
        return
    options = {opt for p in command.params for opt in getattr(p, "opts", [])}
    assert "--home" in options, f"`regrow {name}` does not take --home"


def test_policy_check_takes_home(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    code, text, _ = _run(capsys, "policy", "show")
    policy.write_text(text)
    code, out, err = _run(capsys, "policy", "check", str(policy), "--home", str(tmp_path))
    assert code == 0, err
    assert "valid" in out
