"""Evaluate a candidate version against a baseline on a snapshot, and record the evaluation.

What ``Workspace.evaluate`` and ``regrow evaluate`` run: both versions are loaded (each
artifact once: a candidate shares most of its components with the baseline it was updated
from), every member is predicted once on the snapshot's rows (a member both versions share
is predicted for one of them; rows an earlier command stored are read back, and the rows
predicted now are stored with the evaluation), then :func:`~regrow.evaluate.evaluation.compare`
scores them with intervals and applies the gate. Each step is reported to ``progress``
(:mod:`regrow.progress`), and the result carries the seconds each took.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from regrow.evaluate.evaluation import Comparison, Gate, compare
from regrow.progress import ProgressFn, Timer

if TYPE_CHECKING:
    from regrow.catalog.records import EvaluationRecord, SnapshotRecord
    from regrow.services import Services

__all__ = ["evaluate"]


def evaluate(
    services: Services,
    candidate: str,
    snapshot: SnapshotRecord | str,
    *,
    baseline: str | None = None,
    metric: str | None = None,
    gate: Gate | None = None,
    progress: ProgressFn | None = None,
) -> tuple[EvaluationRecord, Comparison]:
    """Compare ``candidate`` with ``baseline`` on ``snapshot`` and its slices; record it."""
    timer = Timer(progress)
    catalog = services.catalog
    with timer.step("load"):
        cand_v = catalog.get_system_version(candidate)
        base_v = catalog.get_system_version(baseline) if baseline else None
        snap = services.record(snapshot)
        frame = services.frame(snap.id)
        cand = services.load(cand_v)
        base = services.load(base_v) if base_v else None
    outputs = services.outputs
    with timer.step("predict", total=1 + (base is not None)) as step:
        for model in (cand, base):
            if model is not None:
                outputs.member_outputs(model, frame, snapshot=snap.id)
                step.advance()
    with timer.step("compare"):
        result = compare(
            cand, base, frame, metric=metric, slices=snap.slices, gate=gate,
            outputs=lambda model, rows: outputs.member_outputs(model, rows, snapshot=snap.id),
        )  # fmt: skip
    with timer.step("record"):
        record = catalog.add_evaluation(
            candidate_id=cand_v.id,
            baseline_id=base_v.id if base_v else None,
            snapshot_id=snap.id,
            metric=result.metric,
            results={
                **result.as_dict(),
                "timings": {k: round(v, 4) for k, v in timer.seconds.items()},
            },
            verdict=result.verdict,
            reasons=list(result.reasons),
        )
        outputs.save()
    return record, replace(result, timings=dict(timer.seconds))
