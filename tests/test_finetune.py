"""Selective fine-tuning: freezing, budgets, early stopping, guards, determinism, diagnostics."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from regrow.components.torch import MLP, TorchClassifier, TorchEstimator
from regrow.errors import ConfigError
from regrow.plan._finetune_shift import SHIFT_ALPHA
from regrow.plan.finetune import (
    BlockDiagnostic,
    backward_flops,
    block_diagnostics,
    choose_blocks,
    finetune,
    finetune_fitted,
    rank_blocks,
    stable_slice_check,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


@pytest.fixture(scope="module")
def net(digits: tuple[np.ndarray, np.ndarray]) -> TorchClassifier:
    """An MLP with BatchNorm pretrained on the first 800 digits: blocks layer0, layer1, head."""
    X, y = digits
    clf = TorchClassifier(
        MLP(hidden=(32, 16), batchnorm=True), epochs=15, lr=5e-3, batch_size=32, random_state=0
    )
    return clf.fit(X[:800], y[:800])


@pytest.fixture(scope="module")
def plain(digits: tuple[np.ndarray, np.ndarray]) -> TorchClassifier:
    """The same MLP without BatchNorm (the diagnostic's known weak spot, see docs/finetune.md)."""
    X, y = digits
    clf = TorchClassifier(MLP(hidden=(32, 16)), epochs=15, lr=5e-3, batch_size=32, random_state=0)
    return clf.fit(X[:800], y[:800])


def permuted(y: np.ndarray) -> np.ndarray:
    swap = {0: 1, 1: 2, 2: 3, 3: 0}
    return np.array([swap.get(int(v), int(v)) for v in y])


def state(est: TorchEstimator) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in est.module_.state_dict().items()}


def test_frozen_blocks_keep_weights_and_batchnorm_stats_and_the_input_is_untouched(
    net: TorchClassifier, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = digits
    before = state(net)
    result = finetune(
        net, X[800:1000], permuted(y[800:1000]), blocks=["layer1"], lr=1e-2, epochs=3,
        weight_decay=0.1, val_fraction=0.0,
    )  # fmt: skip
    after = state(result.estimator)
    for name, tensor in after.items():
        block = name.split(".")[0]
        same = torch.equal(tensor, before[name])
        assert same == (block != "layer1") or "num_batches" in name, name
    assert not torch.equal(after["layer1.1.running_mean"], before["layer1.1.running_mean"])
    for name, tensor in state(net).items():  # the input estimator is not mutated
        assert torch.equal(tensor, before[name])
    assert result.estimator is not net


def test_frozen_parameters_never_receive_a_gradient(
    net: TorchClassifier, digits: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = digits
    seen: dict[str, set[bool]] = {}
    original = TorchClassifier.loss

    def spy(self: TorchClassifier, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        for name, p in self.module_.named_parameters():
            has = p.grad is not None and bool(p.grad.abs().sum() > 0)
            seen.setdefault(name.split(".")[0], set()).add(has)
        return original(self, output, target)

    monkeypatch.setattr(TorchClassifier, "loss", spy)
    finetune(net, X[800:900], y[800:900], blocks=["head"], epochs=2, head_cache=False)
    assert seen["layer0"] == {False}
    assert seen["layer1"] == {False}
    assert True in seen["head"]


def test_step_and_epoch_budgets_are_respected(
    net: TorchClassifier, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = digits
    steps = finetune(net, X[800:900], y[800:900], blocks="all", epochs=50, max_steps=3)
    assert steps.report.steps == 3
    assert steps.report.epochs == 1
    epochs = finetune(
        net, X[800:900], y[800:900], blocks="all", epochs=2, batch_size=16, val_fraction=0.0
    )
    assert epochs.report.epochs == 2
    assert epochs.report.steps == 2 * math.ceil(100 / 16)
    assert epochs.report.early_stop_epoch is None


def test_early_stopping_stops_on_validation_loss_and_restores_the_best_epoch(
    net: TorchClassifier, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = digits
    result = finetune(
        net, X[800:900], permuted(y[800:900]), blocks="all", lr=0.5, epochs=40, patience=2,
        min_steps=0,
    )  # fmt: skip
    report = result.report
    assert report.early_stop_epoch is not None
    assert report.early_stop_epoch < 40
    assert report.early_stop_epoch - report.best_epoch == 2
    assert report.val_loss[report.best_epoch] == min(report.val_loss)


def test_early_stopping_waits_for_min_steps(
    net: TorchClassifier, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = digits
    kwargs = {"blocks": "all", "lr": 0.5, "epochs": 40, "patience": 2, "batch_size": 40}
    quick = finetune(net, X[800:900], permuted(y[800:900]), min_steps=0, **kwargs).report
    slow = finetune(net, X[800:900], permuted(y[800:900]), min_steps=30, **kwargs).report
    assert quick.early_stop_epoch is not None
    assert quick.steps < 30
    assert slow.early_stop_epoch is not None
    assert slow.steps >= 30
    assert slow.val_loss[slow.best_epoch] == min(slow.val_loss)


def test_per_block_learning_rates_apply_to_their_block(
    net: TorchClassifier, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = digits
    result = finetune(
        net, X[800:900], permuted(y[800:900]), blocks=["layer1", "head"], lr=1e-2,
        block_lr={"head": 1e-9}, epochs=2, val_fraction=0.0,
    )  # fmt: skip
    before, after = state(net), state(result.estimator)
    head_move = float((after["head.weight"] - before["head.weight"]).abs().max())
    body_move = float((after["layer1.0.weight"] - before["layer1.0.weight"]).abs().max())
    assert head_move < 1e-6 < body_move
    assert result.report.lr == {"layer1": 1e-2, "head": 1e-9}


def test_reinit_and_shrink_perturb_reset_the_chosen_block(
    net: TorchClassifier, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = digits
    before = state(net)["head.weight"]
    quiet = {"lr": 1e-12, "max_steps": 1, "val_fraction": 0.0}
    reset = finetune(net, X[800:900], y[800:900], blocks=["head"], reinit=["head"], **quiet)
    assert not torch.allclose(state(reset.estimator)["head.weight"], before, atol=1e-3)
    shrunk = finetune(
        net, X[800:900], y[800:900], blocks=["head"], shrink_perturb=(0.5, 0.0), **quiet
    )
    torch.testing.assert_close(state(shrunk.estimator)["head.weight"], 0.5 * before)
    with pytest.raises(ConfigError, match="not trained"):
        finetune(net, X[:10], y[:10], blocks=["head"], reinit=["layer0"])


def test_replay_mixes_reference_rows_into_each_batch(
    net: TorchClassifier, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = digits
    result = finetune(
        net, X[800:864], y[800:864], blocks=["head"], batch_size=16, epochs=2,
        val_fraction=0.0, replay=(X[:200], y[:200]), replay_share=0.5,
    )  # fmt: skip
    assert result.report.replay_rows == result.report.steps * 16
    with pytest.raises(ConfigError, match="replay_share > 0 needs replay"):
        finetune(net, X[:50], y[:50], blocks=["head"], replay_share=0.3)


def test_l2sp_pulls_the_update_toward_the_old_weights(
    net: TorchClassifier, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = digits
    before = state(net)

    def moved(l2sp: float) -> float:
        est = finetune(
            net, X[800:1000], permuted(y[800:1000]), blocks="all", lr=1e-2, epochs=3,
            val_fraction=0.0, l2sp=l2sp,
        ).estimator  # fmt: skip
        return sum(
            float((w.detach() - before[n]).pow(2).sum()) for n, w in est.module_.named_parameters()
        )

    assert moved(10.0) < 0.5 * moved(0.0)


def test_stable_slice_check_flags_an_update_that_hurts_an_untouched_slice(
    net: TorchClassifier, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = digits
    hurt = finetune(
        net, X[800:1000], permuted(y[800:1000]), blocks=["head"], lr=1e-2, epochs=30
    ).estimator
    untouched = (y >= 4) & (np.arange(len(y)) >= 1000)
    mixed = np.arange(len(y)) >= 1000
    assert stable_slice_check(net, hurt, X[untouched], y[untouched], tolerance=0.05).passed
    check = stable_slice_check(net, hurt, X[mixed], y[mixed], tolerance=0.05)
    assert not check.passed
    assert check.drop > 0.1


def test_head_on_cached_features_matches_the_full_forward_path(
    net: TorchClassifier, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = digits
    kwargs = {"blocks": ["head"], "lr": 1e-2, "epochs": 5, "seed": 3}
    fast = finetune(net, X[800:1000], permuted(y[800:1000]), head_cache=True, **kwargs)
    slow = finetune(net, X[800:1000], permuted(y[800:1000]), head_cache=False, **kwargs)
    assert fast.report.head_cache
    assert not slow.report.head_cache
    assert fast.report.steps == slow.report.steps
    torch.testing.assert_close(
        state(fast.estimator)["head.weight"], state(slow.estimator)["head.weight"]
    )
    assert fast.report.forward_flops < slow.report.forward_flops
    with pytest.raises(ConfigError, match="head_cache=True"):
        finetune(net, X[:50], y[:50], blocks=["layer0"], head_cache=True)


def test_the_same_seed_gives_the_same_update(
    net: TorchClassifier, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = digits
    a, b, c = (
        finetune(net, X[800:900], y[800:900], blocks="all", epochs=2, seed=s).estimator
        for s in (5, 5, 6)
    )
    for name, w in state(a).items():
        assert torch.equal(w, state(b)[name])
    assert not torch.equal(state(a)["head.weight"], state(c)["head.weight"])


def test_backward_cost_grows_with_the_depth_of_the_lowest_trained_block(
    net: TorchClassifier, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    X = digits[0]
    head = backward_flops(net, ["head"], X)
    assert head == 2 * 16 * 10
    assert head < backward_flops(net, ["layer1"], X) < backward_flops(net, ["layer0"], X)
    assert backward_flops(net, ["layer0", "layer1", "head"], X) > backward_flops(net, ["layer0"], X)


@pytest.mark.parametrize(
    ("shift", "expected"), [("labels", "head"), ("pixels", "layer0")], ids=["label", "input"]
)
def test_gradient_norm_ratio_picks_the_block_the_shift_hit(
    plain: TorchClassifier, digits: tuple[np.ndarray, np.ndarray], shift: str, expected: str
) -> None:
    X, y = digits
    Xr, yr = X[1000:1300], y[1000:1300]
    if shift == "labels":
        yr = permuted(yr)
    else:
        mix = np.linalg.qr(np.random.default_rng(0).normal(size=(64, 64)))[0]
        Xr = (Xr @ mix).astype(np.float32)
    diags = block_diagnostics(plain, Xr, yr, X[1300:1600], y[1300:1600], probe_steps=5)
    choice = choose_blocks(diags)
    assert choice.blocks == (expected,)
    assert expected in choice.reasons[0]
    assert [d.block for d in diags] == ["layer0", "layer1", "head"]
    assert all(d.probe_gain is not None and d.seconds > 0 for d in diags)
    assert rank_blocks(diags)[0].block == expected
    if shift == "pixels":  # the input of every block moved
        assert all(d.input_shift_p < 0.01 for d in diags)


def _diag(block: str, ratio: float, flops: float, p: float) -> BlockDiagnostic:
    return BlockDiagnostic(block, ratio, 0.1, ratio, 1.0, ratio, None, flops, 0.0, 10, p)


def test_a_near_tie_goes_to_where_the_shift_entered_or_to_the_cheapest_block() -> None:
    moved = [_diag("layer0", 17.2, 900.0, 0.005), _diag("layer1", 18.4, 300.0, 0.005),
             _diag("head", 18.1, 100.0, 0.005)]  # fmt: skip
    choice = choose_blocks(moved)
    assert choice.blocks == ("layer0",)
    assert "near tie" in choice.reasons[0]
    assert "input moved" in choice.reasons[0]
    assert choose_blocks(moved, tie_margin=0.0).blocks == ("layer1",)
    still = [_diag("layer0", 7.2, 900.0, 0.4), _diag("layer1", 8.2, 300.0, 0.6),
             _diag("head", 8.8, 100.0, 0.3)]  # fmt: skip
    assert choose_blocks(still).blocks == ("head",)
    still[2] = _diag("head", 7.0, 100.0, 0.3)
    assert choose_blocks(still).blocks == ("layer1",)  # head is not within 10% of layer1
    assert choose_blocks(moved, criterion="rgn").blocks == ("head",)  # no rule: the cheapest


def test_a_flops_budget_excludes_expensive_blocks_and_says_why(
    net: TorchClassifier, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = digits
    mix = np.linalg.qr(np.random.default_rng(0).normal(size=(64, 64)))[0]
    diags = block_diagnostics(net, X[1000:1300] @ mix, y[1000:1300], X[1300:1600], y[1300:1600])
    choice = choose_blocks(diags, budget_flops=1000.0)
    assert choice.blocks == ("head",)
    assert any("over the budget" in r and r.startswith("layer0") for r in choice.reasons)
    with pytest.raises(ConfigError, match="no block fits"):
        choose_blocks(diags, budget_flops=1.0)


def test_finetune_fitted_takes_plain_params_and_returns_json_info(
    net: TorchClassifier, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = digits
    est, info = finetune_fitted(
        net, X[1000:1200], permuted(y[1000:1200]),
        params={"blocks": "auto", "lr": 1e-2, "epochs": 10, "replay_share": 0.2, "l2sp": 0.01,
                "shrink_perturb": [1.0, 0.0]},
        reference=(X[1300:1600], y[1300:1600]), seed=0,
    )  # fmt: skip
    json.dumps(info, allow_nan=False)
    assert info["choice"]["blocks"] == info["blocks"]
    assert info["blocks"][0] in {p["block"] for p in info["choice"]["probes"]}
    assert info["stable"]["rows"] == 150  # half of the reference: the other half was replayed
    assert info["replay_rows"] > 0
    assert isinstance(est, TorchClassifier)
    assert est is not net


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"blocks": ["head"], "learning_rate": 0.1}, "unknown parameter 'learning_rate'"),
        ({"blocks": ["head"], "lr": -1}, "'lr' parameter of finetune_fitted"),
        ({"blocks": ["head"], "max_steps": 0}, "'max_steps'"),
        ({"blocks": ["decoder"]}, "unknown blocks \\['decoder'\\]"),
        ({"blocks": "auto"}, "needs reference data"),
        ({"blocks": ["head"], "block_lr": {"head": 0}}, "'block_lr'"),
    ],
)
def test_finetune_fitted_names_the_bad_key(
    net: TorchClassifier, digits: tuple[np.ndarray, np.ndarray], params: dict, message: str
) -> None:
    X, y = digits
    with pytest.raises(ConfigError, match=message):
        finetune_fitted(net, X[:50], y[:50], params=params, reference=None, seed=0)


def test_the_docs_example_runs() -> None:
    text = (Path(__file__).parents[1] / "docs" / "finetune.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, "docs/finetune.md", "exec"), {})


def test_a_last_batch_of_one_row_is_skipped_when_batchnorm_trains(
    net: TorchClassifier, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = digits
    result = finetune(
        net, X[800:817], y[800:817], blocks=["layer1"], batch_size=16, epochs=2, val_fraction=0.0
    )
    assert result.report.steps == 2


# -- confirmed choice: probes on held-out target rows, or no update --------------------------


def test_no_update_when_no_probe_gains_significantly(
    plain: TorchClassifier, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    from regrow.plan.finetune_confirm import confirm_blocks

    X, y = digits
    Xr, yr = X[1000:1100], y[1000:1100]  # the training distribution: nothing to gain
    diags = block_diagnostics(plain, Xr, yr, X[1300:1600], y[1300:1600])
    choice = confirm_blocks(plain, Xr, yr, diags, lrs=(1e-3, 1e-2), probe_steps=10)
    assert not choice.update
    assert choice.blocks == ()
    assert choice.lr is None
    assert choice.reasons[0].startswith("no fine-tuning: expected gain not significant")
    assert choice.holdout_rows == 30
    best = max(choice.probes, key=lambda p: p.gain)
    assert best.low <= choice.threshold == pytest.approx(max(0.1 * choice.base_loss, 0.02))
    relative = confirm_blocks(
        plain, Xr, yr, diags, lrs=(1e-2,), probe_steps=10, min_gain=0.0, min_relative_gain=0.5
    )
    assert relative.threshold == pytest.approx(0.5 * relative.base_loss)
    est, info = finetune_fitted(
        plain, Xr, yr, params={"blocks": "auto", "probe_steps": 10},
        reference=(X[1300:1600], y[1300:1600]), seed=0,
    )  # fmt: skip
    assert est is plain
    assert info["blocks"] == []
    assert info["choice"]["reasons"][0].startswith("no fine-tuning")


def test_probes_confirm_a_block_and_the_report_shows_ranking_and_probes(
    plain: TorchClassifier, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    from regrow.plan.finetune_confirm import confirm_blocks

    X, y = digits
    Xr, yr = X[1000:1150], permuted(y[1000:1150])
    diags = block_diagnostics(plain, Xr, yr, X[1300:1600], y[1300:1600])
    choice = confirm_blocks(plain, Xr, yr, diags, lrs=(1e-2, 1e-1), probe_steps=15, top=1)
    assert choice.update
    assert choice.ranking[0] == "head" == rank_blocks(diags)[0].block
    # the head and the penultimate block; where an input moved, also the lowest such block and
    # the top of the ranking
    moved = [d.block for d in diags if d.input_shift_p < SHIFT_ALPHA]
    probed = {"head", "layer1"} | ({moved[0], choice.ranking[0]} if moved else set())
    assert {p.block for p in choice.probes} == probed
    assert len(choice.probes) == 2 * len(probed)
    assert all(p.steps == 15 and p.flops > 0 for p in choice.probes)
    best = max(choice.probes, key=lambda p: p.gain)
    assert best.low > choice.threshold
    assert (choice.blocks, choice.lr) == ((best.block,), best.lr)
    assert "probes" in choice.reasons[0]
    assert "grad_ratio" in choice.reasons[1]
    assert choice.reasons[0].startswith(choice.blocks[0])
    report = json.loads(json.dumps(choice.to_dict(), allow_nan=False))
    assert report["ranking"] == list(choice.ranking)
    assert len(report["probes"]) == len(probed) * 2
    assert report["probe_flops"] == pytest.approx(sum(p.flops for p in choice.probes))
    layer1 = next(d for d in diags if d.block == "layer1").backward_flops
    capped = confirm_blocks(
        plain, Xr, yr, diags, lrs=(1e-1,), probe_steps=5, budget_flops=layer1 / 2
    )
    assert {p.block for p in capped.probes} == {"head"}
    assert any("over the budget" in r and r.startswith("layer1") for r in capped.reasons)


def test_lower_blocks_are_probed_only_where_an_input_moved(
    plain: TorchClassifier, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    """Under a label shift no block's input moves: the top-ranked first block is not probed
    (on a CNN its probe keeps up with the head's and its long fine-tune loses 20 points)."""
    from regrow.plan.finetune_confirm import confirm_blocks

    X, y = digits
    Xr, yr = X[1000:1150], permuted(y[1000:1150])
    still = [_diag("layer0", 9.0, 900.0, 0.5), _diag("layer1", 2.0, 300.0, 0.5),
             _diag("head", 1.5, 100.0, 0.5)]  # fmt: skip
    choice = confirm_blocks(plain, Xr, yr, still, lrs=(1e-1,), probe_steps=5)
    assert {p.block for p in choice.probes} == {"layer1", "head"}
    assert any(r.startswith("layer0: not probed: no block's input moved") for r in choice.reasons)
    moved = [_diag("layer0", 1.0, 900.0, 0.005), _diag("layer1", 9.0, 300.0, 0.005),
             _diag("head", 1.5, 100.0, 0.005)]  # fmt: skip
    shifted = confirm_blocks(plain, Xr, yr, moved, lrs=(1e-1,), probe_steps=5)
    assert {p.block for p in shifted.probes} == {"layer0", "layer1", "head"}


@pytest.mark.parametrize(
    ("kwargs", "rows", "message"),
    [
        ({"lrs": ()}, 60, "lrs must be"),
        ({"probe_steps": 0}, 60, "probe_steps"),
        ({"holdout": 1.0}, 60, "holdout"),
        ({}, 4, "too few to hold out"),
        ({"budget_flops": 1.0}, 60, "no candidate block fits"),
    ],
)
def test_confirm_blocks_names_what_is_wrong(
    plain: TorchClassifier, digits: tuple[np.ndarray, np.ndarray], kwargs: dict, rows: int,
    message: str,
) -> None:  # fmt: skip
    from regrow.plan.finetune_confirm import confirm_blocks

    X, y = digits
    diags = [_diag("layer0", 2.0, 900.0, 0.5), _diag("layer1", 1.5, 300.0, 0.5),
             _diag("head", 1.2, 100.0, 0.5)]  # fmt: skip
    with pytest.raises(ConfigError, match=message):
        confirm_blocks(plain, X[:rows], y[:rows], diags, **kwargs)
