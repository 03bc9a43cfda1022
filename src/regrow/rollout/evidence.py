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
ab              each candidate lane (``candidate``, ``candidate-2``, ...) against ``main``:
                :attr:`Evidence.lanes` holds one evidence per lane (a dropped one empty)
blue-green      ``candidate`` against the stable version's rows of the ``baseline_hours``
                before the rollout started (no stable lane runs beside it)
shadow, blend   ``shadow`` (the candidate, scored on every request) against ``main`` (the
                stable version, on the same requests), paired by request: per-request
                differences
==============  ========================================================================

``step_requests`` counts the candidate's labelled requests served since the current step
began: the fresh evidence a step needs before it moves on.

**Slices.** A rollout started with ``slices={"name": "pandas query"}`` gets, beside the
evidence over all traffic, one evidence per slice (:attr:`Evidence.slices`), built the same way
from the rows whose logged inputs the expression selects (a request's loss in a slice is the
mean over its rows in the slice). The log is read through :mod:`regrow.rollout.logcache`, which
parses each immutable prediction file once; labels are read afresh each time.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from regrow.errors import ConfigError
from regrow.labels import is_class
from regrow.rollout.assign import STABLE
from regrow.rollout.logcache import FileCache, logged_rows

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.catalog.rollouts import RolloutRecord
    from regrow.catalog.store import ArtifactStore

__all__ = ["CANDIDATE", "SHADOW", "Evidence", "read_evidence", "request_losses"]

#: The lane serving the candidate in a split or blue-green rollout.
CANDIDATE = "candidate"
#: The lane a shadow candidate's outputs are logged under (scored, never served).
SHADOW = "shadow"
_PAIRED = ("shadow", "blend")
Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class Evidence:
    """Per-request losses of the candidate and the stable version (see the module docs)."""

    candidate: list[float] = field(default_factory=list)
    stable: list[float] = field(default_factory=list)
    #: Shadow and blend modes: per-request ``candidate - stable`` on the same requests.
    paired: list[float] | None = None
    step_requests: int = 0
    #: An A/B rollout's evidence per candidate lane (then ``candidate`` is empty).
    lanes: dict[str, Evidence] = field(default_factory=dict)
    #: The evidence of each slice of the traffic (see the module docs).
    slices: dict[str, Evidence] = field(default_factory=dict)
    #: Labelled rows skipped because their label cannot be compared with the prediction.
    unusable_labels: int = 0

    def summary(self) -> dict[str, Any]:
        """Counts and means, for an audit event.

        >>> Evidence([1.0, 0.0], [0.0, 0.0], None, 2).summary()["candidate_loss"]
        0.5
        """

        def mean(xs: list[float]) -> float | None:
            return round(math.fsum(xs) / len(xs), 6) if xs else None

        out: dict[str, Any] = {
            "candidate_requests": len(self.candidate), "candidate_loss": mean(self.candidate),
            "stable_requests": len(self.stable), "stable_loss": mean(self.stable),
            "step_requests": self.step_requests,
        }  # fmt: skip
        if self.paired is not None:
            out["paired_requests"] = len(self.paired)
        if self.lanes:
            out["lanes"] = {name: ev.summary() for name, ev in self.lanes.items()}
        if self.slices:
            out["slices"] = {name: ev.summary() for name, ev in self.slices.items()}
        if self.unusable_labels:
            out["unusable_labels"] = self.unusable_labels
        return out


def request_losses(
    rows: list[dict[str, Any]],
    labels: dict[tuple[str, int], Any],
    loss_cap: float | None,
    unusable: set[tuple[str, int]] | None = None,
) -> dict[str, tuple[float, datetime]]:
    """``request_id -> (mean loss of its labelled rows, when it was served)``.

    A label that cannot be compared with the prediction (a regressor's label that is no
    number, a classifier's that is no plain value) is skipped; its ``(request_id, row)`` is
    added to ``unusable``.

    >>> from datetime import datetime, UTC
    >>> at = datetime(2026, 1, 1, tzinfo=UTC)
    >>> rows = [{"request_id": r, "row": 0, "prediction": 2.0, "classifier": False,
    ...          "served_at": at} for r in ("a", "b")]
    >>> skipped: set[tuple[str, int]] = set()
    >>> request_losses(rows, {("a", 0): 1.0, ("b", 0): "n/a"}, 4.0, skipped), skipped
    ({'a': (0.25, datetime.datetime(2026, 1, 1, 0, 0, tzinfo=datetime.timezone.utc))}, {('b', 0)})
    """
    sums: dict[str, list[float]] = defaultdict(list)
    when: dict[str, datetime] = {}
    # A client may reuse a request id: a label belongs to the latest prediction under it, as
    # in `regrow window --labelled`, not to every one (each would count it again).
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for r in rows:
        key = (r["request_id"], r["row"])
        if key in labels and (
            (old := latest.get(key)) is None or r["served_at"] >= old["served_at"]
        ):
            latest[key] = r
    for (rid, n), r in latest.items():
        label = labels[(rid, n)]
        predicted = r["prediction"]
        if r["classifier"] and type(predicted) is type(label):  # the fast, common case
            sums[rid].append(0.0 if predicted == label else 1.0)
        elif (loss := _loss(r, label, loss_cap)) is not None:
            sums[rid].append(loss)
        else:
            if unusable is not None:
                unusable.add((rid, r["row"]))
            continue
        when[rid] = r["served_at"]
    return {k: (math.fsum(v) / len(v) if len(v) > 1 else v[0], when[k]) for k, v in sums.items()}


def _loss(row: dict[str, Any], label: Any, loss_cap: float | None) -> float | None:
    """The row's loss, None for a label that cannot be compared with the prediction."""
    predicted = row["prediction"]
    if row["classifier"]:
        if label is None or not isinstance(label, str | int | float | bool):
            return None
        return 0.0 if _same(predicted, label) else 1.0
    if loss_cap is None:
        raise ConfigError(
            "the rollout of a regressor has no loss_cap",
            hint="abort it and start it again with --loss-cap ERROR: the absolute error "
            "counted as a total miss",
        )
    if isinstance(label, bool):
        return None
    try:
        error = abs(float(predicted) - float(label))
    except (TypeError, ValueError):
        return None
    return min(error / loss_cap, 1.0) if math.isfinite(error) else None


def _same(predicted: Any, label: Any) -> bool:
    """Whether ``label`` names the ``predicted`` class, by the rule feedback is checked with
    (:func:`regrow.labels.is_class`: ``1``, ``"1"``, ``1.0`` and ``true`` alike)."""
    if type(predicted) is type(label):  # the common case, and the fast one
        return bool(predicted == label)
    return is_class(label, (predicted,))


def read_evidence(
    catalog: Catalog,
    store: ArtifactStore,
    rollout: RolloutRecord,
    *,
    until: datetime | None = None,
    cache: FileCache | None = None,
) -> Evidence:
    """The evidence of ``rollout`` logged up to ``until`` (default: everything)."""
    ref = _refs(catalog)
    stable = ref(rollout.stable_id)
    arms = _arms(rollout, ref)
    slices = tuple(sorted(dict(rollout.params.get("slices") or {}).items()))
    versions = {stable, *(v for v in arms.values() if v is not None)}
    rows = logged_rows(catalog, store, rollout.system, rollout.created_at, until, versions,
                       slices=slices, cache=cache)  # fmt: skip
    # the rows this rollout routed: neither another alias's rollout of the same versions
    # nor requests served without one (files written before the id was logged: all rows)
    rows = [r for r in rows if r.get("rollout", rollout.id) == rollout.id]
    if rollout.mode == "blue-green":
        hours = float(rollout.params.get("baseline_hours", 24.0))
        start = rollout.created_at - timedelta(hours=hours)
        before = logged_rows(catalog, store, rollout.system, start, rollout.created_at,
                             {stable}, slices=slices, cache=cache)  # fmt: skip
        theirs = [r for r in before if r["system_version"] == stable]
    else:
        theirs = [r for r in rows if r["lane"] == STABLE and r["system_version"] == stable]
    mine = {lane: [r for r in rows if r["lane"] == lane and r["system_version"] == v]
            for lane, v in arms.items() if v is not None}  # fmt: skip
    ids = {r["request_id"] for r in theirs}.union(*({r["request_id"] for r in m}
                                                   for m in mine.values()))  # fmt: skip
    labels = catalog.predictions.labels(rollout.system, sorted(ids))
    cap = rollout.params.get("loss_cap")
    paired = rollout.mode in _PAIRED
    bad: set[tuple[str, int]] = set()

    def losses(lane_rows: Rows) -> dict[str, tuple[float, datetime]]:
        return request_losses(lane_rows, labels, cap, bad)

    def arm(lane_rows: Rows) -> Evidence:
        ev = _evidence(losses(lane_rows), losses(theirs), paired, rollout.step_started_at)
        cut = {name: _evidence(losses(_in(lane_rows, name)), losses(_in(theirs, name)), paired,
                               rollout.step_started_at) for name, _ in slices}  # fmt: skip
        return replace(ev, slices=cut)

    if rollout.mode != "ab":
        return replace(arm(next(iter(mine.values()))), unusable_labels=len(bad))
    lanes = {lane: arm(mine[lane]) if lane in mine else Evidence() for lane in arms}
    s = losses(theirs)
    fresh = sum(ev.step_requests for ev in lanes.values())
    return Evidence([], [v for v, _ in s.values()], None, fresh, lanes=lanes,
                    unusable_labels=len(bad))  # fmt: skip


def _refs(catalog: Catalog) -> Callable[[str], str]:
    def ref(version_id: str) -> str:
        return catalog.get_system_version(version_id).ref

    return ref


def _arms(rollout: RolloutRecord, ref: Callable[[str], str]) -> dict[str, str | None]:
    """``lane -> version ref`` of each candidate lane read (None: a dropped ab lane)."""
    if rollout.mode == "ab":
        return {x.name: None if x.dropped else ref(x.version_id) for x in rollout.lanes}
    lane = SHADOW if rollout.mode in _PAIRED else CANDIDATE
    return {lane: ref(rollout.candidate_id)}


def _in(rows: Rows, name: str) -> Rows:
    return [r for r in rows if name in r["slices"]]


def _evidence(
    c: dict[str, tuple[float, datetime]],
    s: dict[str, tuple[float, datetime]],
    paired: bool,
    step_started_at: datetime,
) -> Evidence:
    """One candidate lane's request losses against the stable lane's (paired by request or
    not)."""
    if not paired:
        fresh = sum(1 for _, at in c.values() if at >= step_started_at)
        return Evidence([v for v, _ in c.values()], [v for v, _ in s.values()], None, fresh)
    both = sorted(set(c) & set(s))
    diffs = [c[k][0] - s[k][0] for k in both]
    fresh = sum(1 for k in both if c[k][1] >= step_started_at)
    return Evidence([c[k][0] for k in both], [s[k][0] for k in both], diffs, fresh)
