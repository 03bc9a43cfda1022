"""Every `regrow ...` command a message or hint names exists, with the options it names.

Each string in src/regrow (docstrings aside) is searched for backticked commands such as
`regrow doctor --repair` or `regrow snapshot create FILE --name {name}`; each is checked
against the command tree: the command and subcommand exist, every option is one the command
takes, and it is given no more arguments than the command accepts.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
import typer.main

from regrow.cli import app

SRC = Path(__file__).parents[1] / "src" / "regrow"
COMMAND = re.compile(r"`regrow ([^`]*)`")
PLACEHOLDER = "{}"  # an f-string's replacement field: its text is not known here


def _text(node: ast.AST) -> str | None:
    """A string literal's text, with each f-string replacement field as ``{}``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else PLACEHOLDER for v in node.values)
    return None


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            ids.add(id(body[0].value))
    return ids


def mentioned_commands() -> list[tuple[str, str]]:
    """``(where, command)`` for every backticked `regrow ...` in a string of the source."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text())
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            text = _text(node)
            if text is None:
                continue
            for match in COMMAND.finditer(text):
                where = f"{path.relative_to(SRC.parent)}:{node.lineno}"
                found.append((where, f"regrow {match.group(1).strip()}"))
    return found


def check(command: str) -> None:
    """Raise AssertionError unless ``command`` parses against the `regrow` command tree."""
    # A replacement field is a word of its own: `doctor{where}` is `doctor` and then options.
    words = command.replace(PLACEHOLDER, f" {PLACEHOLDER} ").split()[1:]
    for stop in (">", "|", "&&", ";"):
        if stop in words:
            words = words[: words.index(stop)]
    cmd: Any = typer.main.get_command(app)  # Typer's own (vendored) click classes
    path = ["regrow"]
    while hasattr(cmd, "commands"):  # a group
        if getattr(cmd, "invoke_without_command", False) and (
            not words or words[0].startswith("-")
        ):
            break  # a group that runs on its own (`regrow monitor --version ...`)
        assert words, f"`{command}`: `{' '.join(path)}` needs a subcommand"
        name = words.pop(0)
        assert name in cmd.commands, f"`{command}`: `{' '.join(path)}` has no command {name!r}"
        cmd = cmd.commands[name]
        path.append(name)
    options: dict[str, Any] = {}
    arguments = 0
    for param in cmd.params:
        if param.param_type_name == "option":
            for opt in (*param.opts, *param.secondary_opts):
                options[opt] = param
        else:
            arguments += 10**6 if param.nargs == -1 else param.nargs
    given = 0
    while words:
        word = words.pop(0)
        if word.startswith("-"):
            name = word.split("=")[0]
            assert name in options, f"`{command}`: `{' '.join(path)}` has no option {name}"
            if not options[name].is_flag and "=" not in word and words:
                words.pop(0)  # the option's value
        elif word != PLACEHOLDER:
            given += 1
    assert given <= arguments, (
        f"`{command}`: `{' '.join(path)}` takes {arguments} argument(s), the hint gives {given}"
    )


MENTIONED = mentioned_commands()


def test_the_source_names_commands_in_hints() -> None:
    assert len(MENTIONED) > 10
    assert any(c.startswith("regrow doctor") for _, c in MENTIONED)


@pytest.mark.parametrize(
    "command",
    [pytest.param(c, id=f"{where} {c}") for where, c in MENTIONED],
)
def test_every_command_a_hint_names_exists(command: str) -> None:
    check(command)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("regrow plan show", "takes 0 argument(s)"),
        ("regrow plans shw", "has no command 'shw'"),
        ("regrow doctor --fix", "has no option --fix"),
        ("regrow nothing", "has no command 'nothing'"),
        ("regrow plans", "`regrow plans` needs a subcommand"),
    ],
)
def test_the_check_catches_wrong_commands(command: str, message: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(message)):
        check(command)


@pytest.mark.parametrize(
    "command",
    [
        "regrow snapshot create FILE --name {}{}",
        "regrow doctor --repair{}",
        "regrow policy show > policy.yaml",
        "regrow train FILE.py:SYSTEM --snapshot S",
        "regrow plans show {}",
    ],
)
def test_the_check_accepts_right_commands(command: str) -> None:
    check(command)
