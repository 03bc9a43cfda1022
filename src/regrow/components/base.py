"""Component specs: the nodes of a :class:`~regrow.System` graph.

A component is declared, not fitted: it names its inputs and holds an unfitted estimator (its
*recipe*). Fitting happens in a run, and the result is an immutable component version.

>>> from sklearn.linear_model import LogisticRegression
>>> from sklearn.preprocessing import StandardScaler
>>> scale = Transform("usage_scaled", StandardScaler(), inputs=["sessions", "minutes"])
>>> model = Member("usage_model", LogisticRegression(), inputs=["usage_scaled", "plan"])
>>> model.kind, model.inputs
('member', ('usage_scaled', 'plan'))
>>> Ensemble("ensemble", weights={"usage_model": 1.0}).members
('usage_model',)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal

from regrow._hashing import jsonable
from regrow._modules import code_label
from regrow.errors import SystemSpecError

__all__ = ["Component", "Ensemble", "Member", "Transform"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")

EnsembleMethod = Literal["mean", "vote", "stack", "gate"]
GateKind = Literal["rules", "learned"]


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise SystemSpecError(
            f"invalid {what} name {name!r}",
            hint="use letters, digits, '_', '-' or '.', starting with a letter or '_'",
        )
    return name


def _check_inputs(name: str, inputs: object) -> tuple[str, ...]:
    if isinstance(inputs, str) or not isinstance(inputs, Sequence):
        raise SystemSpecError(
            f"inputs of {name!r} must be a list of column or component names "
            f"(got {inputs!r} that is a {type(inputs).__name__})",
            hint=f"write inputs=[{inputs!r}]" if isinstance(inputs, str) else None,
        )
    items = tuple(inputs)
    if not items:
        raise SystemSpecError(f"{name!r} has no inputs", hint="name at least one column")
    bad = [i for i in items if not isinstance(i, str)]
    if bad:
        raise SystemSpecError(f"inputs of {name!r} must be strings (got {bad[0]!r})")
    dupes = sorted({i for i in items if items.count(i) > 1})
    if dupes:
        raise SystemSpecError(f"{name!r} lists inputs {dupes} more than once")
    return items


_PARAM_NAMES: dict[type, tuple[str, ...]] = {}


def _param_names(cls: Any) -> tuple[str, ...]:
    names = _PARAM_NAMES.get(cls)
    if names is None:
        names = _PARAM_NAMES[cls] = tuple(cls._get_param_names())
    return names


def _params(estimator: Any) -> dict[str, Any]:
    """``estimator.get_params(deep=True)``, with parameter names cached per class.

    scikit-learn's own reads the constructor's signature on every call, which made status
    over a thousand components spend a third of its time in ``inspect``. Estimators that
    override ``get_params`` (LightGBM, XGBoost) keep their own.
    """
    from sklearn.base import BaseEstimator  # here: reading specs needs no scikit-learn

    cls = type(estimator)
    if getattr(cls, "get_params", None) is not BaseEstimator.get_params:
        return dict(estimator.get_params(deep=True))
    out: dict[str, Any] = {}
    for key in _param_names(cls):
        value = getattr(estimator, key)
        if hasattr(value, "get_params") and not isinstance(value, type):
            out.update((f"{key}__{k}", v) for k, v in _params(value).items())
        out[key] = value
    return out


def check_own_adapters(name: str, inputs: Sequence[str], adapters: Any) -> Any:
    """A component's own adapters: ``Cast``, ``Default`` and ``MapCategories`` of columns it
    lists among its inputs. They change values only, for this component alone; renamed and
    derived columns change what the data holds, for every reader, so they are declared at the
    system's boundary (``System(..., adapters=...)``)."""
    from regrow.data.adapters import Cast, Default, MapCategories

    for adapter in adapters:
        if not isinstance(adapter, Cast | Default | MapCategories):
            raise SystemSpecError(
                f"{name!r}: a {adapter.kind} adapter cannot be a component's own",
                hint="declare renames and derived columns on the System (adapters=[...]), "
                "where every component reads them",
            )
        if adapter.column not in inputs:
            raise SystemSpecError(
                f"{name!r}: its {adapter.kind} adapter of {adapter.column!r} adapts a column "
                "it does not read",
                hint=f"its inputs are {list(inputs)}",
            )
    return adapters


class Component:
    """Base of every component: a name, its inputs and an optional code version.

    ``code_version``, when given, replaces the hash of the source code in the fingerprint (as
    Dagster's ``code_version`` does): bump it by hand to mark a component's code as changed.
    """

    kind: ClassVar[str] = "component"

    def __init__(
        self,
        name: str,
        inputs: Sequence[str],
        *,
        code_version: str | None = None,
        adapters: Iterable[Any] = (),
    ) -> None:
        from regrow.data.adapters import Adapters

        self.name = _check_name(name, self.kind)
        self.inputs = _check_inputs(name, inputs)
        self.code_version = code_version
        #: Value adapters of this component's own inputs (see :func:`check_own_adapters`).
        self.adapters = check_own_adapters(self.name, self.inputs, Adapters(adapters))

    @property
    def estimator(self) -> Any:
        """The unfitted estimator, or None for components with nothing to fit."""
        return None

    @property
    def learns_from_data(self) -> bool:
        """Whether fitting reads rows of data (a run binds it to a snapshot)."""
        return True

    def recipe(self) -> dict[str, Any]:
        """How the component is built, as JSON: kind, class, parameters and inputs."""
        est = self.estimator
        cls = type(est) if est is not None else type(self)
        params: Any = _params(est) if hasattr(est, "get_params") else {}
        return {
            "kind": self.kind,
            "class": code_label(cls),
            "params": jsonable(params),
            "inputs": list(self.inputs),
        }

    def __repr__(self) -> str:
        est = self.estimator
        est_part = f", {est!r}" if est is not None else ""
        return f"{type(self).__name__}({self.name!r}{est_part}, inputs={list(self.inputs)!r})"


class _Fitted(Component):
    def __init__(
        self,
        name: str,
        estimator: Any,
        inputs: Sequence[str],
        *,
        code_version: str | None = None,
        adapters: Iterable[Any] = (),
    ) -> None:
        super().__init__(name, inputs, code_version=code_version, adapters=adapters)
        if not (hasattr(estimator, "fit") and hasattr(estimator, "get_params")):
            raise SystemSpecError(
                f"{self.kind} {name!r}: {estimator!r} is not a scikit-learn style estimator",
                hint="pass an object with fit() and get_params(), e.g. a scikit-learn or "
                "LightGBM estimator",
            )
        self._estimator = estimator

    @property
    def estimator(self) -> Any:
        return self._estimator


class Transform(_Fitted):
    """Feature processing: a scikit-learn transformer fitted on named input columns.

    Its outputs are columns named ``"<transform>__<feature>"``; a member lists the transform's
    name among its inputs to read all of them.
    """

    kind: ClassVar[str] = "transform"

    def __init__(
        self,
        name: str,
        estimator: Any,
        inputs: Sequence[str],
        *,
        code_version: str | None = None,
        adapters: Iterable[Any] = (),
    ) -> None:
        super().__init__(name, estimator, inputs, code_version=code_version, adapters=adapters)
        if not hasattr(estimator, "transform"):
            raise SystemSpecError(
                f"transform {name!r}: {estimator!r} has no transform() method",
                hint="use Member(...) for predictors",
            )


class Member(_Fitted):
    """A predictor: a scikit-learn or LightGBM estimator on columns and transform outputs."""

    kind: ClassVar[str] = "member"


class Ensemble(Component):
    """Combines members: a weighted mean of probabilities (or values), a weighted vote, a stack,
    or a gate.

    ``members`` defaults to the keys of ``weights``; weights default to equal. Weights are
    explicit and part of the recipe: changing one gives the ensemble a new fingerprint.

    ``method="stack"`` learns the combination from data: a linear regression on the members'
    values (regression) or a logistic regression on their log-probabilities (classification),
    fitted on the rows the ensemble is bound to. Members with weight 0 are left out of it. A
    stack suits members that each model part of the signal (one per feature group), whose
    outputs add up rather than average. The outputs of members fitted on the same rows come
    from copies fitted on other rows: cross-fitted, or, when only some members were refitted
    (a partial update), a copy predicts a held-out fifth the stack learns on
    (:mod:`regrow.components.stack_rows`).

    ``method="gate"`` gives each row the output of one member (see docs/gating.md; weights do
    not apply). With ``gates={member: expression}`` (pandas query expressions over the columns
    the system reads, tried in order) a row goes to the first member whose rule holds, else to
    ``default``. With ``gate="learned"`` a small classifier fitted on cross-fitted member
    outputs weighs the members row by row (a mixture of experts).

    >>> e = Ensemble("e", ["young", "adult"], method="gate", gates={"young": "age < 18"},
    ...              default="adult")
    >>> e.gate, e.gates, e.gate_columns
    ('rules', (('young', 'age < 18'),), ['age'])
    >>> Ensemble("e", ["a", "b"], method="gate", gate="learned").learns_from_data
    True
    """

    kind: ClassVar[str] = "ensemble"

    def __init__(
        self,
        name: str,
        members: Sequence[str] | None = None,
        *,
        weights: Mapping[str, float] | None = None,
        method: EnsembleMethod = "mean",
        gates: Mapping[str, str] | None = None,
        default: str | None = None,
        gate: GateKind | None = None,
        code_version: str | None = None,
    ) -> None:
        if members is None:
            members = _implied_members(name, weights, gates, default)
        super().__init__(name, members, code_version=code_version)
        if method not in ("mean", "vote", "stack", "gate"):
            raise SystemSpecError(
                f"ensemble {name!r}: unknown method {method!r}",
                hint="use 'mean', 'vote', 'stack' or 'gate'",
            )
        self.method: EnsembleMethod = method
        self.gate: GateKind | None = None
        self.gates: tuple[tuple[str, str], ...] = ()
        self.default: str | None = None
        if method == "gate":
            if weights is not None:
                raise SystemSpecError(
                    f"gated ensemble {name!r} takes no weights (got {dict(weights)!r})",
                    hint="a gate gives each row to a member; leave weights out",
                )
            self.gate, self.gates, self.default = _check_gate(
                name, self.inputs, gate, gates, default
            )
        elif gates is not None or default is not None or gate is not None:
            raise SystemSpecError(
                f"ensemble {name!r}: gates, default and gate apply to method='gate' only "
                f"(method is {method!r})",
                hint="pass method='gate'",
            )
        self.weights: dict[str, float] = _check_weights(name, self.inputs, weights)

    @property
    def members(self) -> tuple[str, ...]:
        """The members this ensemble combines, in order."""
        return self.inputs

    @property
    def learns_from_data(self) -> bool:
        """A stack and a learned gate are fitted on rows; a mean, a vote or rules are not."""
        return self.method == "stack" or self.gate == "learned"

    @property
    def gate_columns(self) -> list[str]:
        """The columns the gate rules read (none for other methods)."""
        from regrow.components.gating import rule_columns

        cols: list[str] = []
        for member, expression in self.gates:
            cols += [c for c in rule_columns(expression, member=member) if c not in cols]
        return cols

    def recipe(self) -> dict[str, Any]:
        params: dict[str, Any] = {"method": self.method, "weights": self.weights}
        if self.method == "gate":
            # Rules as a list: their order decides which member takes a row.
            params = {"method": "gate", "gate": self.gate, "gates": [list(g) for g in self.gates],
                      "default": self.default}  # fmt: skip
        return {
            "kind": self.kind,
            "class": "regrow.Ensemble",
            "params": params,
            "inputs": list(self.inputs),
        }

    def __repr__(self) -> str:
        if self.gate == "learned":
            return f"Ensemble({self.name!r}, {list(self.inputs)!r}, method='gate', gate='learned')"
        if self.method == "gate":
            return (
                f"Ensemble({self.name!r}, {list(self.inputs)!r}, method='gate', "
                f"gates={dict(self.gates)!r}, default={self.default!r})"
            )
        return f"Ensemble({self.name!r}, weights={self.weights!r}, method={self.method!r})"


def _implied_members(
    name: str,
    weights: Mapping[str, float] | None,
    gates: Mapping[str, str] | None,
    default: str | None,
) -> list[str]:
    """The members an ensemble names through its weights, or its gates and default."""
    if weights:
        return list(weights)
    if gates:
        return [*gates, *([default] if default is not None and default not in gates else [])]
    raise SystemSpecError(
        f"ensemble {name!r} names no members",
        hint="pass members=[...] or weights={member: weight}",
    )


def _check_weights(
    name: str, members: tuple[str, ...], weights: Mapping[str, float] | None
) -> dict[str, float]:
    given = dict(weights) if weights is not None else dict.fromkeys(members, 1.0)
    unknown = sorted(set(given) - set(members))
    if unknown:
        raise SystemSpecError(
            f"ensemble {name!r} weights members it does not combine: {unknown}",
            hint=f"its members are {list(members)}",
        )
    unweighted = [m for m in members if m not in given]
    if unweighted:
        raise SystemSpecError(
            f"ensemble {name!r} gives no weight to members {unweighted}",
            hint="weigh every member (0 keeps a member without effect)",
        )
    for member, w in given.items():
        if not isinstance(w, int | float) or isinstance(w, bool) or not w >= 0:
            raise SystemSpecError(
                f"ensemble {name!r}: weight of {member!r} must be a number >= 0 (got {w!r})"
            )
    if sum(given.get(m, 0.0) for m in members) <= 0:
        raise SystemSpecError(f"ensemble {name!r}: weights sum to 0", hint="give a weight > 0")
    return {m: float(given.get(m, 0.0)) for m in members}


def _check_gate(
    name: str,
    members: tuple[str, ...],
    gate: object,
    gates: Mapping[str, str] | None,
    default: str | None,
) -> tuple[GateKind, tuple[tuple[str, str], ...], str | None]:
    """Validate a gate's settings: ``gate="learned"``, or rules and a default member."""
    from regrow.components.gating import rule_columns

    if gate == "learned":
        if gates is not None or default is not None:
            raise SystemSpecError(
                f"gated ensemble {name!r}: a learned gate takes no gates or default",
                hint="pass gate='learned' alone, or rules: gates={member: expression}",
            )
        return "learned", (), None
    if gate not in (None, "rules"):
        raise SystemSpecError(
            f"gated ensemble {name!r}: unknown gate {gate!r}", hint="use 'rules' or 'learned'"
        )
    if not isinstance(gates, Mapping) or not gates:
        raise SystemSpecError(
            f"gated ensemble {name!r} has no rules (got gates={gates!r})",
            hint="pass gates={member: pandas expression} and default=<member>, or gate='learned'",
        )
    for member in [*gates, *([default] if default is not None else [])]:
        if member not in members:
            raise SystemSpecError(
                f"gated ensemble {name!r} routes rows to {member!r}, which it does not combine",
                hint=f"its members are {list(members)}",
            )
    unused = [m for m in members if m not in gates and m != default]
    if unused:
        raise SystemSpecError(
            f"gated ensemble {name!r} sends no rows to members {unused}",
            hint="give each member a rule, or make one the default",
        )
    for member, expression in gates.items():
        rule_columns(expression, member=member)
    return "rules", tuple((m, e) for m, e in gates.items()), default
