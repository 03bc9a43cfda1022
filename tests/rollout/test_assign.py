"""Lane assignment is sticky, monotone as a share grows, and exact in expectation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regrow.errors import ConfigError
from regrow.rollout.assign import STABLE, Lanes, point

keys = st.text(min_size=1, max_size=40)
shares = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(key=keys, rollout=keys, share=shares)
def test_assignment_is_sticky(key: str, rollout: str, share: float) -> None:
    lanes = Lanes.of({"candidate": share})
    first = lanes.lane_for(key, rollout)
    assert all(Lanes.of({"candidate": share}).lane_for(key, rollout) == first for _ in range(3))


@given(key=keys, rollout=keys, a=shares, b=shares)
def test_growing_a_share_only_moves_requests_into_the_candidate(
    key: str, rollout: str, a: float, b: float
) -> None:
    small, large = sorted((a, b))
    if Lanes.of({"candidate": small}).lane_for(key, rollout) == "candidate":
        assert Lanes.of({"candidate": large}).lane_for(key, rollout) == "candidate"


@given(key=keys, rollout=keys, a=st.floats(0, 0.5), b=st.floats(0, 0.5), other=st.floats(0, 0.5))
def test_growing_one_ab_lane_moves_nobody_out_of_another(
    key: str, rollout: str, a: float, b: float, other: float
) -> None:
    small, large = sorted((a, b))
    before = Lanes.of({"a": small, "b": other}).lane_for(key, rollout)
    after = Lanes.of({"a": large, "b": other}).lane_for(key, rollout)
    if before in ("a", "b"):
        assert after == before
    else:
        assert after in (STABLE, "a")


@settings(max_examples=20, deadline=None)
@given(share=st.floats(0.01, 0.99), rollout=keys)
def test_shares_are_exact_within_binomial_tolerance(share: float, rollout: str) -> None:
    n = 4000
    lanes = Lanes.of({"candidate": share})
    hits = sum(lanes.lane_for(f"request-{i}", rollout) == "candidate" for i in range(n))
    sd = math.sqrt(n * share * (1 - share))
    assert abs(hits - n * share) <= 5 * sd + 1


def test_points_are_uniform_and_salted_by_the_rollout() -> None:
    xs = [point("r1", str(i)) for i in range(20_000)]
    assert all(0 <= x < 1 for x in xs)
    deciles = [sum(int(x * 10) == d for x in xs) for d in range(10)]
    assert max(abs(c - 2000) for c in deciles) < 5 * math.sqrt(2000 * 0.9)
    moved = sum(point("r2", str(i)) < 0.1 for i in range(20_000) if point("r1", str(i)) < 0.1)
    assert moved < 400  # about 10% of the 2000 that r1 sent to a 10% lane


def test_shares_and_intervals() -> None:
    lanes = Lanes.of({"a": 0.1, "b": 0.3})
    assert lanes.interval("a") == (0.0, 0.1)
    assert lanes.interval("b") == (0.5, 0.8)
    assert lanes.interval(STABLE) is None
    assert lanes.share(STABLE) == pytest.approx(0.6)
    assert lanes.lane_at(0.05) == "a"
    assert lanes.lane_at(0.2) == STABLE
    assert lanes.lane_at(0.6) == "b"
    assert lanes.lane_at(0.9) == STABLE
    assert Lanes.of({}).lane_at(0.0) == STABLE


@pytest.mark.parametrize(
    ("spec", "words"),
    [({"a": 0.6, "b": 0.1}, "[0, 0.5]"), ({STABLE: 0.1}, "anything but"), ({"a": -0.1}, "-0.1")],
)
def test_bad_lanes_are_refused_with_a_hint(spec: dict[str, float], words: str) -> None:
    with pytest.raises(ConfigError, match="lane") as err:
        Lanes.of(spec)
    assert words in str(err.value)


def test_an_unknown_lane_is_named() -> None:
    with pytest.raises(ConfigError, match="'zzz'"):
        Lanes.of({"a": 0.1}).interval("zzz")
