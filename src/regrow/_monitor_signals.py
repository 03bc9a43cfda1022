"""The monitor's signals beyond per-feature drift, for a regrow system version: multivariate
drift, estimated and realised performance per chunk, distributions, alerts.

:func:`regrow.monitoring.check_version` calls :func:`system_signals` when the monitor runs as a
product (``Workspace.monitor``, ``regrow monitor``); the planner, which needs none of it,
does not. The multivariate checks and the distributions compare the window with a seeded
sample of the version's training snapshot (at most ``monitoring.reference_rows`` rows,
stratified by label). The estimators (CBPE, DLE) are fitted on held-out labelled rows when
the version has them: the snapshot of its newest evaluation that it did not train on (a
model's scores on its own training rows are overconfident); else on the training sample,
and a note says the estimates lean optimistic. The system's outputs on the reference rows are
predicted once and stored, like the window's. The reference samples, the fitted estimators
and the PCA are kept for the process (:mod:`regrow.monitor.shared`): the next window of the
same version does not work them out again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from regrow.errors import DataError, RegrowError
from regrow.monitor.assemble import distributions, multivariate_alerts
from regrow.monitor.chunks import Chunk
from regrow.monitor.sample import sample_rows
from regrow.monitor.shared import version_key
from regrow.monitor.signals import Alert, PerformanceSignals, Scored, Task, performance_signals
from regrow.progress import Timer

if TYPE_CHECKING:
    from regrow.catalog.records import SnapshotRecord, SystemVersionRecord
    from regrow.model import FittedSystem
    from regrow.plan.policy import MonitoringPolicy
    from regrow.services import Services

__all__ = ["SystemSignals", "system_signals"]


@dataclass(frozen=True)
class SystemSignals:
    """Multivariate drift, performance estimates, distributions and their alerts."""

    multivariate: list[Any] = field(default_factory=list)
    estimates: PerformanceSignals | None = None
    distributions: dict[str, Any] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    notes: tuple[str, ...] = ()


def system_signals(
    services: Services,
    model: FittedSystem,
    window: SnapshotRecord,
    frame: pd.DataFrame,
    usable: pd.DataFrame,
    reference_id: str,
    columns: Sequence[str],
    chunks: Sequence[Chunk],
    settings: MonitoringPolicy,
    *,
    version: SystemVersionRecord,
    trained_on: Collection[str],
    seed: int,
    timer: Timer,
) -> SystemSignals:
    """The signals of ``model`` on the window (``frame``: every row as read; ``usable``: the
    rows the version can score, indexed by their position in ``frame``)."""
    target = model.target
    cols = [c for c in columns if c != target]
    available = services.record(reference_id).columns
    wanted = [c for c in available if c in set(cols) | {target}]
    by = target if model.task == "classification" and target in wanted else None
    reference, sampled = _sample(services, reference_id, wanted, settings.reference_rows, by, seed)
    notes: list[str] = []
    multi: list[Any] = []
    if settings.multivariate and cols:
        from regrow.monitor.multivariate import multivariate_drift

        with timer.step("multivariate"):
            try:
                multi = multivariate_drift(
                    reference.reindex(columns=cols), frame[[c for c in cols if c in frame]], cols,
                    chunks=chunks, methods=tuple(settings.multivariate), seed=seed,
                    reference_key=sampled,
                )  # fmt: skip
            except DataError as exc:  # a reference too small to fit and calibrate on
                notes.append(f"multivariate drift is not checked: {exc.message}")
    estimates = None
    if not len(usable):
        notes.append("performance is not estimated: no row of the window can be scored")
    elif target not in reference.columns:
        notes.append(
            f"performance is not estimated: the training snapshot has no target {target!r}"
        )
    else:
        held_out = _held_out(services, version, trained_on, window.id, target)
        fit_on, fit_id, fit_key = reference, reference_id, sampled
        if held_out is not None:
            rows, key = _sample(
                services, held_out.id, [c for c in held_out.columns if c in wanted],
                settings.reference_rows, by, seed,
            )  # fmt: skip
            scorable = _scorable(services, version, model, rows)
            if scorable is None:
                notes.append(
                    f"the rows of snapshot {held_out.name or held_out.id[:12]} (the version's "
                    "newest evaluation) cannot be scored as the version reads them: "
                    "performance is estimated from the training snapshot"
                )
                held_out = None
            else:
                fit_on, fit_id, fit_key = scorable, held_out.id, key
        with timer.step("estimates"):
            estimates = _estimates(
                services, model, window, usable, fit_on, fit_id, chunks, settings,
                seed, len(frame), fit_key, version_key(version.id, model),
            )  # fmt: skip
        if estimates.method is not None:
            method = estimates.method.upper()
            notes.append(
                f"performance is estimated ({method}) from {estimates.reference_rows:,} held-out "
                f"rows of snapshot {held_out.name or held_out.id[:12]} (the version's newest "
                "evaluation)"
                if held_out is not None
                else f"performance is estimated ({method}) from "
                f"{estimates.reference_rows:,} rows of the training snapshot: in-sample, so an "
                "overfit model's estimates lean optimistic (an evaluation on held-out rows, "
                "`regrow evaluate`, gives them a better reference)"
            )
    dist = distributions(reference, frame, cols, reference_key=sampled)
    alerts = [*(estimates.alerts if estimates else []), *multivariate_alerts(multi)]
    return SystemSignals(multi, estimates, dist, alerts, tuple(notes))


def _sample(
    services: Services, snapshot: str, columns: list[str], rows: int, by: str | None, seed: int
) -> tuple[pd.DataFrame, tuple[Any, ...]]:
    """``columns`` of a seeded sample of at most ``rows`` rows of ``snapshot`` (stratified by
    ``by``), and the key that names it; kept for the process
    (:data:`regrow.monitor.shared.REFERENCES`), each caller gets its own shallow copy."""
    from regrow.monitor.shared import REFERENCES

    key = ("reference", services.record(snapshot).id, tuple(columns), rows, by, seed)
    found: pd.DataFrame = REFERENCES.get(
        key, lambda: sample_rows(services.frame(snapshot, columns), rows, by=by, seed=seed)
    )
    return found.copy(deep=False), key


def _scorable(
    services: Services, version: SystemVersionRecord, model: FittedSystem, rows: pd.DataFrame
) -> pd.DataFrame | None:
    """The rows of an evaluation snapshot the label-free estimator can learn from: those the
    version can score (the window's data-quality check: a null or a stray string in a column
    a member cannot take is set aside) that carry a label; None when fewer than 2 are left,
    or the rows do not fit the version at all. A null in one evaluation row made every later
    monitor, and so every later `regrow watch` cycle, fail on the member's NaN error."""
    from regrow.monitoring import window_quality

    try:
        usable = window_quality(services, version, rows, model).usable
    except RegrowError:
        return None
    usable = usable[usable[model.target].notna()]
    return usable if len(usable) >= 2 else None


def _held_out(
    services: Services,
    version: SystemVersionRecord,
    trained_on: Collection[str],
    window: str,
    target: str,
) -> SnapshotRecord | None:
    """The labelled snapshot of the version's newest evaluation that none of its members
    trained on (and that is not the window itself), if any."""
    for evaluation in services.catalog.list_evaluations(version.id):
        snap = evaluation.snapshot_id
        if snap not in trained_on and snap != window:
            record = services.record(snap)
            if target in record.columns:
                return record
    return None


def _estimates(
    services: Services,
    model: FittedSystem,
    window: SnapshotRecord,
    usable: pd.DataFrame,
    reference: pd.DataFrame,
    reference_id: str,
    chunks: Sequence[Chunk],
    settings: MonitoringPolicy,
    seed: int,
    rows: int,
    sampled: tuple[Any, ...],
    model_id: tuple[str, str] | None,
) -> PerformanceSignals:
    outputs = services.outputs
    target = model.target
    win_out = model.output_of(outputs.member_outputs(model, usable, snapshot=window.id), usable)
    classes = model.classes_
    binary = classes is not None and len(classes) == 2
    if classes is not None and binary:
        task = Task("classification", tuple(classes), 0.5)
        win_out = win_out[:, 1]
    elif classes is not None:
        task = Task("classification", tuple(classes))
    else:
        task = Task("regression")
    cols = [c for c in reference.columns if c != target]

    def scored() -> Scored:  # the reference's outputs: only when the estimator is fitted
        out = model.output_of(
            outputs.member_outputs(model, reference, snapshot=reference_id), reference
        )
        return Scored(
            reference[cols], np.asarray(out[:, 1] if binary else out),
            reference[target].to_numpy(object),
        )  # fmt: skip

    # Chunks hold positions in the whole window; the usable rows are a subset of them.
    at = np.full(rows, -1)
    at[np.asarray(usable.index, int)] = np.arange(len(usable))
    usable_chunks = [Chunk(c.label, at[c.index][at[c.index] >= 0], c.start, c.end) for c in chunks]
    win_labels = usable[target].to_numpy(object) if target in usable.columns else None
    return performance_signals(
        task,
        scored,
        Scored(usable.reindex(columns=cols), np.asarray(win_out), win_labels),
        usable_chunks,
        cost_matrix=[list(r) for r in settings.cost_matrix] if settings.cost_matrix else None,
        rules={k: r.model_dump(exclude_none=True) for k, r in settings.alerts.items()},
        sigmas=settings.alert_sigmas,
        margin=settings.alert_margin,
        seed=seed,
        reference_key=None if model_id is None else (model_id, sampled),
    )
