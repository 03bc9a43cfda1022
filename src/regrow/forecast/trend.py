"""Forecast a per-window metric: will it cross the SLA threshold within a horizon?

The model is a **local linear trend** (a state-space model with a level and a slope), filtered
with a Kalman filter. Step ``t`` is one monitored window:

.. code-block:: text

    y[t]        = level[t] + e[t]                      e ~ N(0, c * v[t])    (the window's noise)
    level[t+1]  = level[t] + slope[t] + u[t]           u ~ N(0, q_level)
    slope[t+1]  = phi * slope[t] + w[t]                w ~ N(0, q_slope)

``v[t]`` is the variance each point's band states (a band ``[lower, upper]`` at ``level``, 95 %
by default, gives ``((upper - lower) / (2 z))**2``); points without a band take the median of
the others, and a series without any band takes half the robust variance of its successive
differences. ``level[t]`` is the metric itself, the value the window's data would show with
infinitely many rows: the forecast is about it, not about the noisy value a future window of
a few thousand rows will report.

**The noise variances are not guessed.** ``q_level``, ``q_slope`` (each relative to the
series' typical ``v``), the band scale ``c`` and the damping ``phi`` run over a fixed grid
(:data:`GRID`); every cell is weighted by its likelihood on the series (the Kalman filter's
prediction-error decomposition), with a flat prior over the log-spaced cells. The best cell is
the maximum-likelihood estimate; averaging over the cells instead of plugging it in carries
the uncertainty of the variances into the forecast, which keeps short series from being
overconfident. The one-step prediction errors are scored with a Student-t density
(:data:`DOF` degrees of freedom, scale from the filter) rather than a normal one: a single
step or outlier in the history then does not inflate the estimated noise, which would make
every later forecast wander (and cross) too much. With ``phi < 1`` the trend is damped: a
dip that the series has not yet shown to persist is extrapolated less far.

**A new version starts the series again.** Where the points name the version they checked
(:class:`MetricPoint` ``version``) and it changes, the level and the slope start afresh, as at
the first point: a promotion's step is no trend. The older versions' points still weigh the
noise cells. **A trend needs** :data:`MIN_TREND_POINTS` **points of one version**; with fewer
the slope is held at 0 (a local level): a slope fitted on a handful of points extrapolates
their noise (on 600 of the calibration benchmark's histories, seeds 1000-1599, forecasts from
5-8 points scored a Brier of 0.031-0.042 with the trend and 0.024-0.029 level only; from 9
points on the trend had the lower log loss).

**The crossing probability** is counted on seeded simulated paths: a cell drawn by its weight,
the state drawn from the filter's posterior at the last point, then ``horizon`` steps of the
model. ``probability`` is the share of paths whose level crosses ``threshold`` at one of the
steps ``1..horizon``; ``steps_to_cross`` is the median first-crossing step (None when fewer
than half the paths cross). ``expected`` is the exact mean of the level at the horizon (with
``bounds``, where paths leave the metric's range, the mean of the paths held inside it); the
band is the paths' ``level`` quantile interval there. ``last`` is the filtered metric at the
last point; when it is past the threshold, :attr:`Forecast.crossed` is True and the notes say
so, as they say how many of the newest readings are past it.

Missing values (NaN) are windows without a value: the state moves on, with no update. Fewer
than :data:`MIN_POINTS` values give a forecast that says so and holds no numbers.

>>> pts = [0.86 - 0.008 * i for i in range(10)]
>>> f = forecast(pts, threshold=0.8, direction="below", horizon=5)
>>> f.probability > 0.8, round(f.expected, 2), f.steps_to_cross is not None
(True, 0.75, True)
>>> forecast([0.85, 0.86], threshold=0.8, direction="below", horizon=5).notes
('too few points: 2 (need 3)',)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import product
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

from regrow.errors import ConfigError
from regrow.forecast.points import MetricPoint

__all__ = [
    "DOF",
    "GRID",
    "MIN_POINTS",
    "MIN_ROWS",
    "MIN_TREND_POINTS",
    "PATHS",
    "Forecast",
    "forecast",
    "metric_bounds",
]

#: Fewer values than this and there is no forecast (a level and a slope need three).
MIN_POINTS = 3

#: Fewer values than this since the newest version change and the forecast has no trend: the
#: level alone (a slope fitted on a handful of points extrapolates their noise).
MIN_TREND_POINTS = 9

#: Points measured on fewer rows are skipped (said in the notes): a metric and its bootstrap
#: band on a handful of rows say next to nothing, and a narrow band would still pull the
#: filter towards them.
MIN_ROWS = 30

#: Degrees of freedom of the Student-t density the prediction errors are scored with.
DOF = 4.0

#: Simulated paths per forecast.
PATHS = 4000

#: The grid the noise variances and the damping are averaged over: ``q_level`` and ``q_slope``
#: are multiples of the series' typical measurement variance; ``c`` scales the stated bands.
GRID: dict[str, tuple[float, ...]] = {
    "q_level": (0.0, *np.logspace(-2, 1, 7).tolist()),
    "q_slope": (0.0, *np.logspace(-4, -1, 7).tolist()),
    "c": (0.5, 1.0, 2.0),
    "phi": (1.0, 0.8, 0.5),
}

#: Band scales tried when no point states a band (the scale then comes from the series).
_C_UNBANDED = (0.25, 0.5, 1.0, 2.0, 4.0)

Direction = Literal["below", "above"]


@dataclass(frozen=True)
class Forecast:
    """Where a metric is heading: the chance it crosses ``threshold`` within ``horizon`` steps.

    ``probability``, ``expected``, ``lower`` and ``upper`` are None when there was nothing to
    forecast from (``notes`` say why). ``lower``/``upper`` bound the metric at the horizon at
    ``level``.
    """

    probability: float | None
    expected: float | None
    lower: float | None
    upper: float | None
    steps_to_cross: int | None
    threshold: float
    direction: Direction
    horizon: int
    n_points: int
    method: str
    level: float = 0.95
    last: float | None = None  # the filtered metric at the last point
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether there is a forecast (enough points)."""
        return self.probability is not None

    @property
    def crossed(self) -> bool:
        """Whether the metric is past the threshold already (the filtered metric, ``last``)."""
        if self.last is None:
            return False
        return (
            self.last < self.threshold if self.direction == "below" else self.last > self.threshold
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (with ``crossed``)."""
        return {**asdict(self), "crossed": self.crossed, "notes": list(self.notes)}


def _values(points: Sequence[MetricPoint | float]) -> tuple[np.ndarray, np.ndarray, int]:
    """Each point's value and the variance its band states (NaN: none), and how many points
    were measured on fewer than :data:`MIN_ROWS` rows: those have no value, as their band
    would not hold its coverage."""
    y = np.full(len(points), np.nan)
    var = np.full(len(points), np.nan)
    tiny = 0
    for i, p in enumerate(points):
        if isinstance(p, MetricPoint):
            if 0 < p.rows < MIN_ROWS:
                tiny += 1
                continue
            y[i] = p.value
            if p.lower is not None and p.upper is not None:
                var[i] = ((p.upper - p.lower) / 2.0) ** 2
        else:
            y[i] = float(p)
    y[~np.isfinite(y)] = np.nan
    var[~(np.isfinite(var) & (var > 0)) | np.isnan(y)] = np.nan
    return y, var, tiny


def _check(threshold: float, direction: str, horizon: int, level: float) -> None:
    if not isinstance(threshold, int | float) or not math.isfinite(threshold):
        raise ConfigError(
            f"the 'threshold' parameter must be a finite number; got {threshold!r}",
            hint="pass the SLA value of the metric, e.g. 0.8",
        )
    if direction not in ("below", "above"):
        raise ConfigError(
            f"the 'direction' parameter must be 'below' or 'above'; got {direction!r}",
            hint="'below' for metrics where higher is better (roc_auc), 'above' for errors (rmse)",
        )
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ConfigError(
            f"the 'horizon' parameter must be a whole number of windows >= 1; got {horizon!r}",
            hint="e.g. 7 for a week of daily windows (--horizon 7; horizon=7 in Python)",
        )
    if not 0 < level < 1:
        raise ConfigError(
            f"the 'level' parameter must be in (0, 1); got {level!r}", hint="e.g. 0.95"
        )


def forecast(
    points: Sequence[MetricPoint | float],
    *,
    threshold: float,
    direction: Direction,
    horizon: int,
    seed: int = 0,
    level: float = 0.95,
    bounds: tuple[float, float] | None = None,
) -> Forecast:
    """Forecast ``points`` (oldest first, one per window) ``horizon`` windows ahead.

    ``direction`` says which side of ``threshold`` is a breach: ``"below"`` for metrics where
    higher is better, ``"above"`` for error metrics. Points are :class:`MetricPoint` (whose
    bands are read at ``level``) or plain numbers. ``bounds`` is the range the metric can take
    (:func:`metric_bounds`: ROC AUC lies in [0, 1], an error is never negative): the simulated
    paths, the expected value and the band stay inside it. See the module docstring for the
    model.

    >>> f = forecast([0.2, 0.1, 0.02, 0.01], threshold=0.5, direction="below", horizon=9,
    ...              bounds=metric_bounds("roc_auc"))
    >>> f.lower >= 0.0 and f.expected >= 0.0
    True
    """
    _check(threshold, direction, horizon, level)
    lo, hi = bounds if bounds is not None else (-math.inf, math.inf)
    if not lo < hi:
        raise ConfigError(
            f"forecast bounds must be (low, high) with low < high; got {bounds!r}",
            hint="metric_bounds(metric) gives a metric's range",
        )
    y, var, tiny = _values(points)
    fresh = _starts(points, y)
    n = int(np.isfinite(y).sum())
    start = int(np.flatnonzero(fresh)[-1]) if n else 0  # where the newest version begins
    own = int(np.isfinite(y[start:]).sum())
    trend = own >= MIN_TREND_POINTS
    method = (
        f"local {'linear trend' if trend else 'level'} (Kalman filter), noise variances"
        f"{' and damping' if trend else ''} averaged over a grid by their Student-t likelihood; "
        f"{PATHS} simulated paths"
    )
    empty = Forecast(None, None, None, None, None, threshold, direction, horizon, n, method, level)
    skipped = f"{tiny} point(s) measured on fewer than {MIN_ROWS} rows: skipped" if tiny else None
    if n < MIN_POINTS:
        empty = _with(empty, skipped) if skipped else empty
        return _with(empty, f"too few points: {n} (need {MIN_POINTS})")
    notes: list[str] = [skipped] if skipped else []
    if n + tiny < len(y):
        notes.append(f"{len(y) - n - tiny} of {len(y)} points have no value: skipped")
    if fresh.sum() > 1:
        notes.append(
            f"{int(fresh.sum()) - 1} version change(s): the level and the trend start again at "
            f"each, {own} point(s) of the newest version"
        )
    if not trend:
        notes.append(
            f"level only: a trend needs {MIN_TREND_POINTS} points of one version, "
            f"{'the newest has' if fresh.sum() > 1 else 'the series has'} {own}"
        )
    v, typical, scales = _noise(y, var, level, notes)
    slopes, phis = (GRID["q_slope"], GRID["phi"]) if trend else ((0.0,), (1.0,))
    cells = np.array(list(product(GRID["q_level"], slopes, scales, phis)))
    ql, qs, c, phi = (cells[:, i] for i in range(4))
    ql, qs = ql * typical, qs * typical
    loglik, a, p = _filter(y, v, ql, qs, c, phi, 100.0 * typical if trend else 0.0, fresh)
    weight = np.exp(loglik - loglik.max())
    weight /= weight.sum()
    rng = np.random.default_rng(seed)
    raw = _simulate(rng, weight, a, p, ql, qs, phi, horizon)
    paths = np.clip(raw, lo, hi)
    crossed = paths < threshold if direction == "below" else paths > threshold
    any_cross = crossed.any(axis=1)
    first = np.where(any_cross, crossed.argmax(axis=1) + 1, horizon + 1)
    median_first = float(np.median(first))
    if (raw[:, -1] == paths[:, -1]).all():  # no path leaves the range: the exact mean
        damp = np.where(phi == 1.0, horizon, (1 - phi**horizon) / np.maximum(1 - phi, 1e-12))
        expected = float(np.clip(weight @ (a[:, 0] + damp * a[:, 1]), lo, hi))
    else:  # the paths held inside it: clipping the mean would put a wild one on the bound
        expected = float(paths[:, -1].mean())
    alpha = (1 - level) / 2
    lower, upper = np.quantile(paths[:, -1], [alpha, 1 - alpha])
    last = float(np.clip(weight @ a[:, 0], lo, hi))
    best = cells[int(np.argmax(loglik))]
    notes.append(
        f"most likely: q_level {best[0]:.3g}"
        + (f" and q_slope {best[1]:.3g}" if trend else "")
        + f" times the band variance, band scale {best[2]:g}"
        + (f", damping {best[3]:g}" if trend else "")
    )
    notes.extend(_past(y[start:], last, threshold, direction))
    return Forecast(
        probability=float(any_cross.mean()),
        expected=expected,
        lower=float(lower),
        upper=float(upper),
        steps_to_cross=int(median_first) if median_first <= horizon else None,
        threshold=threshold,
        direction=direction,
        horizon=horizon,
        n_points=n,
        method=method,
        level=level,
        last=last,
        notes=tuple(notes),
    )


def _starts(points: Sequence[MetricPoint | float], y: np.ndarray) -> np.ndarray:
    """Where the filter starts its state: the first value, and the first value of each new
    version (a promotion: the new model's level and trend owe nothing to the old one's)."""
    fresh = np.zeros(len(y), dtype=bool)
    seen: str | None = None
    for i in np.flatnonzero(np.isfinite(y)):
        version = getattr(points[int(i)], "version", None)
        fresh[i] = not fresh.any() or (None not in (version, seen) and version != seen)
        seen = version if version is not None else seen
    return fresh


def _noise(
    y: np.ndarray, var: np.ndarray, level: float, notes: list[str]
) -> tuple[np.ndarray, float, tuple[float, ...]]:
    """Each point's measurement variance, the typical one, and the band scales to try (see
    the module docstring); says in ``notes`` where the variances did not come from bands."""
    z = NormalDist().inv_cdf(0.5 + level / 2)
    banded = np.isfinite(var)
    obs = y[np.isfinite(y)]
    if banded.any():
        v = var / z**2
        typical = float(np.median(v[banded]))
        v[~banded] = typical
        scales = GRID["c"]
        if not banded[np.isfinite(y)].all():
            notes.append("points without a band take the median band of the others")
    else:
        diffs = np.diff(obs)
        mad = float(np.median(np.abs(diffs - np.median(diffs)))) * 1.4826
        typical = mad**2 / 2
        v = np.full(len(y), typical)
        scales = _C_UNBANDED
        notes.append("no point states a band: the noise is estimated from the series")
    floor = (1e-6 * max(1.0, float(np.max(np.abs(obs))))) ** 2
    if typical < floor:
        typical = floor
        v = np.maximum(v, floor)
    return v, typical, scales


def _past(y: np.ndarray, last: float, threshold: float, direction: Direction) -> list[str]:
    """Notes on what is past ``threshold`` already: the filtered metric (``last``) and the
    newest readings ``y`` (of the newest version) that are past it in a row."""
    beyond = (y < threshold) if direction == "below" else (y > threshold)
    run = 0
    for value, out in zip(y[::-1], beyond[::-1], strict=True):
        if np.isnan(value):
            continue
        if not out:
            break
        run += 1
    readings = f"the newest {run} reading(s) are {direction} {threshold:g}"
    if (last < threshold) if direction == "below" else (last > threshold):
        return [f"the metric is already {direction} {threshold:g} ({last:.4g})"] + (
            [readings] if run else []
        )
    return [f"{readings}; the filtered metric ({last:.4g}) is not yet"] if run else []


#: Metrics that are shares or probabilities: they lie in [0, 1].
UNIT_METRICS = frozenset(
    {"roc_auc", "f1", "precision", "recall", "specificity", "accuracy", "average_precision",
     # the confusion matrix's cells, as CBPE estimates them: shares of the rows
     "true_positive", "false_positive", "true_negative", "false_negative"}
)  # fmt: skip
#: Error metrics: never negative.
ERROR_METRICS = frozenset({"mae", "mape", "mse", "msle", "rmse", "rmsle", "log_loss"})


def metric_bounds(metric: str) -> tuple[float, float] | None:
    """The range ``metric`` can take, for :func:`forecast`'s ``bounds`` (None: unbounded).

    >>> metric_bounds("roc_auc"), metric_bounds("rmse"), metric_bounds("business_value")
    ((0.0, 1.0), (0.0, inf), None)
    """
    if metric in UNIT_METRICS:
        return 0.0, 1.0
    if metric in ERROR_METRICS:
        return 0.0, math.inf
    return None


def _with(f: Forecast, note: str) -> Forecast:
    return Forecast(**{**asdict(f), "notes": (*f.notes, note)})


def _filter(
    y: np.ndarray,
    v: np.ndarray,
    ql: np.ndarray,
    qs: np.ndarray,
    c: np.ndarray,
    phi: np.ndarray,
    slope_var: float,
    fresh: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Kalman filter run for every grid cell at once: each cell's log-likelihood (up to a
    constant; see :data:`DOF`), and its state mean ``(K, 2)`` and covariance ``(K, 2, 2)``
    after the last point.

    The first value fixes the level (with its own noise); the slope starts at 0 with variance
    ``slope_var`` (0: no slope at all), so the likelihood of the next values compares the
    cells fairly. A value where ``fresh`` is True (the first of a new version) starts the
    state again the same way. A starting value's own density is the same in every cell and is
    left out.
    """
    k = len(ql)
    a0 = a1 = p00 = p01 = p11 = np.zeros(k)
    loglik = np.zeros(k)
    for t in range(int(np.flatnonzero(np.isfinite(y))[0]), len(y)):
        if fresh[t]:
            a0, a1 = np.full(k, y[t]), np.zeros(k)
            p00, p01, p11 = c * v[t], np.zeros(k), np.full(k, slope_var)
            continue
        # predict
        a0 = a0 + a1
        a1 = phi * a1
        n00 = p00 + 2 * p01 + p11 + ql
        n01 = phi * (p01 + p11)
        n11 = phi * phi * p11 + qs
        p00, p01, p11 = n00, n01, n11
        if np.isnan(y[t]):
            continue
        # update
        f = p00 + c * v[t]
        err = y[t] - a0
        loglik -= 0.5 * np.log(f) + 0.5 * (DOF + 1) * np.log1p(err * err / (DOF * f))
        k0, k1 = p00 / f, p01 / f
        a0 = a0 + k0 * err
        a1 = a1 + k1 * err
        p00, p01, p11 = p00 - k0 * p00, p01 - k0 * p01, p11 - k1 * p01
    a = np.stack([a0, a1], axis=1)
    p = np.stack([np.stack([p00, p01], 1), np.stack([p01, p11], 1)], 1)
    return loglik, a, p


def _simulate(
    rng: np.random.Generator,
    weight: np.ndarray,
    a: np.ndarray,
    p: np.ndarray,
    ql: np.ndarray,
    qs: np.ndarray,
    phi: np.ndarray,
    horizon: int,
) -> np.ndarray:
    """``PATHS`` paths of the level over steps ``1..horizon``: ``(PATHS, horizon)``."""
    cell = rng.choice(len(weight), size=PATHS, p=weight)
    p00 = np.maximum(p[cell, 0, 0], 0.0)
    l00 = np.sqrt(p00)
    l10 = np.where(l00 > 0, p[cell, 0, 1] / np.where(l00 > 0, l00, 1.0), 0.0)
    l11 = np.sqrt(np.maximum(p[cell, 1, 1] - l10**2, 0.0))
    z = rng.standard_normal((PATHS, 2 + 2 * horizon))
    lev = a[cell, 0] + l00 * z[:, 0]
    slope = a[cell, 1] + l10 * z[:, 0] + l11 * z[:, 1]
    sl, ss, ph = np.sqrt(ql[cell]), np.sqrt(qs[cell]), phi[cell]
    out = np.empty((PATHS, horizon))
    for h in range(horizon):
        lev = lev + slope + sl * z[:, 2 + 2 * h]
        slope = ph * slope + ss * z[:, 3 + 2 * h]
        out[:, h] = lev
    return out
