"""Capture the environment a run executes in, so any version can be reproduced.

>>> env = capture_environment()
>>> sorted(env)
['executable', 'git', 'packages', 'platform', 'python']
"""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["capture_environment", "git_state"]

_PACKAGES = (
    "regrow",
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "scikit-learn",
    "lightgbm",
    "xgboost",
    "torch",
    "sqlalchemy",
    "fsspec",
)


@cache
def _packages() -> dict[str, str]:
    found = {}
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def git_state(path: str | None) -> dict[str, Any] | None:
    """The git commit (and whether the tree is dirty) of the repository holding ``path``.

    None when ``path`` is not inside a git repository or git is not installed.
    """
    if not path:
        return None
    folder = Path(path).resolve()
    folder = folder if folder.is_dir() else folder.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def capture_environment(definition_file: str | None = None) -> dict[str, Any]:
    """Python, platform, package versions, and the git state of the user's project."""
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "packages": dict(_packages()),
        "git": git_state(definition_file),
    }
