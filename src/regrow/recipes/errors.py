"""The recipes' errors, under :class:`~regrow.errors.ConfigError`::

ConfigError (ValueError)
└── RecipeError               a recipe badly defined, given bad parameters, or that cannot load
    └── UnknownRecipe (LookupError)   no recipe of that name or version
"""

from __future__ import annotations

from regrow.errors import ConfigError

__all__ = ["RecipeError", "UnknownRecipe"]


class RecipeError(ConfigError):
    """A recipe that is badly defined, given bad parameters, or cannot load."""


class UnknownRecipe(RecipeError, LookupError):
    """No recipe of that name (or version) is registered."""
