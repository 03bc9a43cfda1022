"""Judge each refitted component against the original: fingerprint, bytes, then outputs.

The bytes are compared by store key (the sha256 of the stored bytes). Where they differ, the
original and the refit -- each with the fitted components it reads -- predict the same rows
of its training snapshot (its own, else the version's), and the largest difference decides
between ``equivalent`` and ``differs``. A difference the fingerprint does not explain is
put down to what differs in the environment the component's run recorded (Python, platform,
library versions), or, when nothing does, to a fit that is not repeatable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pandas as pd

from regrow.catalog.catalog import Catalog
from regrow.components.fitted import FittedComponent
from regrow.errors import RegrowError
from regrow.reproduce.outputs import component_output, max_difference, sample_rows
from regrow.reproduce.parts import environment_changes
from regrow.reproduce.refit import Refit
from regrow.reproduce.report import ComponentReproduction
from regrow.run.tasks import load_fitted

__all__ = ["Judge"]


class Judge:
    """Compares the components of ``refit``'s version with their originals.

    ``environment`` is this process's (see
    :func:`~regrow.run.environment.capture_environment`); each component's run recorded its own.
    """

    def __init__(self, catalog: Catalog, refit: Refit, environment: Mapping[str, Any]) -> None:
        self.catalog = catalog
        self.refit = refit
        self.graph = refit.graph
        self.now = dict(environment)
        self._frames: dict[str, pd.DataFrame] = {}
        self._fitted: dict[str, FittedComponent] = {}
        self._environments: dict[str, dict[str, Any]] = {}

    def judge(self, name: str, tolerance: float, rows: int) -> ComponentReproduction:
        """Compare the refitted component ``name`` of the version with the original."""
        cid = self.graph.version.manifest[name]
        record, built = self.graph.records[cid], self.refit.refitted[cid]
        found = ComponentReproduction(
            name=name,
            kind=record.kind,
            version_id=cid,
            fingerprint=record.fingerprint,
            rebuilt_fingerprint=built.fingerprint,
            artifact=record.artifact,
            rebuilt_artifact=built.artifact,
            max_diff=None,
            rows=0,
            seconds=built.seconds,
        )
        reasons: list[str] = []
        notes = [
            f"the code of {key} could not be re-read from its file; taken as unchanged"
            for key in built.parts.unreadable
        ]
        if not found.fingerprint_matches:
            reasons += self.refit.explain(cid).reasons
            if found.bytes_match:
                notes.append(
                    "rebuilt from the code recorded with it, it has its recorded bytes: "
                    "training it again now would make another version"
                )
        if not found.bytes_match:
            found, problem = self._compare_outputs(found, cid, rows)
            if problem is None and found.max_diff is not None and found.max_diff > tolerance:
                problem = (
                    f"outputs differ by up to {found.max_diff:.3g} on {found.rows:,} rows "
                    f"(tolerance {tolerance:g})"
                )
            if problem is not None:
                reasons.append(problem)
                if found.fingerprint_matches:  # the record does not explain it: the setting
                    changes = self.environment_changes(record.run_id)
                    reasons += [f"environment: {c}" for c in changes] or [
                        "the environment is as recorded: the fit is not repeatable (threads, "
                        "or a random source its seed does not control)"
                    ]
        return found.judged(tolerance, tuple(reasons), tuple(notes))

    def _compare_outputs(
        self, found: ComponentReproduction, cid: str, rows: int
    ) -> tuple[ComponentReproduction, str | None]:
        """``found`` with the outputs' largest difference, or a sentence saying why not."""
        graph = self.graph
        snapshot = self._rows_of(cid)
        if snapshot is None:
            return found, "no training rows are recorded to compare its outputs on"
        frame = sample_rows(self._frame(snapshot), rows)
        chain = [cid, *graph.ancestors(cid).values()]
        original = {graph.records[c].component: graph.originals[c] for c in chain}
        rebuilt = {graph.records[c].component: self._refitted(c) for c in chain}
        name = graph.records[cid].component
        try:
            before = component_output(name, original, frame)
            after = component_output(name, rebuilt, frame)
        except Exception as exc:  # a predict that fails: said in the report, not raised
            return found, f"its outputs could not be computed: {type(exc).__name__}: {exc}"
        diff = max_difference(before, after)
        found = replace(found, max_diff=diff, rows=len(frame))
        if math.isinf(diff):
            return found, "its outputs have another shape, or values missing on one side only"
        return found, None

    def _rows_of(self, cid: str) -> str | None:
        """The snapshot to compare on: the component's own, else the version's, else one a
        component it reads trained on."""
        graph, tables = self.graph, self.refit.tables
        candidates = [graph.records[cid].snapshot_id, graph.version.snapshot_id]
        candidates += [graph.records[a].snapshot_id for a in graph.ancestors(cid).values()]
        return next((s for s in candidates if s and s in tables), None)

    def _frame(self, snapshot: str) -> pd.DataFrame:
        if snapshot not in self._frames:
            self._frames[snapshot] = self.refit.tables[snapshot].to_pandas()
        return self._frames[snapshot]

    def _refitted(self, cid: str) -> FittedComponent:
        if cid not in self._fitted:
            key = self.refit.refitted[cid].artifact
            self._fitted[cid] = load_fitted(self.refit.room.store.get(key))
        return self._fitted[cid]

    def environment_changes(self, run_id: str | None) -> list[str]:
        """What differs between the environment run ``run_id`` recorded and this one."""
        if run_id is None:
            return []
        if run_id not in self._environments:
            try:
                self._environments[run_id] = dict(self.catalog.get_run(run_id).environment)
            except RegrowError:  # the run's row is gone: nothing recorded to compare with
                self._environments[run_id] = {}
        recorded = self._environments[run_id]
        return environment_changes(recorded, self.now) if recorded else []
