"""Monitor a system version on a window of data: drift, performance, attribution, report.

This is what ``Workspace.monitor`` and ``regrow monitor`` run:

0. the **window**: a stored snapshot, or rows (a DataFrame, a CSV or Parquet file) that are
   validated now but stored as ``<system>-window`` only with the report, once the check
   succeeded: a failed check leaves no snapshot, artifact or report behind
   (:mod:`regrow.windows`);
1. each member's **reference** is the snapshot it was trained on (after a partial update,
   members have different ones); its monitoring profile is computed once, when the snapshot
   is created (or on first use for older snapshots), and stored in the catalog;
2. the window's **data quality** against what the version was trained on: nulls, values of the wrong
   type, missing or extra columns, unseen categories; which components read each affected
   column and which members cannot take it (:mod:`regrow.monitor.data_quality`). Rows the
   version cannot score are set aside from impact and performance, and the report says so;
3. the **drift** monitor compares the window with each reference on the columns its members
   read (calibrated thresholds, false-discovery control across columns and slices);
4. with labels in the window, **performance** per member, slice and system, with intervals;
5. **attribution** ranks components by the change in (measured or estimated) loss when the
   drifted columns are drawn back from the reference: a member is a candidate for an update
   only if the drift costs it loss. On a window of more than
   :data:`~regrow.monitor.sample.SAMPLE_ROWS` usable rows it runs on a seeded sample
   (stratified by label for classifiers), and the report's notes say so;
6. the report is stored in the catalog, linked to the version and the window snapshot, with
   the time each step took (``timings``).

Every member is predicted once per row (:class:`~regrow.cache.OutputCache`, shared by the
performance report and attribution), and the rows predicted are stored with the report, so a
plan on the same window reads them back. What depends on the reference alone (its sample,
the fitted estimators, attribution's loss models, the PCA) is worked out once per process
and version (:mod:`regrow.monitor.shared`): a repeated monitor (``regrow watch``) pays for
its window only, and reports the same numbers. Each step that can take a while is reported
to ``progress`` as :class:`~regrow.progress.Step` events.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from regrow.catalog.records import MonitorReportRecord, SnapshotRecord, SystemVersionRecord
from regrow.data.snapshot import apply_slice
from regrow.errors import CatalogError, ConfigError
from regrow.monitor.assemble import drift_alerts, fdr_statement
from regrow.monitor.attribution import ComponentImpact, attribute
from regrow.monitor.chunks import Chunk, Chunking
from regrow.monitor.data_quality import WindowCheck, check_window
from regrow.monitor.drift_monitor import DriftMonitor, DriftReport
from regrow.monitor.performance import performance_report
from regrow.monitor.profile import ColumnProfile, Profile
from regrow.monitor.sample import IMPACT_ROWS, describe_sample, sample_rows
from regrow.monitor.shared import version_key
from regrow.progress import ProgressFn, Timer
from regrow.windows import Window, open_window, store_window

if TYPE_CHECKING:
    from regrow._monitor_signals import SystemSignals
    from regrow.model import FittedSystem
    from regrow.plan.policy import MonitoringPolicy
    from regrow.services import Services
    from regrow.system import System

__all__ = [
    "MONITOR_PROFILE",
    "MONITOR_REFERENCE",
    "MonitorResult",
    "check_version",
    "monitor_profile",
    "monitor_version",
    "monitored_as",
    "record_report",
    "window_quality",
]

#: Fewer usable rows than this and impact is not estimated (its intervals would be useless).
MIN_IMPACT_ROWS = 20

#: The catalog profile key under which a snapshot's monitoring profile is stored.
MONITOR_PROFILE = "@monitor"

#: The catalog profile key that names the snapshot a version trained on this one is
#: monitored against, when that is another (``{"snapshot": id}``; see :func:`monitored_as`).
MONITOR_REFERENCE = "@monitor-reference"


@dataclass(frozen=True)
class MonitorResult:
    """A version checked on a window: drift per column, impact per component, the record."""

    version: SystemVersionRecord
    window: SnapshotRecord
    drift: list[DriftReport]
    impacts: list[ComponentImpact]
    performance: dict[str, Any] | None
    record: MonitorReportRecord | None = None
    member_names: tuple[str, ...] = field(default=())
    labelled: bool | None = None  # None: whether a performance report was made
    quality: WindowCheck | None = None
    notes: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)  # step -> seconds
    chunking: Chunking = field(default_factory=Chunking)
    chunks: tuple[Chunk, ...] = ()
    chunk_drift: list[DriftReport] = field(default_factory=list)
    signals: SystemSignals | None = None  # multivariate, estimates, distributions, alerts
    task: str = ""  # classification | regression

    @property
    def alerts(self) -> list[Any]:
        """Every alert: estimated and realised performance, multivariate and per-feature drift
        (:class:`~regrow.monitor.signals.Alert`), whole window and chunks."""
        found = list(self.signals.alerts) if self.signals else []
        return found + drift_alerts([*self.drift, *self.chunk_drift])

    @property
    def multivariate_drifted(self) -> bool | None:
        """Whether a multivariate check found drift on the whole window; None when none
        judged it: none ran (as when the planner monitors), or the window had too few rows
        for each (the stored summary said ``false``, no drift, of a window none had judged)."""
        if self.signals is None:
            return None
        judged = [
            m for m in self.signals.multivariate if m.chunk is None and not math.isnan(m.value)
        ]
        return any(m.drifted for m in judged) if judged else None

    @property
    def drifted_columns(self) -> list[str]:
        """Columns drifted on the whole window (any reference), in first-seen order."""
        seen: dict[str, None] = {}
        for report in self.drift:
            for f in report.drifted:
                if f.slice is None:
                    seen.setdefault(f.column, None)
        return list(seen)

    @property
    def drifted_in_slices(self) -> dict[str, list[str]]:
        """Columns drifted in a slice but not on the whole window, by slice."""
        whole = set(self.drifted_columns)
        found: dict[str, dict[str, None]] = {}
        for report in self.drift:
            for f in report.drifted:
                if f.slice is not None and f.column not in whole:
                    found.setdefault(f.slice, {}).setdefault(f.column, None)
        return {name: list(cols) for name, cols in found.items()}

    @property
    def candidates(self) -> list[str]:
        """Members whose loss the drift raised: the components an update should refit."""
        return [
            i.component for i in self.impacts if i.candidate and i.component in self.member_names
        ]

    def summary(self) -> dict[str, Any]:
        """The short form stored with the report and printed last by ``--json``."""
        return {
            "version": self.version.ref,
            "model": self.version.ref,
            "window": self.window.id,
            "rows": self.window.rows,
            "task": self.task,
            "drifted": self.drifted_columns,
            **({"drifted_in_slices": sliced} if (sliced := self.drifted_in_slices) else {}),
            "multivariate_drifted": self.multivariate_drifted,
            "alerts": len(self.alerts),
            "candidates": self.candidates,
            "labelled": (
                self.labelled if self.labelled is not None else self.performance is not None
            ),
            "usable_rows": self.quality.usable_rows if self.quality else self.window.rows,
            "findings": [
                f"{f.column}: {f.kind}" for f in (self.quality.findings if self.quality else ())
            ],
        }

    def to_dict(self) -> dict[str, Any]:
        """The full report as JSON (the schema the HTML report reads; docs/monitoring.md)."""
        signals = self.signals
        estimates = signals.estimates if signals else None
        columns = {f.column for r in self.drift for f in r.features}
        return {
            "summary": self.summary(),
            "chunking": {
                **self.chunking.to_dict(),
                "describe": self.chunking.describe(),
                "chunks": [c.to_dict() for c in self.chunks],
            },
            "chunk_drift": [r.to_dict() for r in self.chunk_drift],
            "fdr": fdr_statement(self.chunk_drift or self.drift, len(columns)),
            "multivariate": [m.to_dict() for m in (signals.multivariate if signals else [])],
            "estimates": estimates.to_dict() if estimates else None,
            "calibration": estimates.calibration if estimates else None,
            "alerts": [a.to_dict() for a in self.alerts],
            "distributions": signals.distributions if signals else {},
            "drift": [r.to_dict() for r in self.drift],
            "impacts": [i.to_dict() for i in self.impacts],
            "performance": self.performance,
            "quality": {
                **(self.quality.to_dict() if self.quality else {}),
                "notes": list(self.notes),
            },
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


def monitor_profile(services: Services, snapshot: SnapshotRecord) -> Profile:
    """The monitoring profile of ``snapshot`` (with its slices), computed once and stored."""
    catalog = services.catalog
    try:
        return Profile.from_dict(catalog.get_profile(snapshot.id, MONITOR_PROFILE))
    except LookupError:
        pass
    profile = Profile.of(services.frame(snapshot.id), slices=snapshot.slices or None)
    try:
        catalog.put_profile(snapshot.id, MONITOR_PROFILE, profile.to_dict())
    except CatalogError:  # another process stored its own first: use that one
        return Profile.from_dict(catalog.get_profile(snapshot.id, MONITOR_PROFILE))
    return profile


def monitored_as(services: Services, snapshot_id: str) -> str:
    """The snapshot that windows are compared with for a version trained on ``snapshot_id``:
    itself, or the window an update with retained rows learnt from
    (``planning.data: recent+reference``), whose rows describe the world it was updated for.
    """
    linked = services.catalog.find_profile(snapshot_id, MONITOR_REFERENCE)
    return str(linked.get("snapshot") or snapshot_id) if linked else snapshot_id


def _own(services: Services, version: SystemVersionRecord) -> str | None:
    """The snapshot ``version`` is monitored against for its own training data, if any."""
    return monitored_as(services, version.snapshot_id) if version.snapshot_id else None


def _chosen_slices(
    win: SnapshotRecord, slices: Mapping[str, str] | Sequence[str] | None
) -> dict[str, str]:
    if slices is None:
        return dict(win.slices)
    if isinstance(slices, Mapping):
        return dict(slices)
    names = [slices] if isinstance(slices, str) else list(slices)
    unknown = [s for s in names if s not in win.slices]
    if unknown:
        raise ConfigError(
            f"the window has no slices {unknown}", hint=f"its slices are {sorted(win.slices)}"
        )
    return {s: win.slices[s] for s in names}


def monitor_version(
    services: Services,
    ref: str,
    window: Any,
    *,
    slices: Mapping[str, str] | Sequence[str] | None = None,
    record: bool = True,
    seed: int = 0,
    performance: bool = True,
    progress: ProgressFn | None = None,
    chunking: Chunking | None = None,
    settings: MonitoringPolicy | None = None,
) -> MonitorResult:
    """Monitor version ``ref`` on ``window`` and record it (see :func:`open_window`).

    A window given as rows is stored only once the check succeeded, with the report.
    ``slices`` maps names to expressions, or names slices of the window. ``progress``
    receives a :class:`~regrow.progress.Step` event as each step starts, advances and ends.
    """
    timer = Timer(progress)
    with timer.step("load"):
        version = services.version(ref)
        win = open_window(services, version, window)
        model = services.load(version)
    result = check_version(
        services, version, win, slices=slices, seed=seed, performance=performance,
        model=model, timer=timer, chunking=chunking, settings=settings,
    )  # fmt: skip
    if record:
        with timer.step("record"):
            result = record_report(services, replace(result, timings=dict(timer.seconds)), win)
    return replace(result, timings=dict(timer.seconds))


def record_report(services: Services, result: MonitorResult, window: Window) -> MonitorResult:
    """Store the window (if it was not yet), the members' outputs predicted on it, and the
    report; the result with its record."""
    stored = store_window(services, window)
    services.outputs.save({window.record.id: stored.id})
    result = replace(result, window=stored)
    record = services.catalog.add_monitor_report(
        version_id=result.version.id,
        snapshot_id=stored.id,
        summary=result.summary(),
        report=result.to_dict(),
    )
    return replace(result, record=record)


def _references(
    services: Services, version: SystemVersionRecord, system: System
) -> tuple[dict[str, set[str]], dict[str, Profile], dict[str, str], dict[str, list[str]]]:
    """The snapshots the members were trained on, with the columns each is the reference
    for, and their monitoring profiles; with more than one (members trained on different
    snapshots), what names each: the snapshot and its members, e.g. ``customers (account,
    geo)`` (with one, nothing: every row is compared with the same); and the members of each."""
    catalog = services.catalog
    records = catalog.get_component_versions(list(version.manifest.values()))
    by_snapshot: dict[str, set[str]] = {}
    members: dict[str, list[str]] = {}
    trained_on = {m.name: records[version.manifest[m.name]].snapshot_id for m in system.members}
    resolved = {s: monitored_as(services, s) for s in set(trained_on.values()) if s is not None}
    for member in system.members:
        snap_id = trained_on[member.name]
        if snap_id is not None:
            snap_id = resolved[snap_id]
            by_snapshot.setdefault(snap_id, set()).update(system.raw_columns(member.name))
            members.setdefault(snap_id, []).append(member.name)
    snapshots = {s: catalog.get_snapshot(s) for s in by_snapshot}
    profiles = {s: monitor_profile(services, snap) for s, snap in snapshots.items()}
    labels = (
        {s: f"{snap.name or s[:12]} ({', '.join(members[s])})" for s, snap in snapshots.items()}
        if len(snapshots) > 1
        else {}
    )
    return by_snapshot, profiles, labels, members


def _per_reference(
    found: Mapping[str, list[ComponentImpact]],
    members: Mapping[str, list[str]],
    own: str | None,
) -> list[ComponentImpact]:
    """One impact list from those found against each reference snapshot (``found``, for the
    references whose columns drifted): each member's from its own reference, else zero (its
    inputs did not drift from the data it was trained on); the other components' (the
    system, the ensemble, transforms) from the version's own reference ``own``, else the
    first."""
    source = found.get(own or "") or next(iter(found.values()))
    home = {m: snap for snap, names in members.items() for m in names}
    out: list[ComponentImpact] = []
    for row in source:
        theirs = found.get(home.get(row.component, ""), [])
        mine = next((r for r in theirs if r.component == row.component), None)
        if row.kind != "member":
            out.append(row)
        elif mine is not None:
            out.append(mine)
        else:
            undrifted = "its inputs did not drift from the data it was trained on"
            out.append(replace(row, features=(), loss_counterfactual=row.loss_now, impact=0.0,
                               interval=(0.0, 0.0), candidate=False, why=undrifted))  # fmt: skip
    return out


def _trained(profiles: Mapping[str, Profile], own: str | None) -> dict[str, ColumnProfile]:
    """Each column's profile in the data it was trained on (the version's own snapshot,
    ``own``, first)."""
    trained: dict[str, ColumnProfile] = {}
    for snap_id in sorted(profiles, key=lambda s: s != own):
        for col, prof in profiles[snap_id].columns.items():
            trained.setdefault(col, prof)
    return trained


def window_quality(
    services: Services, version: SystemVersionRecord, frame: pd.DataFrame, model: FittedSystem
) -> WindowCheck:
    """The data-quality check of ``frame`` for ``version`` (see :func:`check_window`)."""
    _, profiles, _, _ = _references(services, version, model.definition())
    return check_window(model, frame, _trained(profiles, _own(services, version)))


def unreadable_labels(check: WindowCheck, model: FittedSystem, ref: str) -> tuple[int, str] | None:
    """How many labels of ``check``'s window ``model`` (version ``ref``) cannot read, and
    what they are not (``classes of churn:v1 (e.g. 'yes'; its classes: [0, 1])``, or
    numbers for a regressor); None when it reads them all."""
    target = model.target
    bad = [f for f in check.findings if f.column == target and f.kind in ("unseen", "type")]
    if not bad:
        return None
    example = bad[0].values[0] if bad[0].values else "?"
    if model.classes_ is not None:
        classes = np.asarray(model.classes_).tolist()
        return bad[0].rows, f"classes of {ref} (e.g. {example!r}; its classes: {classes})"
    return bad[0].rows, f"numbers (e.g. {example!r}) and {ref} is a regressor"


def _check_alerts(settings: MonitoringPolicy, task: str, ref: str) -> None:
    """Refuse an alert on a metric of the other task (``rmse`` for a classifier): it would
    never fire, and nothing would say so."""
    from regrow.plan.policy import alert_metrics

    known = alert_metrics(task)
    other = [name for name in settings.alerts if name not in known]
    if other:
        kind = "classifier" if task == "classification" else "regressor"
        raise ConfigError(
            f"alert on {other[0]!r}: {ref} is a {kind} and {other[0]!r} is not one of its metrics",
            hint=f"alerts on it can name {', '.join(known)} (monitoring.alerts or --alert)",
        )


def check_version(
    services: Services,
    version: SystemVersionRecord,
    window: Window,
    *,
    slices: Mapping[str, str] | Sequence[str] | None = None,
    seed: int = 0,
    performance: bool = True,
    model: FittedSystem | None = None,
    timer: Timer | None = None,
    sample: int = IMPACT_ROWS,
    chunking: Chunking | None = None,
    settings: MonitoringPolicy | None = None,
) -> MonitorResult:
    """Check ``version`` on ``window`` and record nothing: data quality, drift, impact,
    performance. ``model``, when the caller has it (the planner), is the loaded version;
    ``timer`` times the steps (the planner's, so that its breakdown holds them); impact is
    estimated on at most ``sample`` usable rows. ``chunking`` splits the window: drift is
    reported per chunk too. With ``settings`` (the policy's ``monitoring`` section) the
    result also holds multivariate drift, estimated and realised performance per chunk,
    distributions and alerts (:mod:`regrow._monitor_signals`)."""
    timer = timer if timer is not None else Timer()
    chunking = chunking or Chunking()
    win = window.record
    model = model if model is not None else services.load(version)
    system = model.definition()
    if settings is not None:
        _check_alerts(settings, model.task, version.ref)
    chosen = _chosen_slices(win, slices)
    with timer.step("data quality"):
        by_snapshot, profiles, labels, members = _references(services, version, system)
        own = _own(services, version)
        quality = check_window(model, window.frame, _trained(profiles, own))
    missing = [f.column for f in quality.of_kind("missing")]
    # Drift sees every row, as the version reads it (a missing column stays missing).
    frame = quality.frame.drop(columns=missing)
    chunks = chunking.split(frame, win.time_column) if chunking.active else []
    reports: list[DriftReport] = []
    chunk_drift: list[DriftReport] = []
    drifted_from: dict[str, dict[str, float]] = {}  # reference snapshot -> drifted columns
    with timer.step("drift", total=len(by_snapshot)) as step:
        for snap_id, columns in by_snapshot.items():
            profile = profiles[snap_id]
            label = labels.get(snap_id)
            usable = {n: s for n, s in chosen.items() if n in profile.slices}
            cols = sorted(c for c in columns if c in profile.columns)
            sub = Profile(
                profile.rows,
                {c: profile.columns[c] for c in cols},
                {n: Profile(p.rows, {c: p.columns[c] for c in cols if c in p.columns})
                 for n, p in profile.slices.items() if n in usable},
            )  # fmt: skip
            # The whole window goes in (slices may filter on columns no member reads); only
            # the columns these members read are reported.
            full = DriftMonitor(sub, seed=seed).check(frame, slices=usable)
            kept = tuple(f for f in full.features if f.column in cols)
            reports.append(replace(full, features=kept, reference=label))
            drifted_from[snap_id] = {
                f.column: abs(f.effect) if math.isfinite(f.effect) else 1.0
                for f in kept
                if f.drifted and f.slice is None
            }
            if chunks:
                for report in DriftMonitor(sub, seed=seed).check_chunks(
                    frame, chunks, slices=usable
                ):
                    kept = tuple(f for f in report.features if f.column in cols)
                    chunk_drift.append(replace(report, features=kept, reference=label))
            step.advance()
    # Impact draws from the version's own training snapshot (else the first member's).
    reference_id = next((s for s in by_snapshot if s == own), next(iter(by_snapshot), None))
    drifted = {c: e for cols in drifted_from.values() for c, e in cols.items()}
    rows = quality.usable
    notes = list(window.notes)
    for name, expr in chosen.items():
        if apply_slice(frame, name, expr).empty:
            notes.append(f"slice {name!r} ({expr}) selects no rows of the window: not checked")
    if quality.usable_rows < quality.rows:
        notes.append(
            f"{quality.rows - quality.usable_rows:,} of {quality.rows:,} rows are set aside "
            "(the version cannot score them): impact and performance use the other "
            f"{quality.usable_rows:,}"
        )
    target = model.target
    if target not in window.frame.columns:
        notes.append(
            f"the window has no target column {target!r}: impact is estimated without labels "
            "and there is no performance report"
        )
    scored = rows  # the rows impact is found on: the labelled ones when there are enough
    given = int(rows[target].notna().sum()) if target in rows.columns else 0
    if MIN_IMPACT_ROWS <= given < len(rows):
        scored = rows[rows[target].notna()]
        if drifted and reference_id is not None:  # (a few missing labels turned it estimated)
            notes.append(
                f"impact is measured on the {given:,} labelled rows ({len(rows) - given:,} "
                "have no label)"
            )
    labelled = target in scored.columns and len(scored) > 0 and bool(scored[target].notna().all())
    outputs = services.outputs
    impacts: list[ComponentImpact] = []
    if drifted and reference_id is not None:
        if len(scored) >= MIN_IMPACT_ROWS:
            by = target if model.task == "classification" else None
            part = sample_rows(scored, sample, by=by, seed=seed)
            if len(part) < len(scored):
                notes.append(
                    "impact is estimated on "
                    + describe_sample(
                        len(part),
                        len(scored),
                        "usable rows",
                        stratified=by is not None,
                        seed=seed,
                    )
                    + ": its intervals are those of the sample"
                )
            # Labelled rows draw only the drifted columns back; without labels the loss
            # estimators are fitted on reference rows, which need every column read.
            one_class = model.task == "classification" and labelled and part[target].nunique() < 2
            every = set().union(*by_snapshot.values())
            estimated = not labelled or one_class  # (one class: no loss model fits on the window)
            model_id = version_key(version.id, model)

            def impact_from(
                snap_id: str, cols: Mapping[str, float], step: Any
            ) -> list[ComponentImpact]:
                needed = set(cols) | {target} | (every if estimated else set())
                available = services.record(snap_id).columns
                reference = services.frame(snap_id, [c for c in available if c in needed])
                return attribute(
                    model, reference, part, cols, seed=seed,
                    outputs=lambda f: outputs.member_outputs(model, f, snapshot=win.id),
                    reference_outputs=lambda f: outputs.member_outputs(model, f, snapshot=snap_id),
                    fit_rows=sample, step=step,
                    reference_key=None if model_id is None else (model_id, snap_id),
                )  # fmt: skip

            with timer.step("impact") as step:
                if len(by_snapshot) == 1:
                    impacts = impact_from(reference_id, drifted, step)
                else:  # each member against the data it was trained on
                    found = {
                        snap_id: impact_from(snap_id, cols, step)
                        for snap_id, cols in drifted_from.items()
                        if cols
                    }
                    impacts = _per_reference(found, members, reference_id)
        else:
            notes.append(
                f"impact is not estimated: {len(rows):,} usable rows (at least "
                f"{MIN_IMPACT_ROWS} are needed)"
            )
    has_labels = target in rows.columns and bool(rows[target].notna().any())
    perf = None
    if has_labels and performance:
        with timer.step("performance"):
            perf = performance_report(
                model, rows, slices=chosen or None, time_column=win.time_column,
                outputs=lambda f: outputs.member_outputs(model, f, snapshot=win.id),
            ).to_dict()  # fmt: skip
    signals = None
    if settings is not None and reference_id is not None:
        from regrow._monitor_signals import system_signals

        signals = system_signals(
            services, model, win, frame, rows, reference_id,
            sorted(set().union(*by_snapshot.values())), chunks, settings, version=version,
            trained_on=set(by_snapshot), seed=seed, timer=timer,
        )  # fmt: skip
        notes += signals.notes
    notes += chunking.notes(frame, chunks)
    return MonitorResult(
        version, win, reports, impacts, perf, None, tuple(m.name for m in system.members),
        labelled, quality, tuple(notes), dict(timer.seconds), chunking, tuple(chunks),
        chunk_drift, signals, model.task,
    )  # fmt: skip
