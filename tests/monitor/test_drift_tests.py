"""Every drift statistic against an independent computation (scipy or the textbook formula)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

from regrow.errors import ConfigError, DataError
from regrow.monitor.drift import (
    KS,
    PSI,
    TESTS,
    ChiSquare,
    DriftTest,
    JensenShannon,
    Unseen,
    Wasserstein,
    bin_current,
    choose,
    get,
)
from regrow.monitor.profile import profile_column

RNG = np.random.default_rng(42)
REF = RNG.normal(size=40_000)  # large enough for the sketch to be in estimation mode
REF_PROFILE = profile_column("x", pa.array(REF))
CURRENTS = {
    "same": RNG.normal(size=5_000),
    "shift": RNG.normal(0.3, size=5_000),
    "scale": RNG.normal(0, 1.5, size=5_000),
    "outside": RNG.normal(8.0, size=2_000),  # entirely beyond the reference's range
}
CATS = np.array(list("aabbbcccd"))
CAT_REF = RNG.choice(CATS, 3_000)
CAT_PROFILE = profile_column("c", pa.array(CAT_REF))


@pytest.mark.parametrize("name", sorted(CURRENTS))
def test_ks_matches_scipy_within_its_error_bound(name: str) -> None:
    cur = CURRENTS[name]
    binned = bin_current(REF_PROFILE, cur)
    ours = float(KS().batch(binned))
    exact = ks_2samp(REF, cur).statistic
    assert REF_PROFILE.rank_error > 0
    bound = KS().error_bound(binned)
    assert bound < 0.01
    assert exact - bound <= ours <= exact + REF_PROFILE.rank_error


@pytest.mark.parametrize("name", sorted(CURRENTS))
def test_wasserstein_matches_scipy(name: str) -> None:
    cur = CURRENTS[name]
    binned = bin_current(REF_PROFILE, cur)
    ours = float(Wasserstein().batch(binned))
    exact = wasserstein_distance(REF, cur) / REF.std(ddof=1)
    bound = Wasserstein().error_bound(binned)
    assert bound < 0.1
    assert abs(ours - exact) <= min(bound, 0.01)


def _direct_probs(cur: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    edges = np.quantile(REF, np.arange(1, bins) / bins, method="inverted_cdf")
    ref = np.diff(np.searchsorted(np.sort(REF), edges, side="right"), prepend=0, append=REF.size)
    cnt = np.diff(np.searchsorted(np.sort(cur), edges, side="right"), prepend=0, append=cur.size)
    return ref / REF.size, cnt / cur.size


@pytest.mark.parametrize("name", sorted(CURRENTS))
def test_psi_matches_direct_formula(name: str) -> None:
    cur = CURRENTS[name]
    r, c = _direct_probs(cur, 10)
    r, c = np.maximum(r, 1e-4), np.maximum(c, 1e-4)
    direct = float(((c - r) * np.log(c / r)).sum())
    assert PSI().statistic(REF_PROFILE, cur) == pytest.approx(direct, rel=0.02, abs=0.003)


@pytest.mark.parametrize("name", sorted(CURRENTS))
def test_numeric_jensen_shannon_matches_scipy(name: str) -> None:
    cur = CURRENTS[name]
    r, c = _direct_probs(cur, 20)
    exact = jensenshannon(r, c, base=2)
    assert JensenShannon().statistic(REF_PROFILE, cur) == pytest.approx(exact, rel=0.02, abs=0.005)


CAT_CURRENTS = {
    "same": RNG.choice(CATS, 2_000),
    "moved": RNG.choice(np.array(list("abbbbbccd")), 2_000),
    "new": np.concatenate([RNG.choice(CATS, 1_900), np.array(["z"] * 100)]),
}


def _aligned(cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = sorted(set(CAT_REF) | set(cur))
    return (
        np.array([(v == CAT_REF).sum() for v in values], dtype=float),
        np.array([(cur == v).sum() for v in values], dtype=float),
    )


@pytest.mark.parametrize("name", ["same", "moved"])
def test_chi_square_matches_scipy_contingency(name: str) -> None:
    cur = CAT_CURRENTS[name]
    table = np.array(_aligned(cur))
    exact = chi2_contingency(table, correction=False).statistic
    assert ChiSquare().statistic(CAT_PROFILE, cur) == pytest.approx(exact, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("name", ["same", "moved"])
def test_categorical_jensen_shannon_matches_scipy(name: str) -> None:
    r, c = _aligned(CAT_CURRENTS[name])
    exact = jensenshannon(r / r.sum(), c / c.sum(), base=2)
    ours = JensenShannon().statistic(CAT_PROFILE, CAT_CURRENTS[name])
    assert ours == pytest.approx(exact, rel=1e-9, abs=1e-12)


def test_never_seen_values_go_to_other_and_count_as_unseen() -> None:
    cur = CAT_CURRENTS["new"]
    assert Unseen().statistic(CAT_PROFILE, cur) == pytest.approx(100 / 2_000)
    binned = bin_current(CAT_PROFILE, cur)
    assert binned.unseen == 100
    assert binned.cur[-1] == pytest.approx(0.05)
    assert Unseen().p_value(binned) < 1e-10
    lo, hi = Unseen().interval(binned)
    assert lo < 0.05 < hi


def test_a_few_new_values_are_the_unseen_tests_not_a_shift_of_the_known_ones() -> None:
    # 4 rows of a new category in 5,000 moved the distance (a square root) from 0.003 to
    # 0.020, past its margin, and the column counted as drifted
    same = [str(v) for v in RNG.choice(CATS, 4_996)]
    with_new = [*same, "platinum", "platinum", "platinum", "platinum"]
    js = JensenShannon()
    assert js.statistic(CAT_PROFILE, with_new) == pytest.approx(js.statistic(CAT_PROFILE, same))
    assert js.statistic(CAT_PROFILE, with_new) < js.margin
    assert Unseen().statistic(CAT_PROFILE, with_new) == pytest.approx(4 / 5_000)
    # known values that moved still show; a column of new values only is as far as can be
    moved = CAT_CURRENTS["moved"]
    assert js.statistic(CAT_PROFILE, [*moved, "z"]) == pytest.approx(
        js.statistic(CAT_PROFILE, moved), abs=1e-3
    )
    assert js.statistic(CAT_PROFILE, ["z"] * 10) == pytest.approx(1.0)


def test_unseen_is_quiet_without_new_values() -> None:
    binned = bin_current(CAT_PROFILE, CAT_CURRENTS["same"])
    assert Unseen().p_value(binned) == 1.0


@pytest.mark.parametrize("test", sorted(TESTS.values(), key=lambda t: t.name), ids=lambda t: t.name)
def test_every_test_follows_the_contract(test: DriftTest) -> None:
    assert isinstance(test, DriftTest)
    ref, same, moved = (
        (REF_PROFILE, CURRENTS["same"], CURRENTS["shift"])
        if "numeric" in test.kinds
        else (CAT_PROFILE, CAT_CURRENTS["same"], CAT_CURRENTS["new"])
    )
    assert test.statistic(ref, moved) > test.statistic(ref, same) >= 0
    assert test.margin >= 0


@pytest.mark.parametrize("name", ["ks", "wasserstein", "psi", "jensen_shannon"])
def test_numeric_tests_accept_a_current_profile(name: str) -> None:
    cur = CURRENTS["shift"]
    from_values = get(name).statistic(REF_PROFILE, cur)
    from_profile = get(name).statistic(REF_PROFILE, profile_column("x", pa.array(cur)))
    assert from_profile == pytest.approx(from_values, rel=0.05, abs=0.01)


def test_registry_rule_by_kind_and_size() -> None:
    assert [choose("numeric", n).name for n in (1000, 1001)] == ["ks", "wasserstein"]
    assert [choose("categorical", n).name for n in (1000, 1001)] == ["chi_square", "jensen_shannon"]
    assert choose("numeric", 10, override="psi").name == "psi"


def test_registry_errors_name_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"unknown drift test 'kl'.*chi_square"):
        get("kl")
    with pytest.raises(ConfigError, match="'chi_square' does not apply to numeric column 'age'"):
        choose("numeric", 10, override="chi_square", column="age")


def test_numeric_window_without_values_is_a_data_error() -> None:
    with pytest.raises(DataError, match="'x' has no values"):
        KS().statistic(REF_PROFILE, np.array([np.nan, np.nan]))
