"""Training/serving skew: what a version served, against what it was trained on, per feature.

:func:`check_skew` is what ``Workspace.skew`` and ``regrow skew`` run:

1. the **served rows**: those the prediction log (:mod:`regrow.serve.predlog`) holds for the
   version's system in ``[since, until)``, read as :func:`regrow.logged.logged_window` reads
   them (rows of lane ``shadow`` left out: each request counts once), and of those only the
   rows whose ``system_version`` is the version itself;
2. the **features**: the raw input columns the version's graph reads (the inputs of its
   components that are not components), in the order of its training snapshot;
3. the **reference**: the monitoring profile of the snapshot the version was trained on
   (``version.snapshot_id``, :func:`regrow.monitoring.monitor_profile`);
4. the **tests** are the drift monitor's (:class:`~regrow.monitor.drift_monitor.DriftMonitor`),
   nothing of its own: per feature the calibrated distribution test the monitor chooses for
   the number of rows, never-seen categories and the null rate where they apply, all decided
   in one Benjamini-Hochberg family at ``fdr``. A feature is **skewed** when one of its tests
   is significant and above that test's irrelevance margin, as a column is drifted; a column
   served with another kind than it was trained with (text for a number) is skewed too.

Nothing is stored. Errors: :class:`~regrow.errors.NotFound` for an unknown version,
:class:`~regrow.errors.ConfigError` for unreadable times or an empty range, and
:class:`~regrow.errors.DataError` when the version has no training snapshot or served no row
in the range (the hint says what the log holds). A feature the log lacks is reported, not
tested, and the notes say so.

>>> f = SkewFeature("age", "wasserstein", 0.02, 0.05, 0.4, 0.4, 0.01, False, 500, 0.0, 0.0, "")
>>> f.to_dict()["skewed"], f.to_dict()["flagged_by"]
(False, [])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from regrow.catalog.records import SystemVersionRecord
from regrow.errors import DataError
from regrow.logged import _inputs, _read, _show, time_range
from regrow.monitor.drift.report import FeatureDrift
from regrow.monitor.drift_monitor import DriftMonitor
from regrow.monitor.profile import Profile

if TYPE_CHECKING:
    from regrow.services import Services

__all__ = ["SkewFeature", "SkewReport", "check_skew", "features_read"]

#: The drift monitor's tests that come beside a column's distribution test.
_EXTRA_TESTS = ("unseen", "null_rate")
#: The ``test`` of a feature not handed to the monitor: not in the log, not in the profile.
_NOT_TESTED = ("missing", "untested")


@dataclass(frozen=True)
class SkewFeature:
    """One feature: its distribution test (``test``) and the decision over all its tests.

    ``test`` is ``"missing"`` for an input the log lacks and ``"untested"`` for one the
    training profile lacks (neither is tested), ``"schema"`` or ``"nulls"`` when the monitor
    could not test it (another kind, all null). ``checks`` holds every test of the column
    (distribution, unseen, null rate) as the monitor decided it.
    """

    column: str
    test: str
    statistic: float
    threshold: float
    p_value: float
    adjusted_p_value: float
    effect: float
    skewed: bool
    rows: int  # rows served by the version in the range
    null_rate_served: float
    null_rate_trained: float
    why: str
    checks: tuple[FeatureDrift, ...] = ()

    @property
    def tested(self) -> bool:
        """Whether the monitor looked at the feature (the log has it, the profile too)."""
        return self.test not in _NOT_TESTED

    @property
    def flagged_by(self) -> list[str]:
        """The tests that found the feature skewed."""
        return [c.test for c in self.checks if c.drifted]

    def to_dict(self) -> dict[str, Any]:
        """JSON types only (NaN becomes None)."""
        return {
            "column": self.column,
            "test": self.test,
            "statistic": _json(self.statistic),
            "threshold": _json(self.threshold),
            "p_value": _json(self.p_value),
            "adjusted_p_value": _json(self.adjusted_p_value),
            "effect": _json(self.effect),
            "skewed": self.skewed,
            "flagged_by": self.flagged_by,
            "rows": self.rows,
            "null_rate_served": _json(self.null_rate_served),
            "null_rate_trained": _json(self.null_rate_trained),
            "why": self.why,
            "checks": [c.to_dict() for c in self.checks],
        }


@dataclass(frozen=True)
class SkewReport:
    """The features of one version served in ``[since, until)`` against its training data."""

    version: str  # the version's ref, e.g. shop:v2
    snapshot: str  # the id of the snapshot it was trained on
    since: datetime
    until: datetime
    rows: int  # rows the version itself served in the range
    features: tuple[SkewFeature, ...]
    fdr: float
    control: str  # the multiple-testing control, in words
    notes: tuple[str, ...] = field(default=())

    @property
    def skewed_features(self) -> list[str]:
        """The skewed features, in training-snapshot order."""
        return [f.column for f in self.features if f.skewed]

    @property
    def skewed(self) -> bool:
        """Whether any feature is skewed."""
        return bool(self.skewed_features)

    @property
    def verdict(self) -> str:
        """``"skewed: a, b"`` or ``"no skew"`` (with how many features were tested)."""
        if self.skewed:
            return "skewed: " + ", ".join(self.skewed_features)
        tested = sum(1 for f in self.features if f.tested)
        return f"no skew in {tested} feature{'s' if tested != 1 else ''}"

    def to_dict(self) -> dict[str, Any]:
        """The whole report as JSON types."""
        return {
            "version": self.version,
            "snapshot": self.snapshot,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "rows": self.rows,
            "skewed": self.skewed,
            "skewed_features": self.skewed_features,
            "verdict": self.verdict,
            "fdr": self.fdr,
            "control": self.control,
            "features": [f.to_dict() for f in self.features],
            "notes": list(self.notes),
        }


def features_read(spec: Mapping[str, Any]) -> set[str]:
    """The raw input columns a version's system ``spec`` reads (inputs that are no component).

    >>> features_read({"components": {"enc": {"inputs": ["plan"]},
    ...                               "m": {"inputs": ["age", "enc"]}}}) == {"age", "plan"}
    True
    """
    components = spec.get("components") or {}
    return {
        c for info in components.values() for c in info.get("inputs", ()) if c not in components
    }


def check_skew(
    services: Services,
    ref: str | SystemVersionRecord,
    *,
    since: Any,
    until: Any = None,
    fdr: float = 0.05,
    seed: int = 0,
    now: datetime | None = None,
) -> SkewReport:
    """Compare what version ``ref`` served in ``[since, until)`` with the profile of the
    snapshot it was trained on, per feature (see the module docs). Times are datetimes, ISO
    strings or spans ago (``24h``, ``7d``); ``until`` defaults to ``now``."""
    catalog = services.catalog
    version = services.version(ref)
    start, end = time_range(since, until, now=now)
    if version.snapshot_id is None:
        raise DataError(
            f"{version.ref} has no training snapshot to compare its served rows with",
            hint="check skew of a version trained by regrow (regrow versions lists them)",
        )
    served = _read(services, version.system, start, end)  # DataError: nothing logged
    mine = served.filter(pc.equal(served.column("system_version"), pa.scalar(version.ref)))
    notes = _others(served, version.ref)
    if mine.num_rows == 0:
        raise DataError(
            f"no rows served by {version.ref} between {_show(start)} and {_show(end)}",
            hint=f"in that range {'; '.join(notes)}" if notes else "choose another range",
        )
    from regrow.data.frames import to_arrow
    from regrow.monitoring import monitor_profile
    from regrow.windows import read_through_adapters

    profile = monitor_profile(services, catalog.get_snapshot(version.snapshot_id))
    served_rows: Any = _inputs(mine)
    if version.spec.get("adapters"):  # as the version read them, as a window is read
        served_rows = read_through_adapters(version, served_rows.to_pandas(), notes)
    inputs = to_arrow(served_rows)  # NaN as null, as the monitor counts it
    read = features_read(version.spec)
    ordered = [c for c in profile.columns if c in read] + sorted(read - set(profile.columns))
    checked = [c for c in ordered if c in profile.columns and c in inputs.column_names]
    features: dict[str, SkewFeature] = {}
    control = "no feature tested"
    if checked:
        sub = Profile(profile.rows, {c: profile.columns[c] for c in checked})
        report = DriftMonitor(sub, fdr=fdr, seed=seed).check(inputs.select(checked))
        control = report.control
        for column in checked:
            checks = tuple(f for f in report.features if f.column == column and f.slice is None)
            features[column] = _feature(
                column, checks, inputs.column(column), profile.columns[column].null_rate
            )
    for column in ordered:
        if column in features:
            continue
        if column not in inputs.column_names:
            test, why = "missing", f"the log holds no input {column!r} of {version.ref}'s rows"
        else:
            test, why = "untested", f"{column!r} is not in the training snapshot's profile"
        why += ": not tested"
        notes.append(why)
        trained = profile.columns.get(column)
        features[column] = SkewFeature(
            column, test, math.nan, math.nan, math.nan, math.nan, math.nan, False,
            mine.num_rows, math.nan, trained.null_rate if trained else math.nan, why,
        )  # fmt: skip
    return SkewReport(
        version.ref, version.snapshot_id, start, end, mine.num_rows,
        tuple(features[c] for c in ordered), fdr, control, tuple(notes),
    )  # fmt: skip


def _feature(
    column: str, checks: tuple[FeatureDrift, ...], values: pa.ChunkedArray, trained: float
) -> SkewFeature:
    """One feature from the monitor's decisions on its column."""
    main = next((c for c in checks if c.test not in _EXTRA_TESTS), checks[0])
    flagged = [c for c in checks if c.drifted]
    why = "; ".join(f"{c.test}: {c.why}" for c in flagged) if flagged else main.why
    rows = len(values)
    return SkewFeature(
        column, main.test, main.statistic, main.threshold, main.p_value,
        main.adjusted_p_value, main.effect, bool(flagged), rows,
        values.null_count / rows if rows else math.nan, trained, why, checks,
    )  # fmt: skip


def _others(served: pa.Table, ref: str) -> list[str]:
    """A note on the rows in range that other versions of the system served."""
    counts = pc.value_counts(served.column("system_version")).to_pylist()
    others = sorted(
        ((c["values"], c["counts"]) for c in counts if c["values"] != ref), key=lambda c: -c[1]
    )
    if not others:
        return []
    shown = ", ".join(f"{v} {n:,}" for v, n in others)
    total = sum(n for _, n in others)
    return [f"{total:,} rows were served by other versions ({shown}): not compared"]


def _json(value: float) -> float | None:
    return None if not math.isfinite(value) else value
