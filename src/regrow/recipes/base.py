"""A recipe: a named, versioned way to build or update a component, with its parameters.

A :class:`Recipe` is plain data. It names the **action** it produces (``refit``,
``continue``, ``leaf-refit``, ``finetune``, ``reweight``, ``add-member``, ``retire-member``,
``full-retrain``: :mod:`regrow.plan.actions`), the **families** of components it applies to,
its **parameters** (:class:`Param`: a type, a default, bounds, documentation), an optional
**budget** (``max_cpu_seconds``: an action estimated above it needs approval) and its
documentation. :meth:`Recipe.action` turns it into the action a plan holds, the recipe's
``name@version`` and the parameters it used recorded on the action.

A recipe the planner makes (``made_by="plan"``) may only declare parameters its action takes
(``continue`` takes ``extra``, ``leaf-refit`` ``decay_rate``, ``finetune`` ``blocks`` and the
fine-tuning options): every parameter changes what runs, none is decoration.

Families (:func:`family_of`) are those :func:`regrow.plan.updates.supports` tells apart:
``lightgbm``, ``xgboost``, ``sklearn-hgb``, ``sklearn-gb``, ``torch``, ``other`` (any other
member's estimator), plus ``ensemble`` and ``transform``; ``member`` stands for every member
family and ``*`` for any component.

>>> r = Recipe("acme-continue", 2, "continue", applies_to=("lightgbm",),
...            params=(Param("extra", "int", 30, ge=1, doc="rounds added"),),
...            doc="Thirty more rounds on the window.")
>>> r.ref, r.resolve({"extra": 7})
('acme-continue@2', {'extra': 7})
>>> r.resolve({"extra": 0})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
regrow.recipes.errors.RecipeError: recipe 'acme-continue@2': extra must be an int >= 1 (got 0); ...
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from regrow.recipes.errors import RecipeError, UnknownRecipe
from regrow.recipes.params import Param

if TYPE_CHECKING:
    from regrow.plan.actions import Action

__all__ = [
    "ACTION_PARAMS",
    "FAMILIES",
    "MADE_BY",
    "Param",
    "Recipe",
    "RecipeError",
    "UnknownRecipe",
    "family_of",
    "parse_ref",
    "version_key",
]


#: Every action kind a recipe can produce (the policy's ``ACTION_NAMES``).
ACTION_KINDS: tuple[str, ...] = (
    "refit", "continue", "leaf-refit", "reweight", "add-member", "retire-member",
    "full-retrain", "finetune",
)  # fmt: skip

#: Member families, as :func:`regrow.plan.updates.supports` tells them apart.
MEMBER_FAMILIES: tuple[str, ...] = (
    "lightgbm", "xgboost", "sklearn-hgb", "sklearn-gb", "torch", "other",
)  # fmt: skip
#: Every family a recipe may name, plus ``member`` (any member) and ``*`` (any component).
FAMILIES: tuple[str, ...] = (*MEMBER_FAMILIES, "ensemble", "transform", "member", "*")

#: The families each action can change (mirrors :func:`regrow.plan.updates.supports`).
_ACTION_FAMILIES: dict[str, frozenset[str]] = {
    "refit": frozenset([*MEMBER_FAMILIES, "ensemble", "transform"]),
    "continue": frozenset({"lightgbm", "xgboost", "sklearn-hgb", "sklearn-gb"}),
    "leaf-refit": frozenset({"lightgbm", "xgboost"}),
    "finetune": frozenset({"torch"}),
    "reweight": frozenset({"ensemble"}),
    "add-member": frozenset(MEMBER_FAMILIES),
    "retire-member": frozenset(MEMBER_FAMILIES),
    "full-retrain": frozenset([*MEMBER_FAMILIES, "ensemble", "transform"]),
}

#: The parameters each action takes from a recipe the planner makes. ``finetune`` takes
#: ``blocks`` ("auto": the planner's gradient diagnostic and probes choose) and the options
#: of :func:`regrow.plan.finetune.finetune_fitted` that a plan's run can honour (replay needs
#: reference rows a plan's run does not pass, so ``replay_share`` is not among them).
_FINETUNE = (
    "blocks", "lr", "epochs", "max_steps", "batch_size", "val_fraction", "patience",
    "min_steps", "l2sp", "weight_decay", "head_cache",
)  # fmt: skip
ACTION_PARAMS: dict[str, frozenset[str]] = {
    "refit": frozenset(),
    "continue": frozenset({"extra"}),
    "leaf-refit": frozenset({"decay_rate"}),
    "finetune": frozenset(_FINETUNE),
    "reweight": frozenset(),
    "add-member": frozenset(),
    "retire-member": frozenset(),
    "full-retrain": frozenset(),
}

#: Who makes a recipe's actions, for people.
MADE_BY: dict[str, str] = {"plan": "the planner", "refresh": "`regrow refresh`"}

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.-]+)?$")


def family_of(component: Any) -> str:
    """The family of a component (a member's by its estimator's class), for ``applies_to``.

    >>> from sklearn.linear_model import LinearRegression
    >>> from regrow.components.base import Member
    >>> family_of(Member("lr", LinearRegression(), inputs=["x"]))
    'other'
    """
    kind = getattr(component, "kind", None)
    if kind in ("ensemble", "transform"):
        return str(kind)
    return estimator_family(getattr(component, "estimator", component))


def estimator_family(estimator: Any) -> str:
    """The family of an estimator by its class: what decides which updates it supports
    (:func:`regrow.plan.updates.supports`) and which recipes apply to it."""
    mod, name = type(estimator).__module__, type(estimator).__name__
    if mod.startswith("lightgbm"):
        return "lightgbm"
    if mod.startswith("xgboost"):
        return "xgboost"
    if name.startswith("HistGradientBoosting"):
        return "sklearn-hgb"
    if name.startswith("GradientBoosting"):
        return "sklearn-gb"
    if mod.startswith("regrow.components.torch"):
        return "torch"
    return "other"


def version_key(version: int | str) -> tuple[int, int, int, int]:
    """A sort key: ``3`` is ``3.0.0``; a pre-release (``2.0.0-rc1``) sorts before its release."""
    if isinstance(version, int):
        return (version, 0, 0, 1)
    m = _SEMVER.match(version)
    assert m is not None, version
    pre = 0 if "-" in version.split("+", 1)[0] else 1
    return (int(m[1]), int(m[2]), int(m[3]), pre)


def _check_version(version: Any, where: str, *, reading: bool = False) -> int | str:
    if isinstance(version, int) and not isinstance(version, bool) and version >= 1:
        return version
    if isinstance(version, str) and version.isdigit() and int(version) >= 1:
        return int(version)
    if isinstance(version, str) and _SEMVER.match(version):
        return version
    raise RecipeError(
        f"{where}: version must be an int >= 1 or a semver string such as '1.2.0' "
        f"(got {version!r})",
        hint="`regrow recipes list` shows each recipe's name@version"
        if reading  # a reference typed by a user, not a recipe being defined
        else "bump the version whenever a recipe's behaviour or defaults change",
    )


def parse_ref(ref: str) -> tuple[str, int | str | None]:
    """``"name@version"`` (or ``"name"``) as ``(name, version or None)``.

    >>> parse_ref("lightgbm-continue@1"), parse_ref("acme@1.2.0"), parse_ref("full-retrain")
    (('lightgbm-continue', 1), ('acme', '1.2.0'), ('full-retrain', None))
    """
    if not isinstance(ref, str) or not ref:
        raise UnknownRecipe(
            f"a recipe is named by a string 'name' or 'name@version' (got {ref!r})",
            hint="list them with `regrow recipes list`",
        )
    name, at, version = ref.partition("@")
    if not name:  # "@1": "unknown recipe ''" said nothing of what was missing
        raise UnknownRecipe(
            f"recipe {ref!r} has no name before its version",
            hint="name it 'name' or 'name@version'; `regrow recipes list` shows them",
        )
    return name, (_check_version(version, f"recipe {ref!r}", reading=True) if at else None)


@dataclass(frozen=True)
class Recipe:
    """A named, versioned way to build or update a component (see the module docstring).

    ``source`` is filled in by the registry (``builtin``, or the entry point that gave it);
    ``made_by`` says which part of regrow makes its actions: ``plan`` (the planner, or a plan
    written by hand) or ``refresh`` (``regrow refresh``), whose parameters are the policy's
    ``ensemble`` section rather than the action's.
    """

    name: str
    version: int | str
    action_kind: str
    applies_to: tuple[str, ...] = ("*",)
    params: tuple[Param, ...] = ()
    doc: str = ""
    max_cpu_seconds: float | None = None
    made_by: Literal["plan", "refresh"] = "plan"
    source: str = "builtin"
    _by_name: dict[str, Param] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"recipe {self.name!r}"
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise RecipeError(
                f"{where}: a name is lowercase letters, digits, '.', '_' and '-', starting with "
                "a letter or digit (no '@', which separates the version)",
                hint="e.g. 'acme-lightgbm-continue'",
            )
        object.__setattr__(self, "version", _check_version(self.version, where))
        if self.action_kind not in ACTION_KINDS:
            close = difflib.get_close_matches(str(self.action_kind), ACTION_KINDS, n=1)
            raise RecipeError(
                f"{where}: unknown action {self.action_kind!r}",
                hint=(f"did you mean {close[0]!r}? " if close else "")
                + f"actions: {', '.join(ACTION_KINDS)}",
            )
        applies = (self.applies_to,) if isinstance(self.applies_to, str) else self.applies_to
        object.__setattr__(self, "applies_to", tuple(applies))
        unknown = [f for f in self.applies_to if f not in FAMILIES]
        if unknown or not self.applies_to:
            raise RecipeError(
                f"{where}: applies_to names unknown families {unknown}"
                if unknown
                else f"{where}: applies_to is empty",
                hint=f"families: {', '.join(FAMILIES)}",
            )
        wrong = sorted(self.families() - _ACTION_FAMILIES[self.action_kind])
        if wrong and not {"*", "member"} & set(self.applies_to):
            raise RecipeError(
                f"{where}: a {self.action_kind} cannot change {', '.join(wrong)} components",
                hint=f"{self.action_kind} applies to "
                f"{', '.join(sorted(_ACTION_FAMILIES[self.action_kind]))}",
            )
        object.__setattr__(self, "params", tuple(self.params))
        by_name: dict[str, Param] = {}
        for p in self.params:
            if not isinstance(p, Param):
                raise RecipeError(f"{where}: params must be Param objects (got {p!r})")
            if p.name in by_name:
                raise RecipeError(f"{where}: parameter {p.name!r} is declared twice")
            by_name[p.name] = p
        takes = ACTION_PARAMS[self.action_kind]
        extra = sorted(set(by_name) - takes)
        if self.made_by == "plan" and extra:
            raise RecipeError(
                f"{where}: {self.action_kind} does not take {', '.join(map(repr, extra))}",
                hint=f"{self.action_kind} takes "
                + (", ".join(sorted(takes)) if takes else "no parameters"),
            )
        object.__setattr__(self, "_by_name", by_name)
        budget = self.max_cpu_seconds
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, int | float) or budget <= 0
        ):
            raise RecipeError(f"{where}: max_cpu_seconds must be a number > 0 (got {budget!r})")
        if not isinstance(self.doc, str) or not self.doc.strip():
            raise RecipeError(
                f"{where}: a recipe needs its documentation (doc)",
                hint="say what it does, when to use it, and what each parameter changes",
            )

    # -- what it is -----------------------------------------------------------------------

    @property
    def ref(self) -> str:
        """``name@version``: how plans and lineage name it."""
        return f"{self.name}@{self.version}"

    @property
    def summary(self) -> str:
        """The first line of the documentation."""
        return self.doc.strip().splitlines()[0]

    def families(self) -> set[str]:
        """The families it applies to, ``member`` and ``*`` expanded."""
        out: set[str] = set()
        for f in self.applies_to:
            if f == "*":
                out |= _ACTION_FAMILIES[self.action_kind]
            elif f == "member":
                out |= set(MEMBER_FAMILIES) & _ACTION_FAMILIES[self.action_kind]
            else:
                out.add(f)
        return out

    def applies(self, component: Any) -> bool:
        """Whether it applies to ``component`` (a system's component, or a family's name)."""
        family = component if isinstance(component, str) else family_of(component)
        return family in self.families()

    def defaults(self) -> dict[str, Any]:
        """Every parameter's default."""
        return {p.name: p.default for p in self.params}

    # -- using it ---------------------------------------------------------------------------

    def resolve(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The defaults with ``overrides`` applied, every value checked.

        An unknown key names the closest parameter; a bad value says what a valid one is.
        """
        given = dict(overrides or {})
        for key, message in self.problems(given):
            raise RecipeError(
                f"recipe {self.ref!r}: {key} {message} (got {given[key]!r})",
                hint=self.hint_for(key),
            )
        return {**self.defaults(), **dict(overrides or {})}

    def problems(self, overrides: Mapping[str, Any]) -> list[tuple[str, str]]:
        """``(key, what is wrong)`` for each bad override (empty when all are valid)."""
        found: list[tuple[str, str]] = []
        for key, value in overrides.items():
            p = self._by_name.get(str(key))
            if p is None:
                found.append((str(key), "is not a parameter of this recipe"))
                continue
            what = p.problem(value)
            if what is not None:
                found.append((p.name, f"must be {what}"))
        return found

    def hint_for(self, key: str) -> str:
        """What to do about a bad ``key``: the closest parameter, or where to read them."""
        names = list(self._by_name)
        if key not in self._by_name:
            close = difflib.get_close_matches(key, names, n=1)
            did = f"did you mean {close[0]!r}? " if close else ""
            return did + (f"parameters: {', '.join(names)}" if names else "it takes none")
        return f"see `regrow recipes show {self.ref}`"

    def action(
        self,
        component: str,
        overrides: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> Action:
        """The action this recipe makes for ``component``, naming the recipe and its params.

        ``fields`` are the action's other fields (``reason``, ``gain``, ``weights`` for a
        reweight, ``new_name`` for an added member, ``blocks`` chosen by a diagnostic).

        >>> from regrow.recipes import get_recipe
        >>> a = get_recipe("lightgbm-continue").action("gbm", {"extra": 7})
        >>> a.kind, a.update_spec(), a.recipe
        ('continue', ('continue', {'extra': 7}), 'lightgbm-continue@1')
        """
        from regrow.plan.actions import ACTIONS

        params = self.resolve(overrides)
        given: dict[str, Any] = {}
        if self.made_by == "plan":
            if self.action_kind == "finetune":
                blocks = params.get("blocks", "auto")
                if "blocks" not in fields:
                    fields["blocks"] = () if blocks == "auto" else tuple(blocks)
                given["options"] = {
                    k: v for k, v in params.items() if k != "blocks" and v is not None
                }
            else:
                given = {k: v for k, v in params.items() if v is not None}
        return ACTIONS[self.action_kind](
            component, **given, **fields, recipe=self.ref, recipe_params=params
        )

    def to_dict(self) -> dict[str, Any]:
        """The recipe as JSON (`regrow recipes show --json`)."""
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "action": self.action_kind,
            "applies_to": list(self.applies_to),
            "made_by": self.made_by,
            "params": [p.to_dict() for p in self.params],
            "max_cpu_seconds": self.max_cpu_seconds,
            "doc": self.doc.strip(),
            "source": self.source,
        }


def describe_families(families: Iterable[str]) -> str:
    """``applies_to`` for people: ``*`` reads "any component", ``member`` "any member"."""
    words = {"*": "any component", "member": "any member"}
    return ", ".join(words.get(f, f) for f in families)
