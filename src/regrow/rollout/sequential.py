"""Always-valid comparisons of a candidate lane with the stable lane (confidence sequences).

A rollout looks at its evidence after every batch of traffic. A fixed-sample interval checked
that often fails an identical candidate far more often than its nominal level (with 20 looks at
a 95% interval, about a quarter of A/A rollouts would be rolled back). A **confidence sequence**
holds at every sample size at once: ``P(exists n: mean outside CS_n) <= alpha``, so looking after
every batch costs nothing.

Each lane's per-request losses lie in ``[0, 1]`` (an error rate, or a capped absolute error).
Two sequences bound a lane's mean, each at half the lane's ``alpha``, and the lane's interval
is their intersection (a union bound keeps it valid), so it is never much wider than the
better of the two:

* the **normal-mixture boundary** of Howard, Ramdas, McAuliffe and Sekhon (2021,
  "Time-uniform, nonparametric, nonasymptotic confidence sequences", eq. 14): the losses are
  sub-Gaussian with ``sigma = 1/2``, and for a sum ``S_n`` of ``n`` centred observations with
  variance proxy ``V = sigma**2 * n``,
  ``|S_n| < sqrt((V + rho) * log((V + rho) / (rho * alpha**2)))`` for every ``n`` w.p.
  ``>= 1 - alpha`` (:func:`radius`, ``rho = sigma**2 * n_opt``);
* the **beta-binomial mixture** (Robbins' mixture of likelihood ratios, :func:`bernoulli_bounds`):
  ``M_n(mu) = B(a + S, b + n - S) / B(a, b) / (mu**S * (1 - mu)**(n - S))`` is a nonnegative
  supermartingale for any losses in ``[0, 1]`` with mean ``mu`` (``x -> (p/mu)**x *
  ((1-p)/(1-mu))**(1-x)`` is convex, so its mean is at most its value for a 0/1 loss: 1), and by
  Ville's inequality ``{mu: M_n(mu) < 1/alpha}`` covers ``mu`` at every ``n`` w.p. ``>= 1 -
  alpha``. It adapts to the loss's level: at an error rate of 4% it is about half as wide as
  the sub-Gaussian bound, which assumes the worst variance, 1/4.

Two lanes (:func:`compare`) get ``alpha/2`` each and their difference the difference of the
intervals (a union bound: valid although the lanes grow at different rates). Paired
differences (shadow and blend: both versions scored the same request, :func:`compare_paired`)
lie in ``[-1, 1]``: the normal mixture bounds their mean (``sigma = 1``) at ``alpha/2``, and the
beta-binomial mixture bounds the mean gain and the mean loss (the positive and negative parts,
each in ``[0, 1]``) at ``alpha/4`` each; most differences are 0 when the versions agree, and
then the second bound is far tighter.

**Decisions**, with ``tolerance`` the loss increase a candidate may cost (non-inferiority
margin), on ``difference = candidate - stable``:

* ``inconclusive``: fewer than ``min_samples`` in a lane (no data is never a failure);
* ``fail``: the whole interval lies above ``tolerance`` (worse beyond tolerance, proven);
* ``pass``: the whole interval lies below ``tolerance`` (not worse beyond it, proven);
* ``continue``: neither yet.

>>> r = compare(Sample(400, 0.30), Sample(4000, 0.10), tolerance=0.02)
>>> r.decision, round(r.lower, 3) > 0.02
('fail', True)
>>> compare(Sample(10, 0.5), Sample(4000, 0.1), min_samples=50).decision
'inconclusive'
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from scipy.optimize import brentq
from scipy.special import betaln

from regrow.errors import ConfigError

__all__ = [
    "Comparison",
    "Decision",
    "Sample",
    "bernoulli_bounds",
    "compare",
    "compare_paired",
    "radius",
]

Decision = Literal["pass", "fail", "continue", "inconclusive"]
_TINY = 1e-12


@dataclass(frozen=True)
class Sample:
    """``n`` per-request observations, their mean and (for differences) the mean of their
    absolute values, which splits them into gains and losses."""

    n: int
    mean: float
    abs_mean: float | None = None

    @classmethod
    def of(cls, values: Any) -> Sample:
        """The sample of a sequence of numbers."""
        items = [float(v) for v in values]
        if not items:
            return cls(0, 0.0, 0.0)
        n = len(items)
        return cls(n, math.fsum(items) / n, math.fsum(abs(v) for v in items) / n)


@dataclass(frozen=True)
class Comparison:
    """The candidate lane against the stable lane: the difference of their mean losses with
    its always-valid interval, and the decision it supports."""

    decision: Decision
    difference: float
    lower: float
    upper: float
    n_candidate: int
    n_stable: int
    tolerance: float
    alpha: float
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """The comparison as plain JSON values (the evidence an audit event carries)."""
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def radius(n: int, *, alpha: float, sigma: float, n_opt: int = 100) -> float:
    """Half the width of the normal-mixture confidence sequence of a mean after ``n``
    observations (infinite for ``n == 0``).

    >>> round(radius(1000, alpha=0.05, sigma=0.5), 4)
    0.048
    """
    if n <= 0:
        return math.inf
    v = sigma * sigma * n
    rho = sigma * sigma * max(n_opt, 1)
    return math.sqrt((v + rho) * math.log((v + rho) / (rho * alpha * alpha))) / n


def bernoulli_bounds(
    n: int, mean: float, *, alpha: float, prior: float = 0.5
) -> tuple[float, float]:
    """The beta-binomial mixture confidence sequence of a mean of ``n`` observations in
    ``[0, 1]`` (see the module docs; a ``Beta(prior, prior)`` mixing distribution).

    >>> lo, hi = bernoulli_bounds(1000, 0.04, alpha=0.05)
    >>> round(lo, 3), round(hi, 3)
    (0.021, 0.067)
    """
    if n <= 0:
        return 0.0, 1.0
    total = min(max(mean, 0.0), 1.0) * n
    base = float(betaln(prior + total, prior + n - total) - betaln(prior, prior)) + math.log(alpha)

    def excess(mu: float) -> float:  # log M_n(mu) - log(1/alpha): negative inside the set
        return base - total * math.log(mu) - (n - total) * math.log1p(-mu)

    centre = min(max(total / n, _TINY), 1.0 - _TINY)
    lo = 0.0 if excess(_TINY) <= 0 else brentq(excess, _TINY, centre)
    hi = 1.0 if excess(1.0 - _TINY) <= 0 else brentq(excess, centre, 1.0 - _TINY)
    return float(lo), float(hi)


def _lane_bounds(sample: Sample, alpha: float, n_opt: int) -> tuple[float, float]:
    """A lane's mean within ``[lo, hi]``: the normal and beta-binomial mixtures at ``alpha/2``
    each, intersected."""
    r = radius(sample.n, alpha=alpha / 2, sigma=0.5, n_opt=n_opt)
    lo, hi = bernoulli_bounds(sample.n, sample.mean, alpha=alpha / 2)
    return max(sample.mean - r, lo), min(sample.mean + r, hi)


def _check(alpha: float, tolerance: float, min_samples: int) -> None:
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1) (got {alpha!r})", hint="use e.g. 0.05")
    if not 0 <= tolerance < 1:
        raise ConfigError(
            f"tolerance must be in [0, 1) (got {tolerance!r})",
            hint="the loss increase a candidate may cost, e.g. 0.02",
        )
    if min_samples < 1:
        raise ConfigError(f"min_samples must be >= 1 (got {min_samples!r})", hint="use e.g. 100")


def _decide(low: float, high: float, tolerance: float) -> tuple[Decision, str]:
    if low > tolerance:
        return "fail", f"the candidate's loss is higher by more than {tolerance:g} (proven)"
    if high < tolerance:
        return "pass", f"the candidate's loss is not higher by {tolerance:g} or more (proven)"
    return "continue", "the interval still straddles the tolerance"


def compare(
    candidate: Sample,
    stable: Sample,
    *,
    tolerance: float = 0.02,
    alpha: float = 0.05,
    min_samples: int = 100,
) -> Comparison:
    """Compare two independent lanes of losses in ``[0, 1]`` (see the module docs)."""
    _check(alpha, tolerance, min_samples)
    diff = candidate.mean - stable.mean
    if min(candidate.n, stable.n) < min_samples:
        return Comparison(
            "inconclusive", diff, -math.inf, math.inf, candidate.n, stable.n, tolerance, alpha,
            f"too few labelled requests (candidate {candidate.n}, stable {stable.n}; "
            f"at least {min_samples} each)",
        )  # fmt: skip
    c_lo, c_hi = _lane_bounds(candidate, alpha / 2, min_samples)
    s_lo, s_hi = _lane_bounds(stable, alpha / 2, min_samples)
    low, high = max(c_lo - s_hi, -1.0), min(c_hi - s_lo, 1.0)
    decision, reason = _decide(low, high, tolerance)
    return Comparison(decision, diff, low, high, candidate.n, stable.n, tolerance, alpha, reason)


def compare_paired(
    differences: Sample,
    *,
    tolerance: float = 0.02,
    alpha: float = 0.05,
    min_samples: int = 100,
) -> Comparison:
    """Compare per-request differences ``candidate - stable`` in ``[-1, 1]`` (shadow mode)."""
    _check(alpha, tolerance, min_samples)
    n, diff = differences.n, differences.mean
    if n < min_samples:
        return Comparison(
            "inconclusive", diff, -math.inf, math.inf, n, n, tolerance, alpha,
            f"too few labelled paired requests ({n}; at least {min_samples})",
        )  # fmt: skip
    if differences.abs_mean is None:  # only the mean is known: the normal mixture alone
        r = radius(n, alpha=alpha, sigma=1.0, n_opt=min_samples)
        low, high = max(diff - r, -1.0), min(diff + r, 1.0)
    else:
        r = radius(n, alpha=alpha / 2, sigma=1.0, n_opt=min_samples)
        worse = (differences.abs_mean + diff) / 2  # mean of the positive parts
        better = (differences.abs_mean - diff) / 2  # mean of the negative parts
        w_lo, w_hi = bernoulli_bounds(n, worse, alpha=alpha / 4)
        b_lo, b_hi = bernoulli_bounds(n, better, alpha=alpha / 4)
        low, high = max(diff - r, w_lo - b_hi, -1.0), min(diff + r, w_hi - b_lo, 1.0)
    decision, reason = _decide(low, high, tolerance)
    return Comparison(decision, diff, low, high, n, n, tolerance, alpha, reason)
