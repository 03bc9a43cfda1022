"""Fingerprints and staleness: what a component version depends on, and what changed.

A component's fingerprint hashes six parts:

========== ==================================================================================
part       what it covers
========== ==================================================================================
recipe     the estimator's class and parameters, and the component's inputs
code       the user's own functions, classes and module-level names the component reaches from
           its estimator, as syntax trees (see :mod:`regrow._code`), or its ``code_version``
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

import functools
import hashlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from regrow._code import code_objects, rehash
from regrow._hashing import hash_json
from regrow.errors import SystemSpecError

if TYPE_CHECKING:  # a recorded version's staleness is computed without scikit-learn
    from regrow.system import System

__all__ = [
    "CAUSE_NAMES",
    "changed_parts",
    "code_locations",
    "code_part",
    "component_parts",
    "derive_seed",
    "fingerprint",
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


def code_part(estimator: Any) -> dict[str, Any]:
    """The ``code`` part: the user's own code the component runs, by qualified name.

    See :mod:`regrow._code` for what is reached and how it is hashed. Only syntax trees count,
    so a comment, a docstring, reformatting or moving the file changes nothing; an edit to a
    helper that one transform uses changes that transform's part alone.

    >>> from sklearn.linear_model import LogisticRegression
    >>> code_part(LogisticRegression(C=2.0))  # library code enters through ``deps``
    {'objects': {}}
    """
    return {"objects": {k: o.digest for k, o in code_objects(estimator).items()}}


def code_locations(estimator: Any) -> dict[str, list[str | None]]:
    """Where each object of the ``code`` part was found: ``[file, kind, qualname]``.

    Kept with a component version's info (not its fingerprint), so ``status`` without the
    user's system can re-hash the recorded objects from disk.
    """
    return {k: [o.file, o.kind, o.qualname] for k, o in code_objects(estimator).items()}


def deps_part(estimator: Any) -> dict[str, str]:
    """The ``deps`` part: versions of the libraries behind ``estimator``."""
    from regrow.components.adapters import adapter_for

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
    adapted: Callable[[Any, list[str]], Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """The fingerprint parts of component ``name`` bound to data with ``column_hashes``.

    ``upstream`` maps each component ``name`` reads to its fingerprint. A component with
    adapters of its own enters the hashes of the columns they change into its ``data`` part
    (as ``"<column> (adapted)"``): ``adapted(adapters, columns)`` gives them, from the bound
    rows, for the columns whose values change. An adapter that changes nothing in the rows a
    component trained on re-fits nothing. Without ``adapted`` (no rows at hand) the adapters'
    digest stands in, which counts any of them as a change.
    """
    comp = system[name]
    est = comp.estimator
    code: dict[str, Any] = (
        {"version": comp.code_version} if comp.code_version is not None else code_part(est)
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
        own = getattr(comp, "adapters", None)
        if own:
            if adapted is None:
                data["(own adapters)"] = own.digest()
            else:
                changed = adapted(own, sorted({a.column for a in own}))
                data.update({f"{c} (adapted)": h for c, h in sorted(changed.items())})
    return {
        "recipe": comp.recipe(),
        "code": code,
        "deps": deps_part(est),
        "data": data,
        "upstream": {u: upstream[u] for u in system.upstream(name)},
        "seed": seed,
    }


def recorded_parts_now(
    recorded: Mapping[str, Any],
    upstream: Mapping[str, str],
    *,
    locations: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The parts of a recorded version as they would be computed now, without the user's code.

    Each recorded code object is re-hashed from the file ``locations`` (the version's
    ``info["code"]``) names; one that cannot be re-hashed without importing it (hashed from
    bytecode, or its file moved) keeps its recorded hash. Library versions are re-read and
    upstream fingerprints replaced by ``upstream``; recipe, data and seed stay as recorded.
    """
    code = recorded.get("code") or {}
    if "objects" in code and locations:
        objects = dict(code["objects"])
        for key, (file, kind, qualname) in locations.items():
            if key in objects and file:
                now = rehash(file, kind, qualname)
                objects[key] = now if now is not None else objects[key]
        code = {"objects": objects}
    deps = {lib: v for lib in (recorded.get("deps") or {}) if (v := _dist_version(lib))}
    return {**recorded, "code": code, "deps": deps, "upstream": dict(upstream)}


@functools.cache  # each lookup scans the installed distributions; they do not change meanwhile
def _dist_version(name: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
