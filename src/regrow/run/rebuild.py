"""Rebuild component versions whose artifact the store lost, from what the catalog recorded.

A component version records everything its fit depended on: the recipe (estimator class,
parameters, inputs), the snapshot it was trained on, its seed, the fingerprints of the
components it reads, and for an update the version it started from. :func:`rebuild` turns
that record back into the task the run executed and runs it again, in this process: the
same data, seed and upstream artifacts give the same fitted component (seeds are derived
per component, so nothing else in the run matters). The result is recorded under the same
fingerprint: the catalog row stays, and it points at the new artifact if the bytes differ
(audit ``component.rebuild``).

The component itself (its estimator object) is rebuilt from the recorded recipe: the class
is imported and given the recorded parameters (a parameter object recorded as its class and
parameters, such as the torch ``MLP``, is built the same way), and the result must reproduce
the recipe exactly. When it cannot (an estimator that takes a function or a list of steps,
say), the spec of another stored version of the same component with the same recipe is used.
When neither works, :class:`~regrow.errors.CannotRebuild` says to re-run the training that
made it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from regrow.catalog.audit import normalize
from regrow.catalog.catalog import Catalog, component_version_id
from regrow.catalog.records import ComponentVersionRecord
from regrow.catalog.store import ArtifactStore
from regrow.components.base import Component, Ensemble, Member, Transform
from regrow.errors import CannotRebuild, RegrowError, StoreError
from regrow.run.tasks import TaskSpec, load_fitted, run_task

__all__ = ["Rebuilt", "dependency_order", "rebuild", "recover_component"]

_SIBLINGS = 3  # other stored versions tried for the component's spec


@dataclass(frozen=True)
class Rebuilt:
    """A component version refitted from its record.

    ``identical``: the new bytes are the old artifact's (same key); else the row now points
    at ``version.artifact``. ``changed_libraries`` lists libraries whose installed version
    differs from the one recorded (the refit may then differ from the lost artifact).
    """

    version: ComponentVersionRecord
    previous: str
    identical: bool
    seconds: float
    changed_libraries: tuple[str, ...] = ()


def rebuild(
    catalog: Catalog,
    store: ArtifactStore,
    reasons: Mapping[str, str],
    *,
    by: str = "doctor",
    actor: str | None = None,
) -> dict[str, Rebuilt | CannotRebuild]:
    """Refit the component versions ``{id: reason}`` (reason: ``missing``, ``corrupted``).

    Versions that others in the set depend on (upstream transforms, an update's base) are
    rebuilt first. Returns each id's outcome; a failure is returned, not raised.
    """
    records = catalog.get_component_versions(reasons)
    deps: dict[str, set[str]] = {}
    for cid, rec in records.items():
        try:
            deps[cid] = _dependencies(catalog, rec) & set(records)
        except RegrowError:  # an upstream row is gone: its rebuild fails below, and says so
            deps[cid] = set()
    outcomes: dict[str, Rebuilt | CannotRebuild] = {}
    for cid in dependency_order(deps):
        failed = sorted(d for d in deps[cid] if isinstance(outcomes.get(d), CannotRebuild))
        record = records[cid]
        if failed:
            outcomes[cid] = CannotRebuild(
                f"cannot rebuild component version {cid} ({_label(record)}): it depends on "
                f"{', '.join(failed)}, which could not be rebuilt",
                hint="repair those first",
            )
            continue
        try:
            outcomes[cid] = _rebuild_one(
                catalog, store, catalog.get_component_version(cid), reasons[cid], by, actor
            )
        except CannotRebuild as exc:
            outcomes[cid] = exc
        except StoreError as exc:  # its snapshot or an artifact it reads is lost too
            outcomes[cid] = CannotRebuild(
                f"cannot rebuild component version {cid} ({_label(record)}): "
                f"{type(exc).__name__}: {exc.message}",
                hint="an artifact it reads is lost too: repair that first (a snapshot: store "
                "the same rows again), then run `regrow doctor --repair` again",
            )
        except Exception as exc:  # a fit, a load or a lookup failed: report it, go on
            hint = exc.hint if isinstance(exc, RegrowError) else None
            outcomes[cid] = CannotRebuild(
                f"cannot rebuild component version {cid} ({_label(record)}): "
                f"{type(exc).__name__}: {exc}",
                hint=hint or _retrain_hint(record),
            )
    return outcomes


def recover_component(
    catalog: Catalog, store: ArtifactStore, record: ComponentVersionRecord
) -> Component:
    """The (unfitted) component of ``record``, rebuilt from its recipe or a sibling's spec."""
    recipe = normalize(record.parts.get("recipe") or {})
    code_version = (record.parts.get("code") or {}).get("version")
    component = _from_recipe(record.component, recipe, code_version)
    if component is not None:
        return component
    tried = 0
    for other in catalog.component_history(record.system, record.component):
        if other.id == record.id or other.artifact in (None, record.artifact):
            continue
        if normalize(other.parts.get("recipe")) != recipe or tried >= _SIBLINGS:
            continue
        tried += 1
        try:
            spec = load_fitted(store.get(other.artifact or "")).spec
        except (RegrowError, TypeError):
            continue
        if normalize(spec.recipe()) == recipe and spec.code_version == code_version:
            return spec
    raise CannotRebuild(
        f"cannot rebuild component version {record.id} ({_label(record)}): its estimator "
        f"{recipe.get('class')!r} cannot be rebuilt from its recorded parameters, and no other "
        f"stored version of {record.component!r} has the same recipe",
        hint=_retrain_hint(record),
    )


def _rebuild_one(
    catalog: Catalog,
    store: ArtifactStore,
    record: ComponentVersionRecord,
    reason: str,
    by: str,
    actor: str | None,
) -> Rebuilt:
    if record.artifact is None:
        raise CannotRebuild(
            f"component version {record.id} ({_label(record)}) has no artifact to rebuild"
        )
    started = time.perf_counter()
    spec = _task(catalog, store, record)
    result = run_task(spec)
    version = catalog.integrity.record_rebuild(
        record.id,
        expected=record.artifact,
        artifact=result.artifact,
        size=store.size(result.artifact),
        reason=reason,
        by=by,
        actor=actor,
    )
    if result.artifact != record.artifact and not catalog.integrity.referenced(record.artifact):
        store.delete(record.artifact)  # the lost bytes' leftovers: referenced by nothing now
    deps = record.parts.get("deps") or {}
    changed = tuple(sorted(lib for lib, v in deps.items() if _installed(lib) != v))
    return Rebuilt(
        version,
        record.artifact,
        result.artifact == record.artifact,
        time.perf_counter() - started,
        changed,
    )


def _task(catalog: Catalog, store: ArtifactStore, record: ComponentVersionRecord) -> TaskSpec:
    """The task that fitted ``record``, as the runner built it (see ``runner._task``)."""
    parts = record.parts
    component = recover_component(catalog, store, record)
    target = _target(catalog, record)
    ancestors = _ancestors(catalog, record)
    stack = isinstance(component, Ensemble) and component.learns_from_data
    upstream: dict[str, str] = {}
    for name, version in ancestors.items():
        if version.kind == "transform" or stack:
            if version.artifact is None:
                raise CannotRebuild(f"upstream {name!r} of {_label(record)} has no artifact")
            upstream[name] = version.artifact
    snapshot = catalog.get_snapshot(record.snapshot_id) if record.snapshot_id else None
    data = parts.get("data") or {}
    in_sample: tuple[str, ...] = ()
    if isinstance(component, Ensemble) and snapshot is not None:
        in_sample = tuple(
            m
            for m in component.inputs
            if m in ancestors and ancestors[m].snapshot_id == snapshot.id
        )
    update = parts.get("update")
    base_artifact = reference_artifact = None
    if update is not None:
        base_id = component_version_id(record.system, record.component, update["base"])
        base_artifact = catalog.get_component_version(base_id).artifact
        if update.get("reference"):
            reference_artifact = catalog.get_snapshot(update["reference"]).artifact
    return TaskSpec(
        name=record.component,
        component=component,
        target=target,
        seed=record.seed,
        store_url=store.url,
        snapshot_artifact=snapshot.artifact if snapshot is not None else None,
        columns=tuple(sorted(data)) if snapshot is not None else (),
        upstream=upstream,
        in_sample=in_sample,
        update=(
            {"action": update["action"], "params": dict(update.get("params") or {})}
            if update is not None
            else None
        ),
        base_artifact=base_artifact,
        reference_artifact=reference_artifact,
    )


def _from_recipe(name: str, recipe: Mapping[str, Any], code_version: Any) -> Component | None:
    """The component the recipe describes, if the class and parameters reproduce it exactly."""
    kind, params, inputs = recipe.get("kind"), recipe.get("params") or {}, recipe.get("inputs")
    cv = code_version if isinstance(code_version, str) else None
    try:
        if kind == "ensemble" and params.get("method") == "gate":
            gates = params.get("gates")
            component: Component = Ensemble(
                name, inputs, method="gate", gate=params.get("gate"),
                gates=dict(gates) if gates else None, default=params.get("default"),
                code_version=cv,
            )  # fmt: skip
        elif kind == "ensemble":
            component = Ensemble(
                name, inputs, weights=params.get("weights"), method=params.get("method", "mean"),
                code_version=cv,
            )  # fmt: skip
        elif kind in ("transform", "member"):
            estimator = _construct(str(recipe.get("class")), params)
            kind_class = Transform if kind == "transform" else Member
            component = kind_class(name, estimator, inputs or [], code_version=cv)
        else:
            return None
    except Exception:  # not importable, an object it cannot name, refused params
        return None
    return component if normalize(component.recipe()) == normalize(recipe) else None


def _construct(path: str, params: Mapping[str, Any]) -> Any:
    """An instance of the class at ``path`` with the recorded ``params`` (JSON, as read back).

    Arguments the constructor requires are passed, the rest is set where it differs from the
    defaults (a default such as ``dtype=np.float64`` reads back as a string). A parameter
    object recorded as ``{"class": "<module.Class>", "params": {...}}`` (the torch ``MLP``)
    is constructed the same way; anything else named by label (a function, a ``partial``, an
    object recorded by its state) raises. The caller checks the recipe comes out the same.
    """
    cls = _import(path)
    required = {
        key: _revive(params[key])
        for key, p in inspect.signature(cls).parameters.items()
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    obj = cls(**required)
    defaults = normalize(obj.get_params(deep=False))
    changed = {
        k: _revive(v)
        for k, v in params.items()
        if "__" not in k and k not in required and defaults.get(k) != v
    }
    obj.set_params(**changed)
    return obj


def _revive(value: Any) -> Any:
    """A recorded parameter value as the object to set: a parameter object is constructed."""
    if isinstance(value, dict) and set(value) == {"class", "params"}:
        label = value["class"]
        if isinstance(label, str) and label.startswith("<") and label.endswith(">"):
            return _construct(label[1:-1], value["params"])
    if _names_objects(value):  # a function, class or estimator recorded by name only
        raise ValueError(f"the recorded value {value!r} names an object")
    return value


def _names_objects(value: Any) -> bool:
    """Whether recorded parameters describe an object by name or by parts (``'<numpy.log1p>'``,
    ``{"class": ...}``, ``{"partial": ...}``): set back as they read, they would not be that
    object, so the recipe cannot rebuild it."""
    if isinstance(value, str):
        return value.startswith("<") and value.endswith(">")
    if isinstance(value, dict):
        return bool({"class", "partial"} & set(value)) or any(
            _names_objects(v) for v in value.values()
        )
    if isinstance(value, list):
        return any(_names_objects(v) for v in value)
    return False


def _import(path: str) -> Any:
    """The object at a dotted ``module.Qual.Name`` path."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f"cannot import {path!r}")


def _target(catalog: Catalog, record: ComponentVersionRecord) -> str:
    versions = catalog.list_system_versions(record.system)
    holding = [v for v in versions if record.id in v.manifest.values()]
    chosen = holding or versions
    if not chosen:
        raise CannotRebuild(
            f"cannot rebuild component version {record.id} ({_label(record)}): no version of "
            f"system {record.system!r} records its target",
            hint=_retrain_hint(record),
        )
    return str(chosen[0].spec["target"])


def _ancestors(
    catalog: Catalog, record: ComponentVersionRecord
) -> dict[str, ComponentVersionRecord]:
    """Every component version ``record`` reads, directly or through others, by name."""
    found: dict[str, ComponentVersionRecord] = {}
    frontier = [record]
    while frontier:
        wanted = {
            component_version_id(record.system, name, fp): name
            for r in frontier
            for name, fp in (r.parts.get("upstream") or {}).items()
            if name not in found
        }
        if not wanted:
            break
        got = catalog.get_component_versions(wanted)
        frontier = []
        for cid, name in wanted.items():
            found[name] = got[cid]
            frontier.append(got[cid])
    return found


def _dependencies(catalog: Catalog, record: ComponentVersionRecord) -> set[str]:
    """Ids of the versions a rebuild of ``record`` reads: ancestors and an update's base."""
    ids = {v.id for v in _ancestors(catalog, record).values()}
    update = record.parts.get("update")
    if update is not None:
        ids.add(component_version_id(record.system, record.component, update["base"]))
    return ids


def dependency_order(deps: Mapping[str, set[str]]) -> list[str]:
    """The ids of ``deps`` (id -> the ids it depends on), each after the ids it depends on
    (ties keep their order).

    >>> dependency_order({"ens": {"a", "b"}, "a": {"t"}, "b": set(), "t": set()})
    ['t', 'a', 'b', 'ens']
    """
    done: list[str] = []
    seen: set[str] = set()

    def visit(cid: str) -> None:
        if cid in seen:
            return
        seen.add(cid)
        for d in sorted(deps.get(cid, ())):
            visit(d)
        done.append(cid)

    for cid in deps:
        visit(cid)
    return done


def _installed(library: str) -> str | None:
    try:
        return importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
        return None


def _label(record: ComponentVersionRecord) -> str:
    return f"{record.system}/{record.component}"


def _retrain_hint(record: ComponentVersionRecord) -> str:
    snapshot = f" --snapshot {record.snapshot_id[:12]}" if record.snapshot_id else ""
    return (
        f"re-run the training that made it (`regrow train FILE.py:SYSTEM{snapshot}` with the "
        "system's definition): a run refits every component whose artifact is missing"
    )
