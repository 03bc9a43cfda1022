"""A virtual environment of its own for kserve's inference client, built once and reused.

kserve 0.21 pins ``pandas<3``, which this project's environment has moved past, so its
``InferenceRESTClient`` cannot be installed next to regrow. The client tests therefore run it
in a separate interpreter: :func:`ensure_kserve_venv` makes a ``python -m venv`` under
``~/.cache/regrow-tests/kserve-0.21.0`` (``$REGROW_TEST_KSERVE_VENV`` chooses another folder),
``pip install kserve==0.21.0`` there, and returns its interpreter. A venv that is already there
is reused when it imports the right kserve; one that does not (a half-finished build, a
removed base interpreter) is rebuilt. A file lock next to the folder keeps two pytest workers
from building it at the same time. Building reaches the package index; it took ~40 s on the
development machine.

Nothing here imports pytest: the fixture in ``test_clients.py`` decides whether a venv that
cannot be built skips the tests (a laptop offline) or fails them (``CI`` is set).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

KSERVE_VERSION = "0.21.0"
BUILD_TIMEOUT_S = 900
_MARKER = ".regrow-kserve-ok"
_PROBE = (
    "import importlib.metadata as m, kserve.inference_client; "
    f"assert m.version('kserve') == {KSERVE_VERSION!r}, m.version('kserve')"
)


class VenvUnavailable(RuntimeError):
    """The kserve venv could not be built or does not work; the message says why."""


@dataclass(frozen=True)
class KserveVenv:
    """A working venv with kserve: its interpreter, and how long building it took now."""

    python: Path
    built_seconds: float | None  # None when an existing venv was reused


def default_venv_dir() -> Path:
    """``$REGROW_TEST_KSERVE_VENV``, else ``~/.cache/regrow-tests/kserve-<version>``."""
    chosen = os.environ.get("REGROW_TEST_KSERVE_VENV")
    if chosen:
        return Path(chosen).expanduser().absolute()
    return Path.home() / ".cache" / "regrow-tests" / f"kserve-{KSERVE_VERSION}"


def venv_python(venv: Path) -> Path:
    """The interpreter of the venv at ``venv``."""
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def isolated_env() -> dict[str, str]:
    """This process's environment without what would mix another Python's packages in."""
    return {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }


def _works(venv: Path) -> bool:
    python = venv_python(venv)
    if not (venv / _MARKER).is_file() or not python.exists():
        return False
    try:
        done = subprocess.run(
            [str(python), "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=120,
            env=isolated_env(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _run(args: list[str], what: str) -> None:
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, env=isolated_env()
        )
    except subprocess.TimeoutExpired as exc:
        raise VenvUnavailable(f"{what} took more than {BUILD_TIMEOUT_S} s") from exc
    except OSError as exc:
        raise VenvUnavailable(f"{what} could not start: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise VenvUnavailable(f"{what} failed (exit {done.returncode}):\n{tail}")


def _build(venv: Path) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    _run([sys.executable, "-m", "venv", str(venv)], f"python -m venv {venv}")
    pip = [str(venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    _run([*pip, f"kserve=={KSERVE_VERSION}"], f"pip install kserve=={KSERVE_VERSION} in {venv}")
    (venv / _MARKER).write_text(KSERVE_VERSION + "\n")


def ensure_kserve_venv(venv: Path | None = None) -> KserveVenv:
    """A working venv with kserve at ``venv`` (default :func:`default_venv_dir`).

    Reuses a working one; otherwise (re)builds it, which needs the package index. Raises
    :class:`VenvUnavailable` with pip's last lines when it cannot.
    """
    venv = venv or default_venv_dir()
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another pytest worker may be building it
        if _works(venv):
            return KserveVenv(venv_python(venv), None)
        started = time.monotonic()
        _build(venv)
        if not _works(venv):
            raise VenvUnavailable(f"kserve=={KSERVE_VERSION} does not import in {venv}")
        return KserveVenv(venv_python(venv), round(time.monotonic() - started, 1))
