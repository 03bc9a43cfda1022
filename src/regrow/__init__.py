"""regrow: keep production ML models fresh by retraining only what needs it.

The public API lives here; deeper modules are implementation.

>>> import regrow
>>> regrow.System.__name__, regrow.Workspace.__name__
('System', 'Workspace')
"""

from __future__ import annotations

from regrow.components.base import Component, Ensemble, Member, Transform
from regrow.data.schema import Schema
from regrow.errors import RegrowError
from regrow.evaluate.evaluation import Comparison, Gate
from regrow.model import FittedSystem
from regrow.plan.plan import Plan
from regrow.plan.policy import Policy
from regrow.run.backends import LocalBackend
from regrow.run.runner import RunResult
from regrow.run.staleness import ComponentStatus
from regrow.system import System
from regrow.workspace import Workspace

__version__ = "0.1.0"

__all__ = [
    "Comparison",
    "Component",
    "ComponentStatus",
    "Ensemble",
    "FittedSystem",
    "Gate",
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
