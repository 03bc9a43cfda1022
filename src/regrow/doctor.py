"""``regrow doctor``: find what is wrong with a workspace's catalog and store, and repair it.

:func:`doctor` runs the checks of :func:`regrow.catalog.health.examine` (every artifact a
component version or snapshot references, files no row references, runs stuck in
``running``, the audit chain, alias history against its audit events, the schema revision).
With ``repair=True`` it then fixes what can be fixed, each repair audited:

==========================  ===================================================================
problem                     repair
==========================  ===================================================================
component artifact lost     refitted from its recorded recipe, snapshot, seed and upstream
(missing or corrupted)      versions, under the same fingerprint (:mod:`regrow.run.rebuild`);
                            audit ``component.rebuild``. If that is impossible, corrupted bytes
                            are deleted so the next ``regrow train`` refits the component
snapshot artifact lost      not repairable here: the rows are not in the catalog. Storing the
                            same rows again writes the artifact back (same rows, same snapshot)
unreferenced file           deleted if older than ``grace``; audit ``store.delete``
run stuck in ``running``    marked abandoned; audit ``run.abandon``
audit chain, alias history  not repairable: restore the catalog from a backup
==========================  ===================================================================

>>> parse_duration("90m"), parse_duration("2d"), parse_duration(30)
(datetime.timedelta(seconds=5400), datetime.timedelta(days=2), datetime.timedelta(seconds=30))
"""

from __future__ import annotations

import re
import shlex
from datetime import datetime, timedelta

from regrow.catalog.catalog import Catalog
from regrow.catalog.health import (
    DEFAULT_GRACE,
    DEFAULT_STUCK_AFTER,
    DoctorReport,
    Problem,
    Repair,
    examine,
    restore_command,
    with_repairs,
)
from regrow.catalog.records import SnapshotRecord
from regrow.catalog.store import ArtifactStore
from regrow.errors import (
    ArtifactCorrupted,
    ArtifactNotFound,
    CannotRebuild,
    CatalogError,
    ConfigError,
)
from regrow.run.rebuild import rebuild

__all__ = ["doctor", "lost_artifact_error", "parse_duration"]

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str | float | timedelta) -> timedelta:
    """A duration from ``"90s"``, ``"30m"``, ``"1.5h"``, ``"2d"``, seconds, or a timedelta."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise ConfigError(
                f"invalid duration {value!r}",
                hint="write a number with an optional unit s, m, h or d, e.g. 90s, 30m, 1h, 2d",
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0:
        raise ConfigError(f"a duration must be >= 0 (got {value!r})", hint="e.g. 1h")
    return timedelta(seconds=seconds)


def doctor(
    catalog: Catalog,
    store: ArtifactStore,
    *,
    quick: bool = False,
    repair: bool = False,
    grace: str | float | timedelta = DEFAULT_GRACE,
    stuck_after: str | float | timedelta = DEFAULT_STUCK_AFTER,
    actor: str | None = None,
    now: datetime | None = None,
) -> DoctorReport:
    """Check the workspace (see the module docs); with ``repair`` fix what can be fixed.

    ``quick`` checks that artifacts exist and have their recorded size, without reading
    them. ``grace``: unreferenced files younger than this are neither reported nor deleted
    (a run may be about to record them). ``stuck_after``: how long a run may stay
    ``running`` before it is reported (and, with ``repair``, marked abandoned).
    """
    report = examine(
        catalog,
        store,
        quick=quick,
        grace=parse_duration(grace),
        stuck_after=parse_duration(stuck_after),
        now=now,
    )
    if not repair:
        return report
    repairs = [
        *_rebuild_components(catalog, store, report.problems, actor),
        *_delete_orphans(catalog, store, report.problems, actor),
        *_abandon_runs(catalog, report.problems, actor),
    ]
    return with_repairs(report, repairs)


def _rebuild_components(
    catalog: Catalog, store: ArtifactStore, problems: tuple[Problem, ...], actor: str | None
) -> list[Repair]:
    reasons = {
        p.subject.removeprefix("component-version:"): (
            "missing" if p.kind == "missing" else "corrupted"
        )
        for p in problems
        if p.kind in ("missing", "corrupt") and p.subject.startswith("component-version:")
    }
    if not reasons:
        return []
    repairs = []
    for cid, outcome in rebuild(catalog, store, reasons, by="doctor", actor=actor).items():
        subject = f"component-version:{cid}"
        if isinstance(outcome, CannotRebuild):
            detail = str(outcome)
            if reasons[cid] == "corrupted" and _drop_corrupted(catalog, store, cid, actor):
                detail += "; its corrupted bytes were deleted, so that run refits it"
            repairs.append(Repair(subject, "none", False, detail))
            continue
        what = (
            "the same bytes as before"
            if outcome.identical
            else f"new artifact {outcome.version.artifact} (was {outcome.previous})"
        )
        detail = f"refitted from its record in {outcome.seconds:.1f}s: {what}"
        if outcome.changed_libraries:
            detail += (
                "; installed versions of "
                + ", ".join(outcome.changed_libraries)
                + " differ from the recorded ones, so it may not predict exactly as before"
            )
        repairs.append(Repair(subject, "rebuilt", True, detail))
    return repairs


def _drop_corrupted(catalog: Catalog, store: ArtifactStore, cid: str, actor: str | None) -> bool:
    """Delete the corrupted artifact of component version ``cid`` (audited): the runner's
    existence check then refits it on the next run of its training."""
    key = catalog.get_component_version(cid).artifact
    if key is None or not store.exists(key) or store.digest(key) == key:
        return False
    store.delete(key)
    catalog.audit(
        "store.delete",
        f"artifact:{key}",
        {"reason": "corrupted", "component_version": cid},
        actor=actor,
    )
    return True


def _delete_orphans(
    catalog: Catalog, store: ArtifactStore, problems: tuple[Problem, ...], actor: str | None
) -> list[Repair]:
    repairs = []
    for p in problems:
        if p.kind != "orphan":
            continue
        if not p.repairable:  # kept: the audit chain is broken (see examine)
            repairs.append(Repair(p.subject, "none", False, p.hint))
            continue
        if p.key is not None:
            if catalog.integrity.referenced(p.key):  # recorded since it was examined
                repairs.append(Repair(p.subject, "none", True, "a row references it now"))
                continue
            store.delete(p.key)
        else:
            store.remove_temp(p.subject.removeprefix("file:"))
        catalog.audit("store.delete", p.subject, {"reason": "unreferenced"}, actor=actor)
        repairs.append(Repair(p.subject, "deleted", True, "no row references it"))
    return repairs


def _abandon_runs(
    catalog: Catalog, problems: tuple[Problem, ...], actor: str | None
) -> list[Repair]:
    repairs = []
    for p in problems:
        if p.kind != "stuck-run":
            continue
        run_id = p.subject.removeprefix("run:")
        try:
            catalog.leases.abandon(
                run_id, reason="its process is gone (regrow doctor)", actor=actor
            )
        except CatalogError:  # it finished meanwhile
            repairs.append(Repair(p.subject, "none", True, "it finished meanwhile"))
            continue
        repairs.append(Repair(p.subject, "abandoned", True, "marked abandoned"))
    return repairs


def lost_artifact_error(
    exc: ArtifactCorrupted | ArtifactNotFound,
    what: str,
    *,
    home: str | None,
    snapshot: SnapshotRecord | None = None,
) -> ArtifactCorrupted | ArtifactNotFound:
    """``exc`` (a failed load of ``what``) as the same error, with the command that repairs it.

    ``snapshot`` is the snapshot when ``what`` is one (its rows cannot be rebuilt from the
    catalog: storing them again, under its name, time column and slices, writes it back).
    """
    where = f" --home {shlex.quote(home)}" if home else ""
    if snapshot is not None:
        command = restore_command(snapshot.name, snapshot.time_column, snapshot.slices, home)
        hint = (
            f"store the same rows again to write it back (`{command}`), or restore it from a "
            f"backup; `regrow doctor{where}` lists everything the store lost"
        )
    else:
        hint = (
            f"rebuild it with `regrow doctor --repair{where}` (refits every lost component "
            "version from its recorded recipe, data and seed), or in Python "
            "ws.doctor(repair=True)"
        )
    return type(exc)(f"cannot load {what}: {exc.message}", hint=hint)
