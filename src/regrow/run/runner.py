"""Run a system's task graph: fingerprint every component, reuse what exists, fit the rest.

The runner binds each component to the data it trains on and a seed, computes fingerprints in
graph order, looks every fingerprint up in the catalog in one query, and sends only the missing
components to the backend, wave by wave. A version is reused only if the store still holds its
artifact (one batched metadata call; a missing one, or one whose size differs from the size
recorded, is refitted under the same fingerprint and the rebuild audited). Each fitted
component is recorded as soon as it finishes, so a failed or interrupted run resumes where it
stopped: re-running it reuses every component that finished. The run ends with a system
version whose manifest shares every reused component version with its parent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from regrow.catalog.catalog import Catalog
from regrow.catalog.health import lost_artifacts
from regrow.catalog.integrity import ARTIFACT_BYTES
from regrow.catalog.leases import this_process
from regrow.catalog.records import (
    ComponentVersionRecord,
    RunRecord,
    SnapshotRecord,
    SystemVersionRecord,
)
from regrow.catalog.store import ArtifactStore
from regrow.catalog.versions import same_spec
from regrow.components.base import Ensemble, Transform
from regrow.costs import Meter, TaskUsage, summarize
from regrow.errors import RunError, SystemSpecError
from regrow.fingerprint import (
    changed_parts,
    code_locations,
    component_parts,
    derive_seed,
    fingerprint,
)
from regrow.run.adapted import adapted_hashes
from regrow.run.backends import ExecutorBackend, LocalBackend
from regrow.run.budget import RunBudget
from regrow.run.budget import check as check_budget
from regrow.run.environment import capture_environment
from regrow.run.leasing import RunLease, lease_seconds
from regrow.run.tasks import TaskResult, TaskSpec
from regrow.system import System

__all__ = [
    "Binding",
    "ComponentOutcome",
    "RunEvent",
    "RunResult",
    "UpdateSpec",
    "execute",
    "full_bindings",
    "partial_bindings",
]


@dataclass(frozen=True)
class UpdateSpec:
    """Update an existing fitted version instead of fitting from scratch.

    ``action`` names the update (``continue``, ``leaf-refit``, ``finetune``; see
    :mod:`regrow.plan.updates`), ``params`` its parameters; ``base`` is the component version it
    starts from. Both enter the fingerprint, so an updated version never collides with a
    fresh fit on the same data. ``reference`` optionally names a snapshot whose rows the
    update may replay (fine-tuning's forgetting guard).
    """

    action: str
    params: Mapping[str, Any]
    base: ComponentVersionRecord
    reference: SnapshotRecord | None = None

    def describe(self) -> str:
        """The update for people, as a run's table shows it: ``finetune of layer0``."""
        blocks = self.params.get("blocks")
        return self.action + (f" of {', '.join(map(str, blocks))}" if blocks else "")

    def part(self) -> dict[str, Any]:
        """The fingerprint part: the action, its parameters, and the base's fingerprint."""
        return {
            "action": self.action,
            "params": dict(self.params),
            "base": self.base.fingerprint,
            "reference": self.reference.id if self.reference else None,
        }


@dataclass(frozen=True)
class Binding:
    """What a component trains on in a run: a snapshot (None for an ensemble) and a seed.

    ``update``, when given, starts from an existing fitted version (continue boosting, refit
    leaves, fine-tune blocks) rather than fitting from scratch.
    """

    snapshot: SnapshotRecord | None
    seed: int
    update: UpdateSpec | None = None
    #: Stored tables of members' outputs on the snapshot's rows, by output key (a stack
    #: reads them instead of predicting; see :mod:`regrow.components.outputs`). Not part of
    #: the fingerprint: it changes how fast the fit is, not what it fits.
    outputs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ComponentOutcome:
    """What happened to one component in a run, and why."""

    name: str
    kind: str
    action: Literal["trained", "reused"]
    causes: tuple[str, ...]
    version_id: str
    fingerprint: str
    snapshot_id: str | None
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    usage: TaskUsage | None = None  # cost accounting (#18): what fitting it used; None: reused


@dataclass(frozen=True)
class RunEvent:
    """Progress of a run: ``kind`` is "planned", "reused", "started" or "finished".

    ``total`` is how many components the run has to settle (those not found in the catalog
    when it planned); ``done`` how many of them are settled so far: fitted, or reused once
    another run fitted them. ``done`` never exceeds ``total``.
    """

    kind: str
    component: str | None = None
    total: int = 0
    seconds: float = 0.0
    done: int = 0


@dataclass(frozen=True)
class RunResult:
    """The outcome of a run: the run record, the system version, and each component's fate."""

    run: RunRecord
    version: SystemVersionRecord
    components: dict[str, ComponentOutcome] = field(default_factory=dict)
    seconds: float = 0.0
    created_version: bool = True

    @property
    def trained(self) -> list[str]:
        """Components fitted in this run, in graph order."""
        return [n for n, o in self.components.items() if o.action == "trained"]

    @property
    def reused(self) -> list[str]:
        """Components whose existing version was reused, in graph order."""
        return [n for n, o in self.components.items() if o.action == "reused"]


def _causes(
    name: str, parts: Mapping[str, Any], parent_versions: Mapping[str, ComponentVersionRecord]
) -> tuple[str, ...]:
    before = parent_versions.get(name)
    if before is None:
        return ("new component",)
    changed = changed_parts(before.parts, parts)
    return tuple(changed) or ("not in the catalog",)


def execute(
    catalog: Catalog,
    store: ArtifactStore,
    system: System,
    bindings: Mapping[str, Binding],
    *,
    kind: str,
    run_seed: int,
    parent: SystemVersionRecord | None,
    params: Mapping[str, Any] | None = None,
    backend: ExecutorBackend | None = None,
    workers: int | None = None,
    progress: Callable[[RunEvent], None] | None = None,
    note: str = "",
    cpu_budget: RunBudget | float | None = None,
) -> RunResult:
    """Execute ``system`` with each component bound as in ``bindings``.

    Returns the run with its system version; if nothing changed relative to ``parent`` the
    parent itself is returned (``created_version`` False) and nothing is trained.

    ``cpu_budget`` (a :class:`~regrow.run.budget.RunBudget` of CPU seconds, GPU seconds and
    money, or CPU seconds): once the components this run fitted used more than a limit, the
    run stops (what is still running is cancelled) with a :class:`~regrow.errors.RunError`
    that gives the numbers; the components it finished are recorded, so running it again
    resumes where it stopped.
    """
    started = time.perf_counter()
    emit = progress or (lambda _event: None)
    seconds = lease_seconds()  # a bad setting fails here, before a run is recorded
    order = system.order()
    missing = [n for n in order if n not in bindings]
    if missing:
        raise SystemSpecError(f"no data bound to components {missing}")

    parts: dict[str, dict[str, Any]] = {}
    fps: dict[str, str] = {}
    for name in order:
        b = bindings[name]
        parts[name] = component_parts(
            system,
            name,
            column_hashes=b.snapshot.column_hashes if b.snapshot else None,
            seed=b.seed,
            upstream=fps,
            adapted=adapted_hashes(store, b.snapshot) if _own_list(system, name) else None,
        )
        if b.update is not None:
            parts[name]["update"] = b.update.part()
        fps[name] = fingerprint(parts[name])
    found = catalog.find_component_versions(system.name, fps)
    # Reuse only what the store still holds (one batched metadata call): a version whose
    # artifact is missing, or not its recorded size, is refitted under its own fingerprint.
    lost = lost_artifacts(store, found.values())
    rebuilding = {n: found.pop(n) for n in [n for n, v in found.items() if v.id in lost]}
    parent_versions = (
        catalog.get_component_versions(list(parent.manifest.values())) if parent else {}
    )
    parent_by_name = {v.component: v for v in parent_versions.values()}
    todo = [n for n in order if n not in found]
    settled_todo: set[str] = set()  # planned components fitted or reused so far
    emit(RunEvent("planned", total=len(todo)))
    owned_backend = backend is None
    runner = backend if backend is not None else LocalBackend(workers)

    run = catalog.start_run(
        system=system.name,
        kind=kind,
        seed=run_seed,
        environment=capture_environment(system.definition_file),
        params={**(params or {}), "parent": parent.id if parent else None},
        lease_seconds=seconds,  # leased from its first write: a kill at any point is seen
        holder=this_process(),
    )
    meter = Meter()  # what this process spent on the run: a stopped run's unfinished task
    outcomes: dict[str, ComponentOutcome] = {}
    versions: dict[str, ComponentVersionRecord] = dict(found)

    def reuse(name: str, v: ComponentVersionRecord) -> None:
        versions[name] = v
        before = parent_by_name.get(name)
        # Found but not the parent's: fitted by an earlier (perhaps failed) run, or by a
        # concurrent one, so this version still changes relative to its parent, and says why
        # (the parts that differ; never "not in the catalog": it was found there).
        causes: tuple[str, ...] = ()
        if before is None:
            causes = ("new component",)
        elif before.id != v.id:
            causes = tuple(changed_parts(before.parts, parts[name]))
        outcomes[name] = ComponentOutcome(
            name, v.kind, "reused", causes, v.id, v.fingerprint, v.snapshot_id
        )
        if name in todo:  # planned for fitting, then fitted by another run meanwhile
            settled_todo.add(name)
        emit(RunEvent("reused", name, total=len(todo), done=len(settled_todo)))

    def fit(names: Sequence[str]) -> None:
        tasks = [_task(system, name, bindings[name], versions, store) for name in names]
        for task in tasks:
            emit(RunEvent("started", task.name, total=len(todo), done=len(settled_todo)))
        for task, outcome in runner.run(tasks):
            if isinstance(outcome, RunError):
                if outcome.message.startswith(f"component {task.name!r}"):
                    raise outcome  # the backend named the component already
                raise RunError(
                    f"component {task.name!r} failed: {outcome.message}", hint=outcome.hint
                ) from outcome
            if isinstance(outcome, BaseException):
                raise RunError(
                    f"component {task.name!r} failed: {type(outcome).__name__}: {outcome}",
                    hint="fix the cause and run again: finished components are reused",
                ) from outcome
            versions[task.name] = _record(
                catalog, system, task, outcome, parts, fps, bindings, run.id, store
            )
            lost_version = rebuilding.get(task.name)
            if lost_version is not None and lost_version.artifact is not None:
                versions[task.name] = catalog.integrity.record_rebuild(
                    lost_version.id,
                    expected=lost_version.artifact,
                    artifact=outcome.artifact,
                    size=store.size(outcome.artifact),
                    reason=lost[lost_version.id],
                    by="run",
                    run_id=run.id,
                )
            lease.release([fps[task.name]])
            b = bindings[task.name]
            outcomes[task.name] = ComponentOutcome(
                task.name,
                system[task.name].kind,
                "trained",
                (f"artifact {lost[lost_version.id]}",)
                if lost_version is not None
                else ((b.update.describe(),) if b.update is not None else ())
                + _causes(task.name, parts[task.name], parent_by_name),
                versions[task.name].id,
                fps[task.name],
                b.snapshot.id if b.snapshot else None,
                outcome.seconds,
                outcome.cpu_seconds,
                outcome.usage,
            )
            settled_todo.add(task.name)
            done = len(settled_todo)
            emit(
                RunEvent("finished", task.name, total=len(todo), seconds=outcome.seconds, done=done)
            )
            left = [n for n in todo if n not in settled_todo]
            check_budget(cpu_budget, outcomes.values(), left)

    def settled(meanwhile: Mapping[str, ComponentVersionRecord]) -> dict[str, Any]:
        """Versions another run recorded meanwhile that can be reused (artifact in store)."""
        usable = {n: v for n, v in meanwhile.items() if n not in rebuilding}
        bad = lost_artifacts(store, usable.values())
        return {n: v for n, v in usable.items() if v.id not in bad}

    for name in order:
        if name in found:
            reuse(name, found[name])
    lease = RunLease(catalog, run.id, system.name, seconds)
    try:
        with lease:
            for wave in system.levels():
                pending = [n for n in wave if n not in versions]
                while pending:
                    # One fit per fingerprint across runs: what another live run is fitting
                    # is waited for and reused, not fitted again.
                    mine, held = lease.claim({n: fps[n] for n in pending})
                    meanwhile = settled(
                        catalog.find_component_versions(system.name, {n: fps[n] for n in mine})
                    )
                    for name, v in meanwhile.items():
                        reuse(name, v)
                    lease.release([fps[n] for n in meanwhile])
                    fit([n for n in mine if n not in meanwhile])
                    if held:
                        recorded, _free = lease.wait({n: fps[n] for n in held})
                        for name, v in settled(recorded).items():
                            reuse(name, v)
                    pending = [n for n in wave if n not in versions]
        manifest = {n: versions[n].id for n in order}
        spec = system.spec()
        snapshot_ids = {b.snapshot.id for b in bindings.values() if b.snapshot}
        main_snapshot = _main_snapshot(bindings, order)
        if parent is not None and parent.manifest == manifest and same_spec(parent.spec, spec):
            version = parent  # nothing changed: re-running makes no new version
        else:
            # Any existing version with this manifest and spec (an older configuration, or
            # a concurrent run's result) is returned instead of a new one, inside the
            # insert's own transaction.
            version = catalog.add_system_version(
                system=system.name,
                manifest=manifest,
                spec=spec,
                parent_id=parent.id if parent else None,
                run_id=run.id,
                snapshot_id=main_snapshot,
                note=note,
                reuse_identical=True,
            )
        created = version.run_id == run.id
        ordered = {n: outcomes[n] for n in order}
        summary = {
            "trained": [n for n, o in ordered.items() if o.action == "trained"],
            "reused": [n for n, o in ordered.items() if o.action == "reused"],
            "rebuilt": [n for n in order if n in rebuilding],
            "causes": {n: list(o.causes) for n, o in ordered.items() if o.causes},
            "snapshots": sorted(snapshot_ids),
            "seeds": {n: bindings[n].seed for n in order},
            "created_version": created,
            "seconds": time.perf_counter() - started,
            "cpu_seconds": sum(o.cpu_seconds for o in ordered.values()),
            "usage": _usage(ordered, runner.name),  # cost accounting (#18)
        }
        run = catalog.finish_run(run.id, status="succeeded", summary=summary, version_id=version.id)
    except BaseException as exc:
        done = [n for n, o in outcomes.items() if o.action == "trained"]
        catalog.finish_run(
            run.id,
            status="failed",
            summary={
                "trained": done,
                # Ctrl-C, or SIGTERM as the CLI raises it: a stop, not a failure of the run
                "interrupted": isinstance(exc, KeyboardInterrupt),
                "exception": type(exc).__name__,
                # cost accounting (#18): spent anyway, the task it stopped in included
                "usage": _with_unfinished(_usage(outcomes, runner.name), meter.stop(rows=0)),
            },
            error=f"{type(exc).__name__}: {exc}",
        )
        raise
    finally:
        if owned_backend:
            runner.close()
    return RunResult(run, version, ordered, time.perf_counter() - started, created)


def _usage(outcomes: Mapping[str, ComponentOutcome], backend: str) -> dict[str, Any]:
    """The run summary's ``usage``: what the components fitted in the run used (#18)."""
    return summarize({n: o.usage for n, o in outcomes.items() if o.usage is not None}, backend)


def _with_unfinished(usage: dict[str, Any], spent: TaskUsage) -> dict[str, Any]:
    """A stopped run's ``usage`` with the CPU this process spent on it that no finished task
    accounts for, as ``unfinished`` and in the totals: the task a Ctrl-C or an error stopped
    in had cost its CPU too, and a 20-minute fit stopped near its end showed 0 CPU seconds.

    Tasks that ran in worker processes (``workers`` > 1, Ray) spent CPU this process does not
    see: for them it is a lower bound, and an unfinished one there counts nothing.

    >>> u = summarize({"a": TaskUsage(cpu_seconds=1.0, wall_seconds=1.0)}, "local")
    >>> stopped = _with_unfinished(u, TaskUsage(cpu_seconds=21.5, wall_seconds=22.0))
    >>> stopped["cpu_seconds"], stopped["unfinished"]["cpu_seconds"]
    (21.5, 20.5)
    """
    unaccounted = spent.cpu_seconds - float(usage.get("cpu_seconds") or 0.0)
    if unaccounted <= 0.0:
        return usage
    return {
        **usage,
        "cpu_seconds": round(float(usage.get("cpu_seconds") or 0.0) + unaccounted, 6),
        "peak_memory_bytes": max(int(usage.get("peak_memory_bytes") or 0), spent.peak_memory_bytes),
        "unfinished": {"cpu_seconds": round(unaccounted, 6)},
    }


def _main_snapshot(bindings: Mapping[str, Binding], order: Sequence[str]) -> str | None:
    """The snapshot most recently bound: the one a version was (last) trained on."""
    snaps = [s for n in order if (s := bindings[n].snapshot) is not None]
    if not snaps:
        return None
    return max(snaps, key=lambda s: s.created_at).id


def _task(
    system: System,
    name: str,
    binding: Binding,
    versions: Mapping[str, ComponentVersionRecord],
    store: ArtifactStore,
) -> TaskSpec:
    in_sample: tuple[str, ...] = ()
    if isinstance(system[name], Ensemble) and binding.snapshot is not None:
        # Members fitted on the stack's own rows: their outputs there are in-sample.
        in_sample = tuple(
            m for m in system[name].inputs if versions[m].snapshot_id == binding.snapshot.id
        )
    comp = system[name]
    # A stack learns from its members' outputs: it needs them fitted, not just the transforms.
    needed = [
        a
        for a in system.ancestors(name)
        if isinstance(system[a], Transform) or (comp.learns_from_data and comp.kind == "ensemble")
    ]
    upstream: dict[str, str] = {}
    for t in needed:
        artifact = versions[t].artifact
        assert artifact is not None
        upstream[t] = artifact
    columns = (
        tuple(sorted(system.raw_columns(name) | {system.target}))
        if binding.snapshot is not None
        else ()
    )
    return TaskSpec(
        name=name,
        component=comp,
        target=system.target,
        seed=binding.seed,
        store_url=store.url,
        snapshot_artifact=binding.snapshot.artifact if binding.snapshot else None,
        columns=columns,
        upstream=upstream,
        # Every upstream's own adapters as this system declares them (none: an empty list).
        upstream_adapters={t: _own_list(system, t) for t in upstream},
        in_sample=in_sample,
        outputs=dict(binding.outputs),
        update=(
            {"action": binding.update.action, "params": dict(binding.update.params)}
            if binding.update is not None
            else None
        ),
        base_artifact=binding.update.base.artifact if binding.update is not None else None,
        reference_artifact=(
            binding.update.reference.artifact
            if binding.update is not None and binding.update.reference is not None
            else None
        ),
    )


def _record(
    catalog: Catalog,
    system: System,
    task: TaskSpec,
    outcome: TaskResult,
    parts: Mapping[str, dict[str, Any]],
    fps: Mapping[str, str],
    bindings: Mapping[str, Binding],
    run_id: str,
    store: ArtifactStore,
) -> ComponentVersionRecord:
    b = bindings[task.name]
    return catalog.add_component_version(
        system=system.name,
        component=task.name,
        kind=system[task.name].kind,
        fingerprint=fps[task.name],
        parts=parts[task.name],
        artifact=outcome.artifact,
        run_id=run_id,
        snapshot_id=b.snapshot.id if b.snapshot else None,
        seed=b.seed,
        train_seconds=outcome.seconds,
        info={
            **outcome.info,
            "cpu_seconds": outcome.cpu_seconds,
            "usage": outcome.usage.to_dict(),  # cost accounting (#18): see regrow.costs.Meter
            ARTIFACT_BYTES: store.size(outcome.artifact),  # the runner's cheap check reads it
            "code": code_locations(system[task.name].estimator),
        },
    )


def partial_bindings(
    catalog: Catalog,
    system: System,
    parent: SystemVersionRecord,
    data: SnapshotRecord,
    run_seed: int,
    *,
    fresh: Collection[str],
    updates: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
) -> dict[str, Binding]:
    """The bindings of a partial update of ``parent``.

    Components in ``fresh`` (and components ``parent`` lacks) are fitted on ``data`` with a seed
    derived from ``run_seed``; those in ``updates`` (name -> (update, params)) update their
    version in ``parent`` on ``data``. Every other component keeps the snapshot and seed its
    version was trained with, so its fingerprint, and so its version, is unchanged unless
    something it depends on changed.
    """
    recorded = catalog.get_component_versions(list(parent.manifest.values()))
    by_name = {v.component: v for v in recorded.values()}
    snaps: dict[str, SnapshotRecord] = {data.id: data}
    bindings: dict[str, Binding] = {}
    for name, comp in system.components.items():
        old = by_name.get(name)
        if name in fresh or old is None:
            bindings[name] = Binding(
                data if comp.learns_from_data else None, derive_seed(run_seed, name)
            )
        elif updates and name in updates:
            action, params = updates[name]
            bindings[name] = Binding(
                data, derive_seed(run_seed, name), UpdateSpec(action, params, old)
            )
        elif old.snapshot_id is not None and comp.learns_from_data:
            if old.snapshot_id not in snaps:
                snaps[old.snapshot_id] = catalog.get_snapshot(old.snapshot_id)
            bindings[name] = Binding(snaps[old.snapshot_id], old.seed)
        else:
            bindings[name] = Binding(None, old.seed)
    return bindings


def full_bindings(system: System, snapshot: SnapshotRecord, run_seed: int) -> dict[str, Binding]:
    """Every component bound to ``snapshot`` with a seed derived from ``run_seed``."""

    return {
        n: Binding(snapshot if c.learns_from_data else None, derive_seed(run_seed, n))
        for n, c in system.components.items()
    }


def _own_list(system: System, name: str) -> list[dict[str, Any]]:
    """Component ``name``'s own adapters as stored JSON (empty when it has none, or was
    pickled before components had adapters)."""
    adapters = getattr(system[name], "adapters", None)
    return adapters.to_list() if adapters else []
