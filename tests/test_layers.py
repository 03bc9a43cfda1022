"""The house's floors: nothing below the Workspace imports it (DESIGN.md, "Layers").

The services (monitoring, planning, running plans, evaluating, windows) take a
:class:`regrow.services.Services` -- the catalog, the store, loaders -- and the Workspace only
delegates to them. Imports are read from the source with :mod:`ast`, ``TYPE_CHECKING`` blocks
and imports inside functions included, so a cycle cannot hide behind a lazy import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "regrow"

#: Modules on the Workspace's floor or above it: they may use it.
ABOVE = {
    "regrow",
    "regrow.workspace",
    "regrow.demo",
    "regrow._demo_canary",
    "regrow._demo_monitor",
    "regrow._demo_contracts",
}
ABOVE_PACKAGES = ("regrow.cli", "regrow.serve", "regrow.loop", "regrow.ui")


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str) -> set[str]:
    """Every module ``path`` imports, and ``regrow.X`` for ``from regrow import X``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _below() -> list[tuple[str, Path]]:
    modules = [(_module(p), p) for p in sorted(SRC.rglob("*.py"))]
    return [
        (m, p)
        for m, p in modules
        if m not in ABOVE and not any(m == a or m.startswith(a + ".") for a in ABOVE_PACKAGES)
    ]


def test_the_walk_sees_the_services_and_the_layers_below() -> None:
    below = {m for m, _ in _below()}
    for module in ("regrow.monitoring", "regrow.planning", "regrow.windows", "regrow.services"):
        assert module in below
    assert "regrow.workspace" not in below


@pytest.mark.parametrize(("module", "path"), _below(), ids=lambda v: str(v))
def test_no_module_below_the_workspace_imports_it(module: str, path: Path) -> None:
    imported = _imports(path, module)
    assert "regrow.workspace" not in imported, f"{module} imports regrow.workspace"
    assert "regrow.Workspace" not in imported, f"{module} imports Workspace from regrow"


def test_the_checker_sees_type_checking_and_lazy_imports(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from regrow.workspace import Workspace\n"
        "def f():\n"
        "    from regrow import Workspace\n"
    )
    found = _imports(source, "regrow.probe")
    assert {"regrow.workspace", "regrow.Workspace"} <= found
