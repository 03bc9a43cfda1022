"""What ``regrow doctor`` checks, and the report it gives.

:func:`examine` reads the catalog and the artifact store and lists every problem it finds:

================  ==============================================================================
kind              what
================  ==============================================================================
``missing``       a component version or snapshot references an artifact the store lacks
``corrupt``       the artifact's bytes no longer hash to its key (``quick``: its size differs
                  from the size recorded with the version)
``orphan``        a store file no row references (an artifact, or a temporary file a crashed
                  write left), older than the grace period (tables of members' outputs
                  listed in ``catalog.outputs``, a cache, and the prediction log's files
                  listed in ``catalog.predictions`` are not checked)
``stuck-run``     a run still marked ``running`` whose lease lapsed (its process is gone), or,
                  for a run from before leases, long after it started
``audit-chain``   the audit log's hash chain does not verify
``alias-history`` an alias, its recorded moves and their audit events disagree
``migration``     the catalog database is not at the newest schema revision
``database``      SQLite's integrity check (``quick``: its quick check) finds the catalog file
                  damaged; then nothing else is checked, since nothing read from it is sure
================  ==============================================================================

Nothing here writes: repairs live in :mod:`regrow.doctor`. :func:`lost_artifacts` is the
runner's cheap check before it reuses component versions (one batched metadata call), and
:func:`restore_snapshot_artifact` puts back a snapshot's Parquet when the same rows are
stored again.

>>> from regrow.catalog import Catalog
>>> from regrow.catalog.store import open_store
>>> with Catalog("sqlite://") as catalog:
...     report = examine(catalog, open_store("memory://regrow-health-doctest"))
>>> report.ok, report.problems
(True, ())
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from regrow.catalog.catalog import Catalog
from regrow.catalog.integrity import ARTIFACT_BYTES, ArtifactReference
from regrow.catalog.records import ComponentVersionRecord, SnapshotRecord
from regrow.catalog.store import ArtifactStore
from regrow.errors import AuditChainBroken

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_STUCK_AFTER",
    "DoctorReport",
    "Problem",
    "ProblemKind",
    "Repair",
    "examine",
    "lost_artifacts",
    "restore_command",
    "restore_snapshot_artifact",
    "with_repairs",
]

ProblemKind = Literal[
    "missing",
    "corrupt",
    "orphan",
    "stuck-run",
    "audit-chain",
    "alias-history",
    "migration",
    "database",
]

DEFAULT_GRACE = timedelta(hours=1)
"""Unreferenced files younger than this are left alone: a run may be about to record them."""

DEFAULT_STUCK_AFTER = timedelta(hours=12)
"""A run still ``running`` this long after it started is reported as stuck."""

SNAPSHOT_HINT = (
    "a snapshot's rows are not in the catalog, so doctor cannot rebuild them: store the same "
    "rows again (`{command}`, or ws.snapshot(frame, ...) with the same arguments) and the "
    "snapshot's artifact is written back, or restore it from a backup"
)


def restore_command(
    name: str,
    time_column: str | None = None,
    slices: Mapping[str, str] | None = None,
    home: str | None = None,
) -> str:
    """The command that stores a snapshot's rows again under its id: the same name, time
    column and slices (another time column or slice is another snapshot, and the lost one
    stays lost).

    >>> print(restore_command("recent", "ts", {"big": "amount > 100"}))
    regrow snapshot create FILE --name recent --time-column ts --slice 'big=amount > 100'
    """
    words = ["regrow", "snapshot", "create", "FILE", "--name", name]
    if time_column:
        words += ["--time-column", time_column]
    for slice_name, expression in (slices or {}).items():
        words += ["--slice", f"{slice_name}={expression}"]
    if home:
        words += ["--home", home]
    return " ".join(shlex.quote(w) for w in words)


@dataclass(frozen=True)
class Problem:
    """One thing :func:`examine` found wrong.

    ``subject`` names what is affected (``component-version:<id>``, ``snapshot:<id>``,
    ``artifact:<key>``, ``file:tmp/...``, ``run:<id>``, ``alias:<system>@<alias>``, ``audit``,
    ``catalog``); ``key`` is the artifact involved, if any; ``repairable`` says whether
    ``regrow doctor --repair`` can fix it.
    """

    kind: ProblemKind
    subject: str
    message: str
    hint: str
    key: str | None = None
    repairable: bool = False


@dataclass(frozen=True)
class Repair:
    """What ``--repair`` did about the problem with ``subject``.

    ``action``: ``rebuilt``, ``deleted``, ``abandoned``, or ``none`` (it could not be repaired;
    ``detail`` says why and what to do). ``ok`` is whether the problem is gone.
    """

    subject: str
    action: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class DoctorReport:
    """The problems found, what was checked (counts), and the repairs made, if asked."""

    problems: tuple[Problem, ...]
    checked: Mapping[str, int] = field(default_factory=dict)
    quick: bool = False
    repairs: tuple[Repair, ...] = ()

    @property
    def remaining(self) -> tuple[Problem, ...]:
        """The problems no repair fixed."""
        fixed = {r.subject for r in self.repairs if r.ok}
        return tuple(p for p in self.problems if p.subject not in fixed)

    @property
    def ok(self) -> bool:
        """Whether nothing is wrong (any more)."""
        return not self.remaining

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-friendly values."""
        return {
            "ok": self.ok,
            "quick": self.quick,
            "checked": dict(self.checked),
            "problems": [asdict(p) for p in self.problems],
            "repairs": [asdict(r) for r in self.repairs],
            "remaining": [p.subject for p in self.remaining],
        }


def examine(
    catalog: Catalog,
    store: ArtifactStore,
    *,
    quick: bool = False,
    grace: timedelta = DEFAULT_GRACE,
    stuck_after: timedelta = DEFAULT_STUCK_AFTER,
    now: datetime | None = None,
) -> DoctorReport:
    """Check the catalog and the store (see the module docs); nothing is changed.

    Every artifact a component version or snapshot references is looked up (one batched
    call) and, unless ``quick``, read and hashed; ``quick`` compares sizes with the size
    recorded with a component version instead.
    """
    at = now or datetime.now(UTC)
    damage = catalog.integrity.database_problems(quick=quick)
    if damage:  # nothing read from a damaged file can be trusted: this first, alone
        shown = "; ".join(damage[:3]) + (
            f" (and {len(damage) - 3} more)" if len(damage) > 3 else ""
        )
        damaged = Problem(
            "database",
            "catalog",
            f"the catalog database file is damaged (SQLite's integrity check: {shown})",
            hint="keep a copy of catalog.db for investigation and restore it from a backup; "
            "the other checks run on a sound catalog",
        )
        return DoctorReport((damaged,), {"database": 1}, quick)
    refs = catalog.integrity.artifact_references()
    keys = list(dict.fromkeys(r.key for r in refs))
    sizes = store.sizes(keys)
    digests: dict[str, str | None] = {}  # each artifact is hashed once, however many use it
    problems: list[Problem] = []
    for ref in refs:
        problem = _artifact_problem(ref, sizes[ref.key], store, quick, digests)
        if problem is not None:
            problems.append(problem)
    files = list(store.list_files())
    # tables of members' outputs (a cache), the prediction log's files, evaluations' reports
    cached = (
        catalog.outputs.artifacts()
        | catalog.predictions.artifacts()
        | catalog.integrity.report_artifacts()
    )
    recent = 0
    for f in files:
        if f.key is not None and (f.key in sizes or f.key in cached):
            continue
        if f.modified is not None and at - f.modified < grace:
            recent += 1
            continue
        problems.append(_orphan(f.path, f.key, f.size, f.modified))
    # A run whose lease lapsed is abandoned: its process stopped renewing it. Runs recorded
    # before leases existed have none; for them only age tells, after ``stuck_after``.
    lapsed = catalog.leases.abandoned(at)
    problems.extend(
        Problem(
            "stuck-run",
            f"run:{run.id}",
            f"run {run.id} ({run.kind} of {run.system!r}) is abandoned: it stopped renewing its "
            f"lease at {run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC; it ran on {_where(run.holder)}",
            hint="`regrow doctor --repair` marks it abandoned; finished components stay recorded "
            "and the next run reuses them",
            repairable=True,
        )
        for run in lapsed
        if run.heartbeat_at is not None
    )
    stuck = catalog.integrity.running_since(at - stuck_after)
    problems.extend(
        Problem(
            "stuck-run",
            f"run:{run.id}",
            f"run {run.id} ({run.kind} of {run.system!r}) has been running since "
            f"{run.started_at:%Y-%m-%d %H:%M:%S} UTC ({_age(at - run.started_at)})",
            hint="if its process is gone, `regrow doctor --repair` marks it abandoned; "
            "finished components stay recorded and the next run reuses them",
            repairable=True,
        )
        for run in stuck
        if run.heartbeat_at is None  # leased runs are judged by their lease, above
    )
    events = 0
    try:
        events = catalog.verify_audit()
    except AuditChainBroken as exc:
        problems.append(Problem("audit-chain", "audit", exc.message, exc.hint or ""))
        # Rows were changed outside regrow: a file no row references may be the artifact
        # of a deleted one, which restoring the catalog from a backup needs again.
        problems = [_kept(p) if p.kind == "orphan" and p.key is not None else p for p in problems]
    alias_problems = catalog.integrity.alias_problems()
    problems.extend(
        Problem(
            "alias-history",
            subject,
            f"alias {subject.removeprefix('alias:')} {what}",
            hint="the alias history was changed outside regrow: compare `regrow aliases "
            "--history` with `regrow audit`, and restore the catalog from a backup",
        )
        for subject, what in alias_problems
    )
    current, head = catalog.integrity.schema_revision()
    if current != head:
        problems.append(
            Problem(
                "migration",
                "catalog",
                f"the catalog database is at schema revision {current!r}, not {head!r}, the "
                "newest this regrow knows",
                hint="open the workspace with regrow to upgrade it, or upgrade regrow if a "
                "newer one wrote it: pip install -U regrow",
            )
        )
    checked = {
        "component_versions": sum(r.kind == "component" for r in refs),
        "snapshots": sum(r.kind == "snapshot" for r in refs),
        "artifacts": len(keys),
        "hashed": 0 if quick else sum(s is not None for s in sizes.values()),
        "store_files": len(files),
        "recent_unreferenced_files": recent,
        "audit_events": events,
    }
    return DoctorReport(tuple(problems), checked, quick)


def lost_artifacts(
    store: ArtifactStore, versions: Iterable[ComponentVersionRecord]
) -> dict[str, str]:
    """The component versions among ``versions`` whose artifact the store lost: id -> reason.

    ``missing``, or ``corrupted`` when its size differs from the one recorded with it. One
    batched metadata call; bytes are not read (``regrow doctor`` hashes them).
    """
    with_artifact = [v for v in versions if v.artifact is not None]
    sizes = store.sizes(v.artifact for v in with_artifact if v.artifact is not None)
    lost: dict[str, str] = {}
    for v in with_artifact:
        size, recorded = sizes[v.artifact or ""], v.info.get(ARTIFACT_BYTES)
        if size is None:
            lost[v.id] = "missing"
        elif isinstance(recorded, int) and size != recorded:
            lost[v.id] = "corrupted"
    return lost


def restore_snapshot_artifact(
    catalog: Catalog, store: ArtifactStore, snapshot: SnapshotRecord, parquet: bytes
) -> SnapshotRecord:
    """Write ``parquet`` (the snapshot's rows, stored again) back if its artifact was lost.

    An intact artifact costs one hash of the stored file and nothing is written. A missing
    or corrupted one is replaced; if the new bytes hash to another key, the snapshot's row
    moves to it. Either way the restore is audited (``snapshot.restore``).
    """
    try:
        found = store.digest(snapshot.artifact)
    except LookupError:
        found = None
    if found == snapshot.artifact:
        return snapshot
    key = store.put(parquet)
    return catalog.integrity.restore_snapshot_artifact(
        snapshot.id,
        expected=snapshot.artifact,
        artifact=key,
        reason="missing" if found is None else "corrupted",
    )


def with_repairs(report: DoctorReport, repairs: Iterable[Repair]) -> DoctorReport:
    """``report`` with ``repairs`` recorded."""
    return replace(report, repairs=(*report.repairs, *repairs))


def _artifact_problem(
    ref: ArtifactReference,
    size: int | None,
    store: ArtifactStore,
    quick: bool,
    digests: dict[str, str | None],
) -> Problem | None:
    what = (
        f"component version {ref.id} ({ref.label})"
        if ref.kind == "component"
        else f"snapshot {ref.id[:12]} ({ref.label})"
    )
    if ref.kind == "component":
        hint = (
            "`regrow doctor --repair` refits it from its recorded recipe, data and seed, "
            "or re-run the training that made it (`regrow train FILE.py:SYSTEM --snapshot S`)"
        )
        corrupt_hint = (
            "`regrow doctor --repair` refits it from its recorded recipe, data and seed "
            "(re-running the training would reuse it: a run checks that an artifact is there "
            "with its recorded size, not its contents)"
        )
    else:
        hint = corrupt_hint = SNAPSHOT_HINT.format(
            command=restore_command(ref.label, ref.time_column, ref.slices)
        )
    repairable = ref.kind == "component"
    if size is None:
        message = f"{what} references artifact {ref.key}, which is missing from the store"
        return Problem("missing", ref.subject, message, hint, ref.key, repairable)
    if quick:
        if ref.size is None or size == ref.size:
            return None
        message = (
            f"{what} references artifact {ref.key}, which has {size} bytes, not the "
            f"{ref.size} recorded"
        )
        return Problem("corrupt", ref.subject, message, corrupt_hint, ref.key, repairable)
    if ref.key not in digests:
        try:
            digests[ref.key] = store.digest(ref.key)
        except LookupError:  # removed since the listing
            digests[ref.key] = None
    found = digests[ref.key]
    if found is None:
        message = f"{what} references artifact {ref.key}, which is missing from the store"
        return Problem("missing", ref.subject, message, hint, ref.key, repairable)
    if found == ref.key:
        return None
    message = f"{what} references artifact {ref.key}, which is corrupted: its bytes hash to {found}"
    return Problem("corrupt", ref.subject, message, corrupt_hint, ref.key, repairable)


def _orphan(path: str, key: str | None, size: int, modified: datetime | None) -> Problem:
    when = f", written {modified:%Y-%m-%d %H:%M:%S} UTC" if modified else ""
    if key is None:
        message = f"temporary file {path} ({size} bytes{when}) was left by an interrupted write"
        subject = f"file:{path}"
    else:
        message = f"artifact {key} ({size} bytes{when}) is referenced by no version or snapshot"
        subject = f"artifact:{key}"
    return Problem(
        "orphan",
        subject,
        message,
        hint="`regrow doctor --repair` deletes unreferenced files older than --grace",
        key=key,
        repairable=True,
    )


def _kept(orphan: Problem) -> Problem:
    """``orphan`` (an unreferenced artifact) as one ``--repair`` leaves alone."""
    return replace(
        orphan,
        hint="not deleted while the audit chain is broken: catalog rows were changed or "
        "deleted outside regrow, and this may be the artifact of one; restore the catalog "
        "from a backup first (then `regrow doctor` again)",
        repairable=False,
    )


def _age(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} hours" if hours < 48 else f"{hours / 24:.1f} days"


def _where(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "an unknown host"
    return (
        f"{holder.get('host', '?')} (pid {holder.get('pid', '?')}, user {holder.get('user', '?')})"
    )
