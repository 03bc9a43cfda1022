"""The dashboard: see the system, drill into drift, follow plans, rollouts and lineage.

``regrow ui --home H`` serves it alone; ``regrow serve`` serves it too, under ``/ui``, in the
same app as the models. Pages are HTML rendered on the server (Jinja2) from the dicts of a
JSON API under ``/api/ui`` that is part of the app's OpenAPI document; plots are the monitor
HTML report's matplotlib SVGs; one small script polls running runs and sends the rollout
buttons' moves. Nothing is loaded from outside the package.

================  ===========================================================================
module            holds
================  ===========================================================================
:mod:`.app`       :class:`Dashboard`, :func:`add_dashboard`, :func:`create_ui_app`
:mod:`.api`       the JSON endpoints (``/api/ui/...``) and their errors
:mod:`.pages`     the HTML pages, plots and static files (``/ui/...``)
:mod:`.overview`  systems, aliases, versions, rollouts, watchers, verdicts, runs; a version's
                  component graph
:mod:`.monitoring`  the drift drill-down and a feature's page, from stored monitor reports
:mod:`.plans`     plans with their actions, expected vs actual; a run's progress
:mod:`.rollouts`  rollouts, their transitions and evidence; the moves (role-checked)
:mod:`.records`   governance (evaluations, gates, approvals), lineage, audit
:mod:`.plots`     the SVG plots and their cache
:mod:`.systems`   the 404 of an unknown system, on every page filtered by system
================  ===========================================================================
"""

from __future__ import annotations

from regrow.ui.app import Dashboard, add_dashboard, create_ui_app

__all__ = ["Dashboard", "add_dashboard", "create_ui_app"]
