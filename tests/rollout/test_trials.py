"""Rollout trials on a real stream with real models: a bad member's blend rollout is rolled back
early, a good one promoted, an A/A rollout not failed although analysed after every batch, a
silent lane inconclusive and never failed; a trial is a function of its seed. (The 200-trial
figures are benchmarks/ensemble_refresh.py's.)"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from regrow.errors import ConfigError, MissingDependency
from regrow.rollout.trials import Setup, Trial, figures, run_trial, run_trials, sea

SEED = 7


def test_a_bad_member_is_rolled_back_before_its_weight_passes_the_second_step() -> None:
    trials = run_trials("bad", 5, seed=SEED)
    assert figures(trials)["rolled_back_early"] == 1.0
    for t in trials:
        assert t.candidate_loss > t.stable_loss + 0.05
        assert t.served_loss < t.candidate_loss  # served at a small weight while it was judged


def test_a_member_fitted_on_shuffled_labels_is_rolled_back_too() -> None:
    shuffled = Setup(shuffle=True)
    trials = run_trials("bad", 4, seed=SEED, setup=shuffled)
    assert figures(trials)["rolled_back_early"] == 1.0
    assert trials != run_trials("bad", 4, seed=SEED)  # another member than the default's
    assert run_trial("good", SEED, setup=shuffled) == run_trial("good", SEED)  # good: on B


def test_a_good_member_after_a_drift_is_promoted_through_every_step() -> None:
    trials = run_trials("good", 5, seed=SEED)
    assert figures(trials)["promoted"] == 1.0
    for t in trials:
        assert t.actions.count("advance") == 3
        assert t.candidate_loss < t.stable_loss - 0.05


def test_an_aa_rollout_analysed_after_every_batch_is_not_rolled_back() -> None:
    trials = run_trials("aa", 3, seed=SEED, max_batches=60)
    assert figures(trials)["rolled_back"] == 0.0
    for t in trials:
        assert t.batches == 60
        assert t.state != "rolled_back"
        assert abs(t.candidate_loss - t.stable_loss) < 0.05


def test_an_aa_rollout_with_no_margin_still_does_not_fail() -> None:
    trials = run_trials("aa", 3, seed=SEED, max_batches=40, params={"tolerance": 0.0})
    assert figures(trials)["rolled_back"] == 0.0


def test_a_silent_lane_ends_inconclusive_and_is_never_failed() -> None:
    for t in run_trials("silent", 3, seed=SEED, max_batches=30):
        assert t.state == "inconclusive"
        assert t.step == 0
        assert "fail" not in t.actions
        assert t.actions[:20] == ("hold",) * 19 + ("inconclusive",)


def test_a_trial_is_a_function_of_its_seed() -> None:
    assert run_trial("bad", SEED) == run_trial("bad", SEED)
    assert run_trial("aa", SEED, max_batches=10) == run_trial("aa", SEED, max_batches=10)
    assert run_trial("bad", SEED) != run_trial("bad", SEED + 1)


def test_run_trials_gives_trial_i_the_seed_base_plus_i() -> None:
    assert [t.seed for t in run_trials("bad", 3, seed=40)] == [40, 41, 42]
    assert run_trials("bad", 2, seed=40)[1] == run_trial("bad", 41)


def test_the_numpy_sea_stream_labels_by_its_concepts_threshold() -> None:
    x, y = sea(3, 0, 500)
    assert x.shape == (500, 3)
    assert 0 <= x.min() <= x.max() <= 10
    np.testing.assert_array_equal(y, (x[:, 0] + x[:, 1] > 9.5).astype(int))
    np.testing.assert_array_equal(sea(3, 0, 500)[0], x)


def test_figures_count_each_ending() -> None:
    def ends(state: str, step: int) -> Trial:
        return Trial("bad", 0, state, step, 1, (), 0.0, 0.0, 0.0)

    got = figures([ends("rolled_back", 0), ends("rolled_back", 2), ends("promoted", 3),
                   ends("inconclusive", 0)])  # fmt: skip
    assert got == {"rolled_back": 0.5, "rolled_back_early": 0.25, "promoted": 0.25,
                   "inconclusive": 0.25}  # fmt: skip


def test_river_streams_drive_the_same_trials() -> None:
    pytest.importorskip("river")
    from regrow.rollout.trials import river_source

    setup = Setup(source=river_source("sea"))
    assert run_trial("bad", SEED, setup=setup).state == "rolled_back"
    assert run_trial("good", SEED, setup=setup).state == "promoted"


def test_river_streams_without_river_name_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from regrow.rollout.trials import river_source

    for name in ("river", "river.datasets"):
        monkeypatch.setitem(sys.modules, name, None)  # as if River were not installed
    with pytest.raises(MissingDependency, match="'river' is not installed") as info:
        river_source("sea")
    assert info.value.hint == "install it with: pip install 'regrow[monitor]'"
    assert run_trial("good", SEED).state == "promoted"  # the numpy stream needs no River


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: run_trial("canary", 0), "unknown trial kind 'canary'"),
        (lambda: run_trial("bad", 0, batch=0), "batch and max_batches"),
        (lambda: Setup(weight=1.0), "weight must be in"),
        (lambda: Setup(members=0), "members >= 1"),
        (lambda: sea(7, 0, 10), "SEA has no concept 7"),
        (lambda: figures([]), "no trials"),
    ],
)
def test_bad_input_is_refused_with_a_hint(call: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        call()  # type: ignore[operator]
    assert info.value.hint
