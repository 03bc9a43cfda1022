"""Monitor a system version on a window of data: drift, performance, attribution, report.

This is what ``Workspace.monitor`` and ``regrow monitor`` run:

1. each member's **reference** is the snapshot it was trained on (after a partial update,
   members have different ones); its monitoring profile is computed once, when the snapshot
   is created (or on first use for older snapshots), and stored in the catalog;
2. the **drift** monitor compares the window with each reference on the columns its members
   read (calibrated thresholds, false-discovery control across columns and slices);
3. with labels in the window, **performance** per member, slice and system, with intervals;
4. **attribution** ranks components by the change in (measured or estimated) loss when the
   drifted columns are drawn back from the reference: a member is a candidate for an update
   only if the drift costs it loss;
5. the report is stored in the catalog, linked to the version and the window snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from regrow.catalog.records import MonitorReportRecord, SnapshotRecord, SystemVersionRecord
from regrow.errors import CatalogError
from regrow.monitor.attribution import ComponentImpact, attribute
from regrow.monitor.drift_monitor import DriftMonitor, DriftReport
from regrow.monitor.performance import performance_report
from regrow.monitor.profile import Profile

if TYPE_CHECKING:
    from regrow.model import FittedSystem
    from regrow.workspace import Workspace

__all__ = ["MONITOR_PROFILE", "MonitorResult", "monitor_profile", "monitor_version"]

#: The catalog profile key under which a snapshot's monitoring profile is stored.
MONITOR_PROFILE = "@monitor"


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

    @property
    def drifted_columns(self) -> list[str]:
        """Columns drifted on the whole window (any reference), in first-seen order."""
        seen: dict[str, None] = {}
        for report in self.drift:
            for col in report.drifted_columns:
                seen.setdefault(col, None)
        return list(seen)

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
            "window": self.window.id,
            "drifted": self.drifted_columns,
            "candidates": self.candidates,
            "labelled": (
                self.labelled if self.labelled is not None else self.performance is not None
            ),
        }

    def to_dict(self) -> dict[str, Any]:
        """The full report as JSON."""
        return {
            "summary": self.summary(),
            "drift": [r.to_dict() for r in self.drift],
            "impacts": [i.to_dict() for i in self.impacts],
            "performance": self.performance,
        }


def monitor_profile(ws: Workspace, snapshot: SnapshotRecord) -> Profile:
    """The monitoring profile of ``snapshot`` (with its slices), computed once and stored."""
    try:
        return Profile.from_dict(ws.catalog.get_profile(snapshot.id, MONITOR_PROFILE))
    except LookupError:
        pass
    profile = Profile.of(ws.frame(snapshot.id), slices=snapshot.slices or None)
    try:
        ws.catalog.put_profile(snapshot.id, MONITOR_PROFILE, profile.to_dict())
    except CatalogError:  # another process stored its own first: use that one
        return Profile.from_dict(ws.catalog.get_profile(snapshot.id, MONITOR_PROFILE))
    return profile


def monitor_version(
    ws: Workspace,
    ref: str,
    window: SnapshotRecord | str,
    *,
    slices: Mapping[str, str] | None = None,
    record: bool = True,
    seed: int = 0,
    performance: bool = True,
    model: FittedSystem | None = None,
    frame: pd.DataFrame | None = None,
) -> MonitorResult:
    """Monitor version ``ref`` on ``window`` (a snapshot or its reference) and record it.

    ``model`` and ``frame``, when the caller has them already (the planner), are the loaded
    version and the window's rows; otherwise they are read here.
    """
    version = ws.catalog.get_system_version(ref)
    win = ws.catalog.get_snapshot(window) if isinstance(window, str) else window
    model = model if model is not None else ws.load(version.ref)
    system = model.definition()
    frame = frame if frame is not None else ws.frame(win.id)
    chosen = dict(slices) if slices is not None else dict(win.slices)
    records = ws.catalog.get_component_versions(list(version.manifest.values()))
    by_snapshot: dict[str, set[str]] = {}
    for member in system.members:
        snap_id = records[version.manifest[member.name]].snapshot_id
        if snap_id is not None:
            by_snapshot.setdefault(snap_id, set()).update(system.raw_columns(member.name))
    reports: list[DriftReport] = []
    reference_frame: pd.DataFrame | None = None
    for snap_id, columns in by_snapshot.items():
        snap = ws.catalog.get_snapshot(snap_id)
        profile = monitor_profile(ws, snap)
        usable = {n: s for n, s in chosen.items() if n in profile.slices}
        cols = sorted(c for c in columns if c in profile.columns)
        sub = Profile(
            profile.rows,
            {c: profile.columns[c] for c in cols},
            {n: Profile(p.rows, {c: p.columns[c] for c in cols if c in p.columns})
             for n, p in profile.slices.items() if n in usable},
        )  # fmt: skip
        # The whole window goes in (slices may filter on columns no member reads); only the
        # columns these members read are reported.
        full = DriftMonitor(sub, seed=seed).check(frame, slices=usable)
        kept = tuple(f for f in full.features if f.column in cols)
        reports.append(replace(full, features=kept))
        if snap_id == version.snapshot_id or reference_frame is None:
            reference_frame = ws.frame(snap_id)
    drifted = {
        f.column: abs(f.effect) if math.isfinite(f.effect) else 1.0
        for r in reports
        for f in r.features
        if f.drifted and f.slice is None
    }
    labelled = model.target in frame.columns and bool(frame[model.target].notna().all())
    impacts: list[ComponentImpact] = []
    if drifted and reference_frame is not None:
        impacts = attribute(model, reference_frame, frame, drifted, seed=seed)
    perf = (
        performance_report(
            model, frame, slices=chosen or None, time_column=win.time_column
        ).to_dict()
        if labelled and performance
        else None
    )
    result = MonitorResult(
        version, win, reports, impacts, perf, None, tuple(m.name for m in system.members), labelled
    )
    if not record:
        return result
    stored = ws.catalog.add_monitor_report(
        version_id=version.id,
        snapshot_id=win.id,
        summary=result.summary(),
        report=result.to_dict(),
    )
    return MonitorResult(
        version, win, reports, impacts, perf, stored, result.member_names, labelled
    )
