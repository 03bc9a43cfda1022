"""The policy: governance as data. What may run without a human, when to escalate, budgets.

A policy is a YAML file validated by pydantic: every key is known, every value checked, and an
error names the key path and the value. ``regrow policy check FILE`` validates one; the
documented default (``regrow/plan/default_policy.yaml``) ships with the package and is what a
plan uses when no policy is given.

>>> policy = Policy.default()
>>> policy.escalation.max_drifted_share
0.5
>>> "full-retrain" in policy.autonomy.require_approval
True
>>> Policy.from_yaml("escalation:\\n  max_drifted_share: 2\\n")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
regrow.errors.PolicyError: policy: escalation.max_drifted_share: Input should be ... (got 2); ...
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import typing
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from regrow._hashing import hash_json
from regrow.errors import PolicyError

__all__ = [
    "ACTION_NAMES",
    "SLA_METRICS",
    "AlertRule",
    "Autonomy",
    "Budgets",
    "ContractsPolicy",
    "EnsemblePolicy",
    "Escalation",
    "GatePolicy",
    "MonitoringPolicy",
    "Planning",
    "Policy",
    "PromotionPolicy",
    "RolloutPolicy",
    "default_policy_text",
    "load_policy",
]

ActionName = Literal[
    "refit",
    "continue",
    "leaf-refit",
    "reweight",
    "add-member",
    "retire-member",
    "full-retrain",
    "finetune",
]
#: Every action a plan can hold.
ACTION_NAMES: tuple[str, ...] = ActionName.__args__  # type: ignore[attr-defined]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Autonomy(_Strict):
    """Which actions may run without a human approving the plan."""

    allowed: tuple[ActionName, ...] = ("refit", "continue", "leaf-refit", "reweight", "finetune")
    require_approval: tuple[ActionName, ...] = ("add-member", "retire-member", "full-retrain")

    @model_validator(mode="after")
    def _disjoint(self) -> Autonomy:
        both = sorted(set(self.allowed) & set(self.require_approval))
        if both:
            raise ValueError(f"actions {both} are both allowed and require approval")
        return self


class Escalation(_Strict):
    """When a partial update is not enough and the plan becomes a full retrain."""

    max_drifted_share: float = Field(0.5, ge=0, le=1)
    """Escalate when more than this share of the features the system reads drifted (on a
    labelled window, only when the probes expect a full retrain to pay: ``min_relative_gain``
    of the loss, or ``full_retrain_gain`` where set and a probe refits the members;
    :func:`regrow.plan.escalation.retrain_evidence`)."""
    max_degraded_members: int = Field(3, ge=1)
    """Escalate when at least this many members need an update (and more than half of them)."""
    max_degraded_share: float = Field(0.75, ge=0, le=1)
    """Escalate when more than this share of the members need an update."""
    max_loss_increase: float = Field(1.0, ge=0)
    """Escalate when the system's loss rose by more than this share over the reference's."""
    unexplained_drift: Literal["probe", "escalate", "ignore"] = "probe"
    """Loss the partial plan leaves that a full retrain might win back. ``probe``: escalate when
    a full retrain is expected to beat the plan significantly, by ``min_relative_gain`` of the
    loss for every member it refits that the plan keeps (the bar each of those refits would
    pass on its own); in a mean or vote ensemble a probe estimates both plans alike
    (:mod:`regrow.plan.escalation`). Drift that neither wins back leaves the plan empty, saying
    so. ``escalate``: the rule before the probe (drift that raises members' loss with no
    update chosen always escalates). ``ignore``: never escalate on this ground."""
    unexplained_multivariate: Literal["escalate", "ignore"] = "escalate"
    """A classifier tells the window from the reference (held-out AUC's lower end above
    ``multivariate_auc``) while no single feature drifted: the features changed how they go
    together, which no member-level probe of the drift explains."""
    multivariate_auc: float = Field(0.6, gt=0.5, le=1)
    full_retrain_gain: float | None = Field(None, ge=0)
    """The share of the loss a full retrain must win, where a probe estimates it by refitting
    the members (a mean or vote ensemble): over the plan, per member it refits that the plan
    keeps (by their weight), or over now under broad drift. None (the default):
    ``planning.min_relative_gain``. That bar is set by what residual probes find on windows
    with no drift; the full-retrain probe refits the members and scores them on held-out rows
    instead, so a system that must hold an SLA may take a smaller significant gain (e.g.
    0.04). Left out of :meth:`Policy.to_dict` while None, so a policy without it keeps its id.
    """

    @model_serializer(mode="wrap")
    def _unset_left_out(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("full_retrain_gain", 0) is None:
            del data["full_retrain_gain"]
        return data


class Planning(_Strict):
    """How the planner diagnoses and chooses."""

    data: Literal["recent", "recent+reference"] = "recent"
    """What refits train on: the recent window, or the window plus retained reference rows."""
    retained_rows: int = Field(0, ge=0)
    """Reference rows kept with ``recent+reference`` (0: all of them)."""
    probe: Literal["residual", "refit"] = "residual"
    """``residual``: a small boosted model per member of what the system now gets wrong, on
    the member's inputs (cheap; regression and binary classification). ``refit``: refit each
    member on the probe rows (costs a member fit each; also weighs adding and retiring)."""
    probe_fraction: float = Field(0.5, gt=0, lt=1)
    """Share of the labelled window a probe trains on; it is scored on the rest."""
    probe_max_rows: int = Field(4000, ge=50)
    """Probes train on at most this many rows (their cost is part of the plan's)."""
    confidence: float = Field(0.95, gt=0.5, lt=1)
    """Confidence of the gain intervals; an action needs its interval's lower end above 0."""
    min_relative_gain: float = Field(0.1, ge=0)
    """A gain no measured drift explains must be at least this share of the loss it starts
    from. Any model leaves some signal unfitted, and a probe finds it on any window, drifted
    or not (up to 10% of the loss, with an interval clear of 0, on windows with no drift);
    refitting the member does not win that back. See :mod:`regrow.plan.thresholds`."""
    min_drift_share: float = Field(0.25, gt=0, le=1)
    """Or, for an update of a member that reads a drifted feature, at least this share of the
    loss the drift added (the monitor's impact on the system, when its interval is clear of
    0): the gain is explained by the drift, and on a noisy target that cost is a small share
    of the loss. A quarter: a member that carries less of the drift is not worth its refit."""
    competitive_share: float = Field(0.5, gt=0, le=1)
    """No longer applied (kept so that policy files that set it still load). It left alone a
    member whose gain was under this share of the best one's, against the best member's drift
    leaking through the shared target; the search now probes the others again after each
    move it takes, so a leaked gain is gone by then, while a second drifted member may gain a
    fifth of the first's and must not be left alone."""
    prefer: Literal["refit", "continue", "leaf-refit"] = "refit"
    """How a boosted member is updated when its refit and the alternative tie."""
    neural: Literal["finetune", "refit"] = "finetune"
    """How a torch member chosen for an update is updated: fine-tune the blocks its
    diagnostic points at, or refit it whole."""
    continue_extra: int = Field(100, ge=1)
    """Boosting rounds ``continue`` adds."""
    leaf_refit_decay: float = Field(0.0, ge=0, lt=1)
    """LightGBM's ``decay_rate`` for ``leaf-refit`` (its own default, 0.9, keeps 90% of the
    old leaf values: wrong under concept drift)."""
    recipes: dict[str, dict[str, Any]] = {}
    """The recipe (:mod:`regrow.recipes`) of the actions on a component, or of an action
    kind: ``{gbm: lightgbm-leaf-refit, continue: {recipe: lightgbm-continue@1, params:
    {extra: 7}}}``. A component's key decides how it is updated (over ``prefer`` and
    ``neural``); without one, the default recipe with ``continue_extra`` and
    ``leaf_refit_decay``. Unknown recipes and bad parameters are refused here."""
    unusable_rows: Literal["drop", "stop"] = "drop"
    """Rows of the window the version cannot score (nulls or categories a member cannot
    take, values of the wrong type): ``drop`` sets them aside, so probes and updates use the
    other rows, and the plan says so; ``stop`` refuses to plan, naming the column and rows."""
    max_unusable_share: float = Field(0.05, ge=0, le=1)
    """With ``drop``, planning still stops when more than this share of the rows is unusable:
    then the data, not the model, needs fixing."""
    seed: int = Field(0, ge=0)

    @field_validator("recipes", mode="before")
    @classmethod
    def _recipes(cls, value: Any) -> dict[str, dict[str, Any]]:
        from regrow.recipes.choice import validate_choices

        return validate_choices(value)


class Budgets(_Strict):
    """Limits a plan must stay within, or it asks for approval.

    ``max_cpu_seconds``, ``max_gpu_seconds`` and ``max_cost`` hold twice: a plan estimated
    over any of them is refused unless an approver runs it (``--approve``), and a run stops,
    resumably, once what it fitted used more (:mod:`regrow.run.budget`). ``max_cost`` is
    money per plan in the ``[costs]`` currency of the workspace's config; without prices it
    is ignored, with a note. The two are None (no limit) unless set, and then left out of
    :meth:`Policy.to_dict`, so a policy that does not set them keeps its id.
    """

    max_cpu_seconds: float = Field(3600.0, gt=0)
    max_gpu_seconds: float | None = Field(None, gt=0)
    max_cost: float | None = Field(None, gt=0)
    max_epochs: int = Field(20, ge=1)
    max_steps: int = Field(5000, ge=1)
    lr_min: float = Field(1e-5, gt=0)
    lr_max: float = Field(0.1, gt=0)

    @model_validator(mode="after")
    def _lr_bounds(self) -> Budgets:
        if self.lr_min > self.lr_max:
            raise ValueError(f"lr_min {self.lr_min} is above lr_max {self.lr_max}")
        return self

    @model_serializer(mode="wrap")
    def _unset_limits_left_out(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in ("max_gpu_seconds", "max_cost"):
            if data.get(key, 0) is None:
                del data[key]
        return data


#: The gates a policy runs unless it names its own: today's improvement and slice gates.
_DEFAULT_CHECKS: dict[str, dict[str, Any]] = {"improvement": {}, "slice_regression": {}}


class GatePolicy(_Strict):
    """Which gates `regrow evaluate` runs, their thresholds, and how they make a verdict.

    ``checks`` maps gate names (:func:`regrow.evaluate.gates.gate_names`) to their thresholds;
    each gate's are validated by the gate itself, completed with its defaults. No gate
    configured: nothing is blessed. A file that names ``checks`` replaces the default list.
    The flat keys of older policies (``min_improvement``, ``max_slice_regression``) still
    mean what they meant: the ``improvement`` and ``slice_regression`` gates.
    """

    metric: str | None = None
    """The metric of the improvement, slice and stability gates (None: roc_auc for
    classifiers, rmse for regressors)."""
    level: float = Field(0.95, gt=0.5, lt=1)
    """Confidence of every interval."""
    resamples: int = Field(1000, ge=20, le=100_000)
    """Paired bootstrap resamples, shared by every gate."""
    seed: int = Field(0, ge=0)
    inconclusive: Literal["none", "ignore", "reject"] = "none"
    """What an inconclusive gate makes of the verdict: ``none`` (not blessed), ``reject``, or
    ``ignore`` (blessed when every gate that could tell passed)."""
    checks: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: dict(_DEFAULT_CHECKS), validate_default=True
    )

    @model_validator(mode="before")
    @classmethod
    def _flat_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not {"min_improvement", "max_slice_regression"} & set(
            data
        ):
            return data
        data = dict(data)
        given = "checks" in data
        checks = dict(data.get("checks") or {}) if given else {
            "improvement": {}, "slice_regression": {}
        }  # fmt: skip
        for flat, gate, key in (
            ("min_improvement", "improvement", "min"),
            ("max_slice_regression", "slice_regression", "max"),
        ):
            if flat not in data:
                continue
            value = data.pop(flat)
            if given and gate in checks:
                raise ValueError(
                    f"{flat} and checks.{gate} both set the {gate} gate: keep checks.{gate}"
                )
            checks[gate] = {**dict(checks.get(gate) or {}), key: value}
        data["checks"] = checks
        return data

    @field_validator("checks", mode="before")
    @classmethod
    def _checks(cls, value: Any) -> dict[str, dict[str, Any]]:
        from regrow.evaluate.gates import validate_checks

        return validate_checks({} if value is None else value)

    @model_validator(mode="after")
    def _possible(self) -> GatePolicy:
        from regrow.evaluate.gates.registry import invalid
        from regrow.evaluate.metrics import BOUNDED, METRICS

        if self.metric is not None and self.metric not in METRICS:
            close = difflib.get_close_matches(self.metric, list(METRICS), n=1)
            did = f"did you mean {close[0]!r}? " if close else ""
            raise invalid(("metric",), f"unknown metric; {did}known: {sorted(METRICS)}",
                          self.metric)  # fmt: skip
        improvement = self.checks.get("improvement")
        if improvement is None or self.metric is None:
            return self
        least = float(improvement.get("min", 0.0))
        relative = bool(improvement.get("relative", False))
        lower_is_better = not METRICS[self.metric].higher_is_better
        if (not relative and self.metric in BOUNDED and least >= 1) or (
            relative and lower_is_better and least >= 1
        ):
            what = "a relative drop of the error" if relative else f"a gain in {self.metric}"
            raise invalid(
                ("checks", "improvement", "min"),
                f"impossible: {what} of 1 or more cannot happen",
                least,
            )
        return self

    def gates(self) -> list[Any]:
        """The configured gates, in order (:class:`regrow.evaluate.gates.Gate` objects)."""
        from regrow.evaluate.gates import build

        return build(self.checks)

    def to_dict(self) -> dict[str, Any]:
        """The section as plain data."""
        return self.model_dump(mode="json")

    @property
    def id(self) -> str:
        """A content hash of the section."""
        return hash_json(self.to_dict())[:16]


class RolloutPolicy(_Strict):
    """Defaults for rolling a candidate out (consumed by the rollout layer)."""

    strategy: Literal["canary", "ramp", "ab", "blend", "shadow", "blue-green"] = "canary"
    steps: tuple[float, ...] = (0.05, 0.25, 0.5, 1.0)
    min_requests: int = Field(500, ge=1)

    @model_validator(mode="after")
    def _steps(self) -> RolloutPolicy:
        s = list(self.steps)
        if not s or any(not 0 < v <= 1 for v in s) or s != sorted(s) or s[-1] != 1.0:
            raise ValueError(f"steps must rise within (0, 1] and end at 1.0 (got {s})")
        return self


class EnsemblePolicy(_Strict):
    """How an ensemble's members are refreshed window after window (consumed by
    :mod:`regrow.rollout.refresh`, whose ``RefreshPolicy`` takes these fields as they are)."""

    eta: float = Field(8.0, ge=0)
    """Hedge's learning rate on per-member losses in [0, 1]."""
    alpha: float = Field(0.05, ge=0, lt=1)
    """Fixed share: every weight ends at least alpha / members, so none decays for ever."""
    max_members: int = Field(6, ge=1)
    reserved: float = Field(0.8, ge=0, le=1)
    """The most total weight experimental members (in probation) may hold."""
    probation: int = Field(1, ge=0)
    """Windows a new member is scored on before it leaves the reserved slots."""
    retire_weight: float = Field(0.02, ge=0, lt=1)
    retire_loss: float = Field(1.0, ge=0, le=1)
    retire_after: int = Field(3, ge=1)
    """Windows in a row under retire_weight (or over retire_loss) before a member retires."""
    pool_size: int = Field(24, ge=0)
    """Retired members kept, so a recurring concept can bring one back."""
    readmit_margin: float = Field(0.02, ge=0)
    """How much better than the best member a pooled one must be on a window to come back."""

    @model_validator(mode="after")
    def _reserved(self) -> EnsemblePolicy:
        if self.reserved < self.alpha:
            raise ValueError(f"reserved ({self.reserved}) must be at least alpha ({self.alpha})")
        return self


class PromotionPolicy(_Strict):
    """What moving a protected alias takes (``Workspace.promote``, `regrow promote`)."""

    protected: tuple[str, ...] = ("champion",)
    """Aliases a version reaches only through a blessed evaluation and approvals."""
    require_blessed: bool = True
    """A blessed evaluation of the version against the alias's current holder."""
    approvals: int = Field(1, ge=0, le=10)
    """Approvals by identities other than the version's author (`regrow approve`)."""
    evaluation_snapshots: tuple[str, ...] = ()
    """Snapshot names an evaluation must use; empty: any labelled snapshot the version did
    not train on."""


Mode = Literal["backward", "forward", "full", "none"]


class SystemContracts(_Strict):
    """One system's own compatibility mode, and its components' (``contracts.systems``)."""

    compatibility: Mode | None = None
    """The system's mode (None: the section's)."""
    transitive: bool | None = None
    """Check every registered schema (None: the section's)."""
    components: dict[str, Mode] = {}
    """Modes of single components: for the columns each reads itself."""


class ContractsPolicy(_Strict):
    """How a new snapshot's schema must relate to the schemas models were trained on
    (:mod:`regrow.data.compat`, `regrow schema diff|check`)."""

    compatibility: Literal["backward", "forward", "full", "none"] = "backward"
    """backward: a model trained on the old schema scores rows of the new one; forward: the
    reverse; full: both; none: no check."""
    transitive: bool = False
    """Check against every registered schema of the dataset name, not only the newest."""
    systems: dict[str, SystemContracts] = {}
    """Per system (by name): its own mode, and modes of its components."""
    interface: Literal["strict", "allow"] = "strict"
    """strict: a protected alias (``promotion.protected``) moves only to a version that takes
    and returns what its holder does (inputs by name and type, adapters' renames, classes,
    outputs); allow: any interface."""

    def modes(self, system: str, components: Iterable[str]) -> dict[str, str]:
        """The mode of each of ``system``'s ``components``: its own, else the system's,
        else the section's.

        >>> section = ContractsPolicy(systems={"churn": {"compatibility": "full",
        ...                                               "components": {"geo": "forward"}}})
        >>> section.modes("churn", ["geo", "usage"])
        {'geo': 'forward', 'usage': 'full'}
        """
        own = self.systems.get(system)
        default = (own.compatibility if own else None) or self.compatibility
        chosen = own.components if own else {}
        return {c: chosen.get(c, default) for c in components}

    def transitive_for(self, system: str) -> bool:
        """Whether ``system``'s checks are transitive."""
        own = self.systems.get(system)
        return own.transitive if own is not None and own.transitive is not None else self.transitive


class AlertRule(_Strict):
    """An absolute alert threshold on one metric (estimated or realised)."""

    min: float | None = None
    """Alert when the metric falls below this (metrics where higher is better)."""
    max: float | None = None
    """Alert when the metric rises above this (error metrics)."""

    @field_validator("min", "max", mode="before")
    @classmethod
    def _no_boolean(cls, value: Any) -> Any:
        if isinstance(value, bool):  # YAML's true is no threshold (it was read as 1)
            raise ValueError(f"a threshold is a number, not {value!r}")
        return value

    @model_validator(mode="after")
    def _one(self) -> AlertRule:
        if (self.min is None) == (self.max is None):
            raise ValueError("give exactly one of min and max")
        return self

    @property
    def threshold(self) -> float:
        """The one value the rule sets (``min`` or ``max``).

        >>> AlertRule(min=0.8).threshold, AlertRule(max=3).breach
        (0.8, 'above')
        """
        found = self.min if self.min is not None else self.max
        assert found is not None  # _one: exactly one is set
        return found

    @property
    def breach(self) -> Literal["below", "above"]:
        """The side of :attr:`threshold` that breaks the rule: ``below`` for ``min``."""
        return "below" if self.min is not None else "above"


class MonitoringPolicy(_Strict):
    """What `regrow monitor` reports and when it alerts (:mod:`regrow.monitor.signals`)."""

    alerts: dict[str, AlertRule] = {}
    """Absolute thresholds per metric, e.g. ``roc_auc: {min: 0.8}``, ``rmse: {max: 3}``."""
    alert_sigmas: float = Field(3.0, gt=0)
    """A metric without a threshold alerts when its estimate moves this many sampling
    standard deviations (at the chunk's size) the wrong way from the reference's value ..."""
    alert_margin: float = Field(0.02, ge=0)
    """... and by more than this share of the reference's value."""
    cost_matrix: tuple[tuple[float, ...], ...] | None = None
    """Values of [[TN, FP], [FN, TP]] (k × k, true × predicted, for multiclass): with it,
    CBPE estimates ``business_value``, the mean value per row."""
    reference_rows: int = Field(20_000, ge=100)
    """Reference rows the estimators and the multivariate checks are fitted on (a seeded
    sample of the version's training snapshot when it has more)."""
    multivariate: tuple[Literal["domain_classifier", "pca_reconstruction"], ...] = (
        "domain_classifier",
        "pca_reconstruction",
    )
    """Multivariate drift checks to run (empty: none)."""

    @field_validator("alerts", mode="wrap")
    @classmethod
    def _known_alerts(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        # an unknown metric is a rule no metric would ever meet: it silently never fired
        return _rules(value, handler, sla=False)


#: The metrics a ``watch.sla`` can name, by task: those regrow measures on labelled rows
#: (:data:`regrow.evaluate.metrics.METRICS`) or estimates without labels (CBPE's for
#: classifiers, DLE's for regressors). Written out so that loading a policy does not import
#: the monitor; a test checks them against those lists.
SLA_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("roc_auc", "accuracy", "log_loss", "f1", "precision", "recall",
                       "specificity", "average_precision", "business_value"),
    "regression": ("rmse", "mae", "mse", "mape", "msle", "rmsle"),
}  # fmt: skip

#: The confusion matrix's cells (rates) CBPE estimates for a binary classifier: alerts can
#: name them too.
_CELLS = ("true_positive", "false_positive", "true_negative", "false_negative")


def alert_metrics(task: str) -> tuple[str, ...]:
    """The metrics an alert of ``monitoring.alerts`` (or ``regrow monitor --alert``) can name
    for a system of ``task``.

    >>> alert_metrics("regression")
    ('rmse', 'mae', 'mse', 'mape', 'msle', 'rmsle')
    """
    return SLA_METRICS[task] + (_CELLS if task == "classification" else ())


#: The metrics above that are better when higher (the others are better when lower), and the
#: range of each bounded one. Written out like :data:`SLA_METRICS`; a test checks them against
#: :data:`regrow.monitor.signals.HIGHER_IS_BETTER` and :func:`regrow.forecast.metric_bounds`.
_HIGHER_IS_BETTER = frozenset(
    {"roc_auc", "accuracy", "f1", "precision", "recall", "specificity", "average_precision",
     "business_value"}
)  # fmt: skip
_RANGES: dict[str, tuple[float, float]] = {
    **dict.fromkeys(("roc_auc", "accuracy", "f1", "precision", "recall", "specificity",
                     "average_precision", *_CELLS), (0.0, 1.0)),
    **dict.fromkeys(("log_loss", "rmse", "mae", "mse", "mape", "msle", "rmsle"), (0.0, math.inf)),
}  # fmt: skip


def _rules(value: Any, handler: ValidatorFunctionWrapHandler, *, sla: bool) -> Any:
    """Validate ``watch.sla`` (``sla``) or ``monitoring.alerts``: metric names to
    :class:`AlertRule`, naming every mistake at once (unknown metrics, rules that do not
    parse, thresholds no value of the metric can reach; for an SLA, a second metric and a
    bound on the side where the metric is better). A field validator, so that these are named
    with the other fields' mistakes: a model validator runs only when all of them passed."""
    if not isinstance(value, dict):
        return handler(value)  # pydantic's own error: not a mapping
    if sla:
        known = [m for names in SLA_METRICS.values() for m in names]
        listed = "; ".join(f"{task}: {', '.join(ms)}" for task, ms in SLA_METRICS.items())
    else:
        known = [*alert_metrics("classification"), *alert_metrics("regression")]
        listed = ", ".join(known)
    found = []
    if sla and len(value) > 1:
        found.append(_detail((), "name one SLA metric", sorted(map(str, value))))
    rules: dict[str, AlertRule] = {}
    for key, raw in value.items():
        name = str(key)
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            more = f"did you mean {close[0]!r}?" if close else f"known: {listed}"
            found.append(_detail((name,), f"unknown metric; {more}", name))
        try:
            rules[name] = rule = AlertRule.model_validate(raw)
        except ValidationError as exc:
            found += _details(exc, under=(name,))
        else:
            found += _unreachable(name, rule, sla=sla) if name in known else []
    if found:
        raise ValidationError.from_exception_data("policy", found)
    return rules


def _unreachable(name: str, rule: AlertRule, *, sla: bool) -> list[InitErrorDetails]:
    """Why ``rule`` on metric ``name`` cannot mean what it says: a threshold outside the
    metric's range (every value breaks it, or none does), or an SLA's bound on the side where
    the metric is better (``roc_auc: {max: 0.8}`` asks it to stay low)."""
    side = "min" if rule.min is not None else "max"
    value = rule.threshold
    found = []
    higher = name in _HIGHER_IS_BETTER
    if sla and (side == "max") == higher:
        better, bound, most = ("higher", "min", "least") if higher else ("lower", "max", "most")
        went = "fall" if higher else "rise"
        message = (f"{name} is better when {better}: an SLA on it is a {bound}, the {most} it "
                   f"may {went} to; use {{{name}: {{{bound}: ...}}}}")  # fmt: skip
        found.append(_detail((name, side), message, value))
    low, high = _RANGES.get(name, (-math.inf, math.inf))
    if not math.isfinite(value):
        found.append(_detail((name, side), "must be a finite number", value))
    elif not (low < value <= high if side == "min" else low <= value < high):
        # (a min at the metric's lowest value, or a max at its highest, is never broken)
        lies = f"lies in [{low:g}, {high:g}]" if math.isfinite(high) else f"is at least {low:g}"
        every = value > high if side == "min" else value < low
        then = _OUT_OF_RANGE[sla, every]
        message = f"{name} {lies}; {'every' if every else 'no'} value breaks this {side}, so {then}"
        found.append(_detail((name, side), message, value))
    return found


#: What a threshold outside its metric's range does, by (an SLA?, every value breaks it?).
_OUT_OF_RANGE = {
    (True, True): "the SLA is always crossed: the watcher would act every cycle",
    (True, False): "the SLA is never crossed",
    (False, True): "it would alert on every chunk",
    (False, False): "it would never alert",
}


def _detail(
    loc: tuple[Any, ...], message: str, value: Any, *, kind: str = "policy_error"
) -> InitErrorDetails:
    """One error of a :class:`ValidationError` raised in a validator: pydantic prefixes the
    location of the field, so the error names the whole key path. (Without a context the
    message is kept as it is: braces need no escaping.)"""
    return {
        "type": PydanticCustomError(kind, message),
        "loc": tuple(p if isinstance(p, int) else str(p) for p in loc),
        "input": value,
    }


def _details(exc: ValidationError, *, under: tuple[Any, ...] = ()) -> list[InitErrorDetails]:
    """The errors of ``exc`` (at ``under`` + their location), to raise again with others."""
    return [
        _detail((*under, *e["loc"]), e["msg"], e["input"], kind=e["type"]) for e in exc.errors()
    ]


class WatchPolicy(_Strict):
    """When ``regrow watch`` acts on what a cycle found (:mod:`regrow.loop.watch`)."""

    sla: dict[str, AlertRule] = {}
    """The service level the system owes, one metric of :data:`SLA_METRICS`:
    ``{roc_auc: {min: 0.8}}`` or ``{rmse: {max: 3}}``. The watcher forecasts it (measured
    where labels came, estimated where not) and acts before it is crossed. Empty: act on
    drift and alerts only."""
    horizon: int = Field(14, ge=1)
    """Cycles ahead the forecast looks."""
    act_probability: float = Field(0.5, gt=0, le=1)
    """Act when the forecast gives at least this probability of crossing the SLA within the
    horizon (or it is crossed already)."""
    persistence: int = Field(3, ge=1)
    """Act on drift only when it was seen in this many cycles in a row: a transient shift
    reverts before then. Without an SLA: drift that raised a member's loss; with one (and
    ``drift_trigger``): drift of the inputs a member reads."""
    drift_trigger: bool = True
    """With an SLA, also act on drift of the inputs a member reads, seen in ``persistence``
    cycles in a row, before the SLA is threatened: labels come late, so a change the
    inputs show now is in the metric only later. The planner's probes decide what (if
    anything) to refit; an attempt that finds nothing cools down like any other. False:
    act on the SLA forecast alone."""
    cooldown: int = Field(7, ge=0)
    """Cycles after an update attempt (a plan, run or not) during which the watcher does not
    plan another; after a partial update that did not win, or a plan that found nothing to
    update, the next attempt is a full retrain."""
    min_labelled_rows: int = Field(200, ge=10)
    """Fewer labelled rows than this and the watcher does not plan (it waits for labels)."""
    evaluation_share: float = Field(0.3, gt=0, lt=1)
    """The newest share of the labelled rows held out to evaluate a candidate on; the plan
    uses the rest."""
    evaluate_on: Literal["holdout", "newer"] = "holdout"
    """Which labelled rows judge a candidate. ``holdout``: the newest ``evaluation_share``
    of the window's, which the update does not learn from. ``newer``: the update learns from
    every labelled row, and its candidate waits, unpromoted, until later windows bring
    ``newer_rows`` labelled rows newer than all of them; it is evaluated against the alias's
    holder on those. The version promoted has then learnt from the freshest labels, and is
    judged on rows it never saw (out of time), at the price of the wait. A candidate still
    waiting after ``3 * cooldown`` cycles (labels stopped coming) is set aside. Needs a time
    column on the version's training snapshot."""
    newer_rows: int = Field(1000, ge=50)
    """With ``evaluate_on: newer``, the labelled rows newer than a candidate's training rows
    it waits for."""
    newer_looks: int = Field(3, ge=1, le=5)
    """With ``evaluate_on: newer``, how often the evaluation may look: a candidate whose
    only failed gate is the improvement, with an interval that reaches above its bar (the
    rows cannot tell it from the holder yet), waits for twice the rows (``newer_rows``,
    then 2x, 4x ...) and is evaluated again on all of them. Each look is a chance to bless
    a candidate no better than the holder: with the improvement gate's default (the lower
    end of a 95% interval above 0), one look blesses such a candidate 2.5% of the time, 3
    looks about 5.7% (a simulation of the three looks). 1: judge once."""
    threat_gain: float = Field(0.0, ge=0, le=1)
    """The share of the loss an update must win when the watcher plans because the SLA is
    threatened (the forecast reaches ``act_probability``, or the metric is past the SLA):
    0, any significant gain. It replaces ``planning.min_relative_gain`` and
    ``escalation.full_retrain_gain`` where they are higher: those bars are for updates
    nobody asked for, which must beat what probes find on any window; with the SLA at
    stake, doing nothing is what an update is weighed against. The gates still judge the
    candidate."""
    plan_first: Literal["auto", "always"] = "auto"
    """Whether the watcher plans before it updates. ``auto``: where ``autonomy`` lets a
    full retrain run without approval and this system's own cycles measured its plans
    (the newest 3, at least 2) costing at least the CPU of its full retrains (the newest 3,
    at least 1), the watcher retrains in full without planning, and the gates judge the
    candidate: a plan can save no more than the full retrain costs. ``always``: plan every
    time."""

    @field_validator("sla", mode="wrap")
    @classmethod
    def _one_known_metric(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        return _rules(value, handler, sla=True)


class Policy(_Strict):
    """A whole policy. Every section has documented defaults; a file overrides what it names."""

    version: Literal[1] = 1
    autonomy: Autonomy = Autonomy()
    escalation: Escalation = Escalation()
    planning: Planning = Planning()
    budgets: Budgets = Budgets()
    gates: GatePolicy = GatePolicy()
    rollout: RolloutPolicy = RolloutPolicy()
    ensemble: EnsemblePolicy = EnsemblePolicy()
    promotion: PromotionPolicy = PromotionPolicy()
    contracts: ContractsPolicy = ContractsPolicy()
    monitoring: MonitoringPolicy = MonitoringPolicy()
    watch: WatchPolicy = WatchPolicy()

    @field_validator("watch", mode="wrap")
    @classmethod
    def _sla_computable(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        # a field validator, so that it is named with the section's other mistakes (when
        # monitoring itself is wrong, its own error is named instead)
        monitoring = info.data.get("monitoring")
        sla = value.get("sla") if isinstance(value, dict) else getattr(value, "sla", None)
        found = []
        try:
            watch = handler(value)
        except ValidationError as exc:
            found += _details(exc)
        uncomputable = monitoring is not None and monitoring.cost_matrix is None
        if uncomputable and isinstance(sla, dict) and "business_value" in sla:
            message = (
                "estimated only with a monitoring.cost_matrix: set one, or name another metric"
            )
            found.append(_detail(("sla", "business_value"), message, "business_value"))
        if found:
            raise ValidationError.from_exception_data("policy", found)
        return watch

    @classmethod
    def default(cls) -> Policy:
        """The policy that ships with regrow (``regrow policy show`` prints it).

        Parsed once per process: a policy is immutable.
        """
        return _default_policy()

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "policy") -> Policy:
        """Parse and validate a policy; errors name the key path and the value."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PolicyError(f"{source} is not valid YAML: {exc}") from exc
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise PolicyError(
                f"{source} must be a mapping of sections, not a {type(data).__name__}",
                hint="see the default policy: `regrow policy show`",
            )
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "policy") -> Policy:
        """Validate a policy given as a dict."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise PolicyError(
                f"{source}: " + "; ".join(_describe(e) for e in exc.errors()),
                hint="see the default policy: `regrow policy show`",
            ) from None

    def to_dict(self) -> dict[str, Any]:
        """The policy as plain data (what a plan stores)."""
        return self.model_dump(mode="json")

    @property
    def id(self) -> str:
        """A content hash: two equal policies share it."""
        return hash_json(self.to_dict())[:16]

    def monitoring_with(
        self, alerts: Mapping[str, Mapping[str, float]] | None = None
    ) -> MonitoringPolicy:
        """The ``monitoring`` section, its alert thresholds extended by ``alerts``."""
        if not alerts:
            return self.monitoring
        merged = self.monitoring.model_dump(mode="json")
        merged["alerts"] = {**merged["alerts"], **{k: dict(v) for k, v in alerts.items()}}
        try:
            return MonitoringPolicy.model_validate(merged)
        except ValidationError as exc:
            said = "; ".join(_describe(e) for e in exc.errors())
            if "unknown metric" in said and "known: " in said:
                hint = "name one of the metrics listed"
            elif "unknown metric" in said:  # a close name was given instead of the list
                hint = "name one of " + "; ".join(
                    f"{task}: {', '.join(alert_metrics(task))}"
                    for task in ("classification", "regression")
                )
            elif any(e["type"] == "policy_error" for e in exc.errors()):
                hint = "give a threshold the metric can reach"
            else:
                hint = "give one of min or max per metric, e.g. {'roc_auc': {'min': 0.8}}"
            raise PolicyError("alert thresholds: " + said, hint=hint) from None

    def needs_approval(self, action: str) -> bool:
        """Whether ``action`` waits for a human under this policy."""
        return action not in self.autonomy.allowed


def _describe(error: Any) -> str:
    loc = ".".join(str(p) for p in error["loc"]) or "(top level)"
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] in ("tuple_type", "list_type", "set_type", "frozen_set_type"):
        msg = "Input should be a list"  # pydantic says tuple; in YAML it is a list: [a, b]
    if error["type"] == "extra_forbidden":
        known = _known_keys(error["loc"][:-1])
        close = difflib.get_close_matches(str(error["loc"][-1]), known, n=1)
        did = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
        return f"{loc}: unknown key{did}"
    if error["type"] in ("missing",) or (error["loc"] and error.get("input") == error["loc"][-1]):
        return f"{loc}: {msg}"  # the key is the offending value: the path names it already
    if error["type"] == "value_error" and isinstance(error.get("input"), dict):
        return f"{loc}: {msg}"  # a section's own check: its message names the values
    if isinstance(error.get("input"), bool) and error["type"] in ("literal_error", "string_type"):
        # YAML reads an unquoted no/yes/on/off as a boolean
        return (
            f"{loc}: {msg} (got {error['input']!r}: YAML reads an unquoted no, yes, on or off "
            "as false or true; quote the word)"
        )
    return f"{loc}: {msg} (got {error.get('input')!r})"


def _known_keys(path: tuple[Any, ...]) -> list[str]:
    """The keys of the section at ``path`` (a key of a mapping such as ``watch.sla.rmse``
    leads to the model of its values)."""
    model: Any = Policy
    for part in path:
        if typing.get_origin(model) is dict:
            model = typing.get_args(model)[1]
            continue
        field = model.model_fields.get(str(part)) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        model = field.annotation
    return list(model.model_fields) if hasattr(model, "model_fields") else []


@functools.cache
def _default_policy() -> Policy:
    return Policy.from_yaml(default_policy_text(), source="the default policy")


def default_policy_text() -> str:
    """The text of the default policy file, with its comments."""
    return resources.files("regrow.plan").joinpath("default_policy.yaml").read_text("utf-8")


def load_policy(path: str | os.PathLike[str] | None) -> Policy:
    """The policy in file ``path``, or the default one when ``path`` is None."""
    if path is None:
        return Policy.default()
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise PolicyError(
            f"cannot read policy file {os.fspath(path)!r}: {exc.strerror}",
            hint="give the path of a YAML policy (`regrow policy show > policy.yaml`)",
        ) from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(
            f"cannot read policy file {os.fspath(path)!r}: it is not UTF-8 text (byte "
            f"{exc.object[exc.start]:#04x} at offset {exc.start})",
            hint="a policy is a YAML file saved as UTF-8; check that the path names the policy "
            "and not another file (`regrow policy show > policy.yaml` writes the default)",
        ) from exc
    return Policy.from_yaml(text, source=f"policy {os.fspath(path)!r}")
