"""The code a component runs: the user's own functions, classes and module-level names it reaches.

A component's ``code`` fingerprint part maps each piece of the user's own code (see
:func:`regrow._modules.is_user_module`) that its estimator reaches to a hash of its syntax tree:

- **roots**: the estimator's class if the user defined it, and every user-defined function or
  class reachable from its parameters — ``FunctionTransformer(func)``, a custom loss, a torch
  module factory, a nested pipeline step, a ``functools.partial``;
- **references**, transitively: the module-level functions, classes and assignments that each
  of those uses by name, followed across the user's modules (``import helpers`` and
  ``helpers.ratio``, ``from .features import ratio``, a closure's captured values).

Trees are parsed from source with docstrings removed, so comments, docstrings, formatting, and
the file's name and location do not count; the system file counts only through what its
components reach (its values enter the fingerprint through the recipe). Code without source
(a lambda, a function typed into a REPL) is hashed from its bytecode.

>>> import functools
>>> from sklearn.preprocessing import FunctionTransformer
>>> code_objects(FunctionTransformer(functools.partial(len)))  # library code only
{}
"""

from __future__ import annotations

import ast
import functools
import os
import sys
import types
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from regrow._hashing import hash_json, sha256_hex
from regrow._modules import is_user_module
from regrow._source import bindings, find, used_names
from regrow._source import digest as tree_digest
from regrow._source import tree as source_tree

__all__ = ["CodeObject", "code_objects", "rehash"]

_MAX_DEPTH = 12


@dataclass(frozen=True)
class CodeObject:
    """One piece of user code a component reaches.

    ``kind`` is ``function``, ``class`` or ``name`` (a module-level assignment), each hashed
    from its syntax tree and re-hashable from ``file`` alone; or ``bytecode`` / ``value``
    (no source was found), which only a run that imports the code can re-hash.
    """

    key: str
    kind: str
    qualname: str
    digest: str
    file: str | None


def code_objects(estimator: Any) -> dict[str, CodeObject]:
    """Every piece of user code ``estimator`` reaches, keyed by qualified name."""
    found: dict[tuple[str, str], CodeObject] = {}
    queue: list[tuple[str, Any, Any]] = [("obj", root, None) for root in _roots(estimator)]
    while queue:
        kind, obj, extra = queue.pop()
        if kind == "name":
            item = _name_object(obj, extra)
        elif isinstance(obj, type):
            item = _class_object(obj)
        else:
            item = _function_object(obj)
        if item is None:
            continue
        ident = (item[0].file or "", item[0].kind + ":" + item[0].qualname)
        if ident in found:
            continue
        found[ident] = item[0]
        queue.extend(item[1])
    return _keyed(found.values())


def _keyed(objects: Iterable[CodeObject]) -> dict[str, CodeObject]:
    """Key by qualified name; the same name in two modules gets the file's stem in front."""
    items = sorted(objects, key=lambda o: (o.key, o.file or "", o.kind))
    counts = Counter(o.key for o in items)
    out: dict[str, CodeObject] = {}
    for o in items:
        stem = os.path.splitext(os.path.basename(o.file or "?"))[0]
        out[f"{stem}:{o.key}" if counts[o.key] > 1 else o.key] = o
    return out


# -- roots: what the estimator holds ------------------------------------------------------------


def _roots(estimator: Any) -> list[Any]:
    out: list[Any] = []
    _walk(estimator, set(), out, 0)
    return out


def _walk(value: Any, seen: set[int], out: list[Any], depth: int) -> None:
    if depth > _MAX_DEPTH or value is None or isinstance(value, str | bytes | int | float):
        return
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, type):
        if is_user_module(value.__module__):
            out.append(value)
        return
    if isinstance(value, types.FunctionType):
        if is_user_module(value.__module__):
            out.append(value)
        return
    if isinstance(value, types.MethodType):
        _walk(value.__func__, seen, out, depth + 1)
        _walk(value.__self__, seen, out, depth + 1)
        return
    if isinstance(value, functools.partial):
        for part in (value.func, *value.args, *value.keywords.values()):
            _walk(part, seen, out, depth + 1)
        return
    if isinstance(value, dict):
        for item in value.values():
            _walk(item, seen, out, depth + 1)
        return
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _walk(item, seen, out, depth + 1)
        return
    if hasattr(value, "dtype") and hasattr(value, "shape"):  # arrays and tensors hold no code
        return
    user_class = is_user_module(type(value).__module__)
    if user_class:
        out.append(type(value))
    get_params = getattr(value, "get_params", None)
    if callable(get_params):
        try:
            params = get_params(deep=False)
        except TypeError:
            params = None
        if isinstance(params, dict):
            for item in params.values():
                _walk(item, seen, out, depth + 1)
            return
    if user_class:
        for item in getattr(value, "__dict__", {}).values():
            _walk(item, seen, out, depth + 1)


# -- references -----------------------------------------------------------------------------------


def _resolve(chains: list[list[str]], namespace: dict[str, Any], module: str) -> list[Any]:
    """Queue entries for the user code that ``chains`` name in ``namespace`` (a module's)."""
    out: list[tuple[str, Any, Any]] = []
    for chain in chains:
        head = chain[0]
        if head not in namespace:
            continue
        value = namespace[head]
        owner, name = module, head
        for attr in chain[1:]:
            if not isinstance(value, types.ModuleType):
                break
            owner, name = value.__name__, attr
            value = getattr(value, attr, None)
        out.extend(_entries(value, owner, name))
    return out


def _entries(value: Any, owner: str, name: str) -> list[tuple[str, Any, Any]]:
    if isinstance(value, types.ModuleType):
        return []
    if isinstance(value, type | types.FunctionType):
        return [("obj", value, None)] if is_user_module(value.__module__) else []
    if isinstance(value, functools.partial | types.MethodType) or hasattr(value, "get_params"):
        return [("obj", r, None) for r in _roots(value)]
    if is_user_module(owner):
        return [("name", sys.modules[owner], name)]
    return []


# -- objects --------------------------------------------------------------------------------------

_Found = tuple[CodeObject, list[tuple[str, Any, Any]]]


def _function_object(func: Any) -> _Found | None:
    code = getattr(func, "__code__", None)
    if code is None:
        return None
    qualname = func.__qualname__
    file = code.co_filename
    tree = source_tree(file) if func.__name__ != "<lambda>" else None
    node = find(tree, qualname, code.co_firstlineno) if tree is not None else None
    refs: list[tuple[str, Any, Any]] = []
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        kind, digest = "function", tree_digest(node)
        refs += _resolve(used_names(node), func.__globals__, func.__module__)
    else:
        kind, digest = "bytecode", _bytecode_digest(code)
        refs += _resolve([[n] for n in code.co_names], func.__globals__, func.__module__)
    captured = []
    for var, cell in zip(code.co_freevars, func.__closure__ or (), strict=False):
        try:
            content = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        refs += [("obj", r, None) for r in _roots(content)]
        if not callable(content):
            captured.append([var, _value_digest(content)])
    if captured:
        digest = hash_json([digest, captured])
    return CodeObject(qualname, kind, qualname, digest, _real_file(file)), refs


def _class_object(cls: type) -> _Found | None:
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    tree = source_tree(file)
    node = find(tree, cls.__qualname__) if tree is not None else None
    refs: list[tuple[str, Any, Any]] = [
        ("obj", base, None) for base in cls.__mro__[1:] if is_user_module(base.__module__)
    ]
    namespace = vars(module) if module is not None else {}
    if isinstance(node, ast.ClassDef):
        kind, digest = "class", tree_digest(node)
        refs += _resolve(used_names(node), namespace, cls.__module__)
    else:
        kind = "bytecode"
        methods = sorted(
            (k, _bytecode_digest(v.__code__))
            for k, v in vars(cls).items()
            if isinstance(v, types.FunctionType)
        )
        digest = hash_json([cls.__qualname__, [b.__qualname__ for b in cls.__bases__], methods])
        for v in vars(cls).values():
            if isinstance(v, types.FunctionType):
                refs += _resolve([[n] for n in v.__code__.co_names], namespace, cls.__module__)
    return CodeObject(cls.__qualname__, kind, cls.__qualname__, digest, _real_file(file)), refs


def _name_object(module: types.ModuleType, name: str) -> _Found | None:
    file = getattr(module, "__file__", None)
    tree = source_tree(file)
    stmts = bindings(tree, name) if tree is not None else []
    if stmts:
        refs: list[tuple[str, Any, Any]] = []
        for stmt in stmts:
            refs += _resolve(used_names(stmt), vars(module), module.__name__)
        return CodeObject(name, "name", name, tree_digest(*stmts), _real_file(file)), refs
    if tree is not None:
        origin = _import_origin(tree, name, module)
        if origin is not None:  # `from .settings import FLOOR`: follow it to where it is set
            source, original = origin
            if is_user_module(source.__name__) and original != "*":
                return _name_object(source, original)
            return None
    value = vars(module).get(name)
    if callable(value):
        return None
    return CodeObject(name, "value", name, _value_digest(value), _real_file(file)), []


def _import_origin(
    tree: ast.Module, name: str, module: types.ModuleType
) -> tuple[types.ModuleType, str] | None:
    """The module and name that a module-level import binds ``name`` to, if one does."""
    for stmt in reversed(tree.body):
        if isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                if (alias.asname or alias.name) == name:
                    base = stmt.module or ""
                    if stmt.level:
                        package = (module.__package__ or "").split(".")
                        keep = len(package) - (stmt.level - 1)
                        base = ".".join([*package[: max(keep, 0)], *([base] if base else [])])
                    source = sys.modules.get(base)
                    return (source, alias.name) if source is not None else None
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if (alias.asname or alias.name.split(".")[0]) == name:
                    return None  # a module: references through it are followed by attribute
    return None


def _bytecode_digest(code: types.CodeType) -> str:
    consts = [
        _bytecode_digest(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts
    ]
    return hash_json([code.co_code.hex(), consts, code.co_names, code.co_varnames])


def _value_digest(value: Any) -> str:
    try:
        return hash_json(value)
    except (TypeError, ValueError, RecursionError):
        return sha256_hex(type(value).__qualname__.encode())


def _real_file(path: str | None) -> str | None:
    return os.path.abspath(path) if path and os.path.isfile(path) else None


# -- from disk ------------------------------------------------------------------------------------


def rehash(file: str, kind: str, qualname: str) -> str | None:
    """The digest of a recorded object as its file reads now, without importing it.

    None when that cannot be told: the file or the definition is gone, or the object was
    hashed from bytecode or by value (only importing the code can re-hash those).
    """
    if kind not in ("function", "class", "name"):
        return None
    tree = source_tree(file)
    if tree is None:
        return None
    if kind == "name":
        stmts = bindings(tree, qualname)
        return tree_digest(*stmts) if stmts else None
    node = find(tree, qualname)
    return tree_digest(node) if node is not None else None
