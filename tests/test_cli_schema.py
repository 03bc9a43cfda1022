"""`regrow schema diff | check` as a user runs them: classes, verdicts, exit codes and hints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer.main

from regrow.cli import app
from regrow.testing import run_cli as run

SYSTEM_MODULE = """
from sklearn.linear_model import LogisticRegression
from regrow import Member, System

def build():
    return System("churn", target="churned", components=[
        Member("m", LogisticRegression(), inputs=["spend", "tenure"]),
    ])
"""


def _base(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "spend": rng.normal(10, 3, rows),
            "tenure": rng.integers(1, 40, rows),
            "plan": rng.choice(["free", "pro"], rows),
            "churned": rng.integers(0, 2, rows),
        }
    )


@pytest.fixture
def home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """A workspace with snapshot 'c' (schema c:v1), churn:v1 trained on it, then 'c' again
    without 'tenure' (c:v2), and 'c2': 'plan' gone and 'tenure' widened to float."""
    folder = str(tmp_path / "ws")
    base = _base()
    base.to_csv(tmp_path / "base.csv", index=False)
    base.drop(columns=["tenure"]).assign(region="eu").to_csv(tmp_path / "dropped.csv", index=False)
    widened = base.drop(columns=["plan"]).assign(tenure=base["tenure"] + 0.5)
    widened.to_csv(tmp_path / "widened.csv", index=False)
    (tmp_path / "models.py").write_text(SYSTEM_MODULE)
    h = ("--home", folder)
    steps = [
        ("init", folder),
        ("snapshot", "create", str(tmp_path / "base.csv"), "--name", "c", *h),
        ("train", f"{tmp_path / 'models.py'}:build", "--snapshot", "c", "--workers", "1", *h),
        ("snapshot", "create", str(tmp_path / "dropped.csv"), "--name", "c", *h,
         "--allow-schema-change"),
        ("snapshot", "create", str(tmp_path / "widened.csv"), "--name", "c2", *h),
    ]  # fmt: skip
    for step in steps:
        code, _, err = run(capsys, *step)
        assert code == 0, (step, err)
    return folder


def test_diff_lists_every_change_with_its_class_under_the_policy_mode(
    capsys: pytest.CaptureFixture[str], home: str
) -> None:
    code, out, _ = run(capsys, "schema", "diff", "c:v1", "c:v2", "--home", home)
    assert code == 0
    assert "c:v1 → c:v2" in out
    assert "backward: incompatible" in out
    assert "safe      'region' added (category)" in out
    assert "breaking  'tenure' dropped (int)" in out


def test_diff_takes_snapshots_a_mode_override_and_prints_json(
    capsys: pytest.CaptureFixture[str], home: str
) -> None:
    code, out, _ = run(capsys, "schema", "diff", "c:v1", "c2", "--mode", "forward", "--json",
                       "--home", home)  # fmt: skip
    assert code == 0
    report = json.loads(out)
    assert (report["old"], report["new"], report["mode"]) == ("c:v1", "c2:v1", "forward")
    assert report["compatible"]
    by_column = {c["column"]: (c["kind"], c["class"], c["adapter"]) for c in report["changes"]}
    assert by_column == {"plan": ("dropped", "safe", None), "tenure": ("widened", "safe", None)}


def test_check_passes_when_only_columns_the_system_does_not_read_break(
    capsys: pytest.CaptureFixture[str], home: str
) -> None:
    code, out, err = run(capsys, "schema", "check", "c2", "--system", "churn", "--version", "v1",
                         "--home", home)  # fmt: skip
    assert code == 0, err
    assert "c2 against c:v1 (churn:v1 trained on it)" in out
    assert "safe      'plan' dropped (category)" in out  # churn does not read 'plan'
    assert "adaptable 'tenure' widened int → float (cast)" in out


def test_check_fails_with_the_breaking_change_and_a_hint_naming_column_mode_and_fix(
    capsys: pytest.CaptureFixture[str], home: str
) -> None:
    code, out, err = run(capsys, "schema", "check", "c", "--system", "churn", "--version",
                         "churn:v1", "--mode", "full", "--home", home)  # fmt: skip
    assert code == 1
    assert "breaking  'tenure' dropped (int)" in out
    assert "hint: column 'tenure' dropped breaks full compatibility" in err
    assert "declare a default adapter for it" in err
    assert "Traceback" not in out + err
    code, _, _ = run(capsys, "schema", "check", "c", "--system", "churn", "--version", "v1",
                     "--mode", "none", "--home", home)  # fmt: skip
    assert code == 0


def test_transitive_check_covers_every_schema_up_to_the_trained_one(
    capsys: pytest.CaptureFixture[str], home: str
) -> None:
    code, out, _ = run(capsys, "schema", "check", "c2", "--system", "churn", "--version", "v1",
                       "--transitive", "--json", "--home", home)  # fmt: skip
    assert code == 0
    report = json.loads(out)
    assert report["version"] == "churn:v1"
    assert [c["against"] for c in report["checks"]] == ["c:v1"]


def test_bad_input_is_an_error_with_a_hint_not_a_traceback(
    capsys: pytest.CaptureFixture[str], home: str
) -> None:
    cases = [
        (("schema", "diff", "c:v1", "c:v9"), "dataset 'c' has no schema v9"),
        (("schema", "diff", "c:v1", "nope"), "nope"),
        (("schema", "diff", "c:v1", "c:v2", "--mode", "loose"), "unknown --mode 'loose'"),
        (("schema", "check", "c", "--system", "churn"), "churn@champion"),
        (("schema", "check", "c", "--system", "other", "--version", "churn:v1"), "not of 'other'"),
    ]
    for args, message in cases:
        code, out, err = run(capsys, *args, "--home", home)
        assert code == 2, (args, out, err)
        assert message in err
        assert "hint" in err
        assert "Traceback" not in out + err


def test_every_schema_command_has_help_and_docs() -> None:
    docs = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    group = typer.main.get_group(app)
    schema = group.commands["schema"]
    assert "## `regrow schema`" in docs
    for name, command in schema.commands.items():  # type: ignore[attr-defined]
        assert command.help
        assert f"regrow schema {name}" in docs


def test_the_workspace_s_pinned_policy_rules_without_a_policy_file(
    capsys: pytest.CaptureFixture[str], home: str, tmp_path: Path
) -> None:
    """`schema diff`/`check`, `adapters propose` and `plan` read the pinned policy, as the
    docs say ("evaluations, plans and runs use it when given no other"); they read the
    shipped one before (from a user trial)."""
    pinned = tmp_path / "pinned.yaml"
    pinned.write_text("contracts: {compatibility: full}\nescalation: {unexplained_drift: ignore}\n")
    assert run(capsys, "policy", "set", str(pinned), "--home", home)[0] == 0
    code, out, _ = run(capsys, "schema", "diff", "c:v1", "c:v2", "--home", home)
    assert code == 0
    assert "full: incompatible" in out
    code, out, _ = run(capsys, "schema", "check", "c2", "--system", "churn", "--version", "v1",
                       "--json", "--home", home)  # fmt: skip
    assert {c["mode"] for c in json.loads(out)["checks"]} == {"full"}
    code, out, _ = run(capsys, "adapters", "propose", "c2", "--system", "churn", "--version",
                       "v1", "--json", "--home", home)  # fmt: skip
    assert json.loads(out)["mode"] == "full"
    code, out, err = run(capsys, "plan", "--version", "churn:v1", "--window", "c2", "--json",
                         "--home", home)  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["policy"]["escalation"]["unexplained_drift"] == "ignore"
