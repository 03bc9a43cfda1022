"""A recorded component's fingerprint parts as they read now, and why they differ.

A reproduction recomputes each part from what exists now, not from the record:

========== ===============================================================================
part       recomputed from
========== ===============================================================================
recipe     kept as recorded: it is what the component is rebuilt from
code       each recorded piece of the user's code, re-hashed from the file it was found in
deps       the versions installed now of the libraries behind the stored estimator
data       the column hashes of the snapshot's stored rows, hashed again
upstream   the fingerprints recomputed for the components it reads
seed       kept as recorded: the component is refitted with it
update     the fingerprint recomputed for the version it updated (and its replay snapshot)
========== ===============================================================================

:func:`explain` names what differs: the user's functions whose code changed (with their
file), each library whose version moved, the columns whose hashes changed, the upstream
components that differ. :func:`environment_changes` compares two recorded environments.

>>> environment_changes({"python": "3.11.7", "packages": {"numpy": "2.0.0"}},
...                     {"python": "3.12.1", "packages": {"numpy": "2.0.0"}})
['python 3.11.7 -> 3.12.1']
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from regrow._code import rehash
from regrow.catalog.audit import normalize
from regrow.catalog.records import ComponentVersionRecord
from regrow.fingerprint import changed_parts, deps_part, fingerprint

__all__ = ["Explanation", "PartsNow", "environment_changes", "explain", "parts_now"]


@dataclass(frozen=True)
class PartsNow:
    """The parts recomputed now, and the code that could not be re-read (kept as recorded)."""

    parts: dict[str, Any]
    unreadable: tuple[str, ...] = ()
    locations: Mapping[str, Any] = field(default_factory=dict)


def parts_now(
    record: ComponentVersionRecord,
    *,
    estimator: Any,
    column_hashes: Mapping[str, str] | None,
    upstream: Mapping[str, str],
    base: str | None = None,
) -> PartsNow:
    """The parts of ``record`` recomputed now (see the module's table).

    ``estimator`` is the stored component's (unfitted) estimator; ``column_hashes`` the
    hashes of its snapshot's columns computed from the stored rows; ``upstream`` the
    recomputed fingerprint of each component it reads; ``base`` that of the version an
    update started from.
    """
    recorded = normalize(record.parts)
    locations = (record.info or {}).get("code") or {}
    code = recorded.get("code") or {}
    unreadable: list[str] = []
    if "objects" in code:
        objects = dict(code["objects"])
        for key in objects:
            file, kind, qualname = (list(locations.get(key) or []) + [None] * 3)[:3]
            now = rehash(file, kind, qualname) if file and kind and qualname else None
            if now is None:
                unreadable.append(key)
            else:
                objects[key] = now
        code = {"objects": objects}
    data = recorded.get("data")
    if data is not None:
        hashes = column_hashes or {}
        data = {c: hashes.get(c) for c in data}
    parts = {
        **recorded,
        "code": code,
        "deps": deps_part(estimator),
        "data": data,
        "upstream": {name: upstream.get(name) for name in recorded.get("upstream") or {}},
    }
    update = recorded.get("update")
    if update is not None:
        parts["update"] = {**update, "base": base}
    return PartsNow(normalize(parts), tuple(unreadable), locations)


@dataclass(frozen=True)
class Explanation:
    """Why a recomputed fingerprint differs: ``own`` causes (code, libraries, data, an edited
    record) and causes ``inherited`` through the upstream components or update base."""

    own: tuple[str, ...] = ()
    inherited: tuple[str, ...] = ()

    @property
    def reasons(self) -> tuple[str, ...]:
        """Every cause, its own first."""
        return self.own + self.inherited


def explain(
    record: ComponentVersionRecord, now: PartsNow, differing_upstream: Mapping[str, str]
) -> Explanation:
    """Why the parts recomputed now differ from the recorded ones, one sentence per cause.

    ``differing_upstream`` maps each upstream component (and ``"update"``, the version an
    update started from) whose own fingerprint differs to what that comes down to.
    """
    recorded = normalize(record.parts)
    parts = now.parts
    own: list[str] = []
    inherited: list[str] = []
    if fingerprint(recorded) != record.fingerprint:
        own.append("its recorded parts do not hash to its fingerprint (the catalog row was edited)")
    for cause in changed_parts(recorded, parts):
        if cause == "code":
            own += _code(recorded["code"], parts["code"], now.locations)
        elif cause == "dependencies":
            own += _libraries(recorded.get("deps") or {}, parts.get("deps") or {})
        elif cause == "data":
            before, after = recorded.get("data") or {}, parts.get("data") or {}
            columns = sorted(c for c in before if before[c] != after.get(c))
            own.append(
                f"data changed: the stored rows of column(s) {', '.join(columns)} no longer "
                "hash to the recorded values"
            )
        elif cause == "upstream":
            names = sorted(n for n in recorded.get("upstream") or {} if n in differing_upstream)
            inherited += [f"upstream {n!r} differs ({differing_upstream[n]})" for n in names]
        else:  # parameters or seed: kept as recorded, so only an edited record gets here
            own.append(f"{cause} differ from the record")
    if "update" in recorded and recorded["update"] != parts.get("update"):
        why = differing_upstream.get("update", "its fingerprint differs")
        inherited.append(f"the version it updated differs ({why})")
    return Explanation(tuple(own), tuple(inherited))


def _code(before: Mapping[str, Any], after: Mapping[str, Any], locations: Any) -> list[str]:
    old, new = before.get("objects") or {}, after.get("objects") or {}
    changed = sorted(k for k in old if old[k] != new.get(k))
    out = []
    for key in changed:
        file = (locations.get(key) or [None])[0]
        where = f" ({os.path.basename(file)})" if file else ""
        out.append(f"code changed since training: {key}{where}")
    if before.get("version") != after.get("version"):
        out.append(f"code_version {before.get('version')!r} -> {after.get('version')!r}")
    return out


def _libraries(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    libs = sorted(set(before) | set(after))
    return [
        f"{lib} {before.get(lib) or 'not recorded'} -> {after.get(lib) or 'not installed'}"
        for lib in libs
        if before.get(lib) != after.get(lib)
    ]


def environment_changes(recorded: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """What differs between two environments :func:`~regrow.run.environment.capture_environment`
    recorded: Python, platform, then each package whose version moved."""
    changes = [
        f"{key} {recorded.get(key)} -> {now.get(key)}"
        for key in ("python", "platform")
        if recorded.get(key) and recorded.get(key) != now.get(key)
    ]
    changes += _libraries(recorded.get("packages") or {}, now.get("packages") or {})
    return changes
