"""Watchers in the catalog: one lease per system, one record per cycle (``catalog.watches``).

``regrow watch`` (:mod:`regrow.loop.watch`) keeps a system fresh in cycles. Two things make that
safe to run as a long-lived process, restart, or start twice by mistake:

- **the lease.** A watcher acts for a system only while it holds the system's row in
  ``watch_leases``; it takes the row when the row is free or lapsed (compare-and-set in one
  transaction), moves ``expires_at`` forward with each heartbeat, and gives it back when it
  stops. A second watcher on the same system is refused with the holder's host and pid; once
  the first one dies its lease lapses and the second may take over. Every write of a cycle
  checks the lease first, so a watcher that lost its lease cannot record or act.
- **the cycle record.** Each cycle is one row of ``watch_cycles``: its number, the window's key
  (a source's name for the rows it took), the step it reached (``start``, then ``window``,
  ``monitor``, ``forecast``, ``decide``, ``plan``, ``run``, ``evaluate``, ``rollout``) and a
  JSON ``body`` with what each step found or decided. A cycle left ``running`` by a crash is
  resumed from its step by the next watcher; finished cycles are ``done``, ``waiting`` (for an
  approval) or ``failed``. Starting, finishing and taking over are audited (``watch.*`` on
  subject ``watch:<system>``).

>>> from regrow.catalog import Catalog
>>> catalog = Catalog("sqlite://")
>>> lease = catalog.watches.acquire("churn", holder="w1", seconds=60)
>>> cycle = catalog.watches.start_cycle("churn", "champion", holder="w1", window_key="day-1")
>>> cycle.number, cycle.state, cycle.step
(1, 'running', 'start')
>>> catalog.watches.advance(cycle.id, holder="w1", step="monitor", body={"drifted": []}).step
'monitor'
>>> catalog.watches.finish(cycle.id, holder="w1", state="done").state
'done'
>>> catalog.close()
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from regrow.catalog import audit, checks, lookup
from regrow.catalog.core import now
from regrow.catalog.leases import this_process
from regrow.catalog.models import WatchCycle, WatchLease
from regrow.errors import CatalogError, ConfigError, NotFound

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog

__all__ = ["CYCLE_STATES", "STEPS", "WatchBusy", "WatchCycleRecord", "WatchLeaseRecord", "Watches"]

#: The steps of a cycle, in order; a cycle's ``step`` is the last one it finished.
STEPS = ("window", "monitor", "forecast", "decide", "plan", "run", "evaluate", "rollout")
#: A cycle is running until it ends done, waiting (for a person) or failed.
CYCLE_STATES = ("running", "done", "waiting", "failed")


class WatchBusy(CatalogError):
    """Another watcher holds the system's lease (or this one lost it)."""


@dataclass(frozen=True)
class WatchLeaseRecord:
    """Who holds the watch lease of ``system``, and until when."""

    system: str
    holder: str
    process: dict[str, Any]
    acquired_at: datetime
    expires_at: datetime

    def describe(self) -> str:
        """``holder on host (pid N) until T``."""
        host, pid = self.process.get("host", "?"), self.process.get("pid", "?")
        return f"watcher {self.holder[:12]} on {host} (pid {pid}) until {self.expires_at:%H:%M:%S}"

    @property
    def live(self) -> bool:
        """Whether a watcher still holds it (a lapsed lease is a watcher gone)."""
        return self.expires_at > datetime.now(UTC)


@dataclass(frozen=True)
class WatchCycleRecord:
    """One stored cycle (see the module docs)."""

    id: str
    system: str
    alias: str
    number: int
    state: str
    step: str
    dry_run: bool
    window_key: str
    body: dict[str, Any]
    holder: str
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @property
    def subject(self) -> str:
        """The audit subject of the system's watch events."""
        return f"watch:{self.system}"

    def shown(self, watched: bool) -> tuple[str, str]:
        """The state and outcome to show (``regrow watch --history``, the dashboard), with
        ``watched`` whether a live watcher holds the system's lease: a cycle left ``running``
        while none does was interrupted (Ctrl-C, a crash), and the next ``regrow watch``
        resumes it (docs/loop.md); one stopped before its window was stored is ended by the
        next watcher (recorded ``failed``, its window taken again) and still shows
        interrupted."""
        end = self.body.get("end") or {}
        why = str(end.get("why") or "")
        if end.get("interrupted"):  # stopped before its window was stored: recorded failed
            return "interrupted", why
        if self.state != "running" or watched:
            return self.state, why
        if self.step == "start":
            return "interrupted", "the next `regrow watch` takes its window again (stopped early)"
        return "interrupted", (
            f"resumes on the next `regrow watch` (stopped after step {self.step})"
        )

    def to_dict(self) -> dict[str, Any]:
        """The cycle as JSON (what ``regrow watch SYSTEM --show N --json`` prints)."""
        return {
            "id": self.id, "system": self.system, "alias": self.alias, "number": self.number,
            "state": self.state, "step": self.step, "dry_run": self.dry_run,
            "window": self.window_key, "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            **self.body,
        }  # fmt: skip


class Watches:
    """Watch leases and cycles of ``catalog``; reach it as ``catalog.watches``."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    # -- the lease ---------------------------------------------------------------------------

    def acquire(self, system: str, *, holder: str, seconds: int) -> WatchLeaseRecord:
        """Take the watch lease of ``system`` for ``seconds`` (or renew it, for its holder).

        A live lease held by another watcher raises :class:`WatchBusy` naming it; a lapsed one
        is taken over (audit event ``watch.takeover``, else ``watch.start``)."""
        checks.text("system", system)
        _positive(seconds)

        def write(session: Session) -> WatchLeaseRecord:
            at = now()
            row = session.get(WatchLease, system, with_for_update=True)
            until = at + timedelta(seconds=seconds)
            if row is None:
                row = WatchLease(
                    system=system, holder=holder, process=this_process(), acquired_at=at,
                    expires_at=until,
                )  # fmt: skip
                session.add(row)
                action, before = "watch.start", None
            elif row.holder == holder:
                row.expires_at = until
                session.flush()
                return _lease(row)
            elif row.expires_at > at:
                raise WatchBusy(
                    f"{system!r} is already watched by {_lease(row).describe()}",
                    hint="stop that watcher first, or wait until its lease lapses "
                    "(`regrow watch --status` shows it)",
                )
            else:
                before = _lease(row).describe()
                row.holder, row.process = holder, this_process()
                row.acquired_at, row.expires_at = at, until
                action = "watch.takeover"
            session.flush()
            record = _lease(row)
            audit.append(
                session, actor=self._catalog._who(None), action=action,
                subject=f"watch:{system}",
                payload={"holder": holder, "process": record.process, "replaced": before},
            )  # fmt: skip
            return record

        return self._catalog._write(write)

    def heartbeat(self, system: str, *, holder: str, seconds: int) -> WatchLeaseRecord:
        """Extend the lease ``holder`` holds; :class:`WatchBusy` if it no longer holds it."""
        _positive(seconds)

        def write(session: Session) -> WatchLeaseRecord:
            row = _held(session, system, holder)
            row.expires_at = now() + timedelta(seconds=seconds)
            session.flush()
            return _lease(row)

        return self._catalog._write(write)

    def release(self, system: str, *, holder: str, reason: str = "") -> bool:
        """Give the lease back (audit event ``watch.stop``); False if ``holder`` held none."""

        def write(session: Session) -> bool:
            row = session.get(WatchLease, system, with_for_update=True)
            if row is None or row.holder != holder:
                return False
            session.delete(row)
            audit.append(
                session, actor=self._catalog._who(None), action="watch.stop",
                subject=f"watch:{system}", payload={"holder": holder, "reason": reason},
            )  # fmt: skip
            return True

        return self._catalog._write(write)

    def lease(self, system: str) -> WatchLeaseRecord | None:
        """The lease of ``system`` if one is stored (it may have lapsed: see ``expires_at``)."""
        with self._catalog._read() as session:
            row = session.get(WatchLease, system)
            return _lease(row) if row is not None else None

    def leases(self) -> builtins.list[WatchLeaseRecord]:
        """Every stored lease, by system."""
        with self._catalog._read() as session:
            rows = session.scalars(sa.select(WatchLease).order_by(WatchLease.system))
            return [_lease(row) for row in rows]

    # -- cycles ------------------------------------------------------------------------------

    def start_cycle(
        self,
        system: str,
        alias: str,
        *,
        holder: str,
        window_key: str,
        dry_run: bool = False,
        body: Mapping[str, Any] | None = None,
    ) -> WatchCycleRecord:
        """Record a new cycle (the next number) on ``window_key``; the lease must be held."""
        checks.text("alias", alias)
        content = audit.normalize(checks.mapping("body", dict(body or {})))

        def write(session: Session) -> WatchCycleRecord:
            _held(session, system, holder)
            last = session.scalar(
                sa.select(sa.func.max(WatchCycle.number)).where(WatchCycle.system == system)
            )
            at = now()
            row = WatchCycle(
                id=uuid.uuid4().hex, system=system, alias=alias, number=(last or 0) + 1,
                state="running", step="start", dry_run=dry_run, window_key=window_key,
                body=content, holder=holder, started_at=at, updated_at=at, finished_at=None,
            )  # fmt: skip
            session.add(row)
            session.flush()
            return _cycle(row)

        return self._catalog._write(write, retry_on=("uq_watch_cycles_system_number",))

    def advance(
        self, ref: str, *, holder: str, step: str, body: Mapping[str, Any] | None = None
    ) -> WatchCycleRecord:
        """Record that running cycle ``ref`` finished ``step``, merging ``body`` into its
        record; the lease must be held."""
        checks.choice("step", step, STEPS)
        content = audit.normalize(checks.mapping("body", dict(body or {})))

        def write(session: Session) -> WatchCycleRecord:
            row = _running(session, ref, holder)
            row.step, row.body = step, {**row.body, **content}
            row.holder, row.updated_at = holder, now()
            session.flush()
            return _cycle(row)

        return self._catalog._write(write)

    def finish(
        self,
        ref: str,
        *,
        holder: str,
        state: str,
        body: Mapping[str, Any] | None = None,
        retake: bool = False,
    ) -> WatchCycleRecord:
        """End running cycle ``ref`` as ``done``, ``waiting`` or ``failed`` (audit event
        ``watch.cycle`` with its record); the lease must be held. A cycle ended before it
        stored its window took it all the same (a window that cannot be read is not read
        again), unless ``retake``: then the next cycle takes that window again."""
        checks.choice("state", state, CYCLE_STATES[1:])
        content = audit.normalize(checks.mapping("body", dict(body or {})))

        def write(session: Session) -> WatchCycleRecord:
            row = _running(session, ref, holder)
            at = now()
            if row.step == "start" and not retake:
                row.step = "window"
            row.state, row.body, row.updated_at, row.finished_at = (
                state, {**row.body, **content}, at, at,
            )  # fmt: skip
            session.flush()
            record = _cycle(row)
            audit.append(
                session, actor=self._catalog._who(None), action="watch.cycle",
                subject=record.subject, payload=record.to_dict(),
            )  # fmt: skip
            return record

        return self._catalog._write(write)

    def running(self, system: str) -> WatchCycleRecord | None:
        """The cycle of ``system`` a crash left running, if any (the one to resume)."""
        query = sa.select(WatchCycle).where(
            WatchCycle.system == system, WatchCycle.state == "running"
        )
        with self._catalog._read() as session:
            row = session.scalars(query.order_by(WatchCycle.number.desc())).first()
            return _cycle(row) if row is not None else None

    def seen(self, system: str, window_key: str, *, dry_run: bool = False) -> bool:
        """Whether a cycle of ``system`` already took the window ``window_key`` (a cycle
        that stopped before it stored the window did not). Dry-run cycles and real ones are
        counted apart: a dry run does not use up the windows a real watcher acts on."""
        query = sa.select(WatchCycle.id).where(
            WatchCycle.system == system,
            WatchCycle.window_key == window_key,
            WatchCycle.step != "start",
            WatchCycle.dry_run == dry_run,
        )
        with self._catalog._read() as session:
            return session.scalars(query).first() is not None

    def get(self, ref: str) -> WatchCycleRecord:
        """The cycle with this id or unique id prefix (at least 6 characters)."""
        with self._catalog._read() as session:
            return _cycle(_cycle_row(session, ref))

    def cycle(self, system: str, number: int) -> WatchCycleRecord:
        """Cycle ``number`` of ``system``."""
        query = sa.select(WatchCycle).where(
            WatchCycle.system == system, WatchCycle.number == number
        )
        with self._catalog._read() as session:
            row = session.scalars(query).first()
            if row is None:
                raise NotFound(
                    f"watch cycle of {system!r}",
                    str(number),
                    hint=f"`regrow watch {system} --history` lists them",
                )
            return _cycle(row)

    def cycles(
        self, system: str | None = None, *, limit: int = 50, since: datetime | None = None
    ) -> builtins.list[WatchCycleRecord]:
        """The latest ``limit`` cycles (of ``system``; started at or after ``since``),
        newest first."""
        query = sa.select(WatchCycle).order_by(WatchCycle.started_at.desc(), WatchCycle.number)
        if system is not None:
            query = query.where(WatchCycle.system == system)
        if since is not None:
            query = query.where(WatchCycle.started_at >= since)
        with self._catalog._read() as session:
            rows = session.scalars(query.limit(checks.integer("limit", limit)))
            return [_cycle(row) for row in rows]


def _positive(seconds: object) -> None:
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
        raise ConfigError(
            f"a watch lease lasts a whole number of seconds >= 1 (got {seconds!r})",
            hint="e.g. 120",
        )


def _held(session: Session, system: str, holder: str) -> WatchLease:
    row = session.get(WatchLease, system, with_for_update=True)
    if row is None or row.holder != holder:
        who = f"; it is held by {_lease(row).describe()}" if row is not None else ""
        raise WatchBusy(
            f"this watcher ({holder[:12]}) does not hold the watch lease of {system!r}{who}",
            hint="another watcher took over after this one's lease lapsed; stop this one",
        )
    if row.expires_at <= now():
        raise WatchBusy(
            f"the watch lease of {system!r} lapsed at {row.expires_at:%H:%M:%S}",
            hint="the watcher must renew its lease while it works; start it again",
        )
    return row


def _running(session: Session, ref: str, holder: str) -> WatchCycle:
    """Cycle ``ref``, still running, of a system whose lease ``holder`` holds (what every
    write of a cycle needs)."""
    row = _cycle_row(session, ref)
    _held(session, row.system, holder)
    if row.state != "running":
        raise CatalogError(
            f"watch cycle {row.number} of {row.system!r} is already {row.state}",
            hint="a finished cycle is not changed",
        )
    return row


def _cycle_row(session: Session, ref: str) -> WatchCycle:
    return lookup.by_id(
        session, WatchCycle, "watch cycle", ref, listed="`regrow watch SYSTEM --history`"
    )


def _lease(row: WatchLease) -> WatchLeaseRecord:
    return WatchLeaseRecord(
        system=row.system, holder=row.holder, process=dict(row.process),
        acquired_at=row.acquired_at, expires_at=row.expires_at,
    )  # fmt: skip


def _cycle(row: WatchCycle) -> WatchCycleRecord:
    return WatchCycleRecord(
        id=row.id, system=row.system, alias=row.alias, number=row.number, state=row.state,
        step=row.step, dry_run=row.dry_run, window_key=row.window_key, body=dict(row.body),
        holder=row.holder, started_at=row.started_at, updated_at=row.updated_at,
        finished_at=row.finished_at,
    )  # fmt: skip
