"""Loading a user's System from ``FILE.py:NAME`` or ``package.module:NAME``."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from regrow.errors import ConfigError

if TYPE_CHECKING:
    from regrow.system import System

__all__ = ["load_system"]


def load_system(ref: str) -> System:
    """Load a System from ``path/to/file.py:NAME`` or ``package.module:NAME``.

    ``NAME`` may be a System or a function that returns one.
    """
    from regrow.system import System

    target, _, attr = ref.partition(":")
    if not attr:
        raise ConfigError(
            f"system reference {ref!r} has no ':NAME'",
            hint="write FILE.py:NAME or module:NAME, e.g. models.py:system",
        )
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ConfigError(f"no such file {target!r}", hint="check the path to the module")
        # As `python FILE.py` does: the file's folder is importable, so a system file can
        # `import helpers` from beside it.
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        _check_module_name(path)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        module.__regrow_system_file__ = True  # type: ignore[attr-defined]
        sys.modules[path.stem] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ConfigError(
                f"cannot load {target!r}{_where(exc, path)}: {type(exc).__name__}: {exc}",
                hint=_hint_of(exc, "fix the module"),
            ) from exc
    else:
        try:
            module = importlib.import_module(target)
        except Exception as exc:
            raise ConfigError(
                f"cannot import {target!r}: {type(exc).__name__}: {exc}",
                hint="check the module name and that it imports",
            ) from exc
    if not hasattr(module, attr):
        raise ConfigError(
            f"{target!r} has no attribute {attr!r}", hint=_offer(module, attr, target)
        )
    obj = getattr(module, attr)
    if callable(obj) and not isinstance(obj, System):
        try:
            obj = obj()
        except Exception as exc:
            where = _where(exc, Path(target)) if target.endswith(".py") else ""
            raise ConfigError(
                f"calling {ref!r} failed{where}: {type(exc).__name__}: {exc}",
                hint=_hint_of(
                    exc, "NAME must be a System or a function of no arguments returning one"
                ),
            ) from exc
    if not isinstance(obj, System):
        raise ConfigError(
            f"{ref!r} is not a regrow System (got {type(obj).__name__})",
            hint=_offer(module, attr, target),
        )
    return obj


def _offer(module: ModuleType, attr: str, target: str) -> str:
    """The hint for a NAME that is not a System of ``module``: the Systems it holds, else the
    functions defined in it that take no arguments (one may build a System), after a
    did-you-mean when one is close to ``attr`` (``credit.py:sytem``)."""
    from regrow.system import System

    held = {n: v for n, v in vars(module).items() if not n.startswith("_") and n != attr}
    names = sorted(held)
    systems = [n for n in names if isinstance(held[n], System)]
    builders = [n for n in names if _builds(module, held[n])]
    offered = systems or builders
    close = difflib.get_close_matches(attr, offered or names, n=1)
    mean = f"did you mean {target}:{close[0]}? " if close else ""
    where = "the file" if target.endswith(".py") else "the module"
    if systems:
        return f"{mean}{where} holds the System(s) {_listed(systems)}"
    if builders:
        return (
            f"{mean}{where} holds no System object; its functions of no arguments (one may "
            f"return a System): {_listed(builders)}"
        )
    return (
        f"{mean}{where} holds no System object and no function of no arguments: NAME must be "
        "a System or a function of no arguments returning one"
    )


def _builds(module: ModuleType, obj: object) -> bool:
    """Whether ``obj`` is a function defined in ``module`` that can be called with no arguments
    (what NAME may be besides a System)."""
    if not inspect.isfunction(obj) or obj.__module__ != module.__name__:
        return False
    try:
        inspect.signature(obj).bind()
    except TypeError:  # it needs arguments
        return False
    return True


def _listed(names: list[str], most: int = 10) -> str:
    shown = ", ".join(repr(n) for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _where(exc: BaseException, path: Path) -> str:
    """`` (line N: source)``: the line of the system file ``path`` the error was raised
    from (the innermost one, when the file called into other code), else ``""``.

    A syntax error names its own line in its message.
    """
    if isinstance(exc, SyntaxError):
        return ""
    import traceback

    mine = str(path.resolve())
    lines = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == mine]
    if not lines or lines[-1].lineno is None:
        return ""
    frame = lines[-1]  # its .line is the source line, read once by traceback
    return f" (line {frame.lineno}: {frame.line})" if frame.line else f" (line {frame.lineno})"


def _hint_of(exc: BaseException, default: str) -> str:
    """The hint of a regrow error raised while building the system (a bad adapter or
    component names its fix), else ``default``."""
    hint = getattr(exc, "hint", None)
    return f"{hint} (in the system file)" if isinstance(hint, str) and hint else default


def _check_module_name(path: Path) -> None:
    """A system file is imported as a module named after it: a name another module already
    has (``sys.py``, ``pandas.py``) would replace that module for the whole process."""
    name = path.stem
    known = sys.modules.get(name)
    if name not in sys.stdlib_module_names and (
        known is None or getattr(known, "__regrow_system_file__", False)
    ):
        return  # a free name, or a system file loaded before (the same or another)
    raise ConfigError(
        f"the system file {str(path)!r} has the name of the module {name!r}, which regrow or "
        "Python already uses",
        hint=f"rename the file (e.g. {name}_system.py)",
    )
