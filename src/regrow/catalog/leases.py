"""Leases: a run proves it is alive, and a fingerprint is fitted once: ``catalog.leases``.

A run holds a **run lease**: its row carries ``heartbeat_at`` and ``lease_seconds``, and the
runner renews the heartbeat every third of the lease. A run whose process died stops renewing
it; once the lease lapses the run reads as ``abandoned`` (:meth:`RunRecord.state`), with the
``holder`` (host, pid, user) that ran it, and :meth:`Leases.abandon` records that for good.

Before fitting a component, a run takes a **fit lease** on its fingerprint. Another run that
needs the same fingerprint finds the lease held by a live run and waits for the component
version to appear instead of fitting it again; when the holder dies, its leases lapse with its
heartbeat and the waiting run takes them over. Taking a lease is one conditional write per
fingerprint (insert if absent, else take it over only if it lapsed), so two runs can never
both hold one, on SQLite or PostgreSQL.

================  =====================================================================
``hold_run``      start a run's lease (at the run's start), with where it runs
``heartbeat``     renew a run's lease and every fit lease it holds
``acquire``       take fit leases on fingerprints; returns the ones taken
``holders``       who holds which of the given fingerprints now
``release``       give fit leases back (after the version is recorded, or on failure)
``abandoned``     running runs whose lease lapsed
``abandon``       mark such a run ``abandoned`` and drop its fit leases; audit ``run.abandon``
================  =====================================================================

>>> from regrow.catalog import Catalog
>>> catalog = Catalog("sqlite://")
>>> run = catalog.start_run(system="s", kind="train", seed=0, environment={}, params={})
>>> _ = catalog.leases.hold_run(run.id, lease_seconds=30, holder={"host": "h", "pid": 1})
>>> catalog.leases.acquire(run.id, {"f" * 64: ("s", "m")}, lease_seconds=30) == {"f" * 64}
True
>>> other = catalog.start_run(system="s", kind="train", seed=0, environment={}, params={})
>>> catalog.leases.acquire(other.id, {"f" * 64: ("s", "m")}, lease_seconds=30)
set()
>>> catalog.close()
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from regrow.catalog import audit, checks
from regrow.catalog.core import now
from regrow.catalog.models import FitLease, Run
from regrow.catalog.plans import release_plan
from regrow.catalog.records import FitLeaseRecord, RunRecord
from regrow.catalog.rows import run_record
from regrow.catalog.runs import end_running_run
from regrow.errors import CatalogError, ConfigError

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog

__all__ = ["DEFAULT_LEASE_SECONDS", "Leases", "this_process"]

DEFAULT_LEASE_SECONDS = 30
"""How long a run's lease lasts without a heartbeat (``$REGROW_LEASE_SECONDS`` overrides)."""


def this_process() -> dict[str, Any]:
    """Where this process runs: host, pid and user (a run's ``holder``)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "?"
    return {"host": socket.gethostname(), "pid": os.getpid(), "user": user}


def _seconds(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"'lease_seconds' must be an int >= 1 (got {value!r})",
            hint="a lease of 30 seconds is the default",
        )
    return value


class Leases:
    """Run and fit leases in ``catalog``; reach it as ``catalog.leases``."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def hold_run(
        self, run_id: str, *, lease_seconds: int, holder: Mapping[str, Any] | None = None
    ) -> RunRecord:
        """Start the lease of a running run: heartbeat now, lasting ``lease_seconds``."""
        seconds = _seconds(lease_seconds)
        where = audit.normalize(dict(holder or this_process()))

        def write(session: Session) -> RunRecord:
            run = self._catalog._run(session, run_id)
            run.heartbeat_at = now()
            run.lease_seconds = seconds
            run.holder = where
            session.flush()
            return run_record(run)

        return self._catalog._write(write)

    def heartbeat(self, run_id: str) -> bool:
        """Renew ``run_id``'s lease and its fit leases. False if the run no longer runs."""

        def write(session: Session) -> bool:
            stamp = now()
            run = self._catalog._run(session, run_id)
            if run.status != "running":
                return False
            run.heartbeat_at = stamp
            until = stamp + timedelta(seconds=run.lease_seconds or DEFAULT_LEASE_SECONDS)
            session.execute(
                sa.update(FitLease)
                .where(FitLease.run_id == run_id)
                .values(expires_at=until)
                .execution_options(synchronize_session=False)
            )
            return True

        return self._catalog._write(write)

    def acquire(
        self,
        run_id: str,
        wanted: Mapping[str, tuple[str, str]],
        *,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
    ) -> set[str]:
        """Take fit leases on ``wanted`` (fingerprint → (system, component)) for ``run_id``.

        A fingerprint is taken when nobody holds it, when its lease lapsed (its holder died),
        or when ``run_id`` holds it already. Returns the fingerprints taken.
        """
        seconds = _seconds(lease_seconds)
        for fp in wanted:
            checks.identifier("fingerprint", fp)

        def write(session: Session) -> set[str]:
            stamp = now()
            until = stamp + timedelta(seconds=seconds)
            taken: set[str] = set()
            for fp, (system, component) in sorted(wanted.items()):
                inserted = session.execute(
                    self._catalog._insert(FitLease)
                    .values(
                        fingerprint=fp,
                        system=system,
                        component=component,
                        run_id=run_id,
                        acquired_at=stamp,
                        expires_at=until,
                    )
                    .on_conflict_do_nothing(index_elements=["fingerprint"])
                )
                if getattr(inserted, "rowcount", 0) == 1:
                    taken.add(fp)
                    continue
                over = session.execute(
                    sa.update(FitLease)
                    .where(
                        FitLease.fingerprint == fp,
                        sa.or_(FitLease.expires_at < stamp, FitLease.run_id == run_id),
                    )
                    .values(run_id=run_id, acquired_at=stamp, expires_at=until)
                    .execution_options(synchronize_session=False)
                )
                if getattr(over, "rowcount", 0) == 1:
                    taken.add(fp)
            return taken

        return self._catalog._write(write)

    def holders(self, fingerprints: Iterable[str]) -> dict[str, FitLeaseRecord]:
        """The live or lapsed fit leases on ``fingerprints``, by fingerprint."""
        fps = list(fingerprints)
        if not fps:
            return {}
        query = sa.select(FitLease).where(self._catalog._id_in(FitLease.fingerprint, fps))
        with self._catalog._read() as session:
            return {row.fingerprint: _lease_record(row) for row in session.scalars(query)}

    def release(self, run_id: str, fingerprints: Iterable[str] | None = None) -> int:
        """Give back ``run_id``'s fit leases (all of them, or those on ``fingerprints``)."""
        fps = None if fingerprints is None else list(fingerprints)

        def write(session: Session) -> int:
            query = sa.delete(FitLease).where(FitLease.run_id == run_id)
            if fps is not None:
                if not fps:
                    return 0
                query = query.where(self._catalog._id_in(FitLease.fingerprint, fps))
            result = session.execute(query.execution_options(synchronize_session=False))
            return int(getattr(result, "rowcount", 0) or 0)

        return self._catalog._write(write)

    def abandoned(self, at: datetime | None = None) -> list[RunRecord]:
        """Runs still marked ``running`` whose lease lapsed, oldest first."""
        query = sa.select(Run).where(Run.status == "running").order_by(Run.started_at)
        with self._catalog._read() as session:
            runs = [run_record(row) for row in session.scalars(query)]
        return [r for r in runs if r.state(at) == "abandoned"]

    def abandon(self, run_id: str, *, reason: str, actor: str | None = None) -> RunRecord:
        """Mark a running run ``abandoned`` (its process is gone) and drop its fit leases.

        Its finished components stay recorded: the next run of the system reuses them. A
        plan it was running is marked ``failed`` as interrupted (audit ``plan.failed``), so
        that running the plan again resumes it (it stayed ``running``, refused for ever).
        Audit ``run.abandon``. A run that already finished raises :class:`CatalogError`.
        """
        text = checks.text("reason", reason, max_length=10_000)
        who = self._catalog._who(actor)

        def write(session: Session) -> RunRecord:
            run = self._catalog._run(session, run_id)
            if not end_running_run(session, run_id, status="abandoned", error=text):
                raise CatalogError(
                    f"run {run_id} is not running (status {run.status!r})",
                    hint="only a run still marked running can be abandoned",
                )
            session.execute(
                sa.delete(FitLease)
                .where(FitLease.run_id == run_id)
                .execution_options(synchronize_session=False)
            )
            plan_id = (run.params or {}).get("plan")
            if isinstance(plan_id, str):  # a plan's run: the plan can be run again
                release_plan(session, plan_id, run_id=run_id, reason=text, actor=who)
            audit.append(
                session,
                actor=who,
                action="run.abandon",
                subject=f"run:{run_id}",
                rows=[("runs", run_id)],
                payload={
                    "reason": text,
                    "holder": run.holder,
                    "heartbeat_at": run.heartbeat_at.isoformat() if run.heartbeat_at else None,
                },
            )
            session.refresh(run)
            return run_record(run)

        return self._catalog._write(write)


def _lease_record(row: FitLease) -> FitLeaseRecord:
    return FitLeaseRecord(
        fingerprint=row.fingerprint,
        system=row.system,
        component=row.component,
        run_id=row.run_id,
        acquired_at=row.acquired_at,
        expires_at=row.expires_at,
    )
