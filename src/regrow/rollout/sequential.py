"""Always-valid comparisons of a candidate lane with the stable lane (confidence sequences).

A rollout looks at its evidence after every batch of traffic. A fixed-sample interval checked
that often fails an identical candidate far more often than its nominal level (with 20 looks at
a 95% interval, about a quarter of A/A rollouts would be rolled back). A **confidence sequence**
holds at every sample size at once: ``P(exists n: mean outside CS_n) <= alpha``, so looking after
every batch costs nothing.

Each lane's per-request losses lie in ``[0, 1]`` (an error rate, or a capped absolute error),
so they are sub-Gaussian with ``sigma = 1/2``. For a sum ``S_n`` of ``n`` centred observations
with variance proxy ``V = sigma**2 * n``, the two-sided **normal-mixture boundary** of Howard,
Ramdas, McAuliffe and Sekhon (2021, "Time-uniform, nonparametric, nonasymptotic confidence
sequences", eq. 14)

    |S_n| < sqrt((V + rho) * log((V + rho) / (rho * alpha**2)))   for every n, w.p. >= 1 - alpha

gives the mean's sequence ``mean +- boundary / n``; ``rho`` sets the sample size where it is
tightest (:func:`radius` takes ``rho = sigma**2 * n_opt``). Two lanes (:func:`compare`) get
``alpha/2`` each and their difference the difference of the intervals (a union bound: valid
although the lanes grow at different rates). Paired differences (shadow: both versions scored
the same request, :func:`compare_paired`) lie in ``[-1, 1]``, ``sigma = 1``, one sequence.

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

from regrow.errors import ConfigError

__all__ = ["Comparison", "Decision", "Sample", "compare", "compare_paired", "radius"]

Decision = Literal["pass", "fail", "continue", "inconclusive"]


@dataclass(frozen=True)
class Sample:
    """``n`` per-request observations and their mean."""

    n: int
    mean: float

    @classmethod
    def of(cls, values: Any) -> Sample:
        """The sample of a sequence of numbers."""
        items = [float(v) for v in values]
        return cls(len(items), math.fsum(items) / len(items) if items else 0.0)


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
    rc = radius(candidate.n, alpha=alpha / 2, sigma=0.5, n_opt=min_samples)
    rs = radius(stable.n, alpha=alpha / 2, sigma=0.5, n_opt=min_samples)
    low, high = max(diff - rc - rs, -1.0), min(diff + rc + rs, 1.0)
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
    r = radius(n, alpha=alpha, sigma=1.0, n_opt=min_samples)
    low, high = max(diff - r, -1.0), min(diff + r, 1.0)
    decision, reason = _decide(low, high, tolerance)
    return Comparison(decision, diff, low, high, n, n, tolerance, alpha, reason)
