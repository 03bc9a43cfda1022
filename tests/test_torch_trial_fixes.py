"""Findings of a user trial of torch members: MLP parameters are checked before anything trains,
`regrow doctor --repair` refits a lost torch member, fine-tuning names mismatched shapes, and
the CLI docs say which commands keep their work on Ctrl-C."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from regrow import Member, System, Workspace
from regrow.cli._app import _FITTING
from regrow.components.torch import MLP, TorchClassifier
from regrow.errors import ConfigError, RunError, SystemSpecError
from regrow.plan.finetune import finetune, finetune_fitted

torch.set_num_threads(1)

DOCS = Path(__file__).resolve().parents[1] / "docs"
FEATURES = [f"f{i}" for i in range(5)]


@pytest.fixture(autouse=True)
def _actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGROW_ACTOR", "tester")


def data(n: int = 60, features: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, features)).astype(np.float32)
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    X, y = data(n, seed=seed)
    return pd.DataFrame(X, columns=FEATURES).assign(label=y)


def torch_system(module: Any) -> System:
    member = Member("net", TorchClassifier(module, epochs=5, lr=0.01), inputs=FEATURES)
    return System("tiny", target="label", components=[member])


# -- 1: MLP parameters are checked when the member fits ----------------------------------------


@pytest.mark.parametrize(
    ("mlp", "message", "hint"),
    [
        (
            MLP(hidden=(0,)),
            r"'hidden' parameter of MLP .* Got \(0,\) instead: hidden\[0\] is 0",
            "64",
        ),
        (MLP(hidden="32"), r"'hidden' parameter of MLP .* Got '32' instead", r"hidden=\(32,\)"),
        (MLP(hidden=64), r"Got 64 instead", r"hidden=\(64,\)"),
        (MLP(hidden=(8.7,)), r"hidden\[0\] is 8.7", "64"),
        (MLP(hidden=(8, -4)), r"hidden\[1\] is -4", "64"),
        (MLP(batchnorm="no"), r"'batchnorm' parameter of MLP must be a bool", "True"),
        (MLP(dropout=1.0), r"'dropout' parameter of MLP must be a float in \[0, 1\)", "0.2"),
        (MLP(dropout="0.2"), r"Got '0.2' instead", "0.2"),
    ],
)
def test_a_broken_mlp_is_refused_naming_the_value_with_a_hint(
    mlp: MLP, message: str, hint: str
) -> None:
    X, y = data()
    with pytest.raises(SystemSpecError, match=message) as caught:
        TorchClassifier(mlp, epochs=1).fit(X, y)
    assert re.search(hint, caught.value.hint or "")


def test_sound_mlp_parameters_still_fit() -> None:
    X, y = data()
    for mlp in (MLP(hidden=()), MLP(hidden=[4, np.int64(3)], batchnorm=True, dropout=0.1)):
        assert TorchClassifier(mlp, epochs=1).fit(X, y).predict(X).shape == (len(X),)


def test_training_a_system_with_a_broken_mlp_makes_no_version(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(frame(80), name="points")
        with pytest.raises(RunError, match=r"'hidden' parameter of MLP .* Got \(0,\) instead"):
            ws.train(torch_system(MLP(hidden=(0,))), snap, workers=1)
        assert ws.catalog.list_system_versions("tiny") == []


# -- 2: doctor --repair refits a lost torch member from its recipe -----------------------------


def _lose_the_member(ws: Workspace, ref: str) -> None:
    version = ws.catalog.get_system_version(ref)
    key = ws.catalog.get_component_version(version.manifest["net"]).artifact
    assert key is not None
    (Path(ws.store.url) / key[:2] / key).unlink()


def test_doctor_repair_refits_a_lost_mlp_member_with_the_same_predictions(
    tmp_path: Path,
) -> None:
    later = frame(100, seed=1)
    with Workspace.init(tmp_path / "ws") as ws:
        v1 = ws.train(torch_system(MLP(hidden=(8,))), ws.snapshot(frame(300), name="h")).version
        before = ws.load(v1.ref).predict_proba(later)
        _lose_the_member(ws, v1.ref)
        assert not ws.doctor().ok

        report = ws.doctor(repair=True)

        assert report.ok, report.repairs
        [repair] = report.repairs
        assert repair.ok
        np.testing.assert_array_equal(ws.load(v1.ref).predict_proba(later), before)
        assert ws.doctor().ok


def net_factory(n_features: int, n_outputs: int) -> torch.nn.Module:
    """A module-level factory: the recipe records it by name only."""
    return torch.nn.Sequential(torch.nn.Linear(n_features, n_outputs))


class WideMLP(MLP):
    """The user's own parameter object: its recipe names a class no import path reaches."""


@pytest.mark.parametrize("module", [net_factory, WideMLP(hidden=(8,))], ids=["function", "class"])
def test_a_module_the_recipe_cannot_name_is_still_reported_as_not_rebuildable(
    tmp_path: Path, module: Any
) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        v1 = ws.train(torch_system(module), ws.snapshot(frame(120), name="h")).version
        _lose_the_member(ws, v1.ref)
        [repair] = ws.doctor(repair=True).repairs
        assert not repair.ok
        assert "cannot be rebuilt from its recorded parameters" in repair.detail


# -- 3: fine-tuning names mismatched shapes ----------------------------------------------------


@pytest.fixture(scope="module")
def fitted() -> TorchClassifier:
    X, y = data(120, features=64)
    return TorchClassifier(MLP(hidden=(32,)), epochs=1, random_state=0).fit(X, y)


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (
            {"X": np.s_[:, :10]},
            r"X has 10 columns, but the network was fitted on 64 feature columns",
        ),
        ({"y": np.s_[:50]}, r"y has 50 rows, X has 120 rows"),
        ({"X": np.s_[0]}, r"X has shape \(64,\), not 2-d"),
        ({"replay_X": np.s_[:10, :5]}, r"replay\[0\] has 5 columns, but the network was fitted"),
        ({"replay_y": np.s_[:3]}, r"replay\[1\] has 3 rows, replay\[0\] has 10 rows"),
    ],
)
def test_finetune_names_mismatched_shapes_with_a_hint(
    fitted: TorchClassifier, cut: dict[str, Any], message: str
) -> None:
    X, y = data(120, features=64)
    rX, ry = X[:10], y[:10]
    with pytest.raises(ConfigError, match=message) as caught:
        finetune(
            fitted,
            X[cut.get("X", np.s_[:])],
            y[cut.get("y", np.s_[:])],
            blocks=["head"],
            replay=(rX[cut.get("replay_X", np.s_[:])], ry[cut.get("replay_y", np.s_[:])]),
        )
    assert caught.value.hint


def test_finetune_refuses_a_replay_that_is_not_a_pair(fitted: TorchClassifier) -> None:
    X, y = data(120, features=64)
    with pytest.raises(ConfigError, match=r"replay must be a pair \(X, y\)"):
        finetune(fitted, X, y, blocks=["head"], replay=X)


def test_the_planner_entry_point_checks_the_reference_shape_too(fitted: TorchClassifier) -> None:
    X, y = data(120, features=64)
    with pytest.raises(ConfigError, match=r"reference\[0\] has 3 columns"):
        finetune_fitted(fitted, X, y, params={"blocks": "auto"}, reference=(X[:, :3], y), seed=0)


# -- 4: which commands keep their work on Ctrl-C -----------------------------------------------


def test_the_cli_docs_list_exactly_the_commands_that_keep_their_work_on_ctrl_c() -> None:
    text = " ".join((DOCS / "cli.md").read_text().split())
    listed = re.search(r"for the commands that fit components \(([^)]*)\) it is", text)
    assert listed is not None
    assert set(re.findall(r"`([a-z]+)`", listed.group(1))) == set(_FITTING)
