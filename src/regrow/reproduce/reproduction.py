"""Rebuild a version from its record in a scratch workspace, and judge each component.

Every component is refitted, in graph order, from what the catalog recorded: the stored
component (its estimator, parameters and the user's code, which travel with the artifact),
the snapshot it trained on, its seed, the refitted components it reads, and for an update
the refitted version it updated. Each is then compared with the original: the fingerprint
recomputed now (see :mod:`.parts`), the artifact's bytes, and where those differ, its
outputs on the training rows. See :func:`reproduce`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Protocol

from regrow.catalog.catalog import Catalog
from regrow.catalog.store import ArtifactStore
from regrow.errors import ConfigError
from regrow.progress import ProgressFn, Timer
from regrow.reproduce.graph import RecordedGraph, recorded_graph
from regrow.reproduce.judge import Judge
from regrow.reproduce.refit import Refit
from regrow.reproduce.report import ReproduceReport
from regrow.reproduce.scratch import Scratch
from regrow.run.environment import capture_environment

__all__ = ["DEFAULT_TOLERANCE", "SAMPLE_ROWS", "Source", "reproduce"]

#: Outputs (values, probabilities) that differ by no more than this are equivalent.
DEFAULT_TOLERANCE = 1e-6
#: At most this many rows of the training snapshot are predicted to compare outputs.
SAMPLE_ROWS = 5000


class Source(Protocol):
    """Where the version lives: a :class:`~regrow.Workspace`, or anything with its catalog
    and store (a ``home`` attribute, if present, is named in repair hints)."""

    @property
    def catalog(self) -> Catalog: ...

    @property
    def store(self) -> ArtifactStore: ...


def reproduce(
    source: Source,
    ref: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    scratch: str | Path | None = None,
    rows: int = SAMPLE_ROWS,
    progress: ProgressFn | None = None,
) -> ReproduceReport:
    """Rebuild version ``ref`` from its record in a scratch workspace, and compare.

    Each component gets a verdict: ``identical`` (the rebuilt artifact has the recorded
    bytes), ``equivalent`` (other bytes, but outputs within ``tolerance`` of the original's
    on up to ``rows`` rows of its training snapshot), or ``differs``, with the reasons: the
    user's functions whose code changed since training, library versions that moved, data
    that no longer hashes as recorded, an upstream component that differs, or outputs out
    of tolerance and what differs in the environment. A fingerprint recomputed now that is
    not the recorded one always ``differs``: retraining now would make another version.

    The scratch workspace is a new temporary folder, removed afterwards (on an error or
    Ctrl-C too); ``scratch`` names a new folder to build in and keep instead. Nothing is
    written to ``source`` but one audit event, ``version.reproduce``, with the summary.

    Raises :class:`~regrow.errors.VersionNotFound` for an unknown ``ref`` (the hint lists
    versions), :class:`~regrow.errors.ArtifactNotFound` or
    :class:`~regrow.errors.ArtifactCorrupted` for a snapshot or component the store lost
    (the hint names ``regrow doctor``), and :class:`~regrow.errors.ComponentError` for an
    estimator whose module cannot be imported (named) -- all before anything is fitted.
    """
    tolerance = _check_tolerance(tolerance)
    rows = _check_rows(rows)
    started = time.perf_counter()
    catalog, store = source.catalog, source.store
    home = getattr(source, "home", None)
    timer = Timer(progress)
    version = catalog.get_system_version(ref)
    with timer.step("check"):
        graph = recorded_graph(catalog, store, version, home=home)
    environment = capture_environment(version.spec.get("definition_file"))
    with Scratch(scratch) as room:
        refit = Refit(catalog, store, graph, room, environment=environment, home=home)
        judge = Judge(catalog, refit, environment)
        try:
            with timer.step("snapshots", total=len(graph.snapshots)) as step:
                for snap in graph.snapshots.values():
                    refit.copy_snapshot(snap)
                    step.advance()
            with timer.step("rebuild", total=len(graph.order)) as step:
                for cid in graph.order:
                    refit.component(cid)
                    step.advance()
            names = _names(graph)
            with timer.step("compare", total=len(names)) as step:
                components = []
                for name in names:
                    components.append(judge.judge(name, tolerance, rows))
                    step.advance()
            report = ReproduceReport(
                version=version.ref,
                version_id=version.id,
                tolerance=tolerance,
                components=tuple(components),
                environment=tuple(judge.environment_changes(version.run_id)),
                scratch=str(room.path) if room.keep else None,
                seconds=time.perf_counter() - started,
                timings=dict(timer.seconds),
            )
            refit.finish(report)
        except BaseException as exc:
            refit.fail(exc)
            raise
    catalog.audit(
        "version.reproduce", f"version:{version.system}:v{version.number}", report.summary()
    )
    return report


def _names(graph: RecordedGraph) -> list[str]:
    """The version's components in graph order (as its spec lists them)."""
    manifest = graph.version.manifest
    order = [n for n in graph.version.spec.get("order") or () if n in manifest]
    return order + [n for n in manifest if n not in order]


def _check_tolerance(tolerance: Any) -> float:
    ok = isinstance(tolerance, int | float) and not isinstance(tolerance, bool)
    if not ok or not math.isfinite(tolerance) or tolerance < 0:
        raise ConfigError(
            f"the tolerance must be a finite number >= 0 (got {tolerance!r})",
            hint=f"for example {DEFAULT_TOLERANCE:g}: the largest difference in an output "
            "value or probability that still counts as the same",
        )
    return float(tolerance)


def _check_rows(rows: Any) -> int:
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise ConfigError(
            f"rows must be an integer >= 1 (got {rows!r})",
            hint=f"the default compares outputs on up to {SAMPLE_ROWS:,} rows",
        )
    return rows
