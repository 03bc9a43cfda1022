"""The endpoints of the app (:mod:`regrow.serve.app`), and their OpenAPI description.

Handlers take the raw :class:`~starlette.requests.Request` and answer with bytes that orjson
wrote, so FastAPI validates nothing on the way; the bodies are described for the OpenAPI
document by :mod:`regrow.serve.schemas`, and every status a handler can answer is listed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException

from regrow.logged import feedback as feedback_labels
from regrow.serve.errors import BadRequest, NotReady, PayloadTooLarge
from regrow.serve.inference import answer_infer, error_body
from regrow.serve.metrics import CONTENT_TYPE
from regrow.serve.schemas import (
    ErrorBody,
    FeedbackRequest,
    FeedbackResponse,
    InferRequest,
    InferResponse,
    LiveResponse,
    ModelMetadata,
    ModelReady,
    ReadyResponse,
    ServerMetadata,
    openapi_components,
    ref,
)

if TYPE_CHECKING:
    from regrow.serve.state import ServeState

__all__ = ["EXTENSIONS", "add"]

#: The protocol extensions of ``GET /v2``.
EXTENSIONS = ["regrow_feedback", "regrow_prediction_log"]
_JSON = "application/json"
log = logging.getLogger("regrow.serve")
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_ERRORS = {
    400: "A request the protocol or the model does not accept",
    401: "No API token, or a bad one",
    403: "The token's role does not allow it",
    404: "An unknown model or model version",
    413: "A body over max_request_bytes, or more rows than max_batch_rows",
    503: "The model is not loaded yet",
}


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value, option=_NUMPY), status, media_type=_JSON)


def _docs(model: Any, *codes: int, body: Any = None, secured: bool = False) -> dict[str, Any]:
    """The ``responses`` and ``openapi_extra`` of a route answering ``model`` or ``codes``."""
    responses: dict[int | str, Any] = {200: {"content": {_JSON: {"schema": ref(model)}}}}
    for code in codes:
        responses[code] = {
            "description": _ERRORS[code],
            "content": {_JSON: {"schema": ref(ErrorBody if code != 503 else model)}},
        }
    extra: dict[str, Any] = {}
    if body is not None:
        extra["requestBody"] = {"required": True, "content": {_JSON: {"schema": ref(body)}}}
    if secured:
        extra["security"] = [{"bearer": []}]
    return {"responses": responses, "openapi_extra": extra or None}


def add(app: FastAPI, state: ServeState, version: str) -> None:
    """Add every endpoint, the error handlers and the OpenAPI document to ``app``."""
    host, metrics, settings, guard = state.host, state.metrics, state.settings, state.guard
    secured = not guard.inference_open
    auth = (401, 403) if secured else ()
    live = orjson.dumps({"live": True})
    server = orjson.dumps({"name": "regrow", "version": version, "extensions": EXTENSIONS})

    async def inference_caller(request: Request) -> None:
        if secured:
            await state.caller(request.headers.get("authorization"), "viewer", "use inference")

    # -- health and server metadata ----------------------------------------------------------

    @app.get("/v2/health/live", tags=["health"], **_docs(LiveResponse))
    async def health_live() -> Response:
        return Response(live, media_type=_JSON)

    @app.get("/v2/health/ready", tags=["health"], **_docs(ReadyResponse, 503))
    async def health_ready() -> Response:
        ready = host.ready
        return _json({"ready": ready}, 200 if ready else 503)

    @app.get("/v2", tags=["server"], **_docs(ServerMetadata))
    async def server_metadata() -> Response:
        return Response(server, media_type=_JSON)

    # -- models -----------------------------------------------------------------------------

    async def metadata(request: Request, model: str, wanted: str | None) -> Response:
        start, code = perf_counter(), 200
        try:
            await inference_caller(request)
            slot, served, _name = host.resolve(model, wanted)
            versions = list(dict.fromkeys(n for s in host.slots_of(model) for n in s.names))
            parameters: dict[str, Any] = {"system_version": served.ref, "alias": slot.target.alias}
            if served.signature.classes is not None:
                parameters["classes"] = list(served.signature.classes)
            if served.signature.aliases:  # the version's rename adapters: other input names
                parameters["input_aliases"] = dict(served.signature.aliases)
            if served.signature.optional:  # inputs its default adapters fill
                parameters["optional_inputs"] = sorted(served.signature.optional)
            body = {
                "name": model,
                "versions": versions,
                "platform": "regrow",
                **served.signature.metadata(),
                "parameters": parameters,
            }
            return _json(body)
        except Exception as exc:
            code, response = _error(exc)
            return response
        finally:
            metrics.request(model, "metadata", code, perf_counter() - start)

    async def ready(request: Request, model: str, wanted: str | None) -> Response:
        try:
            await inference_caller(request)
            host.resolve(model, wanted)
            return _json({"name": model, "ready": True})
        except NotReady:
            return _json({"name": model, "ready": False}, 503)
        except Exception as exc:
            return _error(exc)[1]

    async def infer(request: Request, model: str, wanted: str | None) -> Response:
        # ServeApp answers infer requests before routing; this serves an app mounted elsewhere.
        code, content, extra = await answer_infer(
            state, model, wanted, request.headers, request.stream()
        )
        return Response(content, code, extra, _JSON)

    model_docs = _docs(ModelMetadata, 400, *auth, 404, 503)
    ready_docs = _docs(ModelReady, *auth, 404, 503)
    infer_docs = _docs(InferResponse, 400, *auth, 404, 413, 503, body=InferRequest, secured=secured)
    if secured:
        model_docs["openapi_extra"] = ready_docs["openapi_extra"] = {"security": [{"bearer": []}]}

    @app.get("/v2/models/{model_name}", tags=["model"], **model_docs)
    async def model_metadata(request: Request, model_name: str) -> Response:
        return await metadata(request, model_name, None)

    @app.get("/v2/models/{model_name}/versions/{model_version}", tags=["model"], **model_docs)
    async def model_version_metadata(
        request: Request, model_name: str, model_version: str
    ) -> Response:
        return await metadata(request, model_name, model_version)

    @app.get("/v2/models/{model_name}/ready", tags=["model"], **ready_docs)
    async def model_ready(request: Request, model_name: str) -> Response:
        return await ready(request, model_name, None)

    @app.get("/v2/models/{model_name}/versions/{model_version}/ready", tags=["model"], **ready_docs)
    async def model_version_ready(
        request: Request, model_name: str, model_version: str
    ) -> Response:
        return await ready(request, model_name, model_version)

    @app.post("/v2/models/{model_name}/infer", tags=["inference"], **infer_docs)
    async def model_infer(request: Request, model_name: str) -> Response:
        return await infer(request, model_name, None)

    @app.post(
        "/v2/models/{model_name}/versions/{model_version}/infer", tags=["inference"], **infer_docs
    )
    async def model_version_infer(
        request: Request, model_name: str, model_version: str
    ) -> Response:
        return await infer(request, model_name, model_version)

    # -- feedback and metrics -----------------------------------------------------------------

    feedback_docs = _docs(
        FeedbackResponse, 400, 401, 403, 404, 413, body=FeedbackRequest, secured=True
    )

    @app.post("/regrow/v1/feedback", tags=["regrow"], **feedback_docs)
    async def feedback(request: Request) -> Response:
        start, code, model = perf_counter(), 200, "?"
        try:
            header = request.headers.get("authorization")
            caller = await state.caller(header, "operator", "send feedback")
            body = await state.read_json(request.headers, request.stream())
            model, labels = _labels(body, settings.max_batch_rows, state.host.models)
            received = await run_in_threadpool(
                feedback_labels, state.workspace.catalog, model, labels, actor=caller.name
            )
            metrics.feedback(model, received)
            return _json({"received": received})
        except Exception as exc:
            code, response = _error(exc)
            return response
        finally:
            metrics.request(model, "feedback", code, perf_counter() - start)

    @app.get(
        "/metrics",
        tags=["server"],
        responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
    )
    async def prometheus() -> Response:
        if state.predictions is not None:
            metrics.prediction_log(state.predictions.stats())
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    _handlers(app)
    _openapi(app, version, state)


def _error(exc: BaseException) -> tuple[int, Response]:
    code, content, extra = error_body(exc)
    return code, Response(content, code, extra, _JSON)


def _labels(
    body: Any, limit: int, served: Sequence[str] = ()
) -> tuple[str, list[tuple[str, int, Any]]]:
    """The model and ``(request_id, row, label)`` items of a feedback body (the hint's
    example names the model sent, else the first one ``served``)."""
    named = body.get("model_name") if isinstance(body, dict) else None
    example = named if isinstance(named, str) and named else next(iter(served), "churn")
    model = orjson.dumps(example).decode()
    hint = 'send {"model_name": ' + model + ', "labels": [{"id": "r1", "row": 0, "label": 1}]}'
    if not isinstance(body, dict) or not isinstance(body.get("model_name"), str):
        raise BadRequest("the feedback body needs a string 'model_name'", hint=hint)
    items = body.get("labels")
    if not isinstance(items, list) or not items:
        raise BadRequest("the feedback body needs a non-empty list 'labels'", hint=hint)
    if len(items) > limit:
        raise PayloadTooLarge(
            f"the feedback has {len(items)} labels, over the limit of {limit}",
            hint="send them in several calls, or raise [serve] max_batch_rows",
        )
    labels = []
    for n, item in enumerate(items):
        rid = item.get("id") if isinstance(item, dict) else None
        row = item.get("row", 0) if isinstance(item, dict) else None
        label = item.get("label") if isinstance(item, dict) else None
        if isinstance(row, float) and row.is_integer():  # JSON Schema's integer admits 2.0
            row = int(row)
        if (
            not isinstance(rid, str)
            or not 0 < len(rid) <= 255
            or type(row) is not int
            or row < 0
            or label is None
            or isinstance(label, dict | list)
        ):
            raise BadRequest(
                f"labels[{n}] must be an object with a string 'id', an optional 'row' >= 0 and "
                f"a scalar 'label' (got {str(item)[:80]})",
                hint=hint,
            )
        labels.append((rid, row, label))
    return body["model_name"], labels


def _handlers(app: FastAPI) -> None:
    """Errors from routing (unknown path, wrong method) as ``{"error": ...}`` too."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        path = request.url.path
        text = {
            404: f"no endpoint {path!r}",
            405: f"{request.method} is not allowed on {path!r}",
        }.get(exc.status_code, str(exc.detail))
        return Response(orjson.dumps({"error": text}), exc.status_code, exc.headers, _JSON)

    async def invalid(request: Request, exc: Exception) -> Response:
        return _error(BadRequest(f"invalid request: {exc}"))[1]

    async def unexpected(request: Request, exc: Exception) -> Response:
        return _error(exc)[1]

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, unexpected)


def _openapi(app: FastAPI, version: str, state: ServeState) -> None:
    """The OpenAPI document, with the body schemas, the bearer scheme, no 422s, and the
    models and versions served as the path parameters' examples."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title, version=version, summary=app.summary, routes=app.routes
            )
            components = doc.setdefault("components", {})
            schemas = components.setdefault("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            schemas.update(openapi_components())
            components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            examples = {
                "model_name": state.host.models,
                "model_version": list(dict.fromkeys(n for s in state.host.slots for n in s.names)),
            }
            for path in doc["paths"].values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
                    for parameter in operation.get("parameters", []):
                        if parameter["name"] in examples:
                            parameter["schema"]["examples"] = examples[parameter["name"]]
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
