"""Plan actions: small classes with parameters, validation, a cost estimate, and their effect.

An action changes one component (or, for a full retrain, all of them). Running a plan turns
each action into what the executor needs: a change to the system definition (add or retire a
member, new ensemble weights) and a binding (fit from scratch on the window, or update the
existing version). Every component no action names keeps its data and seed, so its version is
reused.

>>> from regrow.plan.policy import Policy
>>> action = Continue("geo", extra=50)
>>> action.kind, action.update_spec()
('continue', ('continue', {'extra': 50}))
>>> LeafRefit("geo", decay_rate=1.5).check(Policy.default())  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
regrow.errors.PlanError: leaf-refit of 'geo': decay_rate must be in [0, 1) (got 1.5); ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from regrow.components.base import Component, Ensemble, Member
from regrow.errors import PlanError
from regrow.plan.costs import CostEstimate, CostModel
from regrow.plan.gains import Gain
from regrow.plan.policy import Policy
from regrow.system import System

__all__ = [
    "ACTIONS",
    "Action",
    "AddMember",
    "Continue",
    "Finetune",
    "FullRetrain",
    "LeafRefit",
    "Refit",
    "RetireMember",
    "Reweight",
    "action_from_dict",
]


@dataclass(frozen=True)
class Action:
    """Base class: ``component`` is what the action changes; ``reason`` says why."""

    kind: ClassVar[str] = "action"
    #: How the component is produced: "fit" from scratch, an update's name, or "" (no fit).
    produces: ClassVar[str] = "fit"

    component: str
    reason: str = ""
    gain: Gain | None = None
    cost: CostEstimate | None = None
    approval: bool = False
    #: The recipe that made the action (``name@version``, :mod:`regrow.recipes`; empty for
    #: an action built by hand) and the recipe's parameters as it used them.
    recipe: str = ""
    recipe_params: Mapping[str, Any] = field(default_factory=dict)

    # -- what it does ---------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        """The action's own parameters (JSON-ready)."""
        return {}

    def update_spec(self) -> tuple[str, dict[str, Any]] | None:
        """``(update name, params)`` when the action updates the existing version."""
        return None

    def apply(self, system: System) -> System:
        """The system definition after this action (most actions leave it as is)."""
        return system

    def refits(self, system: System) -> list[str]:
        """Components this action fits or updates on the window."""
        return [self.component]

    # -- checking and costing -------------------------------------------------------------

    def check(self, policy: Policy, system: System | None = None) -> None:
        """Raise :class:`~regrow.errors.PlanError` when the action cannot run as given."""
        if system is not None and self.component not in system:
            system[self.component]  # raises with a close-match hint

    def estimate(self, costs: CostModel, system: System, rows: int) -> CostEstimate:
        """Estimated CPU seconds of the action on ``rows`` rows."""
        return _estimated(costs, self.component, system[self.component], self.produces, rows)

    # -- storing ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The action as JSON (what a stored plan holds)."""
        return {
            "kind": self.kind,
            "component": self.component,
            "params": self.params(),
            "reason": self.reason,
            "gain": self.gain.to_dict() if self.gain else None,
            "cost": (
                {
                    "cpu_seconds": self.cost.cpu_seconds,
                    "rate": self.cost.rate,
                    "rows": self.cost.rows,
                    "basis": self.cost.basis,
                }
                if self.cost
                else None
            ),
            "approval": self.approval,
            # Only when set: a plan stored before recipes reads back as it was stored.
            **(
                {"recipe": self.recipe, "recipe_params": dict(self.recipe_params)}
                if self.recipe
                else {}
            ),
        }

    def describe(self) -> str:
        """One line for people: the action and its parameters."""
        params = ", ".join(f"{k}={v}" for k, v in self.params().items())
        return f"{self.kind} {self.component}" + (f" ({params})" if params else "")


@dataclass(frozen=True)
class Refit(Action):
    """Fit the component again from scratch on the window (or window + retained rows)."""

    kind: ClassVar[str] = "refit"


@dataclass(frozen=True)
class Continue(Action):
    """Add ``extra`` boosting rounds fitted on the window to a GBDT member's trees."""

    kind: ClassVar[str] = "continue"
    produces: ClassVar[str] = "continue"
    extra: int = 100

    def params(self) -> dict[str, Any]:
        return {"extra": self.extra}

    def update_spec(self) -> tuple[str, dict[str, Any]]:
        return ("continue", {"extra": self.extra})

    def check(self, policy: Policy, system: System | None = None) -> None:
        super().check(policy, system)
        if not isinstance(self.extra, int) or isinstance(self.extra, bool) or self.extra < 1:
            raise PlanError(
                f"continue of {self.component!r}: extra must be an int >= 1 (got {self.extra!r})"
            )
        if system is not None and not _supports(system[self.component].estimator, "continue"):
            raise PlanError(
                f"cannot continue {self.component!r}: "
                f"{type(system[self.component].estimator).__name__} is not gradient boosting",
                hint="use refit for it",
            )

    def estimate(self, costs: CostModel, system: System, rows: int) -> CostEstimate:
        est = super().estimate(costs, system, rows)
        if est.basis == "prior" or "scaled" in est.basis:
            # The prior is per fit; continuing adds `extra` rounds of the member's total.
            params = system[self.component].recipe()["params"]
            total = params.get("n_estimators") or params.get("max_iter") or 100
            share = min(1.0, self.extra / max(int(total), 1))
            fit = _estimated(costs, self.component, system[self.component], "fit", rows)
            return replace(
                est,
                cpu_seconds=fit.cpu_seconds * share,
                basis=f"{fit.basis} x {share:.2f} ({self.extra} extra rounds)",
            )
        return est


@dataclass(frozen=True)
class LeafRefit(Action):
    """Keep the trees, re-estimate their leaf values on the window (LightGBM, XGBoost)."""

    kind: ClassVar[str] = "leaf-refit"
    produces: ClassVar[str] = "leaf-refit"
    decay_rate: float = 0.0

    def params(self) -> dict[str, Any]:
        return {"decay_rate": self.decay_rate}

    def update_spec(self) -> tuple[str, dict[str, Any]]:
        return ("leaf-refit", {"decay_rate": self.decay_rate})

    def check(self, policy: Policy, system: System | None = None) -> None:
        super().check(policy, system)
        d = self.decay_rate
        if not isinstance(d, int | float) or isinstance(d, bool) or not 0 <= d < 1:
            raise PlanError(
                f"leaf-refit of {self.component!r}: decay_rate must be in [0, 1) (got {d!r})",
                hint="0 replaces the leaf values with the window's (concept drift); LightGBM's "
                "own default 0.9 keeps 90% of the old ones",
            )
        if system is not None and not _supports(system[self.component].estimator, "leaf-refit"):
            raise PlanError(
                f"cannot leaf-refit {self.component!r}: it is not a LightGBM or XGBoost model",
                hint="use refit or continue for it",
            )


@dataclass(frozen=True)
class Reweight(Action):
    """Re-learn how the ensemble combines its members, on the window.

    A mean ensemble gets new ``weights`` (learned by the diagnostics); a stack is refitted on
    the window.
    """

    kind: ClassVar[str] = "reweight"
    weights: Mapping[str, float] | None = None

    def params(self) -> dict[str, Any]:
        return {"weights": dict(self.weights)} if self.weights else {}

    def apply(self, system: System) -> System:
        ens = system[self.component]
        if not isinstance(ens, Ensemble) or ens.method not in ("mean", "vote") or not self.weights:
            return system
        new = Ensemble(
            ens.name,
            ens.members,
            weights=dict(self.weights),
            method=ens.method,
            code_version=ens.code_version,
        )
        return _replace_components(system, {ens.name: new})

    def refits(self, system: System) -> list[str]:
        ens = system[self.component]
        return [self.component] if ens.learns_from_data or self.weights else []

    def check(self, policy: Policy, system: System | None = None) -> None:
        super().check(policy, system)
        if system is not None and not isinstance(system[self.component], Ensemble):
            raise PlanError(
                f"reweight names {self.component!r}, which is not the ensemble",
                hint=f"the ensemble is {system.ensemble.name if system.ensemble else None!r}",
            )


@dataclass(frozen=True)
class AddMember(Action):
    """Add ``new_name``, a copy of member ``component`` fitted on the window, to the ensemble."""

    kind: ClassVar[str] = "add-member"
    new_name: str = ""

    def params(self) -> dict[str, Any]:
        return {"new_name": self.new_name}

    def apply(self, system: System) -> System:
        from sklearn.base import clone  # here: reading a stored plan needs no scikit-learn

        like = system[self.component]
        assert isinstance(like, Member)
        member = Member(
            self.new_name,
            clone(like.estimator),
            inputs=list(like.inputs),
            code_version=like.code_version,
        )
        ens = system.ensemble
        comps = [*system.components.values()]
        if ens is not None:
            weights = {**ens.weights, self.new_name: ens.weights.get(self.component, 1.0)}
            new_ens = Ensemble(
                ens.name,
                [*ens.members, self.new_name],
                weights=weights,
                method=ens.method,
                code_version=ens.code_version,
            )
            comps = [new_ens if c.name == ens.name else c for c in comps]
        at = [c.name for c in comps].index(self.component) + 1
        comps.insert(at, member)
        return _rebuild(system, comps)

    def refits(self, system: System) -> list[str]:
        return [self.new_name]

    def check(self, policy: Policy, system: System | None = None) -> None:
        super().check(policy, system)
        if system is not None:
            if not isinstance(system[self.component], Member):
                raise PlanError(f"add-member copies a member; {self.component!r} is not one")
            _not_gated(system, self.kind)
            if self.new_name in system:
                raise PlanError(
                    f"add-member: the system already has a component {self.new_name!r}",
                    hint="choose another new_name",
                )


@dataclass(frozen=True)
class RetireMember(Action):
    """Remove member ``component`` from the system and its ensemble."""

    kind: ClassVar[str] = "retire-member"
    produces: ClassVar[str] = ""

    def apply(self, system: System) -> System:
        ens = system.ensemble
        comps = [c for c in system.components.values() if c.name != self.component]
        if ens is not None:
            weights = {m: w for m, w in ens.weights.items() if m != self.component}
            new_ens = Ensemble(
                ens.name,
                list(weights),
                weights=weights,
                method=ens.method,
                code_version=ens.code_version,
            )
            comps = [new_ens if c.name == ens.name else c for c in comps]
        return _rebuild(system, comps)

    def refits(self, system: System) -> list[str]:
        return []

    def estimate(self, costs: CostModel, system: System, rows: int) -> CostEstimate:
        return CostEstimate(0.0, 0.0, 0, "nothing to fit")

    def check(self, policy: Policy, system: System | None = None) -> None:
        super().check(policy, system)
        if system is not None:
            if not isinstance(system[self.component], Member):
                raise PlanError(f"retire-member: {self.component!r} is not a member")
            _not_gated(system, self.kind)
            if len(system.members) < 2:
                raise PlanError(
                    f"cannot retire {self.component!r}: it is the system's only member",
                    hint="refit it, or retrain the system",
                )


def _not_gated(system: System, kind: str) -> None:
    """A gated ensemble's rules name its members: adding or removing one is a design change."""
    ens = system.ensemble
    if ens is not None and ens.method == "gate":
        raise PlanError(
            f"{kind} cannot change the gated ensemble {ens.name!r}: its rules name its members",
            hint="edit the system's gate (its members and rules) and train it again",
        )


@dataclass(frozen=True)
class FullRetrain(Action):
    """Refit every component on the window (or window + retained rows). ``component`` is "*"."""

    kind: ClassVar[str] = "full-retrain"

    def refits(self, system: System) -> list[str]:
        return list(system.components)

    def check(self, policy: Policy, system: System | None = None) -> None:
        return None

    def estimate(self, costs: CostModel, system: System, rows: int) -> CostEstimate:
        total = 0.0
        bases = set()
        for name, comp in system.components.items():
            est = _estimated(costs, name, comp, "fit", rows)
            total += est.cpu_seconds
            bases.add("history" if est.basis != "prior" else "prior")
        basis = "sum over components (" + " and ".join(sorted(bases)) + ")"
        return CostEstimate(total, total / max(rows, 1), rows, basis)

    def describe(self) -> str:
        return "full-retrain of every component"


@dataclass(frozen=True)
class Finetune(Action):
    """Train chosen ``blocks`` of a torch member on the window (the rest frozen).

    ``options`` go to :func:`regrow.plan.finetune.finetune_fitted` (learning rates, epochs,
    replay share, L2-SP, ...); learning rates and epochs are checked against the policy's
    budgets.
    """

    kind: ClassVar[str] = "finetune"
    produces: ClassVar[str] = "finetune"
    blocks: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        return {"blocks": list(self.blocks), **dict(self.options)}

    def update_spec(self) -> tuple[str, dict[str, Any]]:
        return ("finetune", self.params())

    def check(self, policy: Policy, system: System | None = None) -> None:
        super().check(policy, system)
        if not self.blocks:
            raise PlanError(
                f"finetune of {self.component!r} names no blocks",
                hint="name the blocks to train, or let the planner choose them",
            )
        b = policy.budgets
        lr = self.options.get("lr")
        if lr is not None and not (isinstance(lr, int | float) and b.lr_min <= lr <= b.lr_max):
            raise PlanError(
                f"finetune of {self.component!r}: lr {lr!r} is outside the policy's bounds "
                f"[{b.lr_min}, {b.lr_max}]",
                hint="change budgets.lr_min / lr_max in the policy, or the lr",
            )
        epochs = self.options.get("epochs")
        if epochs is not None and not (isinstance(epochs, int) and 1 <= epochs <= b.max_epochs):
            raise PlanError(
                f"finetune of {self.component!r}: epochs {epochs!r} is outside 1..{b.max_epochs}",
                hint="change budgets.max_epochs in the policy, or the epochs",
            )
        if system is not None and not _supports(system[self.component].estimator, "finetune"):
            raise PlanError(
                f"cannot finetune {self.component!r}: it is not a torch member",
                hint="use refit for it",
            )


ACTIONS: dict[str, type[Action]] = {
    cls.kind: cls
    for cls in (
        Refit,
        Continue,
        LeafRefit,
        Reweight,
        AddMember,
        RetireMember,
        FullRetrain,
        Finetune,
    )
}


def action_from_dict(data: Mapping[str, Any]) -> Action:
    """Rebuild an action stored by :meth:`Action.to_dict`."""
    kind = data.get("kind")
    cls = ACTIONS.get(str(kind))
    if cls is None:
        raise PlanError(f"unknown action {kind!r}", hint=f"actions are {sorted(ACTIONS)}")
    gain = data.get("gain")
    cost = data.get("cost")
    params = dict(data.get("params") or {})
    extra: dict[str, Any] = {}
    if cls is Finetune:
        extra = {"blocks": tuple(params.pop("blocks", ())), "options": params}
    else:
        extra = params
    return cls(
        component=str(data["component"]),
        reason=str(data.get("reason", "")),
        gain=Gain(**gain) if gain else None,
        cost=CostEstimate(**cost) if cost else None,
        approval=bool(data.get("approval", False)),
        recipe=str(data.get("recipe") or ""),
        recipe_params=dict(data.get("recipe_params") or {}),
        **extra,
    )


def _rebuild(system: System, components: list[Any]) -> System:
    new = System(
        system.name,
        target=system.target,
        task=system.task,
        seed=system.seed,
        components=components,
        definition_file=system.definition_file,
        adapters=system.adapters,
    )
    new.definition_file = system.definition_file
    return new


def _replace_components(system: System, changes: Mapping[str, Any]) -> System:
    return _rebuild(system, [changes.get(n, c) for n, c in system.components.items()])


def _estimated(
    costs: CostModel, name: str, component: Component, action: str, rows: int
) -> CostEstimate:
    """The cost model's estimate of ``action`` ("": a fit) on ``component``, by its recipe."""
    recipe = component.recipe()
    return costs.estimate(name, recipe["class"], action or "fit", rows=rows, recipe=recipe)


def _supports(estimator: Any, action: str) -> bool:
    """:func:`regrow.plan.updates.supports`, imported when a plan is checked against a
    system (reading a stored plan needs neither pandas nor scikit-learn)."""
    from regrow.plan.updates import supports

    return supports(estimator, action)
