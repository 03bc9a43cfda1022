"""The thresholds a probe's gain must pass: a share of the loss, or of what the drift cost."""

from __future__ import annotations

from regrow.monitor.attribution import ComponentImpact
from regrow.plan.diagnostics import Diagnosis, Gain, Move
from regrow.plan.policy import Planning
from regrow.plan.thresholds import Thresholds

from .conftest import build_system


def _impact(cost: float, candidate: bool = True) -> ComponentImpact:
    return ComponentImpact("effects", "system", ("a1",), 0.63, 0.63 - cost, cost,
                           (cost / 2, cost * 1.5), candidate, "")  # fmt: skip


def _move(kind: str, comp: str, gain: float, start: float) -> Move:
    return Move(kind, comp, "refit" if kind == "update" else "",
                Gain(gain, gain / 2, gain * 1.5, 800), start - gain, True, "")  # fmt: skip


def test_measured_drift_lowers_the_bar_for_the_members_that_read_it() -> None:
    planning = Planning()
    t = Thresholds.of(planning, [_impact(0.12)], ["a1"], build_system())
    assert t.drift_cost == 0.12
    assert t.drifted_members == {"alpha"}
    assert t.search(planning).min_relative_gain == 0.0  # the search takes any significant move
    assert t.threshold(_move("update", "alpha", 0.05, 0.63))[0] == 0.25 * 0.12
    assert t.threshold(_move("update", "beta", 0.05, 0.63))[0] == 0.1 * 0.63
    assert t.threshold(_move("reweight", "combine", 0.05, 0.63))[0] == 0.1 * 0.63
    # A large drift never raises the bar above the share of the loss.
    big = Thresholds.of(planning, [_impact(3.0)], ["a1"], build_system())
    assert big.threshold(_move("update", "alpha", 0.5, 4.0))[0] == 0.1 * 4.0


def test_without_significant_drift_the_bar_is_a_share_of_the_loss() -> None:
    planning = Planning()
    for t in (
        Thresholds.of(planning),
        Thresholds.of(planning, [_impact(0.12, candidate=False)], ["a1"], build_system()),
        Thresholds.of(planning, [_impact(0.12)], [], build_system()),
    ):
        assert t.drift_cost is None
        assert t.search(planning) is planning


def test_settle_keeps_the_longest_run_of_chosen_moves_that_pass() -> None:
    t = Thresholds.of(Planning(), [_impact(0.12)], ["a1"], build_system())
    alpha = _move("update", "alpha", 0.05, 0.63)  # above 0.03: a quarter of the drift's cost
    gamma = _move("update", "gamma", 0.04, 0.58)  # gamma's inputs did not drift: needs 0.058
    beta = _move("update", "beta", 0.2, 0.54)  # would pass, but came after gamma
    quiet = _move("update", "beta", 0.01, 0.63)
    d = Diagnosis("squared_error", 1600, 800, 800, 0.63, 0.34, (alpha, gamma, beta),
                  (alpha, quiet, gamma, beta), weights={"alpha": 1.0})  # fmt: skip
    settled = t.settle(d)
    assert [m.component for m in settled.chosen] == ["alpha"]
    assert settled.loss_after == alpha.loss_after
    assert settled.weights is None  # no reweight move survived
    why = {m.component: (m.accepted, m.why) for m in settled.considered if m is not quiet}
    assert why["alpha"][0]
    assert "25% of the 0.12 the drift added" in why["alpha"][1]
    assert not why["gamma"][0]
    assert "below the 0.058 worth an update (10% of the loss)" in why["gamma"][1]
    assert not why["beta"][0]
    assert why["beta"][1].endswith("not taken: a move before it was not")
