"""Fingerprints and staleness: what a component version depends on, and what changed.

A component's fingerprint hashes six parts:

========== ==================================================================================
part       what it covers
========== ==================================================================================
recipe     the estimator's class and parameters, and the component's inputs
code       the source of the module that builds the system and the local modules it imports
           (comments and formatting ignored), or the component's explicit ``code_version``
deps       versions of the libraries that fit and run it (scikit-learn, LightGBM, numpy, ...)
data       the snapshot it trains on: hashes of only the columns it reads, and the target
upstream   the fingerprints of the components it reads
seed       the seed derived from the run's seed and its name
========== ==================================================================================

Staleness compares the parts recorded with a version with the parts computed now, and names
each part that differs, the way Dagster explains why an asset is stale.

>>> parts = {"recipe": "r1", "code": "c1", "deps": "d1", "data": "x", "upstream": {}, "seed": 1}
>>> fingerprint(parts) == fingerprint(dict(parts))
True
>>> changed_parts(parts, {**parts, "recipe": "r2", "seed": 2})
['parameters', 'seed']
"""

from __future__ import annotations

import ast
import hashlib
import os
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from regrow._hashing import hash_json
from regrow.components.adapters import adapter_for
from regrow.errors import SystemSpecError
from regrow.system import System, is_installed_code

__all__ = [
    "CAUSE_NAMES",
    "changed_parts",
    "code_fingerprint",
    "component_parts",
    "derive_seed",
    "fingerprint",
    "source_hash",
]

#: How each fingerprint part is named when it is the cause of staleness.
CAUSE_NAMES: dict[str, str] = {
    "recipe": "parameters",
    "code": "code",
    "deps": "dependencies",
    "data": "data",
    "upstream": "upstream",
    "seed": "seed",
}


def derive_seed(run_seed: int, name: str) -> int:
    """A component's seed: stable for a (run seed, component name) pair, in [0, 2**31).

    >>> derive_seed(0, "usage") == derive_seed(0, "usage") != derive_seed(1, "usage")
    True
    """
    digest = hashlib.sha256(f"{run_seed}/{name}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def fingerprint(parts: Mapping[str, Any]) -> str:
    """The sha256 fingerprint of a component from its parts."""
    return hash_json(dict(parts))


def changed_parts(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The causes (``CAUSE_NAMES`` values) for the parts that differ, in a stable order."""
    causes = []
    for key, cause in CAUSE_NAMES.items():
        before, after = recorded.get(key), current.get(key)
        # Plain equality settles almost every part; hashing settles int/float and tuple/list.
        if before != after and hash_json(before) != hash_json(after):
            causes.append(cause)
    return causes


# -- code ---------------------------------------------------------------------------------------

_SOURCE_CACHE: dict[str, tuple[int, int, str]] = {}


def source_hash(path: str) -> str | None:
    """sha256 of a Python file's syntax tree (comments and formatting do not count).

    Cached by (mtime, size), so re-hashing unchanged files is free. None if the file is gone.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    hit = _SOURCE_CACHE.get(path)
    if hit is not None and hit[0] == st.st_mtime_ns and hit[1] == st.st_size:
        return hit[2]
    raw = Path(path).read_bytes()
    try:
        tree = ast.parse(raw)
        normal = ast.dump(_strip_docstrings(tree), annotate_fields=False).encode()
    except SyntaxError:
        normal = raw
    digest = hashlib.sha256(normal).hexdigest()
    _SOURCE_CACHE[path] = (st.st_mtime_ns, st.st_size, digest)
    return digest


def _strip_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                body[0] = ast.Pass()
    return tree


@cache
def _imported_modules(path: str, mtime_ns: int) -> tuple[str, ...]:
    try:
        tree = ast.parse(Path(path).read_bytes())
    except (OSError, SyntaxError):
        return ()
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{a.name}" for a in node.names)
    return tuple(names)


@cache
def _relative_imports(path: str, mtime_ns: int) -> tuple[str, ...]:
    """Files named by ``from . import x`` / ``from ..pkg import y`` in ``path`` that exist.

    Relative imports always point into the user's own package, so they are followed on the
    file system (even above the definition file's folder), not through ``sys.modules``.
    """
    try:
        tree = ast.parse(Path(path).read_bytes())
    except (OSError, SyntaxError):
        return ()
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = Path(path).resolve().parent
        for _ in range(node.level - 1):
            base = base.parent
        target = base.joinpath(*node.module.split(".")) if node.module else base
        candidates = [target.with_suffix(".py"), target / "__init__.py"] if node.module else []
        for alias in node.names:
            candidates += [target / f"{alias.name}.py", target / alias.name / "__init__.py"]
        found.extend(str(c) for c in candidates if c.is_file())
    return tuple(found)


def local_sources(definition_file: str) -> list[str]:
    """The definition file and the local modules it imports (see :func:`_local_sources`).

    Memoised on the file's modification time and the number of imported modules, so a
    thousand components built by one module cost one walk.
    """
    try:
        mtime = os.stat(definition_file).st_mtime_ns
    except OSError:
        mtime = -1
    return list(_local_sources(definition_file, mtime, len(sys.modules)))


@cache
def _local_sources(definition_file: str, _mtime: int, _n_modules: int) -> tuple[str, ...]:
    """The definition file and the local (not installed) modules it imports, recursively.

    Only modules already imported (in ``sys.modules``) are followed: importing is what made
    them part of the running system. Third-party and standard-library modules are skipped;
    their versions enter the ``deps`` part instead.
    """
    root = Path(definition_file).resolve().parent
    found: list[str] = []
    queue = [str(Path(definition_file).resolve())]
    while queue:
        path = queue.pop()
        if path in found:
            continue
        found.append(path)
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            continue
        for name in _imported_modules(path, mtime):
            module = sys.modules.get(name)
            file = getattr(module, "__file__", None)
            if not file:
                continue
            resolved = Path(file).resolve()
            local = root in resolved.parents and not is_installed_code(resolved)
            if resolved.suffix == ".py" and local:
                queue.append(str(resolved))
        queue.extend(f for f in _relative_imports(path, mtime) if not is_installed_code(Path(f)))
    return tuple(sorted(found))


def code_fingerprint(definition_file: str | None, estimator: Any) -> dict[str, Any]:
    """The ``code`` part: hashes of the system's local source files and the estimator's class.

    An estimator class defined in a local module (a custom transformer, say) adds its file.
    Files are keyed by their path relative to :func:`code_root`, so the same project checked
    out in two places (a laptop and CI sharing a catalog) gets the same fingerprints.
    """
    files: set[str] = set()
    if definition_file:
        files.update(local_sources(definition_file))
    module_file = _local_module_file(type(estimator).__module__) if estimator is not None else None
    if module_file:
        files.update(local_sources(module_file))
    root = code_root(definition_file, estimator)
    if root is None:
        return {"files": {}}
    return {"files": {_relative(f, root): source_hash(f) for f in sorted(files)}}


@cache
def _relative(path: str, root: str) -> str:
    return os.path.relpath(path, root)


@cache
def _folder(path: str) -> str:
    return str(Path(path).resolve().parent)


def code_root(definition_file: str | None, estimator: Any = None) -> str | None:
    """The folder code paths are relative to: the definition file's, else the estimator's."""
    if definition_file:
        return _folder(definition_file)
    module_file = _local_module_file(type(estimator).__module__) if estimator is not None else None
    return str(Path(module_file).parent) if module_file else None


def _local_module_file(module_name: str) -> str | None:
    """The source file of an imported module that is not installed (a user's own module)."""
    hit = _MODULE_FILES.get(module_name, _UNSEEN)
    if hit is _UNSEEN:
        file = getattr(sys.modules.get(module_name), "__file__", None)
        hit = None
        if file:
            resolved = Path(file).resolve()
            hit = None if is_installed_code(resolved) else str(resolved)
        _MODULE_FILES[module_name] = hit
    return hit if isinstance(hit, str) else None


_UNSEEN = object()
_MODULE_FILES: dict[str, object] = {}


def deps_part(estimator: Any) -> dict[str, str]:
    """The ``deps`` part: versions of the libraries behind ``estimator``."""
    if estimator is None:
        return {"numpy": _dist_version("numpy") or "?"}
    return adapter_for(estimator).library_versions()


def component_parts(
    system: System,
    name: str,
    *,
    column_hashes: Mapping[str, str] | None,
    seed: int,
    upstream: Mapping[str, str],
) -> dict[str, Any]:
    """The fingerprint parts of component ``name`` bound to data with ``column_hashes``.

    ``upstream`` maps each component ``name`` reads to its fingerprint.
    """
    comp = system[name]
    est = comp.estimator
    code: dict[str, Any] = (
        {"version": comp.code_version}
        if comp.code_version is not None
        else code_fingerprint(system.definition_file, est)
    )
    data: dict[str, str] | None = None
    if comp.learns_from_data:
        hashes = column_hashes or {}
        cols = sorted(system.raw_columns(name) | {system.target})
        missing = [c for c in cols if c not in hashes]
        if missing:
            raise SystemSpecError(
                f"{name!r} reads columns {missing} that the training data does not have",
                hint="check the component's inputs against the snapshot's columns",
            )
        data = {c: hashes[c] for c in cols}
    return {
        "recipe": comp.recipe(),
        "code": code,
        "deps": deps_part(est),
        "data": data,
        "upstream": {u: upstream[u] for u in system.upstream(name)},
        "seed": seed,
    }


def recorded_parts_now(
    recorded: Mapping[str, Any], upstream: Mapping[str, str], *, root: str | None = None
) -> dict[str, Any]:
    """The parts of a recorded version as they would be computed now, without the user's code.

    Code files are re-hashed from disk (relative paths from ``root``, the recorded code root),
    library versions re-read, upstream fingerprints replaced by ``upstream``; recipe, data
    and seed stay as recorded.
    """
    code = recorded.get("code") or {}
    if "files" in code and root is not None:
        code = {"files": {f: source_hash(os.path.join(root, f)) for f in code["files"]}}
    deps = {lib: v for lib in (recorded.get("deps") or {}) if (v := _dist_version(lib))}
    return {**recorded, "code": code, "deps": deps, "upstream": dict(upstream)}


def _dist_version(name: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
