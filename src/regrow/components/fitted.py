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

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from regrow.components.adapters import adapter_for
from regrow.components.base import Component, Ensemble, Member, Transform
from regrow.errors import ComponentError, DataError

__all__ = ["FittedComponent", "combine", "feature_frame", "fit_component"]


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
    component depends on, directly or not.
    """
    parts: list[pd.DataFrame] = []
    raw: list[str] = []
    for name in spec.inputs:
        if name in upstream:
            if raw:
                parts.append(frame[raw])
                raw = []
            parts.append(upstream[name].outputs(frame, upstream))
        elif name in frame.columns:
            raw.append(name)
        else:
            raise DataError(
                f"column {name!r}, an input of {spec.name!r}, is not in the data",
                hint=f"the data has columns {list(frame.columns)}",
            )
    if raw:
        parts.append(frame[raw])
    return parts[0] if len(parts) == 1 else pd.concat(parts, axis=1)


def fit_component(
    spec: Component,
    frame: pd.DataFrame,
    *,
    target: str,
    upstream: Mapping[str, FittedComponent],
    seed: int,
) -> FittedComponent:
    """Fit ``spec`` on ``frame`` with the given seed; ensembles have nothing to fit."""
    if isinstance(spec, Ensemble):
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
        raise ComponentError(
            f"{spec.kind} {spec.name!r} failed to fit: {type(exc).__name__}: {exc}",
            hint="check its inputs and parameters",
        ) from exc
    info: dict[str, Any] = {"adapter": adapter.name, "n_rows": len(frame)}
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


def combine(
    ensemble: Ensemble,
    outputs: Mapping[str, np.ndarray],
    classes: list[Any] | None,
) -> np.ndarray:
    """Combine member outputs: weighted mean of probabilities/values, or weighted vote.

    For classification ``outputs`` holds each member's probability matrix (columns in
    ``classes`` order) and the result is the combined probability matrix; for a vote, each
    member's argmax counts with its weight. For regression, a weighted mean of values.
    """
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
