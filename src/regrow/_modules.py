"""Whose code is this: the user's own, or an installed library's?

A component's ``code`` fingerprint covers only the user's own code; installed libraries (and
regrow itself) enter through their versions instead. Both the fingerprint and the labels that
recipes give to functions and classes ask this module, so they agree.

>>> is_user_module("json"), is_user_module("sklearn.linear_model"), is_user_module("regrow.system")
(False, False, False)
>>> code_label(len)
'builtins.len'
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path
from typing import Any

__all__ = ["code_label", "is_installed_code", "is_user_module", "user_modules"]

_STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()
_USER_MODULES: dict[tuple[str, int], bool] = {}
_SEEN: dict[str, Any] = {}  # name -> the module object user_modules last judged
_OWN: dict[str, Any] = {}  # the user's modules among them


def is_installed_code(path: Path) -> bool:
    """Whether a resolved source path belongs to an installed package or the standard library.

    Such code enters fingerprints through library versions, not through its source.
    """
    text = str(path)
    return "site-packages" in text or "dist-packages" in text or _STDLIB in path.parents


def is_user_module(name: str | None) -> bool:
    """Whether the module called ``name`` is the user's own code.

    User code is a module with a source file outside the installed packages and the standard
    library, or ``__main__`` (a script, a notebook). regrow's own modules are a library here:
    a component built from ``regrow.components.torch.MLP`` changes with regrow's version.
    """
    if not name or name == "builtins" or name == "regrow" or name.startswith("regrow."):
        return False
    module = sys.modules.get(name)
    key = (name, id(module))
    hit = _USER_MODULES.get(key)
    if hit is None:
        file = getattr(module, "__file__", None)
        if module is None:
            hit = False
        elif file is None:
            hit = name == "__main__"
        else:
            hit = not is_installed_code(Path(file).resolve())
        _USER_MODULES[key] = hit
    return hit


def user_modules() -> list[Any]:
    """The user's own modules now in ``sys.modules`` (``__main__`` left out).

    Only names added or rebound since the last call are judged again: pickling a fitted
    component asks this each time, and ``sys.modules`` holds thousands of library modules.

    >>> import json
    >>> json in user_modules()
    False
    """
    modules = sys.modules
    for name in [n for n in _SEEN if n not in modules]:
        del _SEEN[name]
        _OWN.pop(name, None)
    for name, module in list(modules.items()):
        if _SEEN.get(name, _SEEN) is module:
            continue
        _SEEN[name] = module
        if name != "__main__" and module is not None and is_user_module(name):
            _OWN[name] = module
        else:
            _OWN.pop(name, None)
    return list(_OWN.values())


def code_label(obj: Any) -> str:
    """How recipes name a class or function: ``module.qualname``, or only ``qualname`` for
    the user's own code, whose module name follows the file's name (renaming or moving the
    system file must not change a recipe; what the code does is the ``code`` part's concern).
    """
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "?")
    if is_user_module(module):
        return str(qualname)
    return f"{module or '?'}.{qualname}"
