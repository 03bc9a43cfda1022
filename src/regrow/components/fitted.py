"""Fitted components: fitting a spec on a frame, and running it.

These functions are what a task does on a worker: given a component spec, the frame of its
raw input columns and the fitted upstream transforms, fit it; given fitted components, predict.

>>> import pandas as pd
>>> from sklearn.preprocessing import StandardScaler
>>> from regrow.components.base import Transform
>>> t = Transform("scaled", StandardScaler(), inputs=["a"])
>>> frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
>>> fitted = fit_component(t, frame, target="y", upstream={}, seed=0)
>>> list(fitted.outputs(frame).columns)
['scaled__a']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from regrow.components.adapters import adapter_for
from regrow.components.base import Component, Ensemble, Member, Transform
from regrow.components.gating import fit_gate, gated, numeric_columns
from regrow.errors import ComponentError, DataError

if TYPE_CHECKING:
    from regrow.components.outputs import KnownOutputs

__all__ = [
    "FittedComponent",
    "combine",
    "feature_frame",
    "fit_component",
    "fit_stacker",
    "gate_features",
    "member_output",
    "stack_output",
]


@dataclass
class FittedComponent:
    """A component spec with its fitted estimator (None for an ensemble) and facts about it.

    ``info`` holds what the fit learned that the graph needs: a transform's output columns, a
    classifier's classes.
    """

    spec: Component
    estimator: Any
    info: dict[str, Any] = field(default_factory=dict)

    def outputs(
        self, frame: pd.DataFrame, upstream: Mapping[str, FittedComponent] | None = None
    ) -> pd.DataFrame:
        """A transform's output columns for ``frame``."""
        X = feature_frame(self.spec, frame, upstream or {})
        out = self.estimator.transform(X)
        if hasattr(out, "toarray"):  # scipy sparse
            out = out.toarray()
        values = np.asarray(out, dtype=float)
        return pd.DataFrame(values, columns=self.info["outputs"], index=frame.index)

    def predict_proba(
        self, frame: pd.DataFrame, upstream: Mapping[str, FittedComponent] | None = None
    ) -> np.ndarray:
        """A classifier member's class probabilities, columns in ``info['classes']`` order."""
        X = feature_frame(self.spec, frame, upstream or {})
        return np.asarray(self.estimator.predict_proba(X), dtype=float)

    def predict(
        self, frame: pd.DataFrame, upstream: Mapping[str, FittedComponent] | None = None
    ) -> np.ndarray:
        """A member's predictions (values for regressors, labels for classifiers)."""
        X = feature_frame(self.spec, frame, upstream or {})
        return np.asarray(self.estimator.predict(X))


def feature_frame(
    spec: Component, frame: pd.DataFrame, upstream: Mapping[str, FittedComponent]
) -> pd.DataFrame:
    """The input matrix of ``spec``: raw columns, and the outputs of the transforms it reads.

    Transforms are applied recursively, so ``upstream`` must hold every transform the
    component depends on, directly or not. The component's own adapters (value adapters of its
    raw inputs, :func:`~regrow.components.base.check_own_adapters`) apply to the columns it
    reads itself, in training and prediction alike; transforms read the rows as they are.
    """
    own = getattr(spec, "adapters", None)  # components pickled before adapters have none
    columns = own.apply(frame) if own else frame
    parts: list[pd.DataFrame] = []
    raw: list[str] = []
    for name in spec.inputs:
        if name in upstream:
            if raw:
                parts.append(columns[raw])
                raw = []
            parts.append(upstream[name].outputs(frame, upstream))
        elif name in columns.columns:
            raw.append(name)
        else:
            raise DataError(
                f"column {name!r}, an input of {spec.name!r}, is not in the data",
                hint=f"the data has columns {list(frame.columns)}",
            )
    if raw:
        parts.append(columns[raw])
    return parts[0] if len(parts) == 1 else pd.concat(parts, axis=1)


def fit_component(
    spec: Component,
    frame: pd.DataFrame,
    *,
    target: str,
    upstream: Mapping[str, FittedComponent],
    seed: int,
    in_sample: Sequence[str] = (),
    known: KnownOutputs | None = None,
) -> FittedComponent:
    """Fit ``spec`` on ``frame`` with the given seed; a mean or vote ensemble has nothing to fit.

    ``in_sample`` names the members of a stacked ensemble that were fitted on ``frame``'s rows
    (their outputs are cross-fitted or held out, see :mod:`regrow.components.stack_rows`);
    ``known`` holds stored outputs of the other members on these rows
    (:mod:`regrow.components.outputs`).
    """
    if isinstance(spec, Ensemble):
        if spec.learns_from_data:
            fit = _fit_stack if spec.method == "stack" else _fit_gate
            return fit(
                spec, frame, target=target, upstream=upstream, seed=seed, in_sample=in_sample,
                known=known,
            )  # fmt: skip
        if spec.method == "gate":
            info: dict[str, Any] = {"method": "gate", "gate": "rules", "default": spec.default}
            return FittedComponent(spec, None, {**info, "gates": [list(g) for g in spec.gates]})
        return FittedComponent(spec, None, {"weights": spec.weights, "method": spec.method})
    if not isinstance(spec, Transform | Member):
        raise ComponentError(f"cannot fit {spec!r}: unknown component kind {spec.kind!r}")
    adapter = adapter_for(spec.estimator)
    estimator = adapter.with_seed(spec.estimator, seed)
    X = feature_frame(spec, frame, upstream)
    y = frame[target].to_numpy()
    try:
        adapter.fit(estimator, X, y)
    except Exception as exc:
        text = _numbers_as_text(X)
        raise ComponentError(
            f"{spec.kind} {spec.name!r} failed to fit: {type(exc).__name__}: {exc}{text}",
            hint="make those values numbers (or nulls) in the source and snapshot again"
            if text
            else "check its inputs and parameters",
        ) from exc
    info = {"adapter": adapter.name, "n_rows": len(frame)}
    if isinstance(spec, Transform):
        if hasattr(estimator, "get_feature_names_out"):
            names = [str(n) for n in estimator.get_feature_names_out()]
        else:
            width = np.asarray(estimator.transform(X.iloc[:1])).shape[1]
            names = [str(i) for i in range(width)]
        info["outputs"] = [f"{spec.name}__{n}" for n in names]
    elif hasattr(estimator, "classes_"):
        info["classes"] = np.asarray(estimator.classes_).tolist()
    return FittedComponent(spec, estimator, info)


def _numbers_as_text(X: pd.DataFrame) -> str:
    """The text columns of ``X`` that hold mostly numbers, each with its first values that are
    not numbers and their rows: the likely cause of a failed fit (one stray ``"1,234.5"`` in a
    CSV column makes the whole column text). Empty when there are none."""
    from regrow.data.training_checks import stray_values

    found = []
    for name in X.columns:
        values = X[name]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        present = values.notna()
        text = [str(v) if ok else None for v, ok in zip(values.tolist(), present, strict=True)]
        count, first = stray_values(pa.array(text, pa.large_string()))
        if not count or 2 * count > int(present.sum()):
            continue  # all numbers, or mostly text: not numbers gone astray
        shown = ", ".join(f"row {X.index[row]}: {value!r}" for row, value in first)
        more = f" and {count - len(first):,} more" if count > len(first) else ""
        found.append(
            f"column {name!r} is text, though most of its values are numbers: {count:,} "
            f"value{'s' if count != 1 else ''} not numeric ({shown}{more})"
        )
    return "".join(f"\n  - {line}" for line in found)


_EPS = 1e-6


def stack_features(ensemble: Ensemble, outputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """The stacker's inputs: member values, or log-probabilities (logits for two classes)."""
    cols: list[np.ndarray] = []
    for m in ensemble.members:
        if ensemble.weights[m] <= 0:
            continue
        out = np.asarray(outputs[m], dtype=float)
        if out.ndim == 1:
            cols.append(out[:, None])
            continue
        p = np.clip(out, _EPS, 1 - _EPS)
        if p.shape[1] == 2:
            cols.append(np.log(p[:, 1:] / p[:, :1]))
        else:
            cols.append(np.log(p))
    return np.hstack(cols)


def _align(proba: np.ndarray, own: Sequence[Any], classes: Sequence[Any]) -> np.ndarray:
    """Probability columns in ``own`` order, moved to ``classes`` order (absent classes: 0)."""
    if list(own) == list(classes):
        return proba
    aligned = np.zeros((proba.shape[0], len(classes)))
    for j, cls in enumerate(own):
        aligned[:, list(classes).index(cls)] = proba[:, j]
    return aligned


def member_output(
    fitted: FittedComponent,
    frame: pd.DataFrame,
    upstream: Mapping[str, FittedComponent],
    classes: Sequence[Any] | None,
) -> np.ndarray:
    """A member's values (regression), or its probabilities in ``classes`` order."""
    if classes is None:
        return fitted.predict(frame, upstream).astype(float)
    return _align(fitted.predict_proba(frame, upstream), fitted.info.get("classes", []), classes)


def fit_stacker(X: np.ndarray, y: np.ndarray, classes: Sequence[Any] | None) -> Any:
    """A stack's combiner fitted on member features ``X``: linear, or logistic for classes."""
    from sklearn.linear_model import LinearRegression, LogisticRegression

    stacker: Any = (
        LinearRegression() if classes is None else LogisticRegression(C=10.0, max_iter=1000)
    )
    return stacker.fit(X, y)


def stack_output(stacker: Any, X: np.ndarray, classes: Sequence[Any] | None) -> np.ndarray:
    """A fitted stacker's values, or its probabilities in ``classes`` order."""
    if classes is None:
        return np.asarray(stacker.predict(X), dtype=float)
    proba = np.asarray(stacker.predict_proba(X), dtype=float)
    return _align(proba, np.asarray(stacker.classes_).tolist(), classes)


def _fit_stack(
    spec: Ensemble,
    frame: pd.DataFrame,
    *,
    target: str,
    upstream: Mapping[str, FittedComponent],
    seed: int,
    in_sample: Sequence[str] = (),
    known: KnownOutputs | None = None,
) -> FittedComponent:
    """Fit the stacker on the members' outputs for ``frame``: cross-fitted, or on held-out
    rows (:mod:`regrow.components.stack_rows`)."""
    from regrow.components.stack_rows import training_outputs

    found = training_outputs(
        spec, frame, target=target, upstream=upstream, seed=seed, in_sample=in_sample, known=known
    )
    classes = found.classes
    stacker = fit_stacker(stack_features(spec, found.outputs), found.target(frame, target), classes)
    info: dict[str, Any] = {
        "method": "stack",
        "weights": spec.weights,
        "n_rows": len(frame),
        "cross_fitted": list(found.cross_fitted),
    }
    if found.rows is not None:  # learned on held-out rows: which members, how many rows
        info["held_out"] = list(found.held_out)
        info["held_out_rows"] = len(found.rows)
    if classes is not None:
        info["classes"] = np.asarray(stacker.classes_).tolist()
    info["coef"] = np.asarray(stacker.coef_, dtype=float).round(6).tolist()
    info["intercept"] = np.asarray(stacker.intercept_, dtype=float).round(6).tolist()
    return FittedComponent(spec, stacker, info)


def gate_features(
    ensemble: Ensemble, frame: pd.DataFrame, upstream: Mapping[str, FittedComponent]
) -> pd.DataFrame:
    """A learned gate's inputs: the numeric columns of the members' feature frames, each once.

    ``upstream`` holds the fitted members and the transforms they read.
    """
    transforms = {n: f for n, f in upstream.items() if f.spec.kind == "transform"}
    frames = [feature_frame(upstream[m].spec, frame, transforms) for m in ensemble.members]
    return numeric_columns(frames)


def _fit_gate(
    spec: Ensemble,
    frame: pd.DataFrame,
    *,
    target: str,
    upstream: Mapping[str, FittedComponent],
    seed: int,
    in_sample: Sequence[str] = (),
    known: KnownOutputs | None = None,
) -> FittedComponent:
    """Fit a learned gate on the members' (cross-fitted) outputs for ``frame``."""
    from regrow.components.stack_rows import training_outputs

    found = training_outputs(
        spec, frame, target=target, upstream=upstream, seed=seed, in_sample=in_sample, known=known
    )
    outputs, classes = found.outputs, found.classes
    features = gate_features(spec, frame, upstream)
    gate = fit_gate(
        spec.members, outputs, features, frame[target].to_numpy(), classes, seed=seed,
        ensemble=spec.name,
    )  # fmt: skip
    info: dict[str, Any] = {
        "method": "gate",
        "gate": "learned",
        "n_rows": len(frame),
        "cross_fitted": list(found.cross_fitted),
        "columns": gate.columns,
        "share": gate.weights(features).mean(axis=0).round(6).tolist() if len(frame) else [],
    }
    if classes is not None:
        info["classes"] = classes
    return FittedComponent(spec, gate, info)


def combine(
    ensemble: Ensemble,
    outputs: Mapping[str, np.ndarray],
    classes: list[Any] | None,
    stacker: Any = None,
    *,
    frame: pd.DataFrame | None = None,
    upstream: Mapping[str, FittedComponent] | None = None,
) -> np.ndarray:
    """Combine member outputs: weighted mean of probabilities/values, weighted vote, stack or
    gate.

    For classification ``outputs`` holds each member's probability matrix (columns in
    ``classes`` order) and the result is the combined probability matrix; for a vote, each
    member's argmax counts with its weight. For regression, a weighted mean of values. A stack
    applies ``stacker``, the fitted linear model of the ensemble's version. A gate reads the
    rows themselves: ``frame`` (the raw input columns) and, for a learned gate (``stacker``
    is then its :class:`~regrow.components.gating.LearnedGate`), ``upstream``, the fitted
    members and transforms.
    """
    if ensemble.method == "stack":
        if stacker is None:
            raise ComponentError(f"stacked ensemble {ensemble.name!r} is not fitted")
        return stack_output(stacker, stack_features(ensemble, outputs), classes)
    if ensemble.method == "gate":
        features = None
        if ensemble.gate == "learned" and frame is not None and upstream is not None:
            features = gate_features(ensemble, frame, upstream)
        return gated(ensemble, outputs, stacker, frame, features)
    weights = np.array([ensemble.weights[m] for m in ensemble.members], dtype=float)
    weights = weights / weights.sum()
    stacked = np.stack([np.asarray(outputs[m], dtype=float) for m in ensemble.members])
    if ensemble.method == "vote" and classes is not None:
        votes = np.zeros_like(stacked[0])
        rows = np.arange(votes.shape[0])
        for w, proba in zip(weights, stacked, strict=True):
            votes[rows, proba.argmax(axis=1)] += w
        return np.asarray(votes)
    return np.asarray(np.tensordot(weights, stacked, axes=1))
