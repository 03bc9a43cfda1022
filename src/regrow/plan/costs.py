"""The cost model: CPU seconds an action will take, learned from the catalog's history.

Every fitted component version records its CPU seconds and the rows it was fitted on. For a
component the model keeps a **rate**, CPU seconds per row, for each way of producing it (a fit
from scratch, ``continue``, ``leaf-refit``, ``finetune``): the median of its observed rates,
shrunk toward a prior by :attr:`CostModel.prior_weight` pseudo-observations. Without any
history it falls back on the same component class's history in other components, then on the
prior for the estimator's family. Runs with the very parameters being estimated come first:
a component whose parameters changed (400 trees instead of 100) is estimated from the runs
with its new parameters once there are any, not from the median of its older, cheaper ones.
Each run adds observations, so estimates follow the machine they run on.

>>> model = CostModel()
>>> model.observe("geo", "sklearn.ensemble.HistGradientBoostingClassifier", "fit",
...               rows=10_000, cpu_seconds=2.0)
>>> est = model.estimate("geo", "sklearn.ensemble.HistGradientBoostingClassifier", "fit",
...                      rows=5_000)
>>> round(est.cpu_seconds, 3), est.basis
(0.665, '1 earlier fit run(s) of geo')
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from regrow.catalog.records import ComponentVersionRecord

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.system import System

__all__ = [
    "CLONE_CPU_SECONDS",
    "CostEstimate",
    "CostModel",
    "cheap_to_refit",
    "learned_costs",
    "linear",
    "prior_rate",
]

#: CPU seconds per row for a fit from scratch, by estimator family, on one modern core.
_PRIOR_RATES = {
    "gradient-boosting": 6e-5,
    "forest": 8e-5,
    "linear": 3e-6,
    "torch": 2e-4,
    "transform": 5e-7,
    "ensemble": 1e-6,
    "other": 3e-5,
}
#: How much cheaper than a fit each update is, relative to the same rows.
_UPDATE_FACTORS = {"fit": 1.0, "continue": 0.5, "leaf-refit": 0.15, "finetune": 0.5}
#: Fixed cost of any task (process start-up, loading, storing), in seconds.
_OVERHEAD = 0.02


def _family(cls: str) -> str:
    low = cls.lower()
    if "torch" in low:
        return "torch"
    if "boost" in low or "lgbm" in low or "xgb" in low:
        return "gradient-boosting"
    if "forest" in low or "trees" in low:
        return "forest"
    if "linear" in low or "logistic" in low or "ridge" in low or "lasso" in low:
        return "linear"
    if "preprocessing" in low or "encoder" in low or "scaler" in low:
        return "transform"
    if "ensemble" in low and "regrow" in low:
        return "ensemble"
    return "other"


def prior_rate(cls: str, action: str = "fit") -> float:
    """The prior CPU seconds per row of ``action`` on an estimator of class ``cls``."""
    return _PRIOR_RATES[_family(cls)] * _UPDATE_FACTORS.get(action, 1.0)


#: A member whose estimator the prior expects to fit on a probe's rows in at most this many
#: CPU seconds is refitted as it is by the planner's probes (a linear model); a dearer one is
#: stood in for by a small boosted model.
CLONE_CPU_SECONDS = 0.05


def linear(cls: str) -> bool:
    """Whether an estimator of class ``cls`` is a linear model (by the cost model's families).

    >>> linear("sklearn.linear_model.LogisticRegression"), linear("lightgbm.LGBMRegressor")
    (True, False)
    """
    return _family(cls) == "linear"


def cheap_to_refit(cls: str, rows: int) -> bool:
    """Whether the prior expects an estimator of class ``cls`` to fit ``rows`` rows within
    :data:`CLONE_CPU_SECONDS`.

    >>> cheap_to_refit("sklearn.linear_model.Ridge", 2000)
    True
    """
    return prior_rate(cls) * rows <= CLONE_CPU_SECONDS


@dataclass(frozen=True)
class CostEstimate:
    """Estimated CPU seconds, with the rate behind it and where the rate came from."""

    cpu_seconds: float
    rate: float
    rows: int
    basis: str


@dataclass
class CostModel:
    """CPU seconds per row per (component, action), learned from observations."""

    prior_weight: float = 1.0
    _by_component: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    _by_class: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    _by_recipe: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)

    @classmethod
    def from_history(cls, records: Iterable[ComponentVersionRecord]) -> CostModel:
        """A model fitted on component versions (their ``cpu_seconds`` and ``n_rows``)."""
        model = cls()
        for rec in records:
            rows = rec.info.get("n_rows")
            cpu = rec.info.get("cpu_seconds")
            if not isinstance(rows, int) or rows <= 0 or not isinstance(cpu, int | float):
                continue
            update = rec.parts.get("update") or {}
            action = str(update.get("action", "fit"))
            recipe = rec.parts.get("recipe") or {}
            cls_name = str(recipe.get("class", "?"))
            model.observe(rec.component, cls_name, action, rows=rows, cpu_seconds=float(cpu),
                          recipe=recipe)  # fmt: skip
        return model

    def observe(
        self,
        component: str,
        cls: str,
        action: str,
        *,
        rows: int,
        cpu_seconds: float,
        recipe: Mapping[str, Any] | None = None,
    ) -> None:
        """Add one measured run: ``cpu_seconds`` to do ``action`` on ``rows`` rows (of the
        component with ``recipe``, its class and parameters, when given)."""
        if rows <= 0 or cpu_seconds < 0:
            return
        rate = max(cpu_seconds - _OVERHEAD, 0.0) / rows
        self._by_component.setdefault((component, action), []).append(rate)
        self._by_class.setdefault((cls, action), []).append(rate)
        if recipe:
            key = (component, action, _recipe_key(recipe))
            self._by_recipe.setdefault(key, []).append(rate)

    def observations(self, component: str, action: str = "fit") -> int:
        """How many runs of ``action`` on ``component`` the model has seen."""
        return len(self._by_component.get((component, action), []))

    def estimate(
        self,
        component: str,
        cls: str,
        action: str,
        *,
        rows: int,
        recipe: Mapping[str, Any] | None = None,
    ) -> CostEstimate:
        """Estimated CPU seconds for ``action`` on ``component`` (class ``cls``; ``recipe``, its
        class and parameters, when known) over ``rows``."""
        prior = prior_rate(cls, action)
        own = self._by_component.get((component, action))
        exact = self._by_recipe.get((component, action, _recipe_key(recipe))) if recipe else None
        if exact:
            basis = f"{len(exact)} earlier {action} run(s) of {component} with these parameters"
            rates = exact
        elif own:
            basis = f"{len(own)} earlier {action} run(s) of {component}"
            rates = own
        elif (same := self._by_class.get((cls, action))) is not None:
            basis = f"{len(same)} earlier {action} run(s) of {cls.rsplit('.', 1)[-1]}"
            rates = same
        else:
            fit = self._by_component.get((component, "fit"))
            if fit and action != "fit":
                rate = statistics.median(fit) * _UPDATE_FACTORS.get(action, 1.0)
                return CostEstimate(
                    _OVERHEAD + rate * rows, rate, rows, f"fits of {component}, scaled"
                )
            return CostEstimate(_OVERHEAD + prior * rows, prior, rows, "prior")
        n = len(rates)
        rate = (statistics.median(rates) * n + prior * self.prior_weight) / (n + self.prior_weight)
        return CostEstimate(_OVERHEAD + rate * rows, rate, rows, basis)


def _recipe_key(recipe: Mapping[str, Any]) -> str:
    """A component's class and parameters as one string, the same for a recipe as stored with
    a component version and as the system's definition gives it."""
    from regrow._hashing import canonical_json

    try:
        return canonical_json(dict(recipe))
    except (TypeError, ValueError):  # a value JSON cannot hold (NaN): its text
        return json.dumps(dict(recipe), sort_keys=True, default=str)


def learned_costs(catalog: Catalog, system: System) -> CostModel:
    """The cost model learned from every stored version of ``system``'s components."""
    records: list[ComponentVersionRecord] = []
    for name in system.components:
        records.extend(catalog.component_history(system.name, name))
    return CostModel.from_history(records)
