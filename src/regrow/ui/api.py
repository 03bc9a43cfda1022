"""The dashboard's JSON API under ``/api/ui``: what every page shows, in the app's OpenAPI
document (tag ``dashboard``).

======================================================  =======================================
endpoint                                                answers
======================================================  =======================================
``GET /api/ui/overview``                                systems, aliases, versions, rollouts,
                                                        watchers, monitor verdicts, runs, cost
``GET /api/ui/versions/{ref}``                          a version's component graph
``GET /api/ui/monitoring/{system}``                     the drift drill-down (``?report=``)
``GET /api/ui/monitoring/{system}/features/{column}``   one feature over time, its distributions
``GET /api/ui/plans``, ``/plans/{id}``, ``/runs/{id}``  plans with actions, a run's progress
``GET /api/ui/rollouts``, ``/rollouts/{id}``            rollouts, one's transitions and evidence
``POST /api/ui/rollouts/{id}/{action}``                 pause, resume, promote, abort (operator
                                                        token)
``GET /api/ui/governance``                              evaluations, gates, approvals
``GET /api/ui/lineage/{ref}``                           where a version came from
``GET /api/ui/audit``                                   events (filtered), chain verification
======================================================  =======================================

Reads act as the identity the app was opened with; a move acts as the identity of the
request's ``Authorization: Bearer <token>``. Errors are ``{"error": "<message>; <hint>"}``:
400 bad input, 401 no or bad token, 403 a role too low, 404 not found, 409 a move the state
does not allow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Request, Response

from regrow.errors import AuthError, PermissionDenied, RegrowError
from regrow.ui import monitoring, overview, plans, records, rollouts

if TYPE_CHECKING:
    from regrow.ui.app import Dashboard

__all__ = ["router", "status_of"]

_JSON = "application/json"
_ERROR_BODY = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}
_ERRORS = {
    400: "A parameter the dashboard does not accept",
    401: "No API token, or a bad one",
    403: "The token's role does not allow it",
    404: "No such system, version, report, plan, run or rollout",
    409: "The rollout's state does not allow the move",
}


def status_of(error: BaseException) -> int:
    """The HTTP status of ``error``.

    >>> from regrow.errors import NotFound, ConfigError
    >>> status_of(NotFound("plan", "x")), status_of(ConfigError("y")), status_of(RegrowError("z"))
    (404, 400, 409)
    """
    if isinstance(error, PermissionDenied):
        return 403
    if isinstance(error, AuthError):
        return 401
    if isinstance(error, LookupError):
        return 404
    if isinstance(error, ValueError):
        return 400
    return 409


def error_response(error: RegrowError) -> Response:
    """``{"error": "<message>; <hint>"}`` with the status of ``error``."""
    return Response(orjson.dumps({"error": str(error)}), status_of(error), media_type=_JSON)


def _docs(*codes: int, summary: str) -> dict[str, Any]:
    responses: dict[int | str, Any] = {
        200: {"description": summary, "content": {_JSON: {"schema": {"type": "object"}}}}
    }
    for code in codes:
        responses[code] = {
            "description": _ERRORS[code],
            "content": {_JSON: {"schema": _ERROR_BODY}},
        }
    return {"responses": responses, "response_model": None, "summary": summary}


def answer(call: Callable[[], Any]) -> Response:
    """``call()`` as JSON, or its :class:`~regrow.errors.RegrowError` as an error body."""
    try:
        value = call()
    except RegrowError as exc:
        return error_response(exc)
    return Response(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY), media_type=_JSON)


def router(board: Dashboard) -> APIRouter:
    """The JSON endpoints over ``board``'s workspace."""
    api = APIRouter(prefix="/api/ui", tags=["dashboard"])
    ws = board.workspace

    @api.get("/overview", **_docs(summary="Systems, aliases, rollouts, verdicts and runs"))
    def get_overview() -> Response:
        return answer(lambda: overview.overview(ws))

    @api.get("/versions/{ref}", **_docs(400, 404, summary="A version's component graph"))
    def get_version(ref: str) -> Response:
        return answer(lambda: overview.system_graph(ws, ref))

    @api.get("/monitoring/{system}", **_docs(400, 404, summary="The drift drill-down of a system"))
    def get_monitoring(system: str, report: str | None = None) -> Response:
        return answer(lambda: monitoring.monitoring(ws, system, report))

    @api.get(
        "/monitoring/{system}/features/{column}",
        **_docs(400, 404, summary="One feature: drift per slice, distributions, effect over time"),
    )
    def get_feature(system: str, column: str, report: str | None = None) -> Response:
        return answer(lambda: monitoring.feature(ws, system, column, report))

    @api.get("/plans", **_docs(400, 404, summary="Stored plans and the latest runs"))
    def get_plans(system: str | None = None) -> Response:
        return answer(lambda: plans.plans(ws, system))

    @api.get(
        "/plans/{plan_id}", **_docs(400, 404, summary="A plan's actions, reasons, gains, costs")
    )
    def get_plan(plan_id: str) -> Response:
        return answer(lambda: plans.plan(ws, plan_id))

    @api.get("/runs/{run_id}", **_docs(400, 404, summary="A run and its progress"))
    def get_run(run_id: str) -> Response:
        return answer(lambda: plans.run(ws, run_id))

    @api.get("/rollouts", **_docs(400, 404, summary="Rollouts, newest first"))
    def get_rollouts(system: str | None = None) -> Response:
        return answer(lambda: rollouts.rollouts(ws, system))

    @api.get("/rollouts/{rollout_id}", **_docs(400, 404, summary="A rollout and its transitions"))
    def get_rollout(rollout_id: str) -> Response:
        return answer(lambda: rollouts.rollout(ws, rollout_id))

    @api.post(
        "/rollouts/{rollout_id}/{action}",
        openapi_extra={"security": [{"bearer": []}]},
        **_docs(400, 401, 403, 404, 409, summary="Pause, resume, promote or abort a rollout"),
    )
    async def post_rollout(rollout_id: str, action: str, request: Request) -> Response:
        from fastapi.concurrency import run_in_threadpool

        reason = request.query_params.get("reason", "")
        header = request.headers.get("authorization")
        return await run_in_threadpool(board.act, header, rollout_id, action, reason)

    @api.get("/governance", **_docs(summary="Evaluations with gates, approvals, pending"))
    def get_governance() -> Response:
        return answer(lambda: records.governance(ws))

    @api.get("/lineage/{ref}", **_docs(400, 404, summary="Where a version came from"))
    def get_lineage(ref: str) -> Response:
        return answer(lambda: records.lineage(ws, ref))

    @api.get("/audit", **_docs(400, summary="Audit events, filtered; the chain's verification"))
    def get_audit(
        action: str | None = None,
        actor: str | None = None,
        subject: str | None = None,
        limit: int = 200,
    ) -> Response:
        return answer(
            lambda: records.audit(
                ws,
                action=action,
                actor=actor,
                subject=subject,
                limit=limit,
                verified=board.verified,
            )
        )

    return api
