"""The `regrow` command: a thin layer over :class:`regrow.Workspace`, one module per group.

Every command takes ``--home`` (default ``$REGROW_HOME``, else the nearest ``.regrow`` at or
above the current folder); every read command takes ``--json``. Errors print what is wrong
and a hint, and exit with status 2; Ctrl-C exits with 130 and says that finished work is kept.

================== ==========================================================================
module             commands
================== ==========================================================================
``_app``           the Typer app, consoles, common options, :func:`main` and its errors
``demo``           ``init``, ``demo``
``train``          ``train``, ``update``, ``status``, ``versions``
``monitor``        ``monitor``
``plans``          ``plan``, ``run``, ``plans list|show|diff``, ``policy check|show``
``evaluate``       ``evaluate``
``governance``     ``promote``, ``approve``, ``approvals``, ``rollback``, ``aliases``
``users``          ``users add|list|role|revoke``, ``tokens create|list|revoke``, ``whoami``
``experiments``    ``experiments list|show|tag``
``reproduce``      ``reproduce``
``lineage``        ``lineage``, ``audit``, ``doctor``
``data``           ``snapshot create|list|show``
``schema``         ``schema diff|check`` (schema changes under a compatibility mode)
``adapters``       ``adapters propose|show`` (boundary adapters a system needs / has)
``skew``           ``skew`` (training/serving skew from the prediction log)
``costs``          ``costs`` (what each run used and cost: CPU, GPU, memory, rows, money)
``watch``          ``watch`` (keep a system fresh, cycle by cycle; ``--history``, ``--status``)
``forecast``       ``forecast`` (P(the metric crosses its SLA within a horizon), its series)
``recipes``        ``recipes list|show`` (named, versioned update recipes: built-ins, entry points)
``window``         ``window`` (a window from the prediction log and its labels)
``serve``          ``serve`` (the Open Inference Protocol v2 app), ``predict`` (batch scoring)
``rollout``        ``rollout start|status|step|pause|resume|promote|abort|history``
``refresh``        ``refresh`` (an ensemble's weights from its members' losses on a window)
================== ==========================================================================

Modules import only Typer, Rich and light parts of regrow at the top; the workspace, pandas,
scikit-learn and SQLAlchemy load inside the commands, so ``regrow --help`` starts at once (a
test checks that ``import regrow.cli`` loads none of them). :func:`main` builds the options
of the one command it runs, not of all of them (``_app._Commands``).
"""

from __future__ import annotations

from regrow.cli._app import app, main
from regrow.cli._systems import load_system

# Importing a command module registers its commands; the order here is the order of
# `regrow --help`.
# isort: off
from regrow.cli import demo, train, monitor, data, plans, evaluate  # noqa: F401
from regrow.cli import governance, users, experiments, reproduce, lineage  # noqa: F401
from regrow.cli import window  # noqa: F401
from regrow.cli import serve  # noqa: F401
from regrow.cli import rollout  # noqa: F401
from regrow.cli import refresh  # noqa: F401
from regrow.cli import schema  # noqa: F401
from regrow.cli import adapters  # noqa: F401
from regrow.cli import skew  # noqa: F401
from regrow.cli import costs  # noqa: F401
from regrow.cli import watch  # noqa: F401
from regrow.cli import forecast  # noqa: F401
from regrow.cli import recipes  # noqa: F401
from regrow.cli import ui  # noqa: F401
# isort: on

__all__ = ["app", "load_system", "main"]
