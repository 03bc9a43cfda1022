"""Thresholds calibrated for the actual window size, p-values, effect intervals and FDR control.

Fixed cutoffs cry wolf on large windows: any statistic computed from samples is noisy, and how
noisy depends on the window size ``n`` and the reference size ``m``. So each test's **null
distribution** is simulated for the actual ``(n, m)``: ``draws`` pairs of (reference, window)
samples are drawn from the reference distribution itself, and the test's statistic is computed on
each pair through the same :class:`~regrow.monitor.drift.base.Binned` view as the real window.

* Numeric columns: drawing a sample from the sketch's quantile function and binning it on the
  reference grid gives multinomial bin counts, so the counts are drawn directly - exactly for
  small samples, and as a Brownian bridge (the multinomial's Gaussian limit) when every bin
  expects at least :data:`GAUSSIAN_MIN_COUNT` values. Both samples are drawn, so the noise of
  the *reference* is part of the null (a one-sample null would flag unshifted columns at
  ``n = m``), and the sketch's rank error ``e`` is added as extra reference noise
  (``1/m_eff = 1/m + (2 e / 2.576)^2``). Grids of continuous columns are all alike, so their
  simulated draws are shared across columns. The window's own counts at the edges are exact
  whether they come from the one-pass lattice or from a sort
  (:mod:`regrow.monitor.drift.lattice`), so the simulated statistic is the observed one's.
* Categorical columns: multinomial draws over the reference's bins.
* ``unseen`` has an analytic null (see :mod:`regrow.monitor.drift.unseen`).

The **p-value** is empirical in the bulk of the null draws and, in their tail (fewer than ten
draws above the statistic), the upper tail of a gamma distribution matched to the draws' mean
and variance, which resolves p-values far below ``1 / draws``; the statistics used here (chi-square,
PSI, and suprema/integrals of Brownian bridges) have tails no heavier than a gamma's, so the fit
errs on the conservative side. The reported **threshold** is that fit's ``1 - level`` quantile.
Effect intervals: KS uses the DKW inequality (rigorous, 95 %); ``unseen`` a Wilson interval; the
others ``effect +/- q95`` with ``q95`` the 95 % quantile of the effect under no drift (an
approximate noise band). :func:`benjamini_hochberg` controls the false discovery rate across
features x slices (x chunks, for a chunked check). Each window or chunk is simulated at its own
size. Null distributions are cached per (column key, test, window size,
reference).

>>> benjamini_hochberg([0.001, 0.02, 0.03, 0.5], 0.05).tolist()
[True, True, True, False]
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import gammaincc, gammainccinv

from regrow.monitor.drift.base import GRID_RANKS, Binned, DriftTest, Floats
from regrow.monitor.drift.ks import KS
from regrow.monitor.shared import NULL_SAMPLES

__all__ = [
    "GAUSSIAN_MIN_COUNT",
    "SAMPLES_BYTES",
    "Calibrator",
    "Evaluation",
    "NullDistribution",
    "adjusted_p_values",
    "benjamini_hochberg",
]

GAUSSIAN_MIN_COUNT = 5.0
"""Simulate with the Gaussian limit when every bin expects at least this many values."""

_Z99 = 2.576


@dataclass(frozen=True, eq=False)
class NullDistribution:
    """A test's statistic and effect size under no drift, for one window size."""

    draws: Floats
    effects: Floats

    def p_value(self, statistic: float) -> float:
        """P(statistic >= observed | no drift).

        Empirical (``(1 + exceedances) / (draws + 1)``) while at least ten draws exceed the
        observed value; beyond, the moment-matched gamma tail.
        """
        exceed = int(np.count_nonzero(self.draws >= statistic))
        if exceed >= 10:
            return (1 + exceed) / (self.draws.size + 1)
        mean, var = float(self.draws.mean()), float(self.draws.var())
        if var <= 0 or mean <= 0:
            return 1.0 if statistic <= mean * (1 + 1e-9) + 1e-12 else 0.0
        shape, scale = mean * mean / var, var / mean
        return float(gammaincc(shape, max(statistic, 0.0) / scale))

    def quantile(self, level: float) -> float:
        """The statistic's ``level`` quantile under no drift (gamma fit)."""
        mean, var = float(self.draws.mean()), float(self.draws.var())
        if var <= 0 or mean <= 0:
            return mean
        shape, scale = mean * mean / var, var / mean
        return float(scale * gammainccinv(shape, 1.0 - level))

    def effect_noise(self, level: float = 0.95) -> float:
        """The ``level`` quantile of the effect size under no drift."""
        return float(np.quantile(self.effects, level))


@dataclass(frozen=True)
class Evaluation:
    """One test on one column: the numbers a decision is made from."""

    statistic: float
    effect: float
    p_value: float
    threshold: float
    interval: tuple[float, float]
    error_bound: float | None = None


#: Bytes of simulated samples kept per (seed, draws); past it the oldest are dropped when the
#: next calibrator starts (one numeric column's samples at one window size take up to ~12 MB).
SAMPLES_BYTES = 256 * 2**20
_SAMPLES_LOCK = threading.Lock()


def _shared_samples(seed: int, draws: int) -> dict[Hashable, tuple[Floats, Floats, Floats | None]]:
    """The simulated samples of every calibrator with this seed and number of draws
    (:data:`regrow.monitor.shared.NULL_SAMPLES`, the process's shared reference caches),
    the oldest dropped past :data:`SAMPLES_BYTES` (the newest is always kept)."""
    found = NULL_SAMPLES.get(("null samples", seed, draws), dict)
    with _SAMPLES_LOCK:
        held = list(found.items())  # a copy: calibrators on other threads may add to it
        total = sum(sum(a.nbytes for a in v if a is not None) for _, v in held)
        for key, value in held[:-1]:
            if total <= SAMPLES_BYTES:
                break
            total -= sum(a.nbytes for a in value if a is not None)
            found.pop(key, None)
    return found


class Calibrator:
    """Simulates and caches null distributions; evaluates a test on a binned window.

    >>> import numpy as np, pyarrow as pa
    >>> from regrow.monitor.profile import profile_column
    >>> from regrow.monitor.drift import KS, bin_current
    >>> rng = np.random.default_rng(0)
    >>> ref = profile_column("x", pa.array(rng.normal(size=5000)))
    >>> cal = Calibrator(draws=200)
    >>> same = cal.evaluate(KS(), bin_current(ref, rng.normal(size=500)), key="x")
    >>> moved = cal.evaluate(KS(), bin_current(ref, rng.normal(1.0, size=500)), key="x")
    >>> same.p_value > 0.01, moved.p_value < 1e-6
    (True, True)
    """

    def __init__(self, draws: int = 500, seed: int = 0) -> None:
        self.draws = draws
        self.seed = seed
        # Simulated samples depend only on (seed, draws, sizes, bins): shared by every
        # calibrator of the process, so a long-lived one (regrow watch, regrow serve) simulates
        # each window size once, not once per window.
        self._samples = _shared_samples(seed, draws)
        self._nulls: dict[Hashable, NullDistribution] = {}
        self._lock = threading.Lock()  # columns are evaluated on threads; simulate each key once

    def null(self, test: DriftTest, binned: Binned, key: Hashable) -> NullDistribution:
        """The null distribution of ``test`` for ``binned``'s sizes (cached under ``key``)."""
        cache_key = (key, test.name, binned.n, binned.m, _fingerprint(binned))
        found = self._nulls.get(cache_key)
        if found is None:
            ref, cur, gap = self._simulate(binned)
            sim = Binned(
                binned.kind, ref, cur, binned.m, binned.n, binned.grid, binned.bins, gap=gap
            )
            draws = np.asarray(test.batch(sim), dtype=np.float64)
            found = NullDistribution(draws, np.asarray(test.effect(draws, sim), dtype=np.float64))
            self._nulls[cache_key] = found
        return found

    def evaluate(
        self, test: DriftTest, binned: Binned, key: Hashable, *, level: float = 0.05
    ) -> Evaluation:
        """Statistic, effect, p-value, ``1 - level`` threshold and 95 % effect interval."""
        stat = float(test.batch(binned))
        effect = float(test.effect(np.asarray(stat), binned))
        analytic: Any = test
        if hasattr(analytic, "p_value") and hasattr(analytic, "interval"):
            return Evaluation(
                stat, effect, analytic.p_value(binned), 0.0, analytic.interval(binned)
            )
        null = self.null(test, binned, key)
        bound = test.error_bound(binned) if isinstance(test, KS) else None
        if isinstance(test, KS):
            assert bound is not None
            half = _dkw(binned.n) + _dkw(binned.m) + binned.numeric_grid.rank_error
            interval = (max(0.0, effect - half), min(1.0, effect + half + bound))
        else:
            noise = null.effect_noise()
            interval = (max(0.0, effect - noise), effect + noise)
        return Evaluation(
            stat, effect, null.p_value(stat), null.quantile(1 - level), interval, bound
        )

    def _simulate(self, binned: Binned) -> tuple[Floats, Floats, Floats | None]:
        with self._lock:
            return self._simulate_once(binned)

    def _simulate_once(self, binned: Binned) -> tuple[Floats, Floats, Floats | None]:
        if binned.kind == "numeric":
            grid = binned.numeric_grid
            m_eff = 1.0 / (1.0 / grid.count + (2 * grid.rank_error / _Z99) ** 2)
            probs = grid.probs
            nominal = len(probs) == len(GRID_RANKS) + 2
            if nominal:  # a continuous column: the same simulation serves every such column
                probs = np.diff(np.concatenate(([0.0], GRID_RANKS, [1.0])), prepend=0.0)
            sig: Hashable = "nominal" if nominal else probs.tobytes()
            key = (sig, binned.n, round(m_eff))
            if key not in self._samples:
                rng = np.random.default_rng([self.seed, binned.n, round(m_eff), len(probs)])
                ref = self._cdf_draws(probs, m_eff, rng)
                cur = self._cdf_draws(probs, binned.n, rng)
                self._samples[key] = (ref, cur, np.abs(ref - cur))
            return self._samples[key]
        probs = binned.ref
        key = (probs.tobytes(), binned.n, binned.m)
        if key not in self._samples:
            rng = np.random.default_rng([self.seed, binned.n, binned.m, len(probs)])
            p = probs / probs.sum()
            self._samples[key] = (
                rng.multinomial(binned.m, p, size=self.draws) / binned.m,
                rng.multinomial(binned.n, p, size=self.draws) / binned.n,
                None,
            )
        return self._samples[key]

    def _cdf_draws(self, probs: Floats, size: float, rng: np.random.Generator) -> Floats:
        """``draws`` empirical CDFs of ``size`` values on bins with probabilities ``probs``."""
        cdf = np.cumsum(probs)
        cdf /= cdf[-1]
        positive = probs[probs > 0]
        if size * float(positive.min()) >= GAUSSIAN_MIN_COUNT:
            steps = rng.standard_normal((self.draws, len(probs))) * np.sqrt(probs)
            walk = np.cumsum(steps, axis=1)
            bridge = walk - cdf * walk[:, -1:]
            return np.asarray(cdf + bridge / math.sqrt(size), dtype=np.float64)
        n = max(1, round(size))
        counts = rng.multinomial(n, probs / probs.sum(), size=self.draws)
        return np.asarray(np.cumsum(counts, axis=1) / n, dtype=np.float64)


def _fingerprint(binned: Binned) -> int:
    """Identifies the reference a null was simulated for (monitors may share a calibrator)."""
    if binned.grid is not None:
        return hash((binned.grid.edges.tobytes(), binned.grid.ref_cdf.tobytes()))
    return hash(binned.ref.tobytes())


def _dkw(n: int, alpha: float = 0.025) -> float:
    """Half-width of the DKW band for an empirical CDF of ``n`` values (level ``1 - alpha``)."""
    return math.sqrt(math.log(2 / alpha) / (2 * n))


def benjamini_hochberg(p_values: Sequence[float] | Floats, fdr: float) -> npt.NDArray[np.bool_]:
    """Which hypotheses the Benjamini-Hochberg procedure rejects at false discovery rate ``fdr``."""
    return adjusted_p_values(p_values) <= fdr


def adjusted_p_values(p_values: Sequence[float] | Floats) -> Floats:
    """Benjamini-Hochberg adjusted p-values (reject where ``adjusted <= fdr``).

    A NaN p-value (a test that could not be computed, such as a statistic over an infinite
    value) stays NaN and is left out of the family, so it cannot hide the others.

    >>> adjusted_p_values([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.04, 0.04]
    >>> adjusted_p_values([0.01, float("nan"), 0.03]).round(3).tolist()
    [0.02, nan, 0.03]
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0:
        return p
    out = np.full_like(p, np.nan)
    valid = ~np.isnan(p)
    tested = p[valid]
    if tested.size:
        order = np.argsort(tested)
        ranked = tested[order] * tested.size / np.arange(1, tested.size + 1)
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        adjusted = np.empty_like(tested)
        adjusted[order] = np.minimum(ranked, 1.0)
        out[valid] = adjusted
    return out
