"""The dashboard's pages under ``/ui``: HTML rendered on the server by Jinja2 from the same
dicts the JSON API answers (:mod:`.api`), the plots as SVG images (:mod:`.plots`), and one
small script (``/ui/static/ui.js``: polling a running run, the rollout buttons).

Every asset is served from the package: no CDN, no build step. A page whose data is missing
answers its error (404 for an unknown system or version, ...) as a page with the hint.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from regrow.errors import NotFound, RegrowError
from regrow.ui import monitoring, overview, plans, plots, records, rollouts
from regrow.ui.api import status_of

if TYPE_CHECKING:
    import jinja2

    from regrow.ui.app import Dashboard

__all__ = ["router"]

_SVG = "image/svg+xml"
_FULL_ID = re.compile(r"[0-9a-f]{32}")
DASH = "\u2013"  # an en dash: no value
_STATIC = {"ui.css": "text/css; charset=utf-8", "ui.js": "text/javascript; charset=utf-8"}


def num(value: Any, digits: int = 4) -> str:
    """A number for a cell: ``digits`` significant digits, a dash for none.

    >>> num(0.123456), num(None) == DASH, num(12345.0), num(True)
    ('0.1235', True, '1.234e+04', 'yes')
    """
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return DASH if not math.isfinite(value) else f"{value:.{digits}g}"
    return str(value)


def when(value: Any) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM:SS`` (UTC as stored), a dash for none.

    >>> when("2026-11-30T06:26:43.049151+00:00"), when(None) == DASH
    ('2026-11-30 06:26:43', True)
    """
    if not value:
        return DASH
    try:
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(value)


def pct(value: Any) -> str:
    """A share as a percentage (``0.25`` -> ``25%``)."""
    return DASH if value is None else f"{float(value):.0%}"


def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("regrow.ui", "templates"),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=num, when=when, pct=pct, short=lambda s: str(s or "")[:12])
    return env


def router(board: Dashboard) -> APIRouter:
    """The pages, plots and static files over ``board``'s workspace."""
    pages = APIRouter(prefix="/ui", include_in_schema=False)
    ws = board.workspace
    env = _environment()

    def page(
        template: str, title: str, api: str, load: Callable[[], Any], **extra: Any
    ) -> Response:
        try:
            data = load()
        except RegrowError as exc:
            html = env.get_template("error.html").render(
                title=title, message=exc.message, hint=exc.hint, api=api
            )
            return HTMLResponse(html, status_code=status_of(exc))
        html = env.get_template(template).render(title=title, api=api, data=data, **extra)
        return HTMLResponse(html)

    def svg(key: tuple[Any, ...], draw: Callable[[], str]) -> Response:
        try:
            text = board.plots.get(key, draw)
        except RegrowError as exc:
            return Response(str(exc), status_of(exc), media_type="text/plain")
        return Response(text, media_type=_SVG, headers={"cache-control": "max-age=60"})

    @pages.get("")
    def overview_page() -> Response:
        return page("overview.html", "Overview", "/api/ui/overview",
                    lambda: overview.overview(ws))  # fmt: skip

    @pages.get("/versions/{ref}")
    def version_page(ref: str) -> Response:
        return page("system.html", f"System {ref}", f"/api/ui/versions/{ref}",
                    lambda: overview.system_graph(ws, ref))  # fmt: skip

    @pages.get("/monitoring/{system}")
    def monitoring_page(system: str, report: str | None = None) -> Response:
        api = _with_report(f"/api/ui/monitoring/{system}", report)
        return page("monitoring.html", f"Monitoring {system}", api,
                    lambda: monitoring.monitoring(ws, system, report))  # fmt: skip

    @pages.get("/monitoring/{system}/features/{column}")
    def feature_page(system: str, column: str, report: str | None = None) -> Response:
        api = _with_report(f"/api/ui/monitoring/{system}/features/{column}", report)
        return page("feature.html", f"{system}: feature {column}", api,
                    lambda: monitoring.feature(ws, system, column, report))  # fmt: skip

    @pages.get("/plans")
    def plans_page(system: str | None = None) -> Response:
        return page("plans.html", "Plans and runs", "/api/ui/plans",
                    lambda: plans.plans(ws, system))  # fmt: skip

    @pages.get("/plans/{plan_id}")
    def plan_page(plan_id: str) -> Response:
        return page("plan.html", f"Plan {plan_id[:12]}", f"/api/ui/plans/{plan_id}",
                    lambda: plans.plan(ws, plan_id))  # fmt: skip

    @pages.get("/runs/{run_id}")
    def run_page(run_id: str) -> Response:
        return page("run.html", f"Run {run_id[:12]}", f"/api/ui/runs/{run_id}",
                    lambda: plans.run(ws, run_id))  # fmt: skip

    @pages.get("/rollouts")
    def rollouts_page(system: str | None = None) -> Response:
        return page("rollouts.html", "Rollouts", "/api/ui/rollouts",
                    lambda: rollouts.rollouts(ws, system))  # fmt: skip

    @pages.get("/rollouts/{rollout_id}")
    def rollout_page(rollout_id: str) -> Response:
        return page("rollout.html", f"Rollout {rollout_id[:12]}", f"/api/ui/rollouts/{rollout_id}",
                    lambda: rollouts.rollout(ws, rollout_id))  # fmt: skip

    @pages.get("/governance")
    def governance_page() -> Response:
        return page("governance.html", "Governance", "/api/ui/governance",
                    lambda: records.governance(ws))  # fmt: skip

    @pages.get("/lineage/{ref}")
    def lineage_page(ref: str) -> Response:
        return page("lineage.html", f"Lineage of {ref}", f"/api/ui/lineage/{ref}",
                    lambda: records.lineage(ws, ref))  # fmt: skip

    @pages.get("/audit")
    def audit_page(request: Request) -> Response:
        q = request.query_params
        action, actor, subject = (q.get(k) or None for k in ("action", "actor", "subject"))
        return page(
            "audit.html", "Audit log", "/api/ui/audit?" + str(q),
            lambda: records.audit(ws, action=action, actor=actor, subject=subject,
                                  verified=board.verified),
        )  # fmt: skip

    # -- plots ----------------------------------------------------------------------------------

    @pages.get("/plots/effect/{system}/{column}.svg")
    def effect_plot(
        system: str, column: str, test: str, slice: str = "", upto: str | None = None
    ) -> Response:
        """``column``'s effect over the stored reports up to report ``upto`` (default: all):
        the page names its newest report, so a plot seen again costs no query."""
        upto = upto if upto and _FULL_ID.fullmatch(upto) else _report_key(ws, system, None)

        def draw() -> str:
            found = monitoring.reports_of(ws, system)
            ids = [r.id for r in found]
            if upto not in ids:
                raise NotFound("monitor report", upto, hint="reload the monitoring page")
            series = monitoring.effect_series(found[ids.index(upto) :], column)
            return plots.effect_svg(
                column, test, slice or None, series.get((column, test, slice), [])
            )

        return svg(("effect", system, column, test, slice, upto), draw)

    @pages.get("/plots/distribution/{system}/{column}.svg")
    def distribution_plot(system: str, column: str, report: str | None = None) -> Response:
        chosen = _report_key(ws, system, report)

        def draw() -> str:
            data = monitoring.feature(ws, system, column, chosen)
            if not data["distribution"]:
                raise NotFound(
                    "distribution of feature",
                    column,
                    hint="this report kept the distributions of other columns",
                )
            return plots.distribution_svg(column, data["distribution"])

        return svg(("distribution", system, column, chosen), draw)

    @pages.get("/plots/performance/{system}.svg")
    def performance_plot(system: str, metric: str, report: str | None = None) -> Response:
        chosen = _report_key(ws, system, report)

        def draw() -> str:
            rep = monitoring.monitoring(ws, system, chosen)["report"] or {}
            return plots.performance_svg(rep.get("estimates") or {}, rep.get("chunks") or [],
                                         metric)  # fmt: skip

        return svg(("performance", system, metric, chosen), draw)

    @pages.get("/plots/over-time/{system}.svg")
    def over_time_plot(system: str, upto: str | None = None) -> Response:
        """The metric over the windows and its forecast; ``upto`` (the newest report's id,
        which the page names) keys the cached drawing."""

        def draw() -> str:
            data = monitoring.over_time(ws, system)
            if data is None:
                raise NotFound("metric over time of system", system, hint="monitor a window")
            return plots.over_time_svg(data)

        return svg(("over-time", system, upto), draw)

    @pages.get("/plots/impacts/{system}.svg")
    def impacts_plot(system: str, report: str | None = None) -> Response:
        chosen = _report_key(ws, system, report)

        def draw() -> str:
            rep = monitoring.monitoring(ws, system, chosen)["report"] or {}
            return plots.impacts_svg(rep.get("impacts") or [])

        return svg(("impacts", system, chosen), draw)

    @pages.get("/plots/rollout/{rollout_id}/{what}.svg")
    def rollout_plot(rollout_id: str, what: str) -> Response:
        from regrow.rollout import machine

        try:
            record = machine.status(ws, rollout_id)[0]
        except RegrowError as exc:
            return Response(str(exc), status_of(exc), media_type="text/plain")

        def draw() -> str:
            data = rollouts.rollout(ws, record.id)
            if what == "share":
                return plots.rollout_share_svg(data["history"], data["mode"])
            if what == "evidence":
                tolerance = (data.get("evidence") or {}).get("tolerance")
                return plots.rollout_evidence_svg(data["history"], tolerance)
            raise NotFound("rollout plot", what, hint="share or evidence")

        return svg(("rollout", record.id, record.revision, what), draw)

    # -- static files ---------------------------------------------------------------------------

    @pages.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in _STATIC:
            return Response(f"no file {name!r}", 404, media_type="text/plain")
        text = resources.files("regrow.ui").joinpath("static", name).read_text("utf-8")
        return Response(text, media_type=_STATIC[name], headers={"cache-control": "max-age=300"})

    return pages


def _with_report(url: str, report: str | None) -> str:
    """``url`` with the ``?report=`` a page was asked for (its JSON link shows that report,
    not the newest one).

    >>> _with_report("/api/ui/monitoring/churn", "3f2a9c"), _with_report("/x", None)
    ('/api/ui/monitoring/churn?report=3f2a9c', '/x')
    """
    return f"{url}?{urlencode({'report': report})}" if report else url


def _report_key(ws: Any, system: str, report: str | None) -> str:
    """The id of the report a plot shows (the newest when none is given); a whole id is
    taken as it is, without a query (a plot of an unknown one answers 404 when drawn)."""
    if report is not None and _FULL_ID.fullmatch(report):
        return report
    found = monitoring.reports_of(ws, system)
    if report is None:
        return found[0].id if found else ""
    return next((r.id for r in found if r.id.startswith(report)), report)
