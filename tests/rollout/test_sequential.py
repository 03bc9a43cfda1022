"""Always-valid comparisons: A/A rarely fails however often it is looked at; a bad candidate
fails; a good one passes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from regrow.errors import ConfigError
from regrow.rollout.sequential import Sample, bernoulli_bounds, compare, compare_paired, radius

LOOKS = 40
BATCH = 50


def _trial(
    rng: np.random.Generator,
    p_candidate: float,
    p_stable: float,
    *,
    share: float,
    tolerance: float,
    naive: bool = False,
) -> str:
    """Look after every batch; the first decisive verdict, or the last one."""
    c = s = nc = ns = 0
    verdict = "continue"
    for _ in range(LOOKS):
        bc = rng.binomial(1, p_candidate, int(BATCH * share * 2) or 1)
        bs = rng.binomial(1, p_stable, BATCH * 2)
        c, nc, s, ns = c + bc.sum(), nc + bc.size, s + bs.sum(), ns + bs.size
        if naive:  # a fixed-sample 95% interval, wrongly reused at every look
            diff = c / nc - s / ns
            half = 1.96 * math.sqrt(0.25 / nc + 0.25 / ns)
            if diff - half > tolerance:
                return "fail"
            continue
        verdict = compare(
            Sample(nc, c / nc), Sample(ns, s / ns), tolerance=tolerance, min_samples=50
        ).decision
        if verdict in ("fail", "pass"):
            return verdict
    return verdict


def test_aa_false_failures_stay_under_five_percent_looking_after_every_batch() -> None:
    rng = np.random.default_rng(7)
    verdicts = [_trial(rng, 0.2, 0.2, share=0.5, tolerance=0.0) for _ in range(300)]
    assert verdicts.count("fail") / len(verdicts) <= 0.05
    naive = [_trial(rng, 0.2, 0.2, share=0.5, tolerance=0.0, naive=True) for _ in range(300)]
    assert naive.count("fail") > verdicts.count("fail")  # what the sequence protects against


def test_a_clearly_bad_candidate_fails() -> None:
    rng = np.random.default_rng(8)
    verdicts = [_trial(rng, 0.4, 0.2, share=0.25, tolerance=0.02) for _ in range(100)]
    assert verdicts.count("fail") >= 95


def test_a_good_candidate_passes_and_never_fails() -> None:
    rng = np.random.default_rng(9)
    verdicts = [_trial(rng, 0.12, 0.2, share=0.5, tolerance=0.02) for _ in range(100)]
    assert verdicts.count("fail") == 0
    assert verdicts.count("pass") >= 90


def test_too_few_samples_is_inconclusive_never_failed() -> None:
    r = compare(Sample(0, 0.0), Sample(10_000, 0.0), min_samples=100)
    assert r.decision == "inconclusive"
    assert "candidate 0" in r.reason
    assert compare(Sample(99, 1.0), Sample(10_000, 0.0), min_samples=100).decision == "inconclusive"
    assert compare_paired(Sample(5, 1.0), min_samples=10).decision == "inconclusive"


def test_paired_differences() -> None:
    rng = np.random.default_rng(3)
    worse = rng.binomial(1, 0.3, 3000) - rng.binomial(1, 0.1, 3000)
    assert compare_paired(Sample.of(worse)).decision == "fail"
    same = np.zeros(3000)
    assert compare_paired(Sample.of(same), tolerance=0.1).decision == "pass"


def test_the_radius_shrinks_and_is_wider_than_a_fixed_interval() -> None:
    widths = [radius(n, alpha=0.05, sigma=0.5) for n in (10, 100, 1000, 10_000)]
    assert widths == sorted(widths, reverse=True)
    assert radius(0, alpha=0.05, sigma=0.5) == math.inf
    assert radius(1000, alpha=0.05, sigma=0.5) > 1.96 * 0.5 / math.sqrt(1000)


def test_the_evidence_is_plain_json() -> None:
    d = compare(Sample(500, 0.2), Sample(500, 0.2)).as_dict()
    assert d["decision"] == "continue"
    assert d["n_candidate"] == 500


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [({"alpha": 0.0}, "alpha"), ({"tolerance": -1.0}, "tolerance"), ({"min_samples": 0}, "min_")],
)
def test_bad_parameters_are_refused(kwargs: dict[str, float], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        compare(Sample(1, 0.0), Sample(1, 0.0), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("draw", ["bernoulli", "beta"])
def test_the_beta_binomial_sequence_covers_the_mean_at_every_look(draw: str) -> None:
    """Time-uniform: over 200 paths of 2,000 losses in [0, 1] (0/1 errors, or continuous), the
    mean leaves the sequence at *any* of 40 looks in at most alpha of the paths."""
    rng = np.random.default_rng(7)
    alpha, misses = 0.05, 0
    for _ in range(200):
        x = rng.binomial(1, 0.05, 2000) if draw == "bernoulli" else rng.beta(1.0, 9.0, 2000)
        mean, sums = 0.05 if draw == "bernoulli" else 0.1, np.cumsum(x)
        looks = range(50, 2001, 50)
        missed = False
        for n in looks:
            lo, hi = bernoulli_bounds(n, sums[n - 1] / n, alpha=alpha)
            missed = missed or not lo <= mean <= hi
        misses += missed
    assert misses / 200 <= alpha


def test_the_beta_binomial_sequence_adapts_to_low_error_rates() -> None:
    lo, hi = bernoulli_bounds(1000, 0.04, alpha=0.05)
    assert lo < 0.04 < hi
    assert hi - lo < 2 * radius(1000, alpha=0.05, sigma=0.5, n_opt=100)  # about half as wide
    assert bernoulli_bounds(0, 0.0, alpha=0.05) == (0.0, 1.0)
    assert bernoulli_bounds(500, 0.0, alpha=0.05)[0] == 0.0


def test_paired_differences_that_are_mostly_zero_get_a_tight_interval() -> None:
    """Two versions that agree on most requests: the gains and losses are bounded apart."""
    diffs = [0.0] * 1900 + [1.0] * 40 + [-1.0] * 60
    with_parts = compare_paired(Sample.of(diffs), tolerance=0.02, min_samples=100)
    mean_only = compare_paired(Sample(len(diffs), float(np.mean(diffs))), tolerance=0.02)
    assert with_parts.upper - with_parts.lower < (mean_only.upper - mean_only.lower) / 2
    assert with_parts.decision == "pass"
    assert mean_only.decision == "continue"
