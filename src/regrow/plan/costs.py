"""The cost model: CPU seconds an action will take, learned from the catalog's history.

Every fitted component version records its CPU seconds and the rows it was fitted on. A task
costs a fixed overhead plus work per row; for a component the model keeps a **rate**, CPU
seconds per row over the overhead, for each way of producing it (a fit from scratch,
``continue``, ``leaf-refit``, ``finetune``): the median of its observed rates, shrunk toward a
prior by :attr:`CostModel.prior_weight` pseudo-observations. Without any history it falls back
on the same component class's history in other components, then on the prior for the
estimator's family. Runs with the very parameters being estimated come first: a component
whose parameters changed (400 trees instead of 100) is estimated from the runs with its new
parameters once there are any, not from the median of its older, cheaper ones. Each run adds
observations, so estimates follow the machine they run on.

A run on few rows measures mostly the overhead, and the overhead is only guessed
(``_OVERHEAD``; an estimator's own set-up can take far longer): a misjudged overhead ``d``
puts ``d / rows`` into the run's rate and ``d * R / rows`` into an estimate for ``R`` rows. So
an estimate for ``R`` rows takes its rate from the runs on at least a tenth of ``R`` rows and
leaves the smaller ones out; with none that large, the small ones count only by their size
against the prior. A 3-row fit taking 0.3 CPU s (set-up, mostly) cannot make an 8,000-row fit
cost 800.

>>> model = CostModel()
>>> model.observe("geo", "sklearn.ensemble.HistGradientBoostingClassifier", "fit",
...               rows=10_000, cpu_seconds=2.0)
>>> est = model.estimate("geo", "sklearn.ensemble.HistGradientBoostingClassifier", "fit",
...                      rows=5_000)
>>> round(est.cpu_seconds, 3), est.basis
(0.665, '1 earlier fit run(s) of geo')
>>> model.observe("geo", "sklearn.ensemble.HistGradientBoostingClassifier", "fit",
...               rows=3, cpu_seconds=0.3)  # mostly the estimator's set-up
>>> est = model.estimate("geo", "sklearn.ensemble.HistGradientBoostingClassifier", "fit",
...                      rows=5_000)
>>> round(est.cpu_seconds, 3), est.basis
(0.665, '1 earlier fit run(s) of geo (1 more on under 500 rows left out)')
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
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
    "pooled_rate",
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
#: An estimate's rate comes from the runs on at least this share of the rows it is for (see
#: the module docs).
_COMPARABLE = 0.1


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


#: One observed run: the rows it trained on and its CPU seconds per row over the overhead.
_Run = tuple[int, float]


@dataclass
class CostModel:
    """CPU seconds per row per (component, action), learned from observations."""

    prior_weight: float = 1.0
    _by_component: dict[tuple[str, str], list[_Run]] = field(default_factory=dict)
    _by_class: dict[tuple[str, str], list[_Run]] = field(default_factory=dict)
    _by_recipe: dict[tuple[str, str, str], list[_Run]] = field(default_factory=dict)

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
        run = (rows, max(cpu_seconds - _OVERHEAD, 0.0) / rows)
        self._by_component.setdefault((component, action), []).append(run)
        self._by_class.setdefault((cls, action), []).append(run)
        if recipe:
            key = (component, action, _recipe_key(recipe))
            self._by_recipe.setdefault(key, []).append(run)

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
            runs, of = exact, f"{component} with these parameters"
        elif own:
            runs, of = own, component
        elif (same := self._by_class.get((cls, action))) is not None:
            runs, of = same, cls.rsplit(".", 1)[-1]
        else:
            fit = self._by_component.get((component, "fit"))
            if fit and action != "fit":
                median, weight, _ = pooled_rate(fit, rows)
                rate = median * _UPDATE_FACTORS.get(action, 1.0)
                if weight < 1:  # only fits on a few rows
                    rate = self._shrunk(rate, weight, prior)
                return CostEstimate(
                    _OVERHEAD + rate * rows, rate, rows, f"fits of {component}, scaled"
                )
            return CostEstimate(_OVERHEAD + prior * rows, prior, rows, "prior")
        median, weight, left_out = pooled_rate(runs, rows)
        rate = self._shrunk(median, weight, prior)
        least = f"under {_COMPARABLE * rows:,.0f} rows"
        if weight < 1:
            basis = f"{len(runs)} earlier {action} run(s) of {of}, all on {least}: mostly the prior"
        else:
            basis = f"{len(runs) - left_out} earlier {action} run(s) of {of}"
            basis += f" ({left_out} more on {least} left out)" if left_out else ""
        return CostEstimate(_OVERHEAD + rate * rows, rate, rows, basis)

    def _shrunk(self, rate: float, weight: float, prior: float) -> float:
        """``rate``, observed over ``weight`` runs' worth, shrunk toward ``prior``."""
        return (rate * weight + prior * self.prior_weight) / (weight + self.prior_weight)


def pooled_rate(runs: Sequence[tuple[int, float]], rows: int) -> tuple[float, float, int]:
    """The rate ``runs`` (each: its rows and seconds per row) show for a task on ``rows`` rows,
    how many runs' worth of evidence that is, and how many runs were left out for being too
    small.

    The runs on at least :data:`_COMPARABLE` of ``rows`` give the median of their rates, each a
    whole run's worth; the smaller ones are left out. Without any such run, the median weighted
    by rows of all of them, worth the largest run's share of :data:`_COMPARABLE` of ``rows``: a
    small run's error is mostly the overhead misjudged, the same in every small run, so twenty
    of them are not worth more than the largest.

    >>> pooled_rate([(8000, 0.0006), (3, 0.09)], 7000)
    (0.0006, 1, 1)
    >>> pooled_rate([(3, 0.09), (50, 0.005)], 1000)
    (0.005, 0.5, 0)
    """
    least = _COMPARABLE * rows
    comparable = [rate for n, rate in runs if n >= least]
    if comparable:
        return statistics.median(comparable), len(comparable), len(runs) - len(comparable)
    rates = [rate for _, rate in runs]
    return _median(rates, [n for n, _ in runs]), max(n for n, _ in runs) / least, 0


def _median(values: Sequence[float], weights: Sequence[float]) -> float:
    """The median of ``values`` weighted by ``weights`` (with equal weights, the median).

    >>> _median([1.0, 3.0, 2.0, 9.0], [1, 1, 1, 1]), _median([0.0006, 0.09], [8000, 3])
    (2.5, 0.0006)
    """
    ordered = sorted(zip(values, weights, strict=True))
    half = sum(weights) / 2
    below = 0.0
    for i, (value, weight) in enumerate(ordered):
        below += weight
        if i + 1 < len(ordered) and math.isclose(below, half):
            return (value + ordered[i + 1][0]) / 2  # the two middle ones, as the median does
        if below > half:
            return value
    return ordered[-1][0]


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
