"""Rollouts as persisted state machines: ``Rollouts(catalog)`` (``catalog.rollouts``).

A rollout exposes a candidate version of a system to live traffic against the version that
held ``system@alias`` when it started (the **stable** version, the last known good), and
either promotes it or rolls it back. Its state moves only along :data:`TRANSITIONS`, by
compare-and-set on the rollout's ``revision``; every move is one transaction with an audit
event ``rollout.<action>`` (subject ``rollout:<id>``) whose payload carries the states, the
step and share, the reason and the evidence (the analysis that justified it).
:meth:`Rollouts.history` reads them back, oldest first.

::

    pending ──▶ shadow ──────────────────────────▶ promoted
       │          │  ▲                                ▲
       │          ▼  │                                │
       └──▶ progressing(step i) ◀──▶ paused / inconclusive
                  │                          │
                  └──────────▶ rolled_back ◀─┘   (from any state not final)

An A/B rollout (mode ``ab``) stores its candidate lanes (:class:`RolloutLane`, column
``lanes``); the move ``drop_lane`` (:meth:`Rollouts.transition` with ``drop``) takes a lane out
without changing state or step. The catalog keeps the state; deciding (the analysis) and
moving the alias (the governance path) belong to :mod:`regrow.rollout.machine`. At most one
rollout per ``system@alias`` is active (not ``promoted`` nor ``rolled_back``) at a time.
Starting one records an experiment of kind ``rollout`` (:mod:`.experiments`) whose subject is
the rollout's id.

>>> from regrow.catalog import Catalog
>>> catalog = Catalog("sqlite://")
>>> sorted(TRANSITIONS["paused"])
['inconclusive', 'progressing', 'promoted', 'rolled_back', 'shadow']
>>> Rollouts(catalog).list()
[]
>>> catalog.close()
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from regrow.catalog import audit, checks, lookup
from regrow.catalog.core import now
from regrow.catalog.models import AuditEvent, Rollout
from regrow.catalog.records import AuditEventRecord
from regrow.catalog.rollout_lanes import RolloutLane, dropped_lanes, lane_name, stored_lanes
from regrow.errors import AliasConflict, CatalogError, ConfigError

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog

__all__ = [
    "ACTIVE",
    "MODES",
    "STATES",
    "TRANSITIONS",
    "RolloutLane",
    "RolloutRecord",
    "Rollouts",
    "check_steps",
    "lane_name",
]

#: Every state a rollout can be in; the last two are final.
STATES = ("pending", "shadow", "progressing", "paused", "inconclusive", "promoted", "rolled_back")
#: The states of a rollout still under way.
ACTIVE = STATES[:5]
#: How a candidate meets traffic: a share of requests (split), a share for each of several
#: candidates (ab), a growing weight in a blend served to every request (blend), scored beside
#: the stable version and not served (shadow), or all requests at once with an instant switch
#: back (blue-green).
MODES = ("split", "ab", "blend", "shadow", "blue-green")
_HOLDING = ("progressing", "paused", "inconclusive")
_ALL_BUT_FINAL = {"shadow", "progressing", "paused", "inconclusive", "promoted", "rolled_back"}
#: The moves a state allows (``progressing -> progressing`` is the next step).
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"shadow", "progressing", "paused", "rolled_back"}),
    "shadow": frozenset(_ALL_BUT_FINAL - {"progressing"}),
    "progressing": frozenset(_ALL_BUT_FINAL - {"shadow"}),
    "paused": frozenset(_ALL_BUT_FINAL - {"paused"}),
    "inconclusive": frozenset(_ALL_BUT_FINAL - {"inconclusive"}),
    "promoted": frozenset(),
    "rolled_back": frozenset(),
}


@dataclass(frozen=True)
class RolloutRecord:
    """A stored rollout (see the module docs and :class:`~regrow.catalog.models.Rollout`)."""

    id: str
    system: str
    alias: str
    mode: str
    stable_id: str
    candidate_id: str
    state: str
    step: int
    steps: tuple[float, ...]
    min_requests: int
    params: dict[str, Any]
    evidence: dict[str, Any] | None
    holds: int
    revision: int
    reason: str
    actor: str
    created_at: datetime
    step_started_at: datetime
    updated_at: datetime
    #: An A/B rollout's candidate lanes, in their fixed order (empty for the other modes).
    lanes: tuple[RolloutLane, ...] = ()

    @property
    def active(self) -> bool:
        """Whether the rollout is still under way."""
        return self.state in ACTIVE

    @property
    def share(self) -> float:
        """The share of requests the candidate serves now: its step's share while
        progressing, paused or inconclusive in a split or blue-green rollout (in an A/B one,
        the share of each candidate lane, capped at ``1/K``; in a blend one, the candidate's
        weight in the blend every request gets); else 0 (the stable version serves
        everything, a shadow candidate is scored but never served)."""
        if self.mode == "shadow" or self.state not in _HOLDING:
            return 0.0
        if self.mode == "ab":
            return min(self.steps[self.step], 1.0 / max(len(self.lanes), 1))
        return self.steps[self.step]

    @property
    def candidates(self) -> tuple[str, ...]:
        """The id of every candidate version (an A/B rollout's in lane order)."""
        return tuple(lane.version_id for lane in self.lanes) or (self.candidate_id,)

    @property
    def subject(self) -> str:
        """The audit subject of the rollout's events."""
        return f"rollout:{self.id}"


def check_steps(steps: Sequence[float], given: object = None) -> list[float]:
    """``steps`` as shares rising within (0, 1], else a :class:`ConfigError` naming them
    (``given``: what the user wrote, when the shares were parsed from it)."""
    shares = [float(checks.number("step", s)) for s in steps]
    if not shares or any(not 0 < s <= 1 for s in shares) or shares != sorted(shares):
        shown = (
            f"{given!r} do not rise within (0, 100%]"
            if given is not None
            else f"{shares} do not rise within (0, 1]"
        )
        raise ConfigError(
            f"rollout steps {shown}",
            hint="give rising shares such as 5,25,50,100 (percent) or 0.05,0.25,0.5,1",
        )
    return shares


class Rollouts:
    """The rollouts of a catalog (see the module docs)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def start(
        self,
        *,
        system: str,
        alias: str,
        stable_id: str,
        candidate_id: str,
        mode: str,
        steps: Sequence[float],
        min_requests: int,
        params: Mapping[str, Any] | None = None,
        reason: str = "",
        actor: str | None = None,
        lanes: Sequence[str] = (),
    ) -> RolloutRecord:
        """Record a new rollout in state ``pending`` (audit event ``rollout.start``) and its
        experiment. An A/B rollout (``mode="ab"``) names the version of each candidate lane in
        ``lanes`` (``candidate_id`` first); the other modes have none. Another active rollout
        of ``system@alias`` raises :class:`~regrow.errors.CatalogError` naming it."""
        checks.text("system", system)
        checks.text("alias", alias)
        checks.choice("mode", mode, MODES)
        shares = check_steps(steps)
        if checks.integer("min_requests", min_requests) < 1:
            raise ConfigError(f"min_requests must be >= 1 (got {min_requests})", hint="e.g. 500")
        body = audit.normalize(checks.mapping("params", dict(params or {})))
        listed = stored_lanes(mode, candidate_id, lanes)
        who = self._catalog._who(actor)
        rollout_id = uuid.uuid4().hex

        def write(session: Session) -> RolloutRecord:
            named = [(x["lane"], x["version_id"]) for x in listed] or [("candidate", candidate_id)]
            for name, ref in [("stable", stable_id), *named]:
                if lookup.version_by_id(session, ref).system != system:
                    raise CatalogError(
                        f"the {name} version {ref[:12]} is not a version of {system!r}",
                        hint="roll out a version of the system the alias belongs to",
                    )
            if stable_id == candidate_id or stable_id in lanes:
                held = lookup.version_by_id(session, stable_id)
                raise CatalogError(
                    f"the candidate {held.system}:v{held.number} already holds {system}@{alias}",
                    hint="roll out a version the alias does not hold",
                )
            busy = session.scalars(
                sa.select(Rollout.id).where(
                    Rollout.system == system, Rollout.alias == alias, Rollout.state.in_(ACTIVE)
                )
            ).first()
            if busy is not None:
                raise CatalogError(
                    f"rollout {busy[:12]} of {system}@{alias} is still under way",
                    hint=f"promote or abort it first: `regrow rollout abort {busy[:12]}`",
                )
            at = now()
            row = Rollout(
                id=rollout_id, system=system, alias=alias, mode=mode, stable_id=stable_id,
                candidate_id=candidate_id, state="pending", step=0, steps=shares,
                min_requests=min_requests, params=body, evidence=None, holds=0, revision=1,
                reason=reason, actor=who, created_at=at, step_started_at=at, updated_at=at,
                lanes=listed,
            )  # fmt: skip
            session.add(row)
            session.flush()
            record = _record(row)
            audit.append(
                session, actor=who, action="rollout.start", subject=record.subject,
                payload={**_state(record), "from": None, "reason": reason, "params": body},
                rows=[("rollouts", record.id)],
            )  # fmt: skip
            return record

        record: RolloutRecord = self._catalog._write(write)
        self._catalog.experiments.add(
            kind="rollout", system=system, subject_id=record.id, version_id=stable_id,
            candidate_id=candidate_id, actor=who,
            rationale=[reason] if reason.strip() else [f"{mode} rollout of the candidate"],
            contingency=f"abort: {system}@{alias} stays on (or returns to) the stable version",
        )  # fmt: skip
        return record

    def transition(
        self,
        ref: str,
        to: str,
        *,
        action: str,
        expected_revision: int,
        step: int | None = None,
        evidence: Mapping[str, Any] | None = None,
        holds: int | None = None,
        drop: Sequence[str] = (),
        reason: str = "",
        actor: str | None = None,
    ) -> RolloutRecord:
        """Move rollout ``ref`` to state ``to`` (audit event ``rollout.<action>``), if it is
        still at ``expected_revision`` (else :class:`~regrow.errors.AliasConflict`: another
        replica moved it first) and :data:`TRANSITIONS` allow it. ``step`` changes the step
        (its clock restarts); ``holds`` sets the count of analyses that lacked data; ``drop``
        names A/B lanes that get no more traffic (a move that may keep state and step)."""
        checks.choice("state", to, STATES)
        who = self._catalog._who(actor)
        proof = audit.normalize(dict(evidence)) if evidence is not None else None

        def write(session: Session) -> RolloutRecord:
            row = _row(session, ref)
            if row.revision != expected_revision:
                raise AliasConflict(
                    f"rollout {row.id[:12]} moved on (revision {row.revision}, expected "
                    f"{expected_revision})",
                    hint="read its status again and retry",
                )
            before = _record(row)
            same_step = to == row.state and (step is None or step == row.step)
            kept = holds is not None or bool(drop)  # a hold or a dropped lane: no state move
            held = same_step and kept and row.state in ACTIVE
            if not held and (to not in TRANSITIONS[row.state] or same_step):
                raise CatalogError(
                    f"rollout {row.id[:12]} is {row.state} already"
                    if to == row.state
                    else f"rollout {row.id[:12]} is {row.state}: it cannot go to {to}",
                    hint=_hint(row.state),
                )
            at = now()
            if step is not None and step != row.step:
                if not 0 <= step < len(row.steps):
                    raise ConfigError(f"step {step} is not one of the rollout's {len(row.steps)}")
                row.step, row.step_started_at = step, at
            row.state, row.revision, row.updated_at = to, row.revision + 1, at
            row.reason = reason
            if proof is not None:
                row.evidence = proof
            if holds is not None:
                row.holds = holds
            if drop:
                row.lanes = dropped_lanes(row, drop)
            session.flush()
            record = _record(row)
            audit.append(
                session, actor=who, action=f"rollout.{action}", subject=record.subject,
                payload={**_state(record), "from": before.state, "from_step": before.step,
                         "reason": reason, "evidence": proof},
                rows=[("rollouts", record.id)],
            )  # fmt: skip
            return record

        return self._catalog._write(write)

    def get(self, ref: str) -> RolloutRecord:
        """The rollout with this id or unique id prefix (at least 6 characters)."""
        with self._catalog._read() as session:
            return _record(_row(session, ref))

    def list(
        self, *, system: str | None = None, active: bool | None = None, limit: int = 50
    ) -> builtins.list[RolloutRecord]:
        """The latest ``limit`` rollouts, newest first (of ``system``; only those under way
        with ``active=True``, only finished ones with ``active=False``)."""
        query = sa.select(Rollout).order_by(Rollout.created_at.desc(), Rollout.id)
        if system is not None:
            query = query.where(Rollout.system == system)
        if active is not None:
            states = ACTIVE if active else tuple(s for s in STATES if s not in ACTIVE)
            query = query.where(Rollout.state.in_(states))
        with self._catalog._read() as session:
            rows = session.scalars(query.limit(checks.integer("limit", limit)))
            return [_record(row) for row in rows]

    def active(self, system: str, alias: str = "champion") -> RolloutRecord | None:
        """The rollout of ``system@alias`` under way, if any."""
        found = [r for r in self.list(system=system, active=True) if r.alias == alias]
        return found[0] if found else None

    def history(self, ref: str, *, limit: int | None = None) -> builtins.list[AuditEventRecord]:
        """The audit events of rollout ``ref``, oldest first (its transitions); with ``limit``
        only the newest ``limit`` of them."""
        subject = f"rollout:{self.get(ref).id}"
        query = sa.select(AuditEvent).where(AuditEvent.subject == subject)
        if limit is not None:
            if checks.integer("limit", limit) < 1:
                raise ConfigError(f"'limit' must be >= 1 (got {limit})", hint="or None: all")
            query = query.order_by(AuditEvent.seq.desc()).limit(limit)
        with self._catalog._read() as session:
            rows = list(session.scalars(query if limit is not None else
                                        query.order_by(AuditEvent.seq)))  # fmt: skip
            return [audit.to_record(row) for row in sorted(rows, key=lambda r: r.seq)]


def _hint(state: str) -> str:
    if not TRANSITIONS[state]:
        return f"a {state} rollout is finished: start a new one"
    return f"from {state} it can go to {', '.join(sorted(TRANSITIONS[state]))}"


def _state(record: RolloutRecord) -> dict[str, Any]:
    out = {
        "system": record.system, "alias": record.alias, "mode": record.mode,
        "stable": record.stable_id, "candidate": record.candidate_id, "state": record.state,
        "step": record.step, "share": record.share, "revision": record.revision,
    }  # fmt: skip
    if record.lanes:
        out["lanes"] = [{"lane": x.name, "version_id": x.version_id, "dropped": x.dropped,
                         "share": x.share} for x in record.lanes]  # fmt: skip
    return out


def _row(session: Session, ref: str) -> Rollout:
    listed = "`regrow rollout status` (those under way) or the dashboard's /ui/rollouts (all)"
    return lookup.by_id(session, Rollout, "rollout", ref, listed=listed)


def _record(row: Rollout) -> RolloutRecord:
    record = _bare(row)
    if not row.lanes:
        return record
    # Each lane gets the step's share, at most an equal part with the stable lane: the
    # comparison needs stable traffic at every step, the last one an even split.
    share = min(record.share, 1.0 / (len(row.lanes) + 1))
    lanes = tuple(
        RolloutLane(str(x["lane"]), str(x["version_id"]), bool(x["dropped"]),
                    0.0 if x["dropped"] else share)
        for x in row.lanes
    )  # fmt: skip
    return replace(record, lanes=lanes)


def _bare(row: Rollout) -> RolloutRecord:
    return RolloutRecord(
        id=row.id, system=row.system, alias=row.alias, mode=row.mode, stable_id=row.stable_id,
        candidate_id=row.candidate_id, state=row.state, step=row.step,
        steps=tuple(float(s) for s in row.steps), min_requests=row.min_requests,
        params=dict(row.params), evidence=dict(row.evidence) if row.evidence else None,
        holds=row.holds, revision=row.revision, reason=row.reason, actor=row.actor,
        created_at=row.created_at, step_started_at=row.step_started_at,
        updated_at=row.updated_at,
        lanes=tuple(RolloutLane(str(x["lane"]), str(x["version_id"]), bool(x["dropped"]), 0.0)
                    for x in row.lanes or ()),
    )  # fmt: skip
