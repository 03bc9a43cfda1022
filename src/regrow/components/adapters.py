"""Framework adapters: how regrow seeds, fits, serializes and versions an estimator.

One small class per framework, found through a registry in order (most specific first).
Fitted estimators are serialized with :mod:`pickle`; the store verifies every artifact's
sha256 before it is unpickled, so only bytes this catalog wrote are ever loaded (DESIGN.md,
"Serialization is safe by default").

>>> from sklearn.linear_model import LogisticRegression
>>> adapter = adapter_for(LogisticRegression())
>>> adapter.name
'sklearn'
>>> adapter.with_seed(LogisticRegression(), 7).random_state
7
"""

from __future__ import annotations

import importlib.metadata
import pickle
from functools import cache
from typing import Any, ClassVar

from sklearn.base import clone

__all__ = [
    "FrameworkAdapter",
    "LightGBMAdapter",
    "SklearnAdapter",
    "XGBoostAdapter",
    "adapter_for",
    "register_adapter",
]


@cache
def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


class FrameworkAdapter:
    """Base adapter, for any scikit-learn compatible estimator.

    Subclasses override :meth:`matches` and :attr:`libraries` (the distributions whose versions
    enter the fingerprint).
    """

    name: ClassVar[str] = "sklearn"
    libraries: ClassVar[tuple[str, ...]] = ("scikit-learn", "numpy", "scipy")

    def matches(self, estimator: Any) -> bool:
        """Whether this adapter handles ``estimator``."""
        return hasattr(estimator, "fit") and hasattr(estimator, "get_params")

    def library_versions(self) -> dict[str, str]:
        """Installed versions of the libraries whose code fits and runs the estimator."""
        return {lib: v for lib in self.libraries if (v := _version(lib)) is not None}

    def with_seed(self, estimator: Any, seed: int) -> Any:
        """An unfitted copy of ``estimator`` with every ``random_state`` parameter set to ``seed``.

        Nested estimators (pipelines, meta-estimators) are seeded too.
        """
        est = clone(estimator)
        keys = [
            k
            for k in est.get_params(deep=True)
            if k == "random_state" or k.endswith("__random_state")
        ]
        if keys:
            est.set_params(**dict.fromkeys(keys, seed))
        return est

    def fit(self, estimator: Any, X: Any, y: Any) -> Any:
        """Fit ``estimator`` in place and return it."""
        estimator.fit(X, y)
        return estimator

    def dumps(self, fitted: Any) -> bytes:
        """Serialize a fitted estimator."""
        return pickle.dumps(fitted, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        """Deserialize bytes written by :meth:`dumps` (and verified by the store)."""
        return pickle.loads(data)


class SklearnAdapter(FrameworkAdapter):
    """scikit-learn estimators, and the fallback for anything scikit-learn compatible."""


class LightGBMAdapter(FrameworkAdapter):
    """LightGBM's scikit-learn API (``LGBMClassifier``, ``LGBMRegressor``, ...)."""

    name: ClassVar[str] = "lightgbm"
    libraries: ClassVar[tuple[str, ...]] = ("lightgbm", "scikit-learn", "numpy", "scipy")

    def matches(self, estimator: Any) -> bool:
        return type(estimator).__module__.startswith("lightgbm")

    def with_seed(self, estimator: Any, seed: int) -> Any:
        est = super().with_seed(estimator, seed)
        # LightGBM prints a line per fit by default; a run's log is not the place for it.
        if "verbose" not in est.get_params():
            est.set_params(verbose=-1)
        return est


class XGBoostAdapter(FrameworkAdapter):
    """XGBoost's scikit-learn API (``XGBClassifier``, ``XGBRegressor``)."""

    name: ClassVar[str] = "xgboost"
    libraries: ClassVar[tuple[str, ...]] = ("xgboost", "scikit-learn", "numpy", "scipy")

    def matches(self, estimator: Any) -> bool:
        return type(estimator).__module__.startswith("xgboost")


_REGISTRY: list[FrameworkAdapter] = [LightGBMAdapter(), XGBoostAdapter(), SklearnAdapter()]


def register_adapter(adapter: FrameworkAdapter) -> None:
    """Add an adapter, tried before the built-in ones."""
    _REGISTRY.insert(0, adapter)


def adapter_for(estimator: Any) -> FrameworkAdapter:
    """The first registered adapter that matches ``estimator``."""
    for adapter in _REGISTRY:
        if adapter.matches(estimator):
            return adapter
    from regrow.errors import SystemSpecError

    raise SystemSpecError(
        f"no adapter handles {estimator!r}",
        hint="use a scikit-learn compatible estimator or register_adapter() one",
    )
