"""Monitor any model's predictions: no regrow-trained system needed.

A team whose model was trained elsewhere logs, per row, the features, the prediction, the
score(s) and, once they come, the label. :func:`monitor_predictions` compares a window of
such rows with a reference frame of the same (typically the model's validation data, with
labels) and returns one :class:`PredictionMonitorResult`:

- per-feature drift (the same calibrated tests as for a regrow system; the prediction and
  score columns are checked too: a shift in what the model outputs is a signal of its own);
- multivariate drift (a domain classifier and PCA reconstruction error);
- estimated performance without labels (CBPE for classifiers, DLE for regressors) with bands,
  and realised performance where the window has labels, per chunk;
- alerts, distributions, and the false-discovery control across chunks.

Scores: one column (a binary classifier's probability of the positive class) or one per class
(a sequence in class order, or ``{class: column}``). The decision threshold of a binary model
is ``threshold`` when given, else read from how its predictions follow its scores (a threshold
that separates the rows predicted positive from the rest), else 0.5.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> def rows(n, shift=0.0):
...     x = rng.normal(shift, 1, n); p = 1 / (1 + np.exp(-x))
...     return pd.DataFrame({"x": x, "p": p, "pred": (p >= 0.5).astype(int),
...                          "y": (rng.uniform(size=n) < p).astype(int)})
>>> result = monitor_predictions(rows(4000), rows(3000, 1.0).drop(columns="y"),
...                              prediction="pred", score="p", target="y")
>>> sorted(result.drifted_columns)
['p', 'pred', 'x']
>>> result.threshold, result.task.kind
(0.5, 'classification')
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from regrow.errors import ConfigError, DataError
from regrow.monitor.assemble import (
    distributions,
    drift_alerts,
    fdr_statement,
    multivariate_alerts,
)
from regrow.monitor.chunks import Chunk, Chunking
from regrow.monitor.drift_monitor import DriftMonitor, DriftReport
from regrow.monitor.profile import Profile
from regrow.monitor.signals import Alert, PerformanceSignals, Scored, Task, performance_signals
from regrow.progress import ProgressFn, Timer

__all__ = ["PredictionMonitorResult", "monitor_predictions"]


@dataclass(frozen=True)
class PredictionMonitorResult:
    """Everything the monitor found on a window of an external model's predictions."""

    model: str
    task: Task
    threshold: float | None
    rows: int
    features: tuple[str, ...]
    drift: DriftReport
    chunk_drift: list[DriftReport]
    chunks: list[Chunk]
    chunking: Chunking
    multivariate: list[Any]
    estimates: PerformanceSignals
    alerts: list[Alert]
    distributions: dict[str, Any]
    notes: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def drifted_columns(self) -> list[str]:
        """Columns drifted on the whole window."""
        return self.drift.drifted_columns

    @property
    def multivariate_drifted(self) -> bool | None:
        """Whether a multivariate check found drift on the whole window; None when none
        judged it (none ran, or the window had too few rows for each)."""
        judged = [m for m in self.multivariate if m.chunk is None and not math.isnan(m.value)]
        return any(m.drifted for m in judged) if judged else None

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON (the schema the HTML report and ``--json`` share)."""
        realised = [r for r in self.estimates.rows if r.realised is not None]
        return {
            "summary": {
                "version": None,
                "model": self.model,
                "window": None,
                "rows": self.rows,
                "task": self.task.kind,
                "drifted": self.drifted_columns,
                "multivariate_drifted": self.multivariate_drifted,
                "labelled": bool(realised),
                "alerts": len(self.alerts),
                "threshold": self.threshold,
            },
            "chunking": {
                **self.chunking.to_dict(),
                "describe": self.chunking.describe(),
                "chunks": [c.to_dict() for c in self.chunks],
                "notes": list(
                    self.chunking.notes(pd.DataFrame(index=range(self.rows)), self.chunks)
                ),
            },
            "drift": [self.drift.to_dict()],
            "chunk_drift": [r.to_dict() for r in self.chunk_drift],
            "fdr": fdr_statement(self.chunk_drift or [self.drift], len(self.features)),
            "multivariate": [m.to_dict() for m in self.multivariate],
            "estimates": self.estimates.to_dict(),
            "performance": {
                "rows": [
                    {"chunk": r.chunk, "metric": r.metric, "value": r.realised} for r in realised
                ]
            }
            if realised
            else None,
            "calibration": self.estimates.calibration,
            "alerts": [a.to_dict() for a in self.alerts],
            "distributions": self.distributions,
            "impacts": [],
            "quality": {"notes": list(self.notes)},
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


def monitor_predictions(
    reference: pd.DataFrame,
    window: pd.DataFrame,
    *,
    prediction: str,
    score: str | Sequence[str] | Mapping[Any, str] | None = None,
    target: str | None = None,
    task: str | None = None,
    features: Sequence[str] | None = None,
    threshold: float | None = None,
    positive: Any = None,
    chunking: Chunking | None = None,
    time_column: str | None = None,
    metrics: Sequence[str] | None = None,
    cost_matrix: Sequence[Sequence[float]] | None = None,
    alerts: Mapping[str, Mapping[str, float]] | None = None,
    name: str = "external model",
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> PredictionMonitorResult:
    """Monitor a window of a model's predictions against a reference of the same (see the
    module docstring). ``alerts`` maps metrics to ``{"min": x}`` or ``{"max": x}``."""
    timer = Timer(progress)
    chunking = chunking or Chunking()
    scores = _score_columns(score)
    for what, frame in (("reference", reference), ("window", window)):
        if len(frame) == 0:
            raise DataError(f"the {what} has no rows", hint="pass a frame with predictions")
        needed = [prediction, *scores.values()]
        if what == "reference" and target is not None:
            needed.append(target)
        for col in needed:
            _require(frame, col, what)
    if time_column is not None:
        _require(window, time_column, "window")
    outputs = {prediction, *scores.values(), *(c for c in (target, time_column) if c)}
    chosen = (
        [c for c in reference.columns if c not in outputs] if features is None else list(features)
    )
    for col in chosen:
        _require(reference, col, "reference")
    kind = _task(task, reference, prediction, scores, target)
    model_task, chosen_threshold, notes = _model_task(
        kind, reference, prediction, scores, target, threshold, positive
    )
    with timer.step("drift"):
        profile = Profile.of(reference[[*chosen, prediction, *scores.values()]])
        chosen, left_out = _features(profile, chosen)
        notes += left_out
        checked = [*chosen, prediction, *scores.values()]
        profile = Profile(profile.rows, {c: profile.columns[c] for c in checked})
        win = window.reindex(columns=checked)
        monitor = DriftMonitor(profile, seed=seed)
        drift = monitor.check(win)
        chunks = chunking.split(window, time_column) if chunking.active else []
        chunk_drift = DriftMonitor(profile, seed=seed).check_chunks(win, chunks) if chunks else []
    with timer.step("multivariate"):
        from regrow.monitor.multivariate import multivariate_drift

        try:
            multi = multivariate_drift(
                reference[chosen], window[[c for c in chosen if c in window]], chosen,
                chunks=chunks, seed=seed,
            )  # fmt: skip
        except DataError as exc:  # a reference too small to fit and calibrate on
            multi = []
            notes.append(f"multivariate drift is not checked: {exc.message}")
    with timer.step("estimates"):
        ref_scored = Scored(
            reference[chosen], _outputs(model_task, reference, prediction, scores, "reference"),
            reference[target].to_numpy(object) if target else None,
        )  # fmt: skip
        win_scored = Scored(
            window.reindex(columns=chosen),
            _outputs(model_task, window, prediction, scores, "window"),
            window[target].to_numpy(object) if target and target in window.columns else None,
        )  # fmt: skip
        if model_task.kind == "classification" and not scores:
            estimates = PerformanceSignals(
                None, 0, warnings=("no score column: CBPE needs the model's probabilities",)
            )
        elif target is None:
            estimates = PerformanceSignals(
                None, 0, warnings=("no target column: estimates need a labelled reference",)
            )
        else:
            estimates = performance_signals(
                model_task, ref_scored, win_scored, chunks, metrics=metrics,
                cost_matrix=cost_matrix, rules=alerts, seed=seed,
            )  # fmt: skip
    found = [*estimates.alerts, *multivariate_alerts(multi)]
    found += drift_alerts([drift, *chunk_drift])
    return PredictionMonitorResult(
        name, model_task, chosen_threshold, len(window), tuple(chosen), drift, chunk_drift,
        chunks, chunking, multi, estimates, found,
        distributions(reference, window, checked), tuple(notes), dict(timer.seconds),
    )  # fmt: skip


def _features(profile: Profile, chosen: Sequence[str]) -> tuple[list[str], list[str]]:
    """The columns of ``chosen`` the checks can read, and a note for each left out: a
    datetime column (a time stamp is not a feature: every new window lies outside the
    reference's times) or another kind the drift tests skip. They are left out of every
    check alike: per-feature drift, multivariate drift, the estimators and their support."""
    kept: list[str] = []
    notes: list[str] = []
    for col in chosen:
        prof = profile.columns[col]
        if prof.kind != "other":
            kept.append(col)
        elif prof.dtype == "datetime":
            notes.append(
                f"{col!r} is a time column: not a feature; pass --time-column {col} to chunk by it"
            )
        else:
            notes.append(
                f"{col!r} holds {prof.dtype or 'no'} values, which no check reads: not a feature"
            )
    return kept, notes


def _require(frame: pd.DataFrame, column: str, what: str) -> None:
    if column not in frame.columns:
        close = difflib.get_close_matches(column, [str(c) for c in frame.columns], n=1)
        raise ConfigError(
            f"the {what} has no column {column!r}",
            hint=f"did you mean {close[0]!r}?"
            if close
            else f"its columns are {[str(c) for c in frame.columns][:20]}",
        )


def _score_columns(score: str | Sequence[str] | Mapping[Any, str] | None) -> dict[Any, str]:
    """Scores as {class or None: column}: None for a single positive-class column."""
    if score is None:
        return {}
    if isinstance(score, str):
        return {None: score}
    if isinstance(score, Mapping):
        return {k: str(v) for k, v in score.items()}
    cols = [str(c) for c in score]
    if len(cols) == 1:
        return {None: cols[0]}
    return dict(enumerate(cols))


def _task(
    task: str | None,
    reference: pd.DataFrame,
    prediction: str,
    scores: Mapping[Any, str],
    target: str | None,
) -> str:
    if task is not None:
        if task not in ("classification", "regression"):
            raise ConfigError(
                f"task must be 'classification' or 'regression'; got {task!r}",
                hint="or leave it out to infer it from the prediction column",
            )
        return task
    if scores:
        return "classification"
    pred = reference[prediction]
    numeric = pd.api.types.is_numeric_dtype(pred) and not pd.api.types.is_bool_dtype(pred)
    if numeric and pred.nunique() > 20:
        return "regression"
    return "classification"


def _model_task(
    kind: str,
    reference: pd.DataFrame,
    prediction: str,
    scores: Mapping[Any, str],
    target: str | None,
    threshold: float | None,
    positive: Any,
) -> tuple[Task, float | None, list[str]]:
    notes: list[str] = []
    if kind == "regression":
        return Task("regression"), None, notes
    values = pd.concat(
        [reference[prediction], reference[target]] if target else [reference[prediction]]
    ).dropna()
    labels = sorted(pd.unique(values).tolist(), key=lambda v: (str(type(v)), v))
    if len(scores) > 1:
        return Task("classification", _classes(list(scores), labels)), None, notes
    if len(labels) > 2:
        raise ConfigError(
            f"{len(labels)} classes in the reference but one score column",
            hint="give one score column per class (--score a --score b ... or {class: column})",
        )
    pos = positive if positive is not None else labels[-1]
    if pos not in labels:
        raise ConfigError(f"positive class {pos!r} is not among the labels {labels}")
    neg = next((v for v in labels if v != pos), None)
    classes = (neg, pos)
    chosen = threshold
    if chosen is None and scores:
        chosen, note = _infer_threshold(reference, prediction, next(iter(scores.values())), pos)
        if note:
            notes.append(note)
    return Task("classification", classes, chosen if chosen is not None else 0.5), chosen, notes


def _classes(keys: list[Any], labels: list[Any]) -> tuple[Any, ...]:
    """The class of each score column: its key when keys name classes (matched as text, so a
    CLI's ``0=p0`` finds class 0), else the sorted labels in column order."""
    by_text = {str(v): v for v in labels}
    if all(str(k) in by_text for k in keys):
        return tuple(by_text[str(k)] for k in keys)
    in_order = all(isinstance(k, int) for k in keys) and keys == list(range(len(keys)))
    if in_order and len(labels) == len(keys):
        return tuple(labels)
    raise ConfigError(
        f"{len(keys)} score columns but the reference's labels are {labels[:10]}",
        hint="give one score column per class, named by class (CLASS=COLUMN), or in the "
        "sorted order of the classes",
    )


def _infer_threshold(
    reference: pd.DataFrame, prediction: str, score: str, positive: Any
) -> tuple[float, str]:
    """The decision threshold that reproduces the predictions from the scores, else 0.5."""
    s = pd.to_numeric(reference[score], errors="coerce").to_numpy(float)
    is_pos = (reference[prediction] == positive).to_numpy()
    ok = np.isfinite(s)
    s, is_pos = s[ok], is_pos[ok]
    if ((s >= 0.5) == is_pos).all():
        return 0.5, ""
    if is_pos.any() and (~is_pos).any() and s[is_pos].min() > s[~is_pos].max():
        return float(s[is_pos].min()), ""
    share = float(np.mean((s >= 0.5) != is_pos))
    return 0.5, (
        f"the predictions do not follow one threshold on the scores ({share:.1%} of reference "
        "rows disagree with 0.5): 0.5 is used; give --threshold"
    )


def _outputs(
    task: Task, frame: pd.DataFrame, prediction: str, scores: Mapping[Any, str], what: str
) -> np.ndarray:
    """The model's outputs in ``frame`` (the ``what``: reference or window): its predictions
    for a regressor, its scores for a classifier; a score that is not a number is refused,
    named by column, row and value."""
    if task.kind == "regression":
        return pd.to_numeric(frame[prediction], errors="coerce").to_numpy(float)
    if not scores:
        return np.zeros(len(frame))
    matrix = np.column_stack(
        [pd.to_numeric(frame[c], errors="coerce").to_numpy(float) for c in scores.values()]
    )
    bad = ~np.isfinite(matrix)
    if bad.any():
        said = []
        for j, column in enumerate(scores.values()):
            rows = np.flatnonzero(bad[:, j])
            if len(rows):
                value = frame[column].iloc[rows[0]]
                shown = "null" if pd.isna(value) else repr(value)
                said.append(f"{column!r} in {len(rows):,} row(s) (the first, row {rows[0]}: "
                            f"{shown})")  # fmt: skip
        raise DataError(
            f"{int(bad.any(axis=1).sum()):,} row(s) of the {what} have a missing or non-numeric "
            f"score (rows count from 0): {'; '.join(said)}",
            hint=f"drop those rows or fill their scores in the {what} file before monitoring",
        )
    return matrix[:, 0] if matrix.shape[1] == 1 else matrix
