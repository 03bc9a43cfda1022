"""Recipes: definitions, the registry (built-ins and entry points), the policy's choice, the CLI."""

from __future__ import annotations

import importlib.metadata
import json
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from regrow.errors import PlanError, PolicyError
from regrow.plan.actions import ACTIONS, Continue, Finetune
from regrow.plan.plan import Plan
from regrow.plan.policy import ACTION_NAMES, EnsemblePolicy, Policy
from regrow.recipes import Param, Recipe, RecipeError, UnknownRecipe, get_recipe, reload_recipes
from regrow.recipes.base import ACTION_KINDS, ACTION_PARAMS, family_of
from regrow.recipes.builtin import BUILTINS, DEFAULTS, HEDGE_DOCS
from regrow.recipes.choice import choose
from regrow.testing import run_cli as run


def _team_recipe(name: str = "acme-continue", version: int | str = 2, extra: int = 30) -> Recipe:
    return Recipe(
        name,
        version,
        "continue",
        applies_to=("lightgbm", "xgboost"),
        params=(Param("extra", "int", extra, ge=1, doc="rounds"),),
        max_cpu_seconds=5.0,
        doc="Acme's continue: fewer rounds.",
    )


@pytest.fixture
def entry_points(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[importlib.metadata.EntryPoint]]:
    """Entry points of group regrow.recipes, as a list the test fills; the registry is loaded
    again from them when the test calls reload_recipes(), and restored after."""
    module = types.ModuleType("acme_recipes")
    module.RECIPE = _team_recipe()  # type: ignore[attr-defined]
    module.several = lambda: [  # type: ignore[attr-defined]
        Recipe("acme-leaf", "1.2.0", "leaf-refit", applies_to=("lightgbm",),
               params=(Param("decay_rate", "float", 0.5, ge=0, lt=1),),
               doc="Half the old leaves.")
    ]  # fmt: skip
    module.boom = lambda: 1 / 0  # type: ignore[attr-defined]
    module.NOT_A_RECIPE = 42  # type: ignore[attr-defined]
    module.CLASH = _team_recipe("lightgbm-continue", 9)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "acme_recipes", module)
    found: list[importlib.metadata.EntryPoint] = []

    def fake(**kwargs: Any) -> list[importlib.metadata.EntryPoint]:
        assert kwargs == {"group": "regrow.recipes"}
        return list(found)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    yield found
    monkeypatch.undo()
    reload_recipes()


def _ep(name: str, value: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=name, value=value, group="regrow.recipes")


# -- definitions --------------------------------------------------------------------------


def test_every_builtin_is_documented_and_the_defaults_cover_every_action() -> None:
    assert set(ACTION_KINDS) == set(ACTION_NAMES) == set(ACTIONS) == set(ACTION_PARAMS)
    for r in BUILTINS:
        assert r.doc.strip()
        assert r.summary.endswith(".")
        assert r.source == "builtin"
    made = {(kind, get_recipe(name).action_kind) for (kind, _), name in DEFAULTS.items()}
    assert all(kind == action for kind, action in made)
    assert {kind for kind, _ in DEFAULTS} == set(ACTION_KINDS) - {"full-retrain"}


def test_the_hedge_recipe_mirrors_the_policys_ensemble_section() -> None:
    hedge = get_recipe("ensemble-hedge-refresh")
    assert hedge.made_by == "refresh"
    assert hedge.defaults() == EnsemblePolicy().model_dump()
    assert set(HEDGE_DOCS) == set(EnsemblePolicy.model_fields)
    assert hedge.problems({"alpha": 1.0}) == [("alpha", "must be a number >= 0 and < 1")]


def test_families_mirror_what_the_updates_support() -> None:
    from lightgbm import LGBMRegressor
    from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingRegressor
    from sklearn.linear_model import LinearRegression

    from regrow.plan.updates import supports

    for est in (LGBMRegressor(), HistGradientBoostingRegressor(), GradientBoostingRegressor(),
                LinearRegression()):  # fmt: skip
        family = family_of(est)
        for kind in ("continue", "leaf-refit", "finetune"):
            recipes = [r for r in BUILTINS if r.action_kind == kind and r.applies(family)]
            assert bool(recipes) == supports(est, kind), (family, kind)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: Recipe("Bad Name", 1, "refit", doc="x"), "a name is lowercase"),
        (lambda: Recipe("a@1", 1, "refit", doc="x"), "no '@'"),
        (lambda: Recipe("a", 0, "refit", doc="x"), r"version must be an int >= 1 .*got 0"),
        (lambda: Recipe("a", "1.2", "refit", doc="x"), "semver"),
        (lambda: Recipe("a", 1, "refti", doc="x"), "did you mean 'refit'"),
        (lambda: Recipe("a", 1, "continue", applies_to=("torch",), doc="x"),
         "a continue cannot change torch"),
        (lambda: Recipe("a", 1, "refit", applies_to=("gpu",), doc="x"), "unknown families"),
        (lambda: Recipe("a", 1, "continue", params=(Param("extar", "int", 3),), doc="x"),
         "continue does not take 'extar'.*takes extra"),
        (lambda: Recipe("a", 1, "refit", doc=" "), "needs its documentation"),
        (lambda: Recipe("a", 1, "refit", max_cpu_seconds=-1, doc="x"), "max_cpu_seconds"),
        (lambda: Param("extra", "int", 0, ge=1), r"default 0 is not valid: .*int >= 1"),
        (lambda: Param("x", "decimal", 0), "unknown type"),
    ],
)  # fmt: skip
def test_a_bad_definition_is_refused_naming_the_value(build: Any, match: str) -> None:
    with pytest.raises(RecipeError, match=match):
        build()


def test_parameters_are_checked_and_the_closest_name_suggested() -> None:
    r = get_recipe("lightgbm-continue@1")
    assert r.resolve({"extra": 7}) == {"extra": 7}
    with pytest.raises(RecipeError, match=r"extra must be an int >= 1 \(got '7'\)"):
        r.resolve({"extra": "7"})
    with pytest.raises(RecipeError, match="did you mean 'extra'"):
        r.resolve({"extras": 7})
    with pytest.raises(RecipeError, match=r"decay_rate must be a number >= 0 and < 1"):
        get_recipe("lightgbm-leaf-refit").resolve({"decay_rate": 1.0})


def test_a_recipe_makes_its_action_with_its_parameters() -> None:
    action = get_recipe("lightgbm-continue").action("gbm", {"extra": 7}, reason="why")
    assert isinstance(action, Continue)
    assert action.update_spec() == ("continue", {"extra": 7})
    assert (action.recipe, dict(action.recipe_params), action.reason) == (
        "lightgbm-continue@1", {"extra": 7}, "why")  # fmt: skip
    head = get_recipe("torch-head-on-cache").action("net", {"lr": 0.003})
    assert isinstance(head, Finetune)
    assert head.blocks == ("head",)
    assert head.options == {"lr": 0.003, "head_cache": True}  # None leaves it to the planner
    assert get_recipe("torch-surgical").action("net").blocks == ()  # auto: the planner chooses


def test_lookups_name_close_matches_and_known_versions() -> None:
    with pytest.raises(UnknownRecipe, match="did you mean 'lightgbm-continue'"):
        get_recipe("lightgbm-continu")
    with pytest.raises(UnknownRecipe, match=r"has no version 3.*its versions: 1"):
        get_recipe("lightgbm-continue@3")
    with pytest.raises(LookupError):
        get_recipe("nothing-like-it")
    with pytest.raises(RecipeError, match="version must be an int") as typed:
        get_recipe("sklearn-refit-window@abc")  # a user's reference: no advice for authors
    assert typed.value.hint == "`regrow recipes list` shows each recipe's name@version"


# -- plans store the recipe ---------------------------------------------------------------


def test_an_action_round_trips_its_recipe_and_a_plan_from_before_recipes_still_loads() -> None:
    action = get_recipe("lightgbm-continue").action("alpha", {"extra": 7})
    plan = Plan(system="s", version="s:v1", version_id="v" * 32, window="w" * 64,
                actions=(action,))  # fmt: skip
    body = plan.to_dict()
    assert body["actions"][0]["recipe"] == "lightgbm-continue@1"
    assert body["actions"][0]["recipe_params"] == {"extra": 7}
    again = Plan.from_dict(body)
    assert again.actions[0].recipe == "lightgbm-continue@1"
    assert again.id == plan.id
    old = json.loads(json.dumps(body))
    for a in old["actions"]:
        del a["recipe"], a["recipe_params"]
    before = Plan.from_dict(old)
    assert before.actions[0].recipe == ""
    assert before.actions[0].params() == {"extra": 7}
    assert before.to_dict() == old  # stored before recipes: read back as it was stored


# -- the policy's choice ------------------------------------------------------------------


def _members() -> dict[str, Any]:
    from lightgbm import LGBMRegressor
    from sklearn.ensemble import HistGradientBoostingRegressor

    from regrow.components.base import Member

    return {
        "gbm": Member("gbm", LGBMRegressor(), inputs=["x"]),
        "hgb": Member("hgb", HistGradientBoostingRegressor(), inputs=["x"]),
    }


def test_a_policy_chooses_a_recipe_per_member_or_per_action_kind() -> None:
    m = _members()
    policy = Policy.from_dict({"planning": {"continue_extra": 40, "recipes": {
        "gbm": "lightgbm-leaf-refit",
        "continue": {"recipe": "lightgbm-continue", "params": {"extra": 7}},
    }}})  # fmt: skip
    planning = policy.planning
    leaf = choose(planning, m["gbm"], "refit")  # the member's key: how it is updated
    assert (leaf.recipe.ref, leaf.by) == ("lightgbm-leaf-refit@1", "planning.recipes.gbm")
    cont = choose(planning, m["hgb"], "continue")  # the kind's recipe does not apply: default
    assert cont.recipe.ref == "sklearn-boosting-continue@1"
    assert dict(cont.params) == {"extra": 40}
    assert "does not apply to hgb" in cont.note
    plain = choose(Policy.default().planning, m["gbm"], "continue")
    assert (plain.recipe.ref, dict(plain.params), plain.by) == (
        "lightgbm-continue@1", {"extra": 100}, "default")  # fmt: skip
    wide = choose(
        Policy.from_dict(
            {
                "planning": {
                    "recipes": {"continue": {"recipe": "lightgbm-continue", "params": {"extra": 7}}}
                }
            }
        ).planning,
        m["gbm"],
        "continue",
    )
    assert wide.action("gbm").update_spec() == ("continue", {"extra": 7})  # fmt: skip


def test_a_member_recipe_that_does_not_apply_stops_planning() -> None:
    policy = Policy.from_dict({"planning": {"recipes": {"hgb": "lightgbm-leaf-refit"}}})
    with pytest.raises(PlanError, match=r"does not apply to 'hgb' \(a sklearn-hgb component\)"):
        choose(policy.planning, _members()["hgb"], "refit")


@pytest.mark.parametrize(
    ("recipes", "names"),
    [
        ({"gbm": "lightgbm-leaf-refti"},
         ["planning.recipes.gbm", "did you mean 'lightgbm-leaf-refit'"]),
        ({"continue": "lightgbm-leaf-refit"}, ["makes leaf-refit actions, not continue"]),
        ({"gbm": {"recipe": "lightgbm-continue", "params": {"extar": 7}}},
         ["planning.recipes.gbm.params.extar", "did you mean 'extra'"]),
        ({"gbm": {"recipe": "lightgbm-continue", "params": {"extra": 0}}},
         ["extra must be an int >= 1", "(got 0)"]),
        ({"gbm": "lightgbm-continue@4"}, ["has no version 4"]),
        ({"reweight": "ensemble-hedge-refresh"}, ["made by `regrow refresh`"]),
        ({"gbm": {"recipe": "lightgbm-continue", "extra": 7}}, ["give a recipe name, or"]),
    ],
)  # fmt: skip
def test_a_bad_recipe_in_the_policy_is_a_policy_error(recipes: Any, names: list[str]) -> None:
    with pytest.raises(PolicyError) as caught:
        Policy.from_dict({"planning": {"recipes": recipes}})
    for name in names:
        assert name in str(caught.value)


# -- entry points -------------------------------------------------------------------------


def test_entry_points_register_recipes_and_a_bad_one_is_named_not_fatal(
    entry_points: list[importlib.metadata.EntryPoint],
) -> None:
    entry_points += [
        _ep("acme", "acme_recipes:RECIPE"),
        _ep("acme-more", "acme_recipes:several"),
        _ep("missing", "no_such_module_for_regrow:RECIPES"),
        _ep("boom", "acme_recipes:boom"),
        _ep("number", "acme_recipes:NOT_A_RECIPE"),
        _ep("clash", "acme_recipes:CLASH"),
        _ep("twice", "acme_recipes:RECIPE"),
    ]
    registry = reload_recipes()
    acme = get_recipe("acme-continue")
    assert (acme.ref, acme.source) == (
        "acme-continue@2",
        "entry point 'acme' (acme_recipes:RECIPE)",
    )
    assert get_recipe("acme-leaf@1.2.0").defaults() == {"decay_rate": 0.5}
    assert get_recipe("lightgbm-continue").version == 1  # a built-in's name is reserved
    errors = {e.message.split(" (")[0]: e for e in registry.errors}
    assert set(errors) == {
        "entry point 'missing'", "entry point 'boom'", "entry point 'number'",
        "entry point 'clash'", "entry point 'twice'",
    }  # fmt: skip
    assert "ModuleNotFoundError" in errors["entry point 'missing'"].message
    assert "raised ZeroDivisionError" in errors["entry point 'boom'"].message
    assert "gave a int (42), not a Recipe" in errors["entry point 'number'"].message
    assert "has the name of a built-in recipe" in errors["entry point 'clash'"].message
    assert "acme-lightgbm-continue" in (errors["entry point 'clash'"].hint or "")
    assert "already registered by entry point 'acme'" in errors["entry point 'twice'"].message
    with pytest.raises(UnknownRecipe, match=r"5 entry point.* could not load"):
        get_recipe("acme-contineu")


def test_a_policy_can_choose_an_entry_point_recipe(
    entry_points: list[importlib.metadata.EntryPoint],
) -> None:
    entry_points.append(_ep("acme", "acme_recipes:RECIPE"))
    reload_recipes()
    policy = Policy.from_dict({"planning": {"recipes": {"continue": "acme-continue"}}})
    choice = choose(policy.planning, _members()["gbm"], "continue")
    action = choice.action("gbm")
    assert (action.recipe, action.update_spec()) == ("acme-continue@2", ("continue", {"extra": 30}))


def test_the_cli_lists_and_shows_recipes(
    capsys: pytest.CaptureFixture[str], entry_points: list[importlib.metadata.EntryPoint]
) -> None:
    code, out, err = run(capsys, "recipes", "list")
    assert code == 0
    assert not err
    assert "lightgbm-continue" in out
    assert "torch-head-on-cache" in out
    assert "builtin" in out
    code, out, _ = run(capsys, "recipes", "show", "lightgbm-leaf-refit", "--json")
    shown = json.loads(out)
    assert code == 0
    assert shown["ref"] == "lightgbm-leaf-refit@1"
    assert shown["versions"] == ["1"]
    assert shown["params"][0] == {"name": "decay_rate", "type": "float", "default": 0.0,
                                  "constraint": "a number >= 0 and < 1",
                                  "doc": shown["params"][0]["doc"]}  # fmt: skip
    code, out, _ = run(capsys, "recipes", "show", "torch-surgical")
    assert code == 0
    assert "blocks" in out
    assert "budget: none of its own" in out
    code, _, err = run(capsys, "recipes", "show", "lightgbm-contnue")
    assert code == 2
    assert "did you mean 'lightgbm-continue'" in err
    assert "Traceback" not in err

    entry_points += [_ep("acme", "acme_recipes:RECIPE"), _ep("missing", "no_such_mod:X")]
    reload_recipes()
    code, out, err = run(capsys, "recipes", "list", "--json")
    listed = json.loads(out)
    assert code == 1  # the rest listed; the broken entry point named
    assert {r["ref"]: r["source"] for r in listed["recipes"]}["acme-continue@2"].startswith(
        "entry point 'acme'"
    )
    assert "entry point 'missing'" in listed["errors"][0]["message"]
    code, out, err = run(capsys, "recipes", "list")
    assert code == 1
    assert "acme-continue" in out
    assert "error: entry point 'missing'" in err
    assert "Traceback" not in err
    code, out, err = run(capsys, "recipes", "show", "acme-continue")
    assert code == 0
    assert "budget: 5 CPU seconds" in out
    assert "warning: entry point" in err


def test_an_action_named_for_a_recipe_lists_the_recipes_that_make_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `regrow recipes show refit` said "unknown recipe 'refit'" with no close name, and
    # `show @1` said "unknown recipe ''".
    with pytest.raises(UnknownRecipe, match="unknown recipe 'refit'") as refit:
        get_recipe("refit")
    assert str(refit.value.hint).startswith(
        "'refit' is an action; the recipes that make it: sklearn-refit-window. "
    )
    with pytest.raises(UnknownRecipe) as cont:
        get_recipe("continue")
    assert "lightgbm-continue, sklearn-boosting-continue, xgboost-continue" in str(cont.value.hint)
    with pytest.raises(UnknownRecipe, match="recipe '@1' has no name before its version"):
        get_recipe("@1")
    code, _, err = run(capsys, "recipes", "show", "leaf-refit")
    assert code == 2
    assert "lightgbm-leaf-refit, xgboost-leaf-refresh" in err
    assert "Traceback" not in err
