"""Ensemble refresh: Hedge + fixed share floors, reserved slots, entry weights, the pool."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regrow.errors import PlanError, PolicyError
from regrow.rollout.refresh import (
    EnsembleState,
    Entrant,
    Member,
    RefreshPolicy,
    cross_val_loss,
    entry_share,
    hedge,
    refresh,
)

SETTLED = 5  # an age past any probation used here


def _state(*weights: float, age: int = SETTLED) -> EnsembleState:
    total = sum(weights)
    return EnsembleState(tuple(Member(f"m{i}", w / total, age=age) for i, w in enumerate(weights)))


losses_lists = st.lists(st.floats(0.0, 1.0), min_size=2, max_size=6)


@settings(max_examples=60, deadline=None)
@given(st.lists(losses_lists, min_size=1, max_size=25), st.floats(0.01, 0.5))
def test_fixed_share_keeps_every_weight_at_or_above_alpha_over_n(
    windows: list[list[float]], alpha: float
) -> None:
    n = max(len(w) for w in windows)
    policy = RefreshPolicy(eta=8.0, alpha=alpha, retire_weight=0.0, reserved=1.0, pool_size=0)
    state = _state(*[1.0] * n)
    for window in windows:
        losses = {m.name: window[i % len(window)] for i, m in enumerate(state.members)}
        state = refresh(state, losses, policy).state
        weights = [m.weight for m in state.members]
        assert math.isclose(sum(weights), 1.0)
        assert min(weights) >= alpha / n - 1e-12


def test_plain_hedge_lets_a_member_decay_for_ever_and_fixed_share_brings_it_back() -> None:
    def run(alpha: float) -> float:
        policy = RefreshPolicy(eta=8.0, alpha=alpha, retire_weight=0.0, reserved=1.0)
        state = _state(1.0, 1.0)
        for _ in range(30):  # m0 is wrong for 30 windows ...
            state = refresh(state, {"m0": 1.0, "m1": 0.0}, policy).state
        for _ in range(3):  # ... then right again for 3
            state = refresh(state, {"m0": 0.0, "m1": 1.0}, policy).state
        return state.weights()["m0"]

    assert run(alpha=0.0) < 1e-50
    assert run(alpha=0.05) > 0.9


def test_hedge_moves_weight_towards_the_smaller_loss() -> None:
    assert hedge([0.5, 0.5], [0.1, 0.3], eta=8.0)[0] == pytest.approx(1 / (1 + math.exp(-1.6)))


@pytest.mark.parametrize("reserved", [0.3, 0.5, 0.8])
def test_reserved_slots_cap_the_experimental_members_total_weight(reserved: float) -> None:
    policy = RefreshPolicy(eta=8.0, alpha=0.05, reserved=reserved, probation=2)
    state = EnsembleState((Member("old", 0.6, age=SETTLED), Member("young", 0.4, age=0)), pool=())
    # the newcomer and the young member are far better: uncapped they would take nearly all
    out = refresh(state, {"old": 0.6, "young": 0.0}, policy, newcomer=Entrant("new", 0.0))
    weights = out.state.weights()
    assert set(out.state.experimental(policy)) == {"young", "new"}
    assert weights["young"] + weights["new"] == pytest.approx(reserved)
    assert min(weights.values()) >= policy.alpha / 3 - 1e-12
    # off probation, the cap no longer applies
    later = refresh(out.state, {"old": 0.6, "young": 0.0, "new": 0.0}, policy).state
    assert later.experimental(policy) == ("new",)
    assert later.weights()["new"] <= reserved + 1e-12
    assert later.weights()["young"] + later.weights()["new"] > reserved


def test_cap_leaves_weights_alone_when_experimental_members_hold_less() -> None:
    policy = RefreshPolicy(alpha=0.0, reserved=0.5, probation=1)
    out = refresh(_state(1.0), {"m0": 0.0}, policy, newcomer=Entrant("new", 1.0))
    assert out.state.weights()["new"] < 0.5
    assert out.state.weights()["new"] == pytest.approx(entry_share(1.0, [1.0], [0.0], eta=8.0))


def test_a_newcomer_enters_with_the_weight_its_cross_validated_loss_earns() -> None:
    policy = RefreshPolicy(eta=8.0, alpha=0.0, reserved=1.0)
    state = _state(1.0, 1.0)
    losses = {"m0": 0.2, "m1": 0.3}
    shares = []
    for cv in (0.1, 0.2, 0.4):
        out = refresh(state, losses, policy, newcomer=Entrant("new", cv))
        assert out.events[0].kind == "admitted"
        expected = entry_share(cv, [0.5, 0.5], [0.2, 0.3], eta=8.0)
        assert out.state.weights()["new"] == pytest.approx(expected)
        shares.append(expected)
    assert shares == sorted(shares, reverse=True)
    # as good as the ensemble's members on average: about the 1 / (n + 1) prior
    assert entry_share(0.2, [0.5, 0.5], [0.2, 0.2], eta=8.0) == pytest.approx(1 / 3)


def test_cross_val_loss_scores_each_fold_on_rows_its_model_did_not_see() -> None:
    class Memorizer:  # right on its training rows, wrong everywhere else
        def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
            self.seen = {float(v): int(t) for v, t in zip(x[:, 0], y, strict=True)}

        def predict(self, x: np.ndarray) -> np.ndarray:
            return np.array([self.seen.get(float(v), -1) for v in x[:, 0]])

    x = np.arange(30.0).reshape(-1, 1)
    y = np.arange(30) % 2
    loss, models = cross_val_loss(Memorizer, x, y, folds=3, seed=4)
    assert loss == 1.0
    assert len(models) == 3
    assert sum(len(m.seen) for m in models) == 2 * 30  # each row in two training folds
    with pytest.raises(PlanError, match="folds"):
        cross_val_loss(Memorizer, x[:2], y[:2], folds=3)


def test_members_under_the_floor_for_n_windows_retire_to_the_pool() -> None:
    policy = RefreshPolicy(eta=8.0, alpha=0.05, retire_loss=0.5, retire_after=3, reserved=1.0)
    state = _state(1.0, 1.0)
    for window in range(3):
        out = refresh(state, {"m0": 0.1, "m1": 0.7}, policy)
        state = out.state
        retired = [e.member for e in out.events if e.kind == "retired"]
        assert retired == ([] if window < 2 else ["m1"])
    assert [m.name for m in state.members] == ["m0"]
    assert state.pool == ("m1",)
    assert state.weights() == {"m0": pytest.approx(1.0)}


def test_a_low_streak_resets_when_the_member_recovers() -> None:
    policy = RefreshPolicy(retire_loss=0.5, retire_after=2, reserved=1.0)
    state = _state(1.0, 1.0)
    for loss in (0.7, 0.2, 0.7, 0.2, 0.7):
        state = refresh(state, {"m0": 0.1, "m1": loss}, policy).state
    assert len(state.members) == 2


def test_the_last_member_is_never_retired() -> None:
    policy = RefreshPolicy(retire_loss=0.5, retire_after=1)
    out = refresh(_state(1.0, 1.0), {"m0": 0.9, "m1": 0.8}, policy)
    assert len(out.state.members) == 1
    assert out.state.pool == ("m0",)


def test_a_pooled_member_comes_back_when_its_concept_recurs() -> None:
    policy = RefreshPolicy(eta=8.0, alpha=0.05, readmit_margin=0.02, probation=1)
    state = EnsembleState(_state(1.0, 1.0).members, pool=("a", "b"))
    # "a" beats every member by more than the margin; "b" does not
    out = refresh(state, {"m0": 0.4, "m1": 0.3}, policy, pool_losses={"a": 0.05, "b": 0.29})
    assert [(e.kind, e.member) for e in out.events] == [("readmitted", "a")]
    assert out.state.pool == ("b",)
    assert out.state.weights()["a"] > 0.5
    assert out.state.experimental(policy) == ()  # proven on the window: no probation


def test_more_than_max_members_drops_the_lightest_to_the_pool() -> None:
    policy = RefreshPolicy(max_members=2, alpha=0.0, pool_size=1)
    state = EnsembleState(_state(1.0, 1.0).members, pool=("older",))
    out = refresh(state, {"m0": 0.1, "m1": 0.5}, policy, newcomer=Entrant("new", 0.2))
    assert [m.name for m in out.state.members] == ["m0", "new"]
    assert out.state.pool == ("m1",)  # the pool keeps its newest pool_size
    assert ("dropped", "m1") in [(e.kind, e.member) for e in out.events]


@pytest.mark.parametrize(
    ("state", "losses", "newcomer", "message"),
    [
        (_state(1.0, 1.0), {"m0": 0.1}, None, r"no loss for members \['m1'\]"),
        (EnsembleState(()), {}, None, "no members"),
        (_state(1.0), {"m0": float("nan")}, None, r"in \[0, 1\]"),
        (_state(1.0), {"m0": 0.1}, Entrant("new", 1.5), r"in \[0, 1\]"),
        (_state(1.0), {"m0": 0.1}, Entrant("m0", 0.1), "already a member"),
    ],
)
def test_refresh_refuses_what_it_cannot_weigh(
    state: EnsembleState, losses: dict[str, float], newcomer: Entrant | None, message: str
) -> None:
    with pytest.raises(PlanError, match=message) as err:
        refresh(state, losses, RefreshPolicy(), newcomer=newcomer)
    assert err.value.hint


def test_members_with_no_weight_left_still_get_the_floor() -> None:
    state = EnsembleState((Member("a", 0.0, age=SETTLED), Member("b", 0.0, age=SETTLED)))
    out = refresh(state, {"a": 0.1, "b": 0.2}, RefreshPolicy(alpha=0.1))
    assert sum(out.state.weights().values()) == pytest.approx(1.0)
    assert min(out.state.weights().values()) >= 0.05


@pytest.mark.parametrize(
    ("key", "value"),
    [("eta", -1.0), ("alpha", 1.0), ("max_members", 0), ("reserved", 0.01), ("retire_after", 0)],
)
def test_a_bad_policy_value_names_its_key(key: str, value: float) -> None:
    with pytest.raises(PolicyError, match=key) as err:
        RefreshPolicy(**{key: value})  # type: ignore[arg-type]
    assert f"got {value!r}" in str(err.value)
    assert err.value.hint is not None
    assert key in err.value.hint


def test_the_policy_files_ensemble_section_is_the_refresh_policy() -> None:
    from regrow.plan.policy import Policy

    section = Policy.default().ensemble
    assert RefreshPolicy(**section.model_dump()) == RefreshPolicy()
    custom = Policy.model_validate({"ensemble": {"eta": 2.0, "alpha": 0.1, "reserved": 0.5}})
    assert RefreshPolicy(**custom.ensemble.model_dump()).eta == 2.0
    with pytest.raises(ValueError, match="reserved"):
        Policy.model_validate({"ensemble": {"alpha": 0.3, "reserved": 0.2}})
