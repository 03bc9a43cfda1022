"""The Plan: ordered actions with reasons, expected gain and cost, rationale and contingency.

A plan is plain data: it is stored in the catalog (its id is the hash of its content, so two
equal plans share an id), shown by ``regrow plan``, diffed by :func:`diff_plans`, and run by
``regrow run PLAN``.

>>> from regrow.plan.actions import Refit
>>> a = Plan(system="churn", version="churn:v1", version_id="v" * 32, window="w" * 64,
...          actions=(Refit("geo", reason="its loss rose"),))
>>> b = Plan(system="churn", version="churn:v1", version_id="v" * 32, window="w" * 64,
...          actions=(Refit("geo"), Refit("usage")))
>>> diff_plans(a, b)
['+ refit usage']
>>> Plan.from_dict(a.to_dict()).id == a.id
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from regrow._hashing import hash_json
from regrow.plan.actions import Action, action_from_dict

__all__ = ["Plan", "diff_plans"]


@dataclass(frozen=True)
class Plan:
    """What to update in ``version`` after checking it on ``window``, and why."""

    system: str
    version: str
    version_id: str
    window: str
    actions: tuple[Action, ...] = ()
    escalated: bool = False
    rationale: tuple[str, ...] = ()
    contingency: str = ""
    signals: Mapping[str, Any] = field(default_factory=dict)
    diagnosis: Mapping[str, Any] | None = None
    expected: Mapping[str, Any] = field(default_factory=dict)
    cost: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    policy: Mapping[str, Any] = field(default_factory=dict)
    needs_approval: bool = False
    monitor_report: str | None = None
    timings: Mapping[str, float] = field(default_factory=dict)  # step -> seconds planning took

    @property
    def empty(self) -> bool:
        """Whether the plan does nothing (nothing needs an update)."""
        return not self.actions

    @property
    def id(self) -> str:
        """The content hash: equal plans share it.

        Measured CPU seconds of the diagnostics, the time each step took and the id of the
        monitoring report vary from one planning to the next on the same inputs, so they are
        left out.
        """
        body = self.to_dict()
        body.pop("monitor_report")
        body.pop("timings")
        body["cost"] = {k: v for k, v in body["cost"].items() if k != "diagnostics_cpu_seconds"}
        if body["diagnosis"] is not None:
            body["diagnosis"] = {k: v for k, v in body["diagnosis"].items() if k != "cpu_seconds"}
        return hash_json(body)[:32]

    @property
    def components(self) -> list[str]:
        """The components the actions name, in order."""
        return [a.component for a in self.actions]

    def summary(self) -> dict[str, Any]:
        """The short form: actions, escalation, expected loss, cost."""
        return {
            "actions": [a.describe() for a in self.actions],
            "escalated": self.escalated,
            "needs_approval": self.needs_approval,
            "expected": dict(self.expected),
            "estimated_cpu_seconds": self.cost.get("estimated_cpu_seconds"),
        }

    def to_dict(self) -> dict[str, Any]:
        """The whole plan as JSON."""
        return {
            "system": self.system,
            "version": self.version,
            "version_id": self.version_id,
            "window": self.window,
            "actions": [a.to_dict() for a in self.actions],
            "escalated": self.escalated,
            "rationale": list(self.rationale),
            "contingency": self.contingency,
            "signals": dict(self.signals),
            "diagnosis": dict(self.diagnosis) if self.diagnosis is not None else None,
            "expected": dict(self.expected),
            "cost": dict(self.cost),
            "data": dict(self.data),
            "policy": dict(self.policy),
            "needs_approval": self.needs_approval,
            "monitor_report": self.monitor_report,
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        """Rebuild a plan stored by :meth:`to_dict`."""
        return cls(
            system=data["system"],
            version=data["version"],
            version_id=data["version_id"],
            window=data["window"],
            actions=tuple(action_from_dict(a) for a in data.get("actions", [])),
            escalated=bool(data.get("escalated", False)),
            rationale=tuple(data.get("rationale", ())),
            contingency=str(data.get("contingency", "")),
            signals=dict(data.get("signals") or {}),
            diagnosis=data.get("diagnosis"),
            expected=dict(data.get("expected") or {}),
            cost=dict(data.get("cost") or {}),
            data=dict(data.get("data") or {}),
            policy=dict(data.get("policy") or {}),
            needs_approval=bool(data.get("needs_approval", False)),
            monitor_report=data.get("monitor_report"),
            timings=dict(data.get("timings") or {}),
        )


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _fmt(value: Any) -> str:
    """A value for a diff line; a missing or non-finite number reads "(none)", never None."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "(none)"
    return f"{value:.4g}" if isinstance(value, float) else repr(value)


def diff_plans(old: Plan, new: Plan) -> list[str]:
    """What changed from ``old`` to ``new``: actions added (+), removed (-), changed (~)."""
    lines: list[str] = []
    if (old.system, old.version, old.window) != (new.system, new.version, new.window):
        lines.append(
            f"~ inputs: {old.version} on {old.window[:12]} -> {new.version} on {new.window[:12]}"
        )
    before = {(a.kind, a.component): a for a in old.actions}
    after = {(a.kind, a.component): a for a in new.actions}
    for key, a in after.items():
        if key not in before:
            lines.append(f"+ {a.describe()}")
        elif before[key].params() != a.params():
            lines.append(f"~ {before[key].describe()} -> {a.describe()}")
    lines.extend(f"- {a.describe()}" for key, a in before.items() if key not in after)
    if old.escalated != new.escalated:
        lines.append(f"~ escalated: {_yes(old.escalated)} -> {_yes(new.escalated)}")
    if old.needs_approval != new.needs_approval:
        lines.append(f"~ needs approval: {_yes(old.needs_approval)} -> {_yes(new.needs_approval)}")
    for name in sorted(set(old.expected) | set(new.expected)):
        was, now = old.expected.get(name), new.expected.get(name)
        if was != now:
            lines.append(f"~ expected {name}: {_fmt(was)} -> {_fmt(now)}")
    a_cost = old.cost.get("estimated_cpu_seconds")
    b_cost = new.cost.get("estimated_cpu_seconds")
    if a_cost != b_cost:
        lines.append(f"~ estimated CPU seconds: {_fmt(a_cost)} -> {_fmt(b_cost)}")
    if old.policy != new.policy:
        keys = sorted(
            k for k in set(old.policy) | set(new.policy) if old.policy.get(k) != new.policy.get(k)
        )
        lines.append(f"~ policy sections changed: {', '.join(keys)}")
    return lines
