"""Runs and evaluations in the catalog."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from regrow.catalog import audit, checks, lookup
from regrow.catalog.core import CatalogCore, now
from regrow.catalog.models import Evaluation, Run
from regrow.catalog.records import EvaluationRecord, RunRecord
from regrow.catalog.refs import check_name
from regrow.catalog.rows import evaluation_record, run_record
from regrow.errors import CatalogError

__all__ = ["RUN_STATUSES", "VERDICTS", "RunsMixin", "end_running_run"]

RUN_STATUSES = ("succeeded", "failed")
VERDICTS = ("blessed", "rejected", "none")


def end_running_run(session: Session, run_id: str, **values: Any) -> bool:
    """End ``run_id`` with ``values`` (its status, ...) if it is still ``running``.

    One compare-and-set update: of two writers ending the same run, one wins. False if the
    run had ended already (the caller says how).
    """
    result = session.execute(
        sa.update(Run)
        .where(Run.id == run_id, Run.status == "running")
        .values(finished_at=now(), **values)
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


class RunsMixin(CatalogCore):
    """Catalog methods for runs and evaluations."""

    def start_run(
        self,
        *,
        system: str,
        kind: str,
        seed: int,
        environment: Mapping[str, Any],
        params: Mapping[str, Any],
        actor: str | None = None,
        lease_seconds: int | None = None,
        holder: Mapping[str, Any] | None = None,
    ) -> RunRecord:
        """Record the start of a run (status ``"running"``). Audit event ``run.start``.

        With ``lease_seconds``, the run's lease starts in the same insert (heartbeat now,
        ``holder`` where it runs; see :mod:`regrow.catalog.leases`): a process killed at any
        point after this reads as ``abandoned`` once the lease lapses.
        """
        if lease_seconds is not None:
            checks.integer("lease_seconds", lease_seconds)
            if lease_seconds < 1:
                raise CatalogError(f"'lease_seconds' must be >= 1 (got {lease_seconds!r})")
        started = now()
        row = Run(
            id=uuid.uuid4().hex,
            system=check_name("system", system),
            kind=checks.text("kind", kind, max_length=64),
            status="running",
            seed=checks.integer("seed", seed),
            environment=audit.normalize(checks.mapping("environment", environment)),
            params=audit.normalize(checks.mapping("params", params)),
            summary={},
            started_at=started,
            finished_at=None,
            error=None,
            version_id=None,
            heartbeat_at=started if lease_seconds is not None else None,
            lease_seconds=lease_seconds,
            holder=audit.normalize(dict(holder)) if holder is not None else None,
        )
        who = self._who(actor)

        def write(session: Session) -> RunRecord:
            session.add(row)
            session.flush()
            audit.append(
                session,
                actor=who,
                action="run.start",
                subject=f"run:{row.id}",
                rows=[("runs", row.id)],
                payload={"system": system, "kind": kind, "seed": seed},
            )
            return run_record(row)

        return self._write(write)

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        summary: Mapping[str, Any],
        error: str | None = None,
        version_id: str | None = None,
        actor: str | None = None,
    ) -> RunRecord:
        """Record the end of a running run (``"succeeded"`` or ``"failed"``). Audit ``run.finish``.

        A run finishes once: finishing it again raises :class:`~regrow.errors.CatalogError`.
        """
        checks.choice("status", status, RUN_STATUSES)
        data = audit.normalize(checks.mapping("summary", summary))
        if error is not None:
            checks.text("error", error, max_length=1_000_000, empty=True)
        who = self._who(actor)

        def write(session: Session) -> RunRecord:
            run = self._run(session, run_id)
            if version_id is not None:
                version = lookup.version_by_id(session, version_id)
                if version.system != run.system:
                    raise CatalogError(
                        f"version {version.system}:v{version.number} is not a version of the run's "
                        f"system {run.system!r}",
                        hint="pass the version this run produced",
                    )
            ended = end_running_run(
                session, run_id, status=status, summary=data, error=error, version_id=version_id
            )
            if not ended:
                raise CatalogError(
                    f"run {run_id} already finished with status {run.status!r}",
                    hint="a run finishes once; start a new run to try again",
                )
            audit.append(
                session,
                actor=who,
                action="run.finish",
                subject=f"run:{run_id}",
                rows=[("runs", run_id)],
                payload={"status": status, "version_id": version_id, "error": error},
            )
            session.refresh(run)
            return run_record(run)

        return self._write(write)

    def get_run(self, id: str) -> RunRecord:
        """The run whose id is ``id`` or starts with it (a unique prefix of at least 6
        characters, as ``regrow costs`` prints them); :class:`~regrow.errors.NotFound` if
        there is none, or a prefix is ambiguous (its matches named)."""
        with self._read() as session:
            listed = "`regrow costs --system SYSTEM` or the dashboard's /ui/plans"
            return run_record(lookup.by_id(session, Run, "run", id, listed=listed))

    def list_runs(self, system: str | None = None, limit: int = 50) -> list[RunRecord]:
        """The latest ``limit`` runs (of ``system``, if given), newest first."""
        query = (
            sa.select(Run)
            .order_by(Run.started_at.desc(), Run.id)
            .limit(checks.integer("limit", limit))
        )
        if system is not None:
            query = query.where(Run.system == system)
        with self._read() as session:
            return [run_record(row) for row in session.scalars(query)]

    def add_evaluation(
        self,
        *,
        candidate_id: str,
        baseline_id: str | None,
        snapshot_id: str,
        metric: str,
        results: Mapping[str, Any],
        verdict: str,
        reasons: Sequence[str],
        actor: str | None = None,
    ) -> EvaluationRecord:
        """Record the evaluation of a candidate version against a baseline on one snapshot.

        ``verdict`` is ``"blessed"``, ``"rejected"`` or ``"none"``. Audit ``evaluation.create``.
        """
        row = Evaluation(
            id=uuid.uuid4().hex,
            candidate_id=candidate_id,
            baseline_id=baseline_id,
            snapshot_id=snapshot_id,
            metric=checks.text("metric", metric),
            results=audit.normalize(checks.mapping("results", results)),
            verdict=checks.choice("verdict", verdict, VERDICTS),
            reasons=list(checks.texts("reasons", reasons)),
            created_at=now(),
        )
        who = self._who(actor)

        def write(session: Session) -> EvaluationRecord:
            candidate = lookup.version_by_id(session, candidate_id)
            if baseline_id is not None:
                lookup.version_by_id(session, baseline_id)
            self._check_refs(session, run_id=None, snapshot_id=snapshot_id)
            session.add(row)
            session.flush()
            audit.append(
                session,
                actor=who,
                action="evaluation.create",
                subject=f"version:{candidate.system}:v{candidate.number}",
                rows=[("evaluations", row.id)],
                payload={
                    "id": row.id,
                    "baseline_id": baseline_id,
                    "snapshot_id": snapshot_id,
                    "metric": metric,
                    "verdict": verdict,
                },
            )
            return evaluation_record(row)

        return self._write(write)

    def list_evaluations(self, candidate_id: str | None = None) -> list[EvaluationRecord]:
        """Every evaluation (of ``candidate_id``, if given), newest first."""
        query = sa.select(Evaluation).order_by(Evaluation.created_at.desc(), Evaluation.id)
        if candidate_id is not None:
            query = query.where(Evaluation.candidate_id == candidate_id)
        with self._read() as session:
            return [evaluation_record(row) for row in session.scalars(query)]
