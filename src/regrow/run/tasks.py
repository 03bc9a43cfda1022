"""The unit of work of a run: fit one component, write it to the store, return its key.

A task carries only small things (the component spec, ids, keys, the store's URL): data and
fitted upstream components move through the content-addressed store, so the same task runs in
this process, in a worker process, or on another machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from regrow import _pickling
from regrow._threads import fitting
from regrow.components.base import Component
from regrow.components.fitted import FittedComponent, fit_component
from regrow.components.outputs import KnownOutputs
from regrow.costs import Meter, TaskUsage

__all__ = ["TaskResult", "TaskSpec", "load_fitted", "run_task"]


@dataclass(frozen=True)
class TaskSpec:
    """Fit ``component`` on ``columns`` of the snapshot stored under ``snapshot_artifact``."""

    name: str
    component: Component
    target: str
    seed: int
    store_url: str
    snapshot_artifact: str | None
    columns: tuple[str, ...]
    upstream: Mapping[str, str] = field(default_factory=dict)  # transform name -> artifact key
    # upstream name -> its own adapters in the system being run (their stored JSON)
    upstream_adapters: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)
    update: Mapping[str, Any] | None = None  # {"action": ..., "params": {...}}
    base_artifact: str | None = None  # the fitted version an update starts from
    reference_artifact: str | None = None  # rows an update may replay
    in_sample: tuple[str, ...] = ()  # a stack's members fitted on these same rows
    outputs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # stored member outputs


@dataclass(frozen=True)
class TaskResult:
    """What a finished task returns: the fitted component's key and facts about the fit.

    ``usage`` holds everything the task used (:class:`regrow.costs.Meter` says how each
    figure is measured); ``seconds`` and ``cpu_seconds`` repeat its wall and CPU seconds.
    """

    name: str
    artifact: str
    info: dict[str, Any]
    seconds: float
    cpu_seconds: float
    # Cost accounting (#18): CPU, GPU and wall seconds, peak memory, rows.
    usage: TaskUsage = field(default_factory=TaskUsage)


def dumps_fitted(fitted: FittedComponent) -> bytes:
    """Serialize a fitted component (spec, estimator and info), the user's code by value."""
    return _pickling.dumps(fitted)


def load_fitted(data: bytes) -> FittedComponent:
    """Load bytes written by :func:`dumps_fitted`, already verified by the store's hash check."""
    fitted = _pickling.loads(data, what="a fitted component")
    if not isinstance(fitted, FittedComponent):
        raise TypeError(f"artifact holds a {type(fitted).__name__}, not a fitted component")
    return fitted


def run_task(spec: TaskSpec) -> TaskResult:
    """Fit the component of ``spec`` and store it. Runs anywhere the store URL is reachable."""
    from regrow.catalog.store import open_store
    from regrow.data.snapshot import read_parquet

    meter = Meter()  # cost accounting (#18): measures the task from here to the end
    store = open_store(spec.store_url)
    upstream = {name: load_fitted(store.get(key)) for name, key in spec.upstream.items()}
    if spec.upstream_adapters:  # a reused transform reads through the system's adapters now
        from regrow.model import with_own_adapters

        specs = {"components": {n: {"adapters": a} for n, a in spec.upstream_adapters.items()}}
        upstream = with_own_adapters(specs, upstream)
    if spec.snapshot_artifact is not None and spec.columns:
        table = read_parquet(store.get(spec.snapshot_artifact), columns=list(spec.columns))
        frame = table.to_pandas()
    else:
        import pandas as pd

        frame = pd.DataFrame()
    with fitting(len(frame)):  # its share of the CPUs, one OpenMP thread on small data
        fitted = _fit(spec, store, frame, upstream)
    key = store.put(dumps_fitted(fitted))
    usage = meter.stop(rows=len(frame))  # the rows read to train on (0: an ensemble's weights)
    return TaskResult(
        name=spec.name,
        artifact=key,
        info=fitted.info,
        seconds=usage.wall_seconds,
        cpu_seconds=usage.cpu_seconds,
        usage=usage,
    )


def _fit(
    spec: TaskSpec, store: Any, frame: Any, upstream: dict[str, FittedComponent]
) -> FittedComponent:
    """The component of ``spec`` fitted on ``frame``, or its update applied to the base."""
    if spec.update is not None:
        from regrow.data.snapshot import read_parquet
        from regrow.plan.updates import apply_update

        if spec.base_artifact is None:
            raise ValueError(f"update of {spec.name!r} names no base version")
        reference = None
        if spec.reference_artifact is not None:
            reference = read_parquet(
                store.get(spec.reference_artifact), columns=list(spec.columns)
            ).to_pandas()
        return apply_update(
            load_fitted(store.get(spec.base_artifact)),
            frame,
            target=spec.target,
            upstream=upstream,
            seed=spec.seed,
            action=str(spec.update["action"]),
            params=spec.update.get("params", {}),
            reference=reference,
        )
    return fit_component(
        spec.component,
        frame,
        target=spec.target,
        upstream=upstream,
        seed=spec.seed,
        in_sample=spec.in_sample,
        known=_known_outputs(store, spec),
    )


def _known_outputs(store: Any, spec: TaskSpec) -> KnownOutputs | None:
    """The members' outputs stored for a stack's rows (``spec.outputs``), if any: tables by
    output key, with the artifact of each upstream component to name the members by."""
    if not spec.outputs:
        return None
    from regrow.components.outputs import OutputTable

    tables: dict[str, OutputTable] = {}
    for key, artifacts in spec.outputs.items():
        table = OutputTable.empty()
        for artifact in artifacts:
            try:
                part = OutputTable.from_bytes(store.get(artifact))
            except (LookupError, ValueError, OSError):
                continue  # lost or damaged: those rows are predicted
            table = table.merge(part.keys, part.checks, part.values)
        tables[key] = table
    return KnownOutputs(tables, dict(spec.upstream))
