"""Where recipes come from: the built-ins, and Python entry points of group ``regrow.recipes``.

A team ships its recipes in any installed package::

    # pyproject.toml of the team's package
    [project.entry-points."regrow.recipes"]
    acme = "acme_ml.recipes:RECIPES"

Each entry point is a :class:`~regrow.recipes.base.Recipe`, an iterable of them, or a
callable returning either. They are loaded lazily, once per process, the first time a
recipe is looked up (:func:`recipes`). An entry point that fails to import, raises, or gives
something else is **not fatal**: it is recorded as a :class:`~regrow.recipes.base.RecipeError`
that names it (:attr:`Registry.errors`; `regrow recipes list` prints them) and the others
still load.

**Names.** A built-in's name is reserved: an entry point recipe with the same name is
refused, whatever its version, so a plan or policy that names ``lightgbm-continue`` always
means regrow's (give yours a prefix: ``acme-lightgbm-continue``). Two entry points cannot both
register the same ``name@version``; one package may register several versions of one name,
and a name given without a version means its highest version.
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata as metadata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from regrow.recipes.base import Recipe, RecipeError, UnknownRecipe, parse_ref, version_key

__all__ = ["GROUP", "Registry", "get_recipe", "load_registry", "recipes", "reload_recipes"]

#: The entry point group teams register recipes under.
GROUP = "regrow.recipes"


@dataclass
class Registry:
    """Recipes by name and version, and the entry points that could not load."""

    by_name: dict[str, dict[int | str, Recipe]] = field(default_factory=dict)
    errors: list[RecipeError] = field(default_factory=list)

    def __iter__(self) -> Iterator[Recipe]:
        """Every recipe: by name, then version."""
        for name in sorted(self.by_name):
            versions = self.by_name[name]
            yield from (versions[v] for v in sorted(versions, key=version_key))

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self.by_name)

    def get(self, ref: str) -> Recipe:
        """The recipe ``name`` (its highest version) or ``name@version``.

        An unknown name names the closest ones; an unknown version lists the known ones.
        """
        name, version = parse_ref(ref)
        versions = self.by_name.get(name)
        if versions is None:
            # an action's name (`refit`, `continue`: the policy's kind keys) is what a user
            # types first; it named no recipe and had no close name
            making = sorted({r.name for r in self if r.action_kind == name})
            close = making or difflib.get_close_matches(name, self.names(), n=3)
            said = (
                f"{name!r} is an action; the recipes that make it: {', '.join(making)}. "
                if making
                else f"did you mean {' or '.join(map(repr, close))}? "
                if close
                else ""
            )
            raise UnknownRecipe(
                f"unknown recipe {name!r}",
                hint=said + "list them with `regrow recipes list`" + self._broken(),
            )
        if version is None:
            return versions[max(versions, key=version_key)]
        found = next((r for v, r in versions.items() if str(v) == str(version)), None)
        if found is None:
            known = ", ".join(str(v) for v in sorted(versions, key=version_key))
            raise UnknownRecipe(
                f"recipe {name!r} has no version {version!r}",
                hint=f"its versions: {known}; name it without a version for the highest",
            )
        return found

    def add(self, recipe: Recipe, source: str) -> None:
        """Register ``recipe`` from ``source``; a reserved name or a taken version is refused."""
        taken = self.by_name.get(recipe.name, {})
        builtin = next(iter(taken.values()), None)
        if builtin is not None and builtin.source == "builtin" and source != "builtin":
            raise RecipeError(
                f"{source}: recipe {recipe.name!r} has the name of a built-in recipe",
                hint=f"built-in names are reserved; give it a prefix, e.g. 'acme-{recipe.name}'",
            )
        for v, r in taken.items():
            if str(v) == str(recipe.version):
                raise RecipeError(
                    f"{source}: recipe {recipe.ref!r} is already registered by {r.source}",
                    hint="bump the version, or uninstall one of the two packages",
                )
        self.by_name.setdefault(recipe.name, {})[recipe.version] = replace(recipe, source=source)

    def _broken(self) -> str:
        if not self.errors:
            return ""
        return (
            f"; {len(self.errors)} entry point(s) of {GROUP} could not load "
            "(see `regrow recipes list`)"
        )


def _describe(ep: Any) -> str:
    dist = getattr(ep, "dist", None)
    where = f" of {dist.name} {dist.version}" if dist is not None else ""
    return f"entry point {ep.name!r} ({ep.value}{where})"


def _items(obj: Any) -> list[Any]:
    if isinstance(obj, Recipe):
        return [obj]
    if isinstance(obj, Iterable) and not isinstance(obj, str | bytes):
        return list(obj)
    return [obj]


def _load(ep: Any) -> list[Recipe]:
    """The recipes one entry point gives; a RecipeError naming it when it cannot."""
    what = _describe(ep)
    try:
        obj = ep.load()
    except Exception as exc:  # any import failure of a third-party package
        raise RecipeError(
            f"{what} of group {GROUP!r} failed to load: {type(exc).__name__}: {exc}",
            hint="fix or uninstall the package that declares it; the other recipes loaded",
        ) from None
    if callable(obj) and not isinstance(obj, Recipe):
        try:
            obj = obj()
        except Exception as exc:  # a third-party callable
            raise RecipeError(
                f"{what} of group {GROUP!r} raised {type(exc).__name__}: {exc}",
                hint="fix the callable it names; the other recipes loaded",
            ) from None
    found = _items(obj)
    bad = [x for x in found if not isinstance(x, Recipe)]
    if bad or not found:
        raise RecipeError(
            f"{what} of group {GROUP!r} gave "
            + (f"a {type(bad[0]).__name__} ({bad[0]!r:.60})" if bad else "no recipe")
            + ", not a Recipe",
            hint="an entry point names a regrow.recipes.Recipe, a list of them, or a callable "
            "returning either",
        )
    return found


def load_registry() -> Registry:
    """A fresh registry: the built-ins, then every entry point of :data:`GROUP`."""
    from regrow.recipes.builtin import BUILTINS

    reg = Registry()
    for recipe in BUILTINS:
        reg.add(recipe, "builtin")
    for ep in sorted(metadata.entry_points(group=GROUP), key=lambda e: (e.name, e.value)):
        try:
            for recipe in _load(ep):
                reg.add(recipe, _describe(ep))
        except RecipeError as exc:
            reg.errors.append(exc)
    return reg


@functools.cache
def recipes() -> Registry:
    """The process's registry, loaded on first use (:func:`reload_recipes` loads it again)."""
    return load_registry()


def reload_recipes() -> Registry:
    """Load the built-ins and entry points again (after installing a package, in tests)."""
    recipes.cache_clear()
    return recipes()


def get_recipe(ref: str) -> Recipe:
    """The recipe ``name`` or ``name@version`` (see :meth:`Registry.get`).

    >>> get_recipe("lightgbm-leaf-refit").defaults()
    {'decay_rate': 0.0}
    """
    return recipes().get(ref)
