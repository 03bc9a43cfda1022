r"""Python source as normalised syntax trees: parse once, find a definition, hash it.

What :mod:`regrow._code` hashes: a file is parsed once per modification (or, for a notebook
cell, once per text) with its docstrings removed, a definition is found by qualified name
(``f``, ``A.m``, ``build.<locals>.helper``), and its tree is dumped without positions, so
comments, docstrings and formatting never change a digest.

>>> import ast
>>> tree = _strip_docstrings(ast.parse("def f(x):\n    'Doc.'\n    return x  # note\n"))
>>> digest(find(tree, "f")) == digest(ast.parse("def f(x): return x").body[0])
True
"""

from __future__ import annotations

import ast
import functools
import linecache
import os

from regrow._hashing import sha256_hex

__all__ = ["bindings", "digest", "find", "tree", "used_names"]


@functools.cache
def _parse(path: str, stamp: tuple[int, int] | str) -> ast.Module | None:
    del stamp  # part of the cache key only
    if os.path.isfile(path):
        try:
            with open(path, "rb") as fh:
                text: str | bytes = fh.read()
        except OSError:
            return None
    else:  # a notebook cell or an exec'd string that linecache still holds
        text = "".join(linecache.getlines(path))
        if not text:
            return None
    try:
        return _strip_docstrings(ast.parse(text))
    except (SyntaxError, ValueError):
        return None


def tree(path: str | None) -> ast.Module | None:
    if not path:
        return None
    try:
        st = os.stat(path)
        stamp: tuple[int, int] | str = (st.st_mtime_ns, st.st_size)
    except OSError:
        lines = linecache.getlines(path)
        if not lines:
            return None
        stamp = sha256_hex("".join(lines).encode())
    return _parse(path, stamp)


def _strip_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):  # dropped, not replaced: a function with a docstring dumps as one without
                node.body = body[1:] or [ast.Pass()]
    return tree


def digest(*nodes: ast.AST) -> str:
    return sha256_hex("\n".join(ast.dump(n, annotate_fields=False) for n in nodes).encode())


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def find(tree: ast.Module, qualname: str, line: int | None = None) -> ast.AST | None:
    """The definition called ``qualname`` (``f``, ``A.m``, ``build.<locals>.helper``).

    Conditional definitions (under ``if``/``try``) are found too; when a name is defined more
    than once, the one starting at ``line`` wins, else the last (the one Python binds).
    """
    scopes: list[list[ast.stmt]] = [tree.body]
    parts = qualname.split(".")
    node: ast.AST | None = None
    for i, part in enumerate(parts):
        if part == "<locals>":
            continue
        last = i == len(parts) - 1
        matches = [d for body in scopes for d in _defs_in(body) if d.name == part]
        if not matches:
            return None
        node = matches[-1]
        if last and line is not None:
            node = next((m for m in matches if _first_line(m) == line), node)
        assert isinstance(node, _DEFS)
        scopes = [node.body]
    return node


def _defs_in(body: list[ast.stmt]) -> list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    out: list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef] = []
    for stmt in body:
        if isinstance(stmt, _DEFS):
            out.append(stmt)
        elif isinstance(stmt, ast.If | ast.Try | ast.With | ast.For | ast.While):
            for block in ("body", "orelse", "finalbody"):
                out.extend(_defs_in(getattr(stmt, block, []) or []))
            for handler in getattr(stmt, "handlers", []) or []:
                out.extend(_defs_in(handler.body))
    return out


def _first_line(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> int:
    return min([node.lineno, *(d.lineno for d in node.decorator_list)])


def bindings(tree: ast.Module, name: str) -> list[ast.stmt]:
    """Module-level statements that assign ``name``: ``X = ...``, ``X: int = ...``, ``X += ...``."""
    out: list[ast.stmt] = []
    for stmt in tree.body:
        targets: list[ast.expr] = []
        if isinstance(stmt, ast.Assign):
            targets = stmt.targets
        elif isinstance(stmt, ast.AnnAssign | ast.AugAssign):
            targets = [stmt.target]
        names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        if name in names:
            out.append(stmt)
    return out


def used_names(node: ast.AST) -> list[list[str]]:
    """Names the code reads, as attribute chains (``helpers.ratio`` -> ``["helpers", "ratio"]``),
    without the function's own parameters and local assignments."""
    local: set[str] = set()
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        a = node.args
        local |= {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]}
        local |= {x.arg for x in (a.vararg, a.kwarg) if x is not None}
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                local.add(sub.id)
    chains: list[list[str]] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Load):
            chain: list[str] = []
            cur: ast.expr = sub
            while isinstance(cur, ast.Attribute):
                chain.append(cur.attr)
                cur = cur.value
            if isinstance(cur, ast.Name) and cur.id not in local:
                chains.append([cur.id, *reversed(chain)])
        elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and sub.id not in local:
            chains.append([sub.id])
    return chains
