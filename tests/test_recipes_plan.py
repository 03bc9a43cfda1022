"""Recipes through planning, running and lineage: the policy's recipe and its parameters are
what runs, the plan names them, and lineage says which recipe version built each component."""

from __future__ import annotations

import importlib.metadata
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMRegressor

from regrow import Ensemble, Member, System, Workspace
from regrow.errors import PlanError
from regrow.plan.plan import Plan
from regrow.plan.policy import Policy
from regrow.recipes import Param, Recipe, reload_recipes
from regrow.testing import run_cli as run

GROUPS = {"alpha": ["a1", "a2"], "beta": ["b1", "b2"]}


def make(rows: int, seed: int, changed: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(rows, 4)), columns=["a1", "a2", "b1", "b2"])
    a = -1.5 * np.tanh(2 * df.a1) if changed else 1.5 * np.sin(2 * df.a1)
    df["y"] = a + 0.5 * df.a2 + 1.2 * df.b1 * (df.b1 > 0) - 0.5 * df.b2
    df["y"] += 0.3 * rng.normal(size=rows)
    return df


def build() -> System:
    return System(
        "effects",
        target="y",
        task="regression",
        components=[
            *(
                Member(g, LGBMRegressor(n_estimators=40, num_leaves=15, n_jobs=1, verbose=-1),
                       inputs=cols)
                for g, cols in GROUPS.items()
            ),
            Ensemble("combine", weights=dict.fromkeys(GROUPS, 1.0), method="stack"),
        ],
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, str, Path]]:
    home = tmp_path_factory.mktemp("recipes-ws")
    with Workspace.init(home) as ws:
        v1 = ws.train(build(), ws.snapshot(make(3000, 1), name="old")).version.ref
        ws.snapshot(make(1500, 2, changed=True), name="alpha-changed")
        yield ws, v1, home


def test_the_policys_recipe_and_parameters_are_what_runs_and_lineage_names_them(
    trained: tuple[Workspace, str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ws, v1, home = trained
    default = ws.plan(v1, "alpha-changed", record=False)
    assert [(a.kind, a.component, a.recipe) for a in default.actions] == [
        ("refit", "alpha", "sklearn-refit-window@1"),
        ("reweight", "combine", "ensemble-relearn@1"),
    ]
    policy = Policy.from_dict({"planning": {"recipes": {
        "alpha": {"recipe": "lightgbm-continue@1", "params": {"extra": 7}},
    }}})  # fmt: skip
    plan = ws.plan(v1, "alpha-changed", policy=policy)
    cont = plan.actions[0]
    assert (cont.kind, cont.component, cont.recipe) == ("continue", "alpha", "lightgbm-continue@1")
    assert cont.update_spec() == ("continue", {"extra": 7})
    assert dict(cont.recipe_params) == {"extra": 7}
    stored = ws.catalog.get_plan(plan.id).body["actions"][0]
    assert (stored["recipe"], stored["recipe_params"], stored["params"]) == (
        "lightgbm-continue@1", {"extra": 7}, {"extra": 7})  # fmt: skip

    ran = ws.run_plan(plan.id)
    assert ran.result.trained == ["alpha", "combine"]
    old = ws.load(v1).components["alpha"].estimator.booster_.num_trees()
    new = ws.load(ran.result.version.ref).components["alpha"].estimator.booster_.num_trees()
    assert (old, new) == (40, 47)  # the 7 extra rounds the recipe's parameter asked for

    report = ws.lineage(ran.result.version.ref)
    recipes = {c["name"]: c["recipe"] for c in report["components"]}
    assert recipes["alpha"] == {"ref": "lightgbm-continue@1", "params": {"extra": 7},
                                "action": "continue", "plan": plan.id}  # fmt: skip
    assert recipes["combine"]["ref"] == "ensemble-relearn@1"
    assert recipes["beta"] is None  # reused from the training run, which ran no plan

    h = ("--home", str(home))
    code, out, _ = run(capsys, "lineage", ran.result.version.ref, *h)
    assert code == 0
    assert "lightgbm-continue@1" in out
    assert "ensemble-relearn@1" in out
    code, out, _ = run(capsys, "plans", "show", plan.id[:12], *h)
    assert code == 0
    assert "lightgbm-continue@1" in out
    code, out, _ = run(capsys, "plans", "show", plan.id[:12], *h, "--json")
    assert json.loads(out)["actions"][0]["recipe"] == "lightgbm-continue@1"


def test_a_plan_by_hand_names_the_recipes_of_its_actions_and_lineage_shows_them(
    trained: tuple[Workspace, str, Path],
) -> None:
    # Lineage showed "-" for every component of a full retrain by hand (the watcher's
    # SLA-led retrains are such plans), and the docs say every action names its recipe.
    from regrow.plan.actions import Continue, FullRetrain

    ws, v1, _ = trained
    # a window of its own: components fitted here are not reused by the other tests' runs
    own = ws.snapshot(make(1500, 3, changed=True), name="by-hand")
    ran = ws.apply(v1, own, [Continue("alpha", extra=5)], approve=True)
    (action,) = ws.catalog.get_plan(ran.record.id).body["actions"]
    assert (action["recipe"], action["recipe_params"]) == ("lightgbm-continue@1", {"extra": 5})
    full = ws.apply(v1, own, [FullRetrain("*")], approve=True)
    report = ws.lineage(full.result.version.ref)
    assert {c["name"]: (c["recipe"] or {}).get("ref") for c in report["components"]} == {
        "alpha": "full-retrain@1", "beta": "full-retrain@1", "combine": "full-retrain@1",
    }  # fmt: skip


def test_a_plan_stored_before_recipes_still_shows_and_runs(
    trained: tuple[Workspace, str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ws, v1, home = trained
    plan = ws.plan(v1, "alpha-changed", record=False)
    body = plan.to_dict()
    for a in body["actions"]:
        del a["recipe"], a["recipe_params"]
    old = Plan.from_dict(body)
    ws.catalog.add_plan(id=old.id, system=old.system, version_id=old.version_id,
                        window_id=old.window, body={**body, "summary": old.summary()})  # fmt: skip
    code, out, _ = run(capsys, "plans", "show", old.id[:12], "--home", str(home))
    assert code == 0
    assert "refit" in out
    ran = ws.run_plan(old.id)
    report = ws.lineage(ran.result.version.ref)
    assert {c["name"]: c["recipe"] for c in report["components"]}["alpha"] is None


@pytest.fixture
def budgeted(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A team's refit recipe with a tiny budget, registered through an entry point."""
    module = types.ModuleType("acme_budget_recipes")
    module.RECIPES = [  # type: ignore[attr-defined]
        Recipe("acme-refit", 1, "refit", max_cpu_seconds=1e-9,
               doc="A refit the team caps at almost nothing."),
        Recipe("acme-continue", 1, "continue", applies_to=("lightgbm",),
               params=(Param("extra", "int", 5, ge=1),), doc="Five more rounds."),
    ]  # fmt: skip
    monkeypatch.setitem(sys.modules, "acme_budget_recipes", module)
    ep = importlib.metadata.EntryPoint(
        name="acme", value="acme_budget_recipes:RECIPES", group="regrow.recipes"
    )
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [ep])
    reload_recipes()
    yield
    monkeypatch.undo()
    reload_recipes()


def test_an_entry_point_recipe_plans_and_its_budget_asks_for_approval(
    trained: tuple[Workspace, str, Path], budgeted: None
) -> None:
    ws, v1, _ = trained
    capped = Policy.from_dict({"planning": {"recipes": {"refit": "acme-refit"}}})
    plan = ws.plan(v1, "alpha-changed", policy=capped, record=False)
    refit = plan.actions[0]
    assert (refit.kind, refit.recipe) == ("refit", "acme-refit@1")
    assert refit.approval
    assert plan.needs_approval
    assert any("its recipe acme-refit@1's budget of 1e-09" in line for line in plan.rationale)
    team = Policy.from_dict({"planning": {"recipes": {"alpha": "acme-continue",
                                                      "gamma": "acme-refit"}}})  # fmt: skip
    shared = ws.plan(v1, "alpha-changed", policy=team, record=False)
    cont = shared.actions[0]
    assert (cont.recipe, cont.update_spec()) == ("acme-continue@1", ("continue", {"extra": 5}))
    assert "planning.recipes.gamma names no component of effects nor an action: ignored" in (
        shared.rationale
    )


def test_a_torch_member_gets_the_head_recipe_and_unknown_blocks_are_refused(
    tmp_path: Path,
) -> None:
    torch = pytest.importorskip("torch")
    from regrow.components.torch import MLP, TorchClassifier

    torch.set_num_threads(1)

    def data(rows: int, seed: int, flipped: bool) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        df = pd.DataFrame(rng.normal(size=(rows, 2)), columns=["n1", "n2"])
        logit = 2.5 * df.n2 - 2.0 * np.abs(df.n1) + 1.0 if flipped else 2.0 * df.n1 - 1.5 * df.n2
        df["y"] = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int)
        return df

    net = TorchClassifier(MLP(hidden=(16, 8)), epochs=8, lr=0.02, random_state=0)
    system = System("nn", target="y", components=[Member("net", net, inputs=["n1", "n2"])])
    # One member whose every input changed: the drift rules would retrain it in full.
    lenient = {"max_loss_increase": 100, "max_drifted_share": 1}
    with Workspace.init(tmp_path) as ws:
        v1 = ws.train(system, ws.snapshot(data(1200, 0, False), name="old")).version.ref
        ws.snapshot(data(800, 1, True), name="flipped")
        head = Policy.from_dict(
            {"escalation": lenient, "planning": {"recipes": {"net": "torch-head-on-cache"}}}
        )
        plan = ws.plan(v1, "flipped", policy=head, record=False)
        action = plan.actions[0]
        assert (action.kind, action.recipe) == ("finetune", "torch-head-on-cache@1")
        assert action.params() == {"blocks": ["head"], "lr": 0.001, "head_cache": True,
                                   "epochs": 20, "max_steps": 5000}  # fmt: skip
        assert "grad_ratio" not in action.reason  # no diagnostic: the recipe names the blocks
        wrong = Policy.from_dict({"escalation": lenient, "planning": {"recipes": {"net": {
            "recipe": "torch-head-on-cache", "params": {"blocks": ["neck"]}}}}})  # fmt: skip
        with pytest.raises(PlanError, match=r"names blocks \['neck'\] the member does not have"):
            ws.plan(v1, "flipped", policy=wrong, record=False)
