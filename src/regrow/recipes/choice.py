"""Which recipe the planner uses for an action: the policy's choice, else the default.

The policy's ``planning.recipes`` maps a **component name** or an **action kind** to a
recipe, with optional parameter overrides::

    planning:
      recipes:
        gbm: lightgbm-leaf-refit                         # member gbm: leaf refits
        continue: {recipe: lightgbm-continue@1, params: {extra: 7}}
        net: {recipe: torch-head-on-cache, params: {lr: 0.003}}

:func:`validate_choices` checks it when the policy loads: an unknown recipe or version, bad
parameters, a kind key whose recipe makes another action, or a recipe ``regrow refresh``
makes, are policy errors that name the key and the value (with the closest names).

:func:`choose` picks the recipe of one action, in this order:

1. the key naming the **component**: for an update (``refit``, ``continue``, ``leaf-refit``,
   ``finetune``), an update recipe decides how the member is updated, whatever
   ``planning.prefer`` says; for another action, a recipe of that action. It must apply to
   the component's family, or planning stops with a :class:`~regrow.errors.PlanError`;
2. the key naming the **action kind**, when its recipe applies to the component's family
   (another family gets the default, and the action's reason says so);
3. the **default** for the action and family (:data:`~regrow.recipes.builtin.DEFAULTS`),
   with ``planning.continue_extra`` / ``planning.leaf_refit_decay`` as ``extra`` /
   ``decay_rate``: a policy that names no recipe plans what it planned before recipes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from regrow.errors import PlanError
from regrow.recipes.base import ACTION_KINDS, MADE_BY, Recipe, RecipeError, family_of
from regrow.recipes.builtin import DEFAULTS
from regrow.recipes.registry import recipes

__all__ = ["UPDATE_KINDS", "Choice", "choose", "validate_choices"]

#: The actions that update a member in place of one another.
UPDATE_KINDS = frozenset({"refit", "continue", "leaf-refit", "finetune"})


@dataclass(frozen=True)
class Choice:
    """A recipe with the parameters it will use, and where the choice came from."""

    recipe: Recipe
    params: Mapping[str, Any]
    by: str  # "planning.recipes.<key>" or "default"
    note: str = ""  # why a policy's kind-wide choice was not used, when it was not

    def action(self, component: str, **fields: Any) -> Any:
        """The recipe's action for ``component`` (see :meth:`Recipe.action`)."""
        return self.recipe.action(component, self.params, **fields)


def _error(loc: tuple[str, ...], message: str, value: Any) -> InitErrorDetails:
    return {
        "type": PydanticCustomError("recipe_error", message),
        "loc": loc,
        "input": value,
    }


def validate_choices(value: Any) -> dict[str, dict[str, Any]]:
    """``planning.recipes`` normalised to ``{key: {"recipe": ref, "params": {...}}}``.

    Raises a pydantic ``ValidationError`` located at the key, so that a policy error reads
    ``planning.recipes.gbm: unknown recipe 'lightgbm-leaf-refti'; did you mean ...``.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(
            f"recipes must map a component name or an action kind to a recipe "
            f"(got a {type(value).__name__})"
        )
    out: dict[str, dict[str, Any]] = {}
    errors: list[InitErrorDetails] = []
    for key, given in value.items():
        key = str(key)
        entry = {"recipe": given, "params": {}} if isinstance(given, str) else given
        if (
            not isinstance(entry, Mapping)
            or set(entry) - {"recipe", "params"}
            or ("recipe" not in entry)
        ):
            errors.append(_error((key,), "give a recipe name, or {recipe: NAME[@VERSION], "
                                 "params: {...}}", given))  # fmt: skip
            continue
        params = entry.get("params") or {}
        if not isinstance(params, Mapping):
            errors.append(_error((key, "params"), "params must be a mapping", params))
            continue
        try:
            recipe = recipes().get(str(entry["recipe"]))
        except RecipeError as exc:
            errors.append(_error((key,), f"{exc.message}; {exc.hint}", entry["recipe"]))
            continue
        if recipe.made_by != "plan":
            errors.append(_error(
                (key,), f"{recipe.ref} is made by {MADE_BY[recipe.made_by]}, not by the "
                "planner; its parameters are the policy's ensemble section", entry["recipe"],
            ))  # fmt: skip
            continue
        if key in ACTION_KINDS and recipe.action_kind != key:
            errors.append(_error(
                (key,), f"{recipe.ref} makes {recipe.action_kind} actions, not {key}",
                entry["recipe"],
            ))  # fmt: skip
            continue
        bad = recipe.problems(params)
        for name, message in bad:
            errors.append(_error((key, "params", name), f"{name} {message}; "
                                 f"{recipe.hint_for(name)}", params.get(name)))  # fmt: skip
        if not bad:
            out[key] = {"recipe": str(entry["recipe"]), "params": dict(params)}
    if errors:
        raise ValidationError.from_exception_data("recipes", errors)
    return out


def _legacy(recipe: Recipe, planning: Any) -> dict[str, Any]:
    """The policy's older keys, for a recipe chosen by default."""
    names = {p.name for p in recipe.params}
    out: dict[str, Any] = {}
    if "extra" in names:
        out["extra"] = planning.continue_extra
    if "decay_rate" in names:
        out["decay_rate"] = planning.leaf_refit_decay
    return out


def _explicit(key: str, entry: Mapping[str, Any]) -> Choice:
    recipe = recipes().get(str(entry["recipe"]))
    return Choice(recipe, recipe.resolve(entry.get("params") or {}), f"planning.recipes.{key}")


def choose(planning: Any, component: Any, kind: str) -> Choice:
    """The recipe of a ``kind`` action on ``component`` (a system's component, or ``"*"`` for
    a full retrain) under the policy's ``planning`` section (see the module docstring)."""
    chosen: Mapping[str, Mapping[str, Any]] = getattr(planning, "recipes", None) or {}
    name = "*" if component == "*" else str(component.name)
    family = "*" if component == "*" else family_of(component)
    own = chosen.get(name)
    if own is not None:
        c = _explicit(name, own)
        fits = c.recipe.action_kind == kind or (
            kind in UPDATE_KINDS and c.recipe.action_kind in UPDATE_KINDS
        )
        if fits:
            if family != "*" and not c.recipe.applies(family):
                raise PlanError(
                    f"the policy's planning.recipes.{name} is {c.recipe.ref}, which does not "
                    f"apply to {name!r} ({_family_text(family)})",
                    hint=f"{c.recipe.ref} applies to {', '.join(sorted(c.recipe.families()))}; "
                    "see `regrow recipes list`",
                )
            return c
    note = ""
    wide = chosen.get(kind)
    if wide is not None:
        c = _explicit(kind, wide)
        if family == "*" or c.recipe.applies(family):
            return c
        note = (
            f"planning.recipes.{kind} ({c.recipe.ref}) does not apply to {name} ({family}): "
            "the default recipe is used"
        )
    default = DEFAULTS.get((kind, family), kind if kind == "full-retrain" else None)
    if default is None:
        raise PlanError(
            f"no recipe makes a {kind} of {name!r} ({_family_text(family)})",
            hint="name one in the policy's planning.recipes, or choose another action",
        )
    recipe = recipes().get(default)
    return Choice(recipe, recipe.resolve(_legacy(recipe, planning)), "default", note)


def _family_text(family: str) -> str:
    """``a lightgbm component``; ``a component of family 'other'`` (no "a other").

    >>> _family_text("lightgbm"), _family_text("other")
    ('a lightgbm component', "a component of family 'other'")
    """
    return f"a component of family {family!r}" if family == "other" else f"a {family} component"
