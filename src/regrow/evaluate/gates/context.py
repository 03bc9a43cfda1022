"""What the gates read: both versions, the evaluation rows, their scores, profiles and resamples.

A :class:`GateContext` is built once per evaluation (:func:`regrow.evaluating.evaluate` builds
it from the catalog; :meth:`GateContext.of` from fitted systems and a frame). What several
gates share is computed once, on first use: the labels, the row positions of each slice, the
paired bootstrap :class:`~regrow.evaluate.resample.Resamples` and the metric on every
resample of every slice for both versions.

Fields a gate needs but the caller did not give (no baseline, no profiles, no store) leave the
gate **inconclusive**, saying what was missing; they never fail it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from regrow.errors import DataError
from regrow.evaluate.metrics import Metric, default_metric, get_metric, resampled_values
from regrow.evaluate.resample import Resamples

if TYPE_CHECKING:
    import pandas as pd

    from regrow.catalog.records import SystemVersionRecord
    from regrow.catalog.store import ArtifactStore
    from regrow.model import FittedSystem
    from regrow.monitor.profile import ColumnProfile, Profile

__all__ = ["GateContext", "HeldOut", "ReferenceRows", "ScoreFn", "check_frame", "scores_of"]

Array = np.ndarray[Any, Any]
#: A version's output on rows: class probabilities (classification) or values.
ScoreFn = Callable[["FittedSystem", "pd.DataFrame"], Array]
#: Held-out rows of the reference period: those of the named snapshot, or (None) the
#: baseline's training rows the candidate did not train on; None when there are none.
ReferenceRows = Callable[[str | None], "HeldOut | None"]


def scores_of(model: FittedSystem, frame: pd.DataFrame) -> Array:
    """``model``'s output on ``frame``: probabilities (classification) or values."""
    return np.asarray(model.output_of(model.member_outputs(frame), frame), dtype=float)


@dataclass(frozen=True)
class HeldOut:
    """Rows of the reference period the candidate did not train on (the stability gate's).

    ``source`` says where they come from; ``trained_on`` names the versions or members that
    did train on them (their scores there are in-sample, which favours them).
    """

    frame: pd.DataFrame
    source: str
    trained_on: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class GateContext:
    """Everything a gate may read (see the module docstring).

    ``candidate_reference`` and ``baseline_reference`` map each column a version's members
    read to its profile in the data they were trained on (what monitoring compares with);
    ``training`` holds the profiles of the candidate's training snapshots by name and
    ``evaluation_profile`` the evaluation snapshot's. ``reference_rows`` loads the held-out
    rows of the reference period the stability gate scores, only when it runs.
    """

    candidate: FittedSystem
    baseline: FittedSystem | None
    frame: pd.DataFrame
    metric: Metric
    candidate_scores: Array
    baseline_scores: Array | None = None
    slices: Mapping[str, str] = field(default_factory=dict)
    level: float = 0.95
    n_boot: int = 1000
    seed: int = 0
    candidate_version: SystemVersionRecord | None = None
    baseline_version: SystemVersionRecord | None = None
    candidate_reference: Mapping[str, ColumnProfile] = field(default_factory=dict)
    baseline_reference: Mapping[str, ColumnProfile] = field(default_factory=dict)
    training: Mapping[str, Profile] = field(default_factory=dict)
    evaluation_profile: Profile | None = None
    reference_rows: ReferenceRows | None = None
    store: ArtifactStore | None = None
    predict: ScoreFn = scores_of

    @classmethod
    def of(
        cls,
        candidate: FittedSystem,
        baseline: FittedSystem | None,
        frame: pd.DataFrame,
        *,
        metric: str | None = None,
        **fields: Any,
    ) -> GateContext:
        """A context for two fitted systems on ``frame``: checks the frame, scores both."""
        check_frame(candidate, baseline, frame)
        predict: ScoreFn = fields.pop("predict", scores_of)
        return cls(
            candidate=candidate,
            baseline=baseline,
            frame=frame,
            metric=get_metric(metric or default_metric(candidate.task), candidate.task),
            candidate_scores=predict(candidate, frame),
            baseline_scores=None if baseline is None else predict(baseline, frame),
            predict=predict,
            **fields,
        )

    @property
    def rows(self) -> int:
        """How many evaluation rows."""
        return len(self.frame)

    @property
    def classes(self) -> list[Any] | None:
        """The candidate's classes (None for regression)."""
        return self.candidate.classes_

    @cached_property
    def y(self) -> Array:
        """The labels of the evaluation rows."""
        return self.frame[self.candidate.target].to_numpy()

    @cached_property
    def resamples(self) -> Resamples:
        """The paired bootstrap weights every gate shares."""
        return Resamples(self.rows, self.n_boot, seed=self.seed)

    @cached_property
    def groups(self) -> dict[str, Array | None]:
        """``"all"`` (None: every row), then each slice's row positions."""
        from regrow.data.snapshot import apply_slice

        groups: dict[str, Array | None] = {"all": None}
        for name, expr in self.slices.items():
            rows = apply_slice(self.frame, name, expr).index
            groups[name] = self.frame.index.get_indexer(rows)
        return groups

    @cached_property
    def draws(self) -> Array:
        """The metric on every resample of every group: ``(versions, n_boot, groups)``,
        the candidate first, then the baseline if there is one."""
        scores = [self.candidate_scores]
        if self.baseline_scores is not None:
            scores.append(self.baseline_scores)
        return resampled_values(
            self.metric, self.y, scores, self.resamples, classes=self.classes,
            groups=list(self.groups.values()),
        )  # fmt: skip

    def value(self, which: str = "candidate", group: str = "all") -> float:
        """The metric of ``which`` version on ``group`` (NaN when undefined or empty)."""
        scores = self.candidate_scores if which == "candidate" else self.baseline_scores
        if scores is None:
            return float("nan")
        rows = self.groups[group]
        if rows is None:
            return self.metric.fn(self.y, scores, self.classes)
        if len(rows) == 0:
            return float("nan")
        return self.metric.fn(self.y[rows], scores[rows], self.classes)

    def improvement(self, candidate: float, baseline: float) -> float:
        """How much better ``candidate`` is than ``baseline`` (positive: better)."""
        return candidate - baseline if self.metric.higher_is_better else baseline - candidate

    def improvements(self, candidate: Array, baseline: Array) -> Array:
        """:meth:`improvement` of each pair of resampled values."""
        return np.asarray(
            candidate - baseline if self.metric.higher_is_better else baseline - candidate
        )


def check_frame(
    candidate: FittedSystem, baseline: FittedSystem | None, frame: pd.DataFrame
) -> None:
    """Refuse evaluation rows without labels, without rows, or versions of other classes."""
    if candidate.target not in frame.columns:
        raise DataError(
            f"the evaluation data has no target column {candidate.target!r}",
            hint="evaluate on a labelled snapshot",
        )
    if len(frame) == 0:
        raise DataError("the evaluation data is empty", hint="evaluate on a snapshot with rows")
    if baseline is not None and baseline.classes_ != candidate.classes_:
        raise DataError(
            f"{candidate.ref} predicts classes {candidate.classes_} but {baseline.ref} predicts "
            f"{baseline.classes_}",
            hint="compare versions of the same system",
        )
