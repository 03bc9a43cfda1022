"""Which components of a version are stale, and why.

A component is stale when a fingerprint part computed now differs from the part recorded
with its version: its code or parameters changed, a library was upgraded, the data it would
train on changed, or something upstream of it is stale. Each cause is named.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regrow.catalog.records import ComponentVersionRecord, SnapshotRecord, SystemVersionRecord
from regrow.errors import SystemSpecError
from regrow.fingerprint import (
    changed_parts,
    component_parts,
    fingerprint,
    recorded_parts_now,
)

if TYPE_CHECKING:
    from regrow.system import System

__all__ = ["ComponentStatus", "staleness"]


@dataclass(frozen=True)
class ComponentStatus:
    """One component of a version: fresh, or stale with its causes."""

    name: str
    kind: str
    version_id: str
    fresh: bool
    causes: tuple[str, ...]
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "name": self.name,
            "kind": self.kind,
            "version_id": self.version_id,
            "fresh": self.fresh,
            "causes": list(self.causes),
            "details": self.details,
        }


def _details(
    recorded: Mapping[str, Any], now: Mapping[str, Any], causes: list[str]
) -> dict[str, Any]:
    """Short, human explanations of what changed in each stale part."""
    out: dict[str, Any] = {}
    if "code" in causes:
        out["code"] = _code_details(recorded.get("code") or {}, now.get("code") or {})
    if "parameters" in causes:
        b, a = recorded["recipe"].get("params", {}), now["recipe"].get("params", {})
        out["parameters"] = _param_changes(b, a)
        if recorded["recipe"].get("inputs") != now["recipe"].get("inputs"):
            out["inputs"] = [recorded["recipe"].get("inputs"), now["recipe"].get("inputs")]
    if "dependencies" in causes:
        b, a = recorded.get("deps", {}), now.get("deps", {})
        out["dependencies"] = {
            k: [b.get(k), a.get(k)] for k in sorted(set(b) | set(a)) if b.get(k) != a.get(k)
        }
    if "data" in causes:
        b, a = recorded.get("data") or {}, now.get("data") or {}
        out["data"] = sorted(k for k in set(b) | set(a) if b.get(k) != a.get(k))
    if "upstream" in causes:
        b, a = recorded.get("upstream", {}), now.get("upstream", {})
        out["upstream"] = sorted(k for k in set(b) | set(a) if b.get(k) != a.get(k))
    return out


def _param_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """``{name: [before, after]}`` for each parameter that differs; a nested estimator's
    (recorded as ``{"class": ..., "params": {...}}``) is followed to the parameter that changed,
    named as scikit-learn names it (``module__hidden``).

    >>> _param_changes({"C": 1.0, "m": {"class": "MLP", "params": {"hidden": [64, 32]}}},
    ...                {"C": 1.0, "m": {"class": "MLP", "params": {"hidden": [64, 16]}}})
    {'m__hidden': [[64, 32], [64, 16]]}
    """
    out: dict[str, Any] = {}
    for k in sorted(set(before) | set(after)):
        b, a = before.get(k), after.get(k)
        if b == a:
            continue
        if (
            isinstance(b, Mapping)
            and isinstance(a, Mapping)
            and {"class", "params"} <= set(b) & set(a)
            and b["class"] == a["class"]
        ):
            out.update(
                {f"{k}__{n}": v for n, v in _param_changes(b["params"], a["params"]).items()}
            )
        else:
            out[k] = [b, a]
    return out


def _code_details(before: Mapping[str, Any], after: Mapping[str, Any]) -> Any:
    """What changed in the code part: the functions and classes, by qualified name.

    ``{"changed": [...], "added": [...], "removed": [...]}`` (empty lists left out), or the
    code versions when ``code_version`` is set on either side.
    """
    if "version" in before or "version" in after:
        return {"code_version": [before.get("version"), after.get("version")]}
    b, a = before.get("objects") or {}, after.get("objects") or {}
    groups = {
        "changed": sorted(k for k in set(b) & set(a) if b[k] != a[k]),
        "added": sorted(set(a) - set(b)),
        "removed": sorted(set(b) - set(a)),
    }
    return {k: v for k, v in groups.items() if v} or "code hashed differently"


def staleness(
    version: SystemVersionRecord,
    components: Mapping[str, ComponentVersionRecord],
    *,
    system: System | None = None,
    snapshot: SnapshotRecord | None = None,
    trained_on: Mapping[str, SnapshotRecord] | None = None,
    adapted: Callable[[SnapshotRecord | None], Any] | None = None,
) -> list[ComponentStatus]:
    """The status of every component of ``version``, in graph order.

    ``components`` maps the version's component version ids to their records. With
    ``system`` (the user's current definition), parameters are compared too; without it, the
    recorded recipe is kept and only code files, library versions and upstream are checked.
    With ``snapshot``, each component is compared as if retrained on it (a ``data`` cause).
    ``trained_on`` maps snapshot ids to the snapshots the components were trained on, so a
    component whose inputs changed is compared on the columns it reads now. ``adapted(snapshot)``
    gives what a component's own adapters make of that snapshot's columns
    (:func:`regrow.run.adapted.adapted_hashes`); without it, own adapters count by digest.
    """
    by_name = {n: components[vid] for n, vid in version.manifest.items()}
    if system is not None:
        unknown = sorted(set(system.components) - set(by_name))
        if unknown:
            raise SystemSpecError(
                f"{version.ref} has no components {unknown}",
                hint="new components are trained by `train`/`update`, not reported by status",
            )
        order = [n for n in system.order() if n in by_name]
    else:
        order = list(version.manifest)
    fps_now: dict[str, str] = {}
    result = []
    for name in order:
        rec = by_name[name]
        ups = system.upstream(name) if system is not None else rec.parts.get("upstream", {})
        upstream = {u: fps_now.get(u, by_name[u].fingerprint) for u in ups}
        if system is not None and name in system:
            own = (trained_on or {}).get(rec.snapshot_id or "")
            hashes: Mapping[str, str] | None
            if snapshot is not None:
                hashes = snapshot.column_hashes
            elif own is not None:
                hashes = own.column_hashes
            else:
                hashes = rec.parts.get("data")
            if not system[name].learns_from_data:
                hashes = None
            bound = snapshot if snapshot is not None else own
            now = component_parts(
                system,
                name,
                column_hashes=hashes,
                seed=rec.seed,
                upstream=upstream,
                adapted=adapted(bound)
                if adapted and getattr(system[name], "adapters", None)
                else None,
            )
        else:
            now = recorded_parts_now(rec.parts, upstream, locations=rec.info.get("code"))
            if snapshot is not None and rec.parts.get("data"):
                cols = rec.parts["data"]
                now["data"] = {c: snapshot.column_hashes.get(c) for c in cols}
        if "update" in rec.parts:  # how it was made (continued, fine-tuned) is history
            now["update"] = rec.parts["update"]
        causes = changed_parts(rec.parts, now)
        fps_now[name] = fingerprint(now) if causes else rec.fingerprint
        result.append(
            ComponentStatus(
                name=name,
                kind=rec.kind,
                version_id=rec.id,
                fresh=not causes,
                causes=tuple(causes),
                details=_details(rec.parts, now, causes),
            )
        )
    return result
