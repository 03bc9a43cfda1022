"""The rollout state machine: start, analyse each step, advance, hold, promote or roll back.

The state lives in the catalog (:mod:`regrow.catalog.rollouts`: the states, the allowed moves,
compare-and-set, one audit event per move); this module decides the moves. Every function
takes a workspace (anything with ``catalog``, ``store``, ``require``, ``promote`` and
``policy``: :class:`regrow.Workspace`), checks the role the move needs, and returns the
rollout's record after it.

:func:`step` is the analysis (its rule is :func:`regrow.rollout.decide.decide`), run by hand
(``regrow rollout step``) or by a server on a timer:

1. ``pending`` begins: ``shadow`` for a shadow rollout, else ``progressing`` at step 0;
   (the modes: ``split``, ``ab`` with several candidate lanes, ``blend`` ramping the
   candidate's weight in a blend every request gets, ``shadow``, ``blue-green``);
2. ``paused`` and finished rollouts are left alone;
3. the evidence (:func:`regrow.rollout.evidence.read_evidence`) is compared by an always-valid
   confidence sequence (:mod:`regrow.rollout.sequential`), so analysing after every batch does
   not inflate false rollbacks;
4. ``fail`` (the candidate's loss is proven higher than the stable's by more than
   ``tolerance``, over all traffic or in one of the rollout's slices) rolls back at once,
   whatever the step; in an A/B rollout such a lane is **dropped** (``drop_lane``: its share
   goes to 0, the others go on) and only the last live lane's failure rolls back;
5. fewer than ``min_requests`` fresh labelled candidate requests in this step (or too few
   in a lane) **holds**; ``inconclusive_after`` holds in a row make the rollout
   ``inconclusive`` (traffic stays as it is; it is never a failure; analysis goes on, and
   evidence brings it back to ``progressing``);
6. with enough fresh evidence, no failure and an estimated loss increase within
   ``tolerance`` (a candidate that looks worse waits at its share until the interval decides),
   a split, ab, blend or blue-green rollout advances to the next step (every live A/B lane
   needs its fresh evidence); at the last step (and in shadow) it is **promoted** once the
   comparison *passes* (the loss is proven not higher by ``tolerance``; in an A/B rollout,
   the passing lane with the lowest mean loss), through the workspace's governance
   (:meth:`regrow.Workspace.promote`: a protected alias still needs its blessed evaluation
   and approvals). A refused promotion pauses the rollout, naming what is missing.

:func:`abort` makes the last known good the desired state: the candidate's share drops to 0
and, should the alias hold a candidate by then, it moves back to the stable version. A step
never raises on bad data, and ends a rollout whose alias was moved by hand (see :func:`step`).
:func:`start` refuses what can never be analysed (:mod:`regrow.rollout.validate`) and, on a
protected alias, a rollout that would serve a candidate to every request before the promotion
rules allow it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from regrow.catalog.rollouts import Rollouts, check_steps
from regrow.errors import AliasConflict, CatalogError, ConfigError, DataError, PromotionRefused
from regrow.rollout.decide import decide, lane_of, winner
from regrow.rollout.sequential import Comparison, Sample, compare
from regrow.rollout.validate import (
    MODES,
    candidates,
    check_blend,
    check_exposure,
    check_loss_cap,
    check_slices,
    parse_steps,
)

if TYPE_CHECKING:
    from datetime import datetime

    from regrow.catalog.catalog import Catalog
    from regrow.catalog.records import AliasRecord, AuditEventRecord
    from regrow.catalog.rollouts import RolloutRecord
    from regrow.catalog.store import ArtifactStore
    from regrow.plan.policy import Policy
    from regrow.rollout.evidence import Evidence

__all__ = [
    "Governed",
    "StepResult",
    "abort",
    "history",
    "parse_steps",
    "pause",
    "promote",
    "resume",
    "start",
    "status",
    "step",
]

_HOLDS = ("hold", "inconclusive")
_MODES = {"canary": "split", "ramp": "split", "shadow": "shadow", "blue-green": "blue-green",
          "ab": "ab", "blend": "blend"}  # fmt: skip


class Governed(Protocol):
    """What the rollout functions need of a workspace (:class:`regrow.Workspace` has it)."""

    catalog: Catalog
    store: ArtifactStore

    def require(self, role: str, what: str) -> None: ...

    def promote(self, ref: str, alias: str = ..., *, reason: str = ...) -> AliasRecord: ...

    def promotion_lacks(self, ref: str, alias: str = ...) -> list[str]: ...

    def policy(self) -> Policy: ...


@dataclass(frozen=True)
class StepResult:
    """What one analysis did: ``action`` (begin, hold, inconclusive, advance, drop_lane,
    promote, promotion-refused, fail, idle, raced, skip, analysis_failed, superseded), the
    rollout after it, and the comparison it used."""

    action: str
    rollout: RolloutRecord
    comparison: Comparison | None = None


def start(
    ws: Governed,
    candidate: str | Sequence[str],
    *,
    alias: str = "champion",
    mode: str | None = None,
    steps: str | Sequence[float] | None = None,
    min_requests: int | None = None,
    tolerance: float = 0.02,
    alpha: float = 0.05,
    inconclusive_after: int = 20,
    loss_cap: float | None = None,
    reason: str = "",
    begin: bool = True,
    slices: Mapping[str, str] | None = None,
) -> RolloutRecord:
    """Start rolling ``candidate`` (a version reference; for mode ``ab``, one or more)
    out against the holder of its system's ``alias``. Defaults come from the policy's
    ``rollout`` section (strategy ``canary``/``ramp`` is mode ``split``); a blue-green
    rollout has one step, 100%; a blend rollout's steps are the candidate's weights.
    ``slices`` (``{"name": "pandas query over the input columns"}``) are analysed each on
    its own. With ``begin`` the rollout leaves ``pending`` at once (shadow or step 0)."""
    ws.require("operator", "start a rollout")
    section = ws.policy().rollout
    chosen = mode or _MODES[section.strategy]
    if chosen not in MODES:
        raise ConfigError(f"unknown rollout mode {chosen!r}", hint=f"use one of {', '.join(MODES)}")
    given = steps if steps is not None else section.steps
    # checked before the promotion rules are asked (`check_exposure`), not when it is recorded
    shares = (1.0,) if chosen == "blue-green" else tuple(check_steps(parse_steps(given), given))
    versions = candidates(ws.catalog, candidate, chosen)
    version = versions[0]
    stable = ws.catalog.get_alias(version.system, alias)
    if chosen == "blend":
        check_blend(ws.catalog, stable.version_id, version)
    params: dict[str, Any] = {"tolerance": tolerance, "alpha": alpha,
                              "inconclusive_after": inconclusive_after}  # fmt: skip
    if slices:
        params["slices"] = check_slices(ws.catalog, version, slices)
    if inconclusive_after < 1:
        raise ConfigError(
            f"inconclusive_after must be >= 1 (got {inconclusive_after!r})",
            hint="the analyses in a row without enough data before a rollout is inconclusive",
        )
    for v in versions:
        check_loss_cap(v, loss_cap)
    if loss_cap is not None:
        if not loss_cap > 0:
            raise ConfigError(
                f"loss_cap must be > 0 (got {loss_cap!r})",
                hint="the absolute error a regressor's prediction counts as a total miss",
            )
        params["loss_cap"] = loss_cap
    compare(Sample(1, 0.0), Sample(1, 0.0), tolerance=tolerance, alpha=alpha)  # checks them
    check_exposure(ws.promotion_lacks, versions, alias, chosen, shares)
    record = _rollouts(ws).start(
        system=version.system, alias=alias, stable_id=stable.version_id,
        candidate_id=version.id, mode=chosen, steps=shares,
        min_requests=min_requests or section.min_requests, params=params, reason=reason,
        lanes=[v.id for v in versions] if chosen == "ab" else (),
    )  # fmt: skip
    _record_earlier_evaluation(ws.catalog, record)
    if begin:
        try:
            record = _begin(ws, record)
        except AliasConflict:  # a server's stepper began it first: begun either way
            record = _rollouts(ws).get(record.id)
            if record.state == "pending":
                raise
    return record


def _record_earlier_evaluation(catalog: Catalog, record: RolloutRecord) -> None:
    """Give the rollout's experiment record the candidate's evaluation made before it: it
    showed "not evaluated yet" though a blessed evaluation was what let it start."""
    from regrow.catalog.experiments import experiment_id
    from regrow.experiments import record_earlier_evaluation

    record_earlier_evaluation(catalog, experiment_id("rollout", record.id))


def _rollouts(ws: Governed) -> Rollouts:
    return ws.catalog.rollouts


def _due(record: RolloutRecord, min_interval: float) -> bool:
    """Whether the rollout's last move is at least ``min_interval`` seconds old."""
    from regrow.catalog.core import now

    return min_interval <= 0 or (now() - record.updated_at).total_seconds() >= min_interval


def _superseded(ws: Governed, record: RolloutRecord) -> RolloutRecord | None:
    """End the rollout if its alias was moved by hand to neither the stable version nor a
    candidate; the alias stays where it was put."""
    held = ws.catalog.get_alias(record.system, record.alias).version_id
    if held == record.stable_id or held in record.candidates:
        return None
    ref = ws.catalog.get_system_version(held).ref
    return _rollouts(ws).transition(
        record.id, "rolled_back", action="superseded", expected_revision=record.revision,
        evidence={"alias_holds": ref},
        reason=f"{record.system}@{record.alias} was moved to {ref}, neither the stable version "
        "nor a candidate: the rollout ends and the alias stays there",
    )  # fmt: skip


def _begin(ws: Governed, record: RolloutRecord) -> RolloutRecord:
    to = "shadow" if record.mode == "shadow" else "progressing"
    return _rollouts(ws).transition(
        record.id, to, action="begin", expected_revision=record.revision, step=0, holds=0,
        reason="started",
    )  # fmt: skip


def status(
    ws: Governed, ref: str | None = None, *, system: str | None = None
) -> list[RolloutRecord]:
    """Rollout ``ref``; else those under way (of ``system``)."""
    if ref is not None:
        return [_rollouts(ws).get(ref)]
    return _rollouts(ws).list(system=system, active=True)


def history(ws: Governed, ref: str, *, limit: int | None = None) -> list[AuditEventRecord]:
    """The transitions of rollout ``ref`` (audit events), oldest first (the newest ``limit``)."""
    return _rollouts(ws).history(ref, limit=limit)


def pause(ws: Governed, ref: str, *, reason: str = "") -> RolloutRecord:
    """Hold the rollout where it is: traffic stays as it is, :func:`step` does nothing."""
    ws.require("operator", "pause a rollout")
    record = _rollouts(ws).get(ref)
    return _rollouts(ws).transition(
        record.id, "paused", action="pause", expected_revision=record.revision,
        reason=reason or "paused by hand",
    )  # fmt: skip


def resume(ws: Governed, ref: str, *, reason: str = "") -> RolloutRecord:
    """Resume a paused or inconclusive rollout where it stood (same step, same share)."""
    ws.require("operator", "resume a rollout")
    record = _rollouts(ws).get(ref)
    if record.state not in ("paused", "inconclusive"):
        raise CatalogError(
            f"rollout {record.id[:12]} is {record.state}, not paused or inconclusive",
            hint="only a paused or inconclusive rollout resumes",
        )
    to = "shadow" if record.mode == "shadow" else "progressing"
    return _rollouts(ws).transition(
        record.id, to, action="resume", expected_revision=record.revision, holds=0,
        reason=reason or "resumed by hand",
    )  # fmt: skip


def promote(
    ws: Governed,
    ref: str | RolloutRecord,
    *,
    reason: str = "",
    evidence: dict[str, Any] | None = None,
    lane: str | None = None,
) -> RolloutRecord:
    """Move the alias to the candidate (an A/B rollout's ``lane``, default its live lane with
    the lowest mean loss in the last analysis) through the governance path, then mark the
    rollout ``promoted``. A refused promotion raises :class:`~regrow.errors.PromotionRefused`
    and leaves the rollout as it was. (A record for ``ref`` moves only if the rollout is
    still at its revision, as in :func:`step`.)"""
    ws.require("operator", "promote a rollout")
    record = _rollouts(ws).get(ref) if isinstance(ref, str) else ref
    if not record.active:
        raise CatalogError(
            f"rollout {record.id[:12]} is {record.state}", hint="start a new rollout"
        )
    now = _rollouts(ws).get(record.id)
    if now.revision != record.revision:  # moved since the record was read: move no alias
        raise AliasConflict(
            f"rollout {record.id[:12]} moved on (revision {now.revision}, expected "
            f"{record.revision})",
            hint="read its status again",
        )
    chosen = winner(record, lane)
    why = reason or f"rollout {record.id[:12]} promoted"
    if record.lanes:
        name = lane or lane_of(record, chosen)
        why = why if f"lane {name}" in why else f"{why} (lane {name})"
        evidence = {**(evidence or {}), "promoted_version": chosen, "promoted_lane": name}
    held = ws.catalog.get_alias(record.system, record.alias).version_id
    if held != chosen:
        try:
            ws.promote(chosen, record.alias, reason=why)
        except PromotionRefused as refused:
            raise PromotionRefused(
                refused.message,
                hint=f"fix what is listed, then promote rollout {record.id[:12]} again (or "
                "abort it)",
            ) from None
    return _rollouts(ws).transition(
        record.id, "promoted", action="promote", expected_revision=record.revision,
        evidence=evidence, reason=why,
    )  # fmt: skip


def abort(
    ws: Governed,
    ref: str | RolloutRecord,
    *,
    reason: str = "",
    evidence: dict[str, Any] | None = None,
    action: str = "abort",
) -> RolloutRecord:
    """Roll back to the last known good: the candidate gets no more traffic and, should the
    alias hold a candidate of the rollout, it moves back to the stable version (an alias
    someone moved by hand to another version stays where it is)."""
    ws.require("operator", "abort a rollout")
    record = _rollouts(ws).get(ref) if isinstance(ref, str) else ref
    why = reason or f"rollout {record.id[:12]} aborted by hand"
    done = _rollouts(ws).transition(
        record.id, "rolled_back", action=action, expected_revision=record.revision,
        evidence=evidence, reason=why,
    )  # fmt: skip
    if ws.catalog.get_alias(record.system, record.alias).version_id in record.candidates:
        ws.catalog.move_alias(record.system, record.alias, record.stable_id, reason=why)
    return done


def step(
    ws: Governed,
    ref: str | RolloutRecord,
    *,
    evidence: Evidence | None = None,
    until: datetime | None = None,
    min_interval: float = 0.0,
) -> StepResult:
    """Analyse rollout ``ref`` once and move it (see the module docs). ``evidence`` replaces
    what the prediction log holds (the simulator passes its own).

    ``ref`` may be a record read earlier (a server's poller holds one): when the rollout has
    moved since (another replica stepped it first), nothing moves and the action is
    ``raced``, with the rollout as it is now. Replicas may therefore all step a rollout;
    with ``min_interval`` (seconds, a server's step period) a hold is written only when the
    rollout's last move is at least that old (else the action is ``skip`` and nothing is
    written), so N replicas hold once a period, not N times.

    A step never raises on bad data: evidence that cannot be read (a slice the logged
    requests cannot answer, a regressor's rollout without ``loss_cap``) **pauses** the
    rollout (action ``analysis_failed``, the reason names the error); an alias moved by hand
    to a version that is neither the stable one nor a candidate ends the rollout
    ``rolled_back`` (action ``superseded``), leaving the alias where it was put.
    """
    ws.require("operator", "step a rollout")
    record = _rollouts(ws).get(ref) if isinstance(ref, str) else ref
    try:
        return _step(ws, record, evidence, until, min_interval)
    except AliasConflict:
        return StepResult("raced", _rollouts(ws).get(record.id))


def _step(
    ws: Governed,
    record: RolloutRecord,
    evidence: Evidence | None,
    until: datetime | None,
    min_interval: float,
) -> StepResult:
    from regrow.rollout.evidence import read_evidence

    if record.active and (moved := _superseded(ws, record)) is not None:
        return StepResult("superseded", moved)
    if record.state == "pending":
        return StepResult("begin", _begin(ws, record))
    if record.state not in ("shadow", "progressing", "inconclusive"):
        return StepResult("idle", record)
    try:
        ev = (
            evidence
            if evidence is not None
            else read_evidence(ws.catalog, ws.store, record, until=until)
        )
        move = decide(
            state=record.state, mode=record.mode, step=record.step, steps=record.steps,
            holds=record.holds, min_requests=record.min_requests, params=record.params,
            evidence=ev, dropped={x.name for x in record.lanes if x.dropped},
        )  # fmt: skip
    except (DataError, ConfigError) as failed:
        paused = _rollouts(ws).transition(
            record.id, "paused", action="analysis_failed", expected_revision=record.revision,
            evidence={"error": str(failed)}, reason=f"analysis failed: {failed.message}",
        )  # fmt: skip
        return StepResult("analysis_failed", paused)
    cmp = move.comparison
    if move.action in _HOLDS and not _due(record, min_interval):
        return StepResult("skip", record, cmp)
    proof = {**ev.summary(), **(cmp.as_dict() if cmp is not None else {}), **move.details()}
    if move.action == "drop_lane":
        moved = _rollouts(ws).transition(
            record.id, record.state, action="drop_lane", expected_revision=record.revision,
            evidence={**proof, "dropped": list(move.drop)}, drop=move.drop, reason=move.reason,
        )  # fmt: skip
        return StepResult("drop_lane", moved, cmp)
    if move.action == "fail":
        done = abort(ws, record, reason=move.reason, evidence=proof, action="fail")
        return StepResult("fail", done, cmp)
    if move.action == "promote":
        try:
            done = promote(ws, record, reason=move.reason, evidence=proof, lane=move.lane)
            return StepResult("promote", done, cmp)
        except PromotionRefused as refused:
            paused = _rollouts(ws).transition(
                record.id, "paused", action="promotion_refused",
                expected_revision=record.revision, evidence=proof,
                reason=f"promotion refused: {refused.message}",
            )  # fmt: skip
            return StepResult("promotion-refused", paused, cmp)
    moved = _rollouts(ws).transition(
        record.id, move.state, action=move.action, expected_revision=record.revision,
        step=move.step, evidence=proof, holds=move.holds, reason=move.reason,
    )  # fmt: skip
    return StepResult(move.action, moved, cmp)
