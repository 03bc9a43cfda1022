"""A rollout's evidence: per-request losses by lane, from the prediction log and feedback.

The server logs each served row with its lane and system version (:mod:`regrow.serve.predlog`);
labels come back by request id (``catalog.predictions``). For a rollout this module reads the
rows logged since it started, keeps those of its two versions, joins their labels and gives
each labelled **request** one loss in ``[0, 1]``: the mean over its labelled rows of

* a classifier's error, ``prediction != label`` (a row is a classifier's when the log holds
  ``proba__*`` outputs), or
* a regressor's absolute error divided by ``params["loss_cap"]`` and capped at 1 (a rollout of a
  regressor must set the cap: the error it takes as a total miss).

Requests, not rows, are the observations: lanes are assigned per request key, so rows of one
request are not independent. The lanes read, by mode:

==============  ========================================================================
split           ``candidate`` (rows of the candidate) against ``main`` (rows of the stable)
blue-green      ``candidate`` against the stable version's rows of the ``baseline_hours``
                before the rollout started (no stable lane runs beside it)
shadow          ``shadow`` against ``main``, paired by request: per-request differences
==============  ========================================================================

``step_requests`` counts the candidate's labelled requests served since the current step
began: the fresh evidence a step needs before it moves on.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from regrow.errors import ArtifactCorrupted, ArtifactNotFound, ConfigError, DataError
from regrow.rollout.assign import STABLE

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.catalog.rollouts import RolloutRecord
    from regrow.catalog.store import ArtifactStore

__all__ = ["CANDIDATE", "SHADOW", "Evidence", "read_evidence", "request_losses"]

#: The lane serving the candidate in a split or blue-green rollout.
CANDIDATE = "candidate"
#: The lane a shadow candidate's outputs are logged under (scored, never served).
SHADOW = "shadow"
_COLUMNS = ["request_id", "row", "served_at", "lane", "system_version", "output"]


@dataclass(frozen=True)
class Evidence:
    """Per-request losses of the candidate and the stable version (see the module docs)."""

    candidate: list[float] = field(default_factory=list)
    stable: list[float] = field(default_factory=list)
    #: Shadow mode: per-request ``candidate - stable`` on the same requests.
    paired: list[float] | None = None
    step_requests: int = 0

    def summary(self) -> dict[str, Any]:
        """Counts and means, for an audit event."""

        def mean(xs: list[float]) -> float | None:
            return round(math.fsum(xs) / len(xs), 6) if xs else None

        out: dict[str, Any] = {
            "candidate_requests": len(self.candidate), "candidate_loss": mean(self.candidate),
            "stable_requests": len(self.stable), "stable_loss": mean(self.stable),
            "step_requests": self.step_requests,
        }  # fmt: skip
        if self.paired is not None:
            out["paired_requests"] = len(self.paired)
        return out


def request_losses(
    rows: list[dict[str, Any]], labels: dict[tuple[str, int], Any], loss_cap: float | None
) -> dict[str, tuple[float, datetime]]:
    """``request_id -> (mean loss of its labelled rows, when it was served)``."""
    sums: dict[str, list[float]] = defaultdict(list)
    when: dict[str, datetime] = {}
    for r in rows:
        key = (r["request_id"], r["row"])
        if key not in labels:
            continue
        sums[r["request_id"]].append(_loss(r, labels[key], loss_cap))
        when[r["request_id"]] = r["served_at"]
    return {k: (math.fsum(v) / len(v), when[k]) for k, v in sums.items()}


def _loss(row: dict[str, Any], label: Any, loss_cap: float | None) -> float:
    predicted = row["prediction"]
    if row["classifier"]:
        return 0.0 if _same(predicted, label) else 1.0
    if loss_cap is None:
        raise ConfigError(
            "the rollout of a regressor has no loss_cap",
            hint="start it with --loss-cap ERROR: the absolute error counted as a total miss",
        )
    try:
        return min(abs(float(predicted) - float(label)) / loss_cap, 1.0)
    except (TypeError, ValueError):
        raise DataError(
            f"label {label!r} of request {row['request_id']!r} is not a number",
            hint="send numeric labels for a regressor's predictions",
        ) from None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float | str):
        try:
            return float(a) == float(b)
        except ValueError:
            return False
    return str(a) == str(b)


def _rows(
    catalog: Catalog,
    store: ArtifactStore,
    system: str,
    since: datetime,
    until: datetime | None,
    versions: set[str],
) -> list[dict[str, Any]]:
    """The logged rows of ``versions`` of ``system`` served in ``[since, until)``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    out: list[dict[str, Any]] = []
    for f in catalog.predictions.files(system, since=since, until=until):
        if not versions & set(f.versions):
            continue
        try:
            data = store.get(f.artifact)
        except (ArtifactNotFound, ArtifactCorrupted) as exc:
            raise DataError(
                f"the log file {f.artifact[:12]} of {system!r} is lost: {exc.message}",
                hint="restore the artifact store, or abort the rollout and start it again",
            ) from exc
        table = pq.read_table(pa.BufferReader(data), columns=_COLUMNS)
        outputs = table.column("output").type
        classifier = any(
            outputs.field(i).name.startswith("proba__") for i in range(outputs.num_fields)
        )
        at = table.column("served_at")
        keep = pc.and_(
            pc.is_in(table.column("system_version"), pa.array(sorted(versions), pa.string())),
            pc.greater_equal(at, pa.scalar(since, at.type)),
        )
        if until is not None:
            keep = pc.and_(keep, pc.less(at, pa.scalar(until, at.type)))
        flat = table.filter(keep).flatten()
        for r in flat.select([*_COLUMNS[:5], "output.prediction"]).to_pylist():
            r["prediction"] = r.pop("output.prediction")
            r["classifier"] = classifier
            out.append(r)
    return out


def read_evidence(
    catalog: Catalog, store: ArtifactStore, rollout: RolloutRecord, *, until: datetime | None = None
) -> Evidence:
    """The evidence of ``rollout`` logged up to ``until`` (default: everything)."""
    stable = catalog.get_system_version(rollout.stable_id).ref
    candidate = catalog.get_system_version(rollout.candidate_id).ref
    cap = rollout.params.get("loss_cap")
    rows = _rows(catalog, store, rollout.system, rollout.created_at, until, {stable, candidate})
    cand_lane = SHADOW if rollout.mode == "shadow" else CANDIDATE
    mine = [r for r in rows if r["lane"] == cand_lane and r["system_version"] == candidate]
    if rollout.mode == "blue-green":
        hours = float(rollout.params.get("baseline_hours", 24.0))
        start = rollout.created_at - timedelta(hours=hours)
        before = _rows(catalog, store, rollout.system, start, rollout.created_at, {stable})
        theirs = [r for r in before if r["system_version"] == stable]
    else:
        theirs = [r for r in rows if r["lane"] == STABLE and r["system_version"] == stable]
    ids = {r["request_id"] for r in mine} | {r["request_id"] for r in theirs}
    labels = catalog.predictions.labels(rollout.system, sorted(ids))
    c = request_losses(mine, labels, cap)
    s = request_losses(theirs, labels, cap)
    fresh = sum(1 for _, at in c.values() if at >= rollout.step_started_at)
    if rollout.mode != "shadow":
        return Evidence([v for v, _ in c.values()], [v for v, _ in s.values()], None, fresh)
    both = sorted(set(c) & set(s))
    paired = [c[k][0] - s[k][0] for k in both]
    fresh = sum(1 for k in both if c[k][1] >= rollout.step_started_at)
    return Evidence([c[k][0] for k in both], [s[k][0] for k in both], paired, fresh)
