"""Torch members: block matching and its errors, determinism, safetensors pickling, workspace."""

from __future__ import annotations

import functools
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from torch import nn

from regrow import Member, System, Workspace
from regrow._hashing import canonical_json
from regrow.components.adapters import adapter_for
from regrow.components.torch import (
    MLP,
    REST,
    TorchAdapter,
    TorchClassifier,
    TorchRegressor,
    match_blocks,
)
from regrow.errors import ComponentError, SystemSpecError

torch.set_num_threads(1)


def convnet(n_features: int, n_outputs: int, *, width: int = 4) -> nn.Module:
    """A module factory with plain Sequential indices, as users write them."""
    return nn.Sequential(
        nn.Linear(n_features, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.BatchNorm1d(width),
        nn.Linear(width, n_outputs),
    )


def data(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


def test_patterns_match_by_full_regex_and_by_suffix_and_leave_the_rest_reported() -> None:
    net = convnet(5, 2)
    blocks = match_blocks(net, {"input": ["0"], "middle": [r"2|3"]})
    assert blocks["input"] == ("0.weight", "0.bias")
    assert set(blocks["middle"]) >= {"2.weight", "3.weight", "3.running_mean"}
    assert blocks[REST] == ("4.weight", "4.bias")
    nested = MLP(hidden=(4, 4))(5, 2)
    by_suffix = match_blocks(nested, {"first": ["layer0.0"], "out": ["head"]})
    assert by_suffix["first"] == ("layer0.0.weight", "layer0.0.bias")
    assert list(by_suffix) == ["first", REST, "out"]  # forward order


def test_default_blocks_are_the_top_level_children() -> None:
    assert list(match_blocks(MLP(hidden=(4, 4))(3, 2), None)) == ["layer0", "layer1", "head"]


def test_a_pattern_that_matches_nothing_is_named_in_the_error() -> None:
    with pytest.raises(SystemSpecError, match=r"block 'head': pattern 'classifier' matches no"):
        match_blocks(convnet(5, 2), {"head": ["classifier"]})


def test_a_parameter_in_two_blocks_is_named_in_the_error() -> None:
    with pytest.raises(SystemSpecError, match=r"parameter '2.weight' belongs to two blocks"):
        match_blocks(convnet(5, 2), {"a": [r"[0-2]"], "b": ["2"]})


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        ({"rest": ["0"]}, "reserved"),
        ({"a": "0"}, "must be a non-empty list"),
        ({"a": ["(unclosed"]}, "not a valid regular expression"),
        ({}, "must be a mapping"),
    ],
)
def test_bad_block_declarations_are_refused(blocks: object, message: str) -> None:
    with pytest.raises(SystemSpecError, match=message):
        match_blocks(convnet(5, 2), blocks)  # type: ignore[arg-type]


def test_bad_blocks_fail_the_fit_with_the_pattern_named() -> None:
    X, y = data()
    clf = TorchClassifier(convnet, blocks={"head": ["fc"]}, epochs=1)
    with pytest.raises(SystemSpecError, match="'fc'"):
        clf.fit(X, y)


def test_same_seed_gives_identical_weights_and_another_seed_does_not() -> None:
    X, y = data()
    make = functools.partial(TorchClassifier, MLP(hidden=(8,), dropout=0.2), epochs=3)
    a, b, c = make(random_state=1).fit(X, y), make(random_state=1).fit(X, y), make(random_state=2)
    c.fit(X, y)
    for name, w in a.module_.state_dict().items():
        assert torch.equal(w, b.module_.state_dict()[name])
    assert not torch.equal(
        a.module_.state_dict()["head.weight"], c.module_.state_dict()["head.weight"]
    )


def test_fit_does_not_touch_the_global_torch_rng() -> None:
    X, y = data()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    TorchClassifier(MLP(hidden=(4,)), epochs=1, random_state=0).fit(X, y)
    assert torch.equal(torch.rand(3), expected)


def test_pickling_stores_weights_as_safetensors_and_predicts_the_same() -> None:
    X, y = data()
    clf = TorchClassifier(convnet, blocks={"input": ["0"]}, epochs=2, random_state=0).fit(X, y)
    state = clf.__getstate__()
    assert "module_" not in state
    assert isinstance(state["_weights_safetensors"], bytes)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    assert again.blocks_ == clf.blocks_


def test_recipe_is_stable_json_without_memory_addresses() -> None:
    est = TorchClassifier(functools.partial(convnet, width=8), blocks={"input": ["0"]})
    recipe = canonical_json(Member("net", est, inputs=["a"]).recipe())
    again = canonical_json(Member("net", clone(est), inputs=["a"]).recipe())
    assert recipe == again
    assert "0x" not in recipe
    assert '"<convnet>"' in recipe  # the user's own function, named without its file's name
    assert '"width":8' in recipe


def test_adapter_seeds_and_reports_torch_versions() -> None:
    est = TorchClassifier(MLP())
    adapter = adapter_for(est)
    assert isinstance(adapter, TorchAdapter)
    assert {"torch", "safetensors", "numpy"} <= set(adapter.library_versions())
    assert adapter.with_seed(est, 11).random_state == 11


def test_classifier_api_and_invalid_parameters() -> None:
    X, y = data()
    labels = np.where(y == 1, "b", "a")
    clf = TorchClassifier(MLP(hidden=(8,)), epochs=5, lr=0.01, random_state=0).fit(X, labels)
    assert clf.classes_.tolist() == ["a", "b"]
    assert clf.predict_proba(X).sum(axis=1) == pytest.approx(np.ones(len(X)))
    assert set(clf.predict(X)) <= {"a", "b"}
    assert clf.set_params(epochs=7).get_params()["epochs"] == 7
    with pytest.raises(SystemSpecError, match="'lr' parameter of TorchClassifier"):
        TorchClassifier(MLP(), lr=-1).fit(X, y)
    with pytest.raises(ComponentError, match="not fitted"):
        TorchClassifier(MLP()).predict(X)


def test_regressor_fits_one_and_several_targets() -> None:
    X, _ = data()
    one = TorchRegressor(MLP(hidden=(8,)), epochs=20, lr=0.01, random_state=0).fit(X, X[:, 0])
    assert one.predict(X).shape == (len(X),)
    assert one.score(X, X[:, 0]) > 0.0
    two = TorchRegressor(MLP(hidden=(8,)), epochs=2, random_state=0).fit(X, X[:, :2])
    assert two.predict(X).shape == (len(X), 2)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_asking_for_cuda_without_it_says_so() -> None:
    X, y = data()
    with pytest.raises(ComponentError, match="CUDA is not available"):
        TorchClassifier(MLP(), device="cuda").fit(X, y)


def test_a_torch_member_trains_in_a_workspace_and_predicts(tmp_path: Path) -> None:
    X, y = data(120)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]).assign(label=y)
    system = System(
        "tiny",
        target="label",
        components=[
            Member(
                "net",
                TorchClassifier(MLP(hidden=(8,)), epochs=20, lr=0.01),
                inputs=[f"f{i}" for i in range(X.shape[1])],
            )
        ],
    )
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(frame, name="points")
        first = ws.train(system, snap, workers=1)
        assert first.trained == ["net"]
        assert ws.train(system, snap, workers=1).trained == []
        model = ws.load(f"tiny:v{first.version.number}")
        proba = model.predict_proba(frame)
    assert proba.shape == (len(frame), 2)
    assert (proba.argmax(axis=1) == y).mean() > 0.8


def test_a_network_refuses_missing_values_and_names_the_column() -> None:
    X, y = data()
    net = TorchClassifier(MLP(hidden=(4,)), epochs=1, random_state=0).fit(X, y)
    bad = X.copy()
    bad[7, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity \(column 2\).*Transform"):
        net.predict(bad)
    frame = pd.DataFrame(bad, columns=[f"x{i}" for i in range(bad.shape[1])])
    with pytest.raises(ValueError, match=r"\(column 'x2'\)"):
        net.predict(frame)
    with pytest.raises(ValueError, match="contains NaN or infinity"):
        TorchClassifier(MLP(hidden=(4,)), epochs=1).fit(bad, y)
