"""Recipes: named, versioned, reusable ways to build or update a component.

A plan's every action names the recipe that made it (``lightgbm-continue@1``) and the
parameters it used; lineage shows, for each component a plan's run built, that recipe. The
built-ins ship with regrow (:mod:`regrow.recipes.builtin`); teams add their own through
Python entry points of group ``regrow.recipes`` (:mod:`regrow.recipes.registry`); the policy
chooses one per component or per action kind (:mod:`regrow.recipes.choice`).

=================== ==========================================================================
module              what lives there
=================== ==========================================================================
``base``            :class:`Recipe`: its action, families, versions
``params``          :class:`Param`: a parameter's type, default, bounds, documentation
``errors``          :class:`RecipeError`, :class:`UnknownRecipe`
``builtin``         the recipes that ship with regrow, and the planner's defaults
``registry``        the built-ins and entry points, looked up by ``name[@version]``
``choice``          the policy's ``planning.recipes``: validation, and the choice per action
=================== ==========================================================================

>>> from regrow.recipes import get_recipe
>>> r = get_recipe("lightgbm-continue")
>>> r.ref, r.action_kind, r.applies_to, r.defaults()
('lightgbm-continue@1', 'continue', ('lightgbm',), {'extra': 100})
"""

from __future__ import annotations

from regrow.recipes.base import (
    FAMILIES,
    Param,
    Recipe,
    RecipeError,
    UnknownRecipe,
    family_of,
    parse_ref,
)
from regrow.recipes.registry import GROUP, Registry, get_recipe, recipes, reload_recipes

__all__ = [
    "FAMILIES",
    "GROUP",
    "Param",
    "Recipe",
    "RecipeError",
    "Registry",
    "UnknownRecipe",
    "family_of",
    "get_recipe",
    "parse_ref",
    "recipes",
    "reload_recipes",
]
