"""regrow: keep production ML models fresh by retraining only what needs it.

The public API lives here; deeper modules are implementation. Names are imported on first
use (PEP 562), so ``import regrow`` and the ``regrow`` command start without loading
scikit-learn, pandas or SQLAlchemy until something needs them.

>>> import regrow
>>> regrow.System.__name__, regrow.Workspace.__name__
('System', 'Workspace')
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regrow.components.base import Component, Ensemble, Member, Transform
    from regrow.data.schema import Schema
    from regrow.errors import RegrowError
    from regrow.evaluate.evaluation import Comparison
    from regrow.evaluate.gates import Gate, GateResult
    from regrow.model import FittedSystem
    from regrow.plan.plan import Plan
    from regrow.plan.policy import Policy
    from regrow.run.backends import LocalBackend
    from regrow.run.runner import RunResult
    from regrow.run.staleness import ComponentStatus
    from regrow.system import System
    from regrow.workspace import Workspace

__version__ = "0.1.0"

_HOMES = {
    "Comparison": "regrow.evaluate.evaluation",
    "Component": "regrow.components.base",
    "ComponentStatus": "regrow.run.staleness",
    "Ensemble": "regrow.components.base",
    "FittedSystem": "regrow.model",
    "Gate": "regrow.evaluate.gates",
    "GateResult": "regrow.evaluate.gates",
    "LocalBackend": "regrow.run.backends",
    "Member": "regrow.components.base",
    "Plan": "regrow.plan.plan",
    "Policy": "regrow.plan.policy",
    "RegrowError": "regrow.errors",
    "RunResult": "regrow.run.runner",
    "Schema": "regrow.data.schema",
    "System": "regrow.system",
    "Transform": "regrow.components.base",
    "Workspace": "regrow.workspace",
}

__all__ = [
    "Comparison",
    "Component",
    "ComponentStatus",
    "Ensemble",
    "FittedSystem",
    "Gate",
    "GateResult",
    "LocalBackend",
    "Member",
    "Plan",
    "Policy",
    "RegrowError",
    "RunResult",
    "Schema",
    "System",
    "Transform",
    "Workspace",
    "__version__",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'regrow' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
