"""Documentation is tested: the README's example runs, its test command is what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no Python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert (tmp_path / ".regrow-example" / "config.toml").is_file()


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands on a fresh machine")[1].split("\n## ")[0]
    commands = re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)
    assert len(commands) == 2
    assert "regrow demo" in commands[0]
    assert "pytest" in commands[1]
    marked = text.split("<!-- test-command:start -->")[1].split("<!-- test-command:end -->")[0]
    assert commands[1] in marked
    assert "test-command:start" in (ROOT / ".ci" / "run").read_text()


def test_public_namespace_is_sorted_and_complete() -> None:
    import regrow

    assert regrow.__all__ == sorted(regrow.__all__)
    for name in regrow.__all__:
        assert hasattr(regrow, name), name
