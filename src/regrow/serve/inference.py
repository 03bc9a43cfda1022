"""The infer endpoint's hot path, and the app class that takes it before FastAPI's routing.

``POST /v2/models/{m}[/versions/{v}]/infer`` is what a server spends its time on. A request
that goes through FastAPI passes a dozen layers (middleware, routing, dependency solving,
exception wrappers) that cost more than decoding and encoding its tensors, for an endpoint
that needs none of them. :class:`ServeApp` is a :class:`~fastapi.FastAPI` that answers infer
requests itself, from the raw ASGI messages, with :func:`answer_infer`, and hands every
other request (and lifespan events) to FastAPI. The routes FastAPI has for infer describe it
in the OpenAPI document and answer with the same function.

A request for an alias under a rollout goes through the slot's routing (read once; the lanes,
shadow and blend scoring are :mod:`.routing`'s), and a candidate's failures to score are
counted (``regrow_rollout_candidate_errors_total``); without a rollout, or for a version asked
for by number (``/versions/v3``: pinned, never routed), it takes the one-lane path.

:func:`error_body` turns an exception into the status, JSON body and headers every endpoint
answers with (a 500 names no internals and is logged with its traceback).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Mapping
from time import perf_counter
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI

from regrow.errors import RegrowError
from regrow.serve.errors import status_of
from regrow.serve.oip import decode, encode
from regrow.serve.routing import CandidateFailed, route, routing_key
from regrow.serve.served import Ticket

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from regrow.serve.state import ServeState

__all__ = ["ServeApp", "answer_infer", "error_body"]

log = logging.getLogger("regrow.serve")

_INFER = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer")
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_JSON_HEADER = (b"content-type", b"application/json")


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


async def answer_infer(
    state: ServeState,
    model: str,
    wanted: str | None,
    headers: Mapping[str, str],
    chunks: AsyncIterator[bytes],
) -> tuple[int, bytes, dict[str, str]]:
    """The status, JSON body and extra headers answering an infer request for ``model``
    (version ``wanted``), given its headers (lowercase names) and its body's chunks."""
    start, code = perf_counter(), 200
    try:
        if not state.guard.inference_open:
            await state.caller(headers.get("authorization"), "viewer", "use inference")
        slot, served, name = state.host.resolve(model, wanted)
        # read once: a rollout's routing, or None; a version asked for by number is pinned
        routing = slot.routing if name == slot.target.alias else None
        with served.batcher.arriving():
            body = await state.read_json(headers, chunks)
            decoded = decode(body, served.signature, max_rows=state.settings.max_batch_rows)
            key = routing_key(decoded.parameters, headers, decoded.id)  # checked either way
            if routing is None:
                lane = state.host.router.lane_for(decoded.id)
                ticket = Ticket(decoded.id, decoded.rows, lane)
                scored = served.batcher.enqueue(decoded.columns, decoded.rows, ticket)
            else:
                routed = route(routing, decoded, key, _counted(state, model))
        if routing is None:
            outputs = await scored
            parameters: dict[str, Any] = {"lane": lane, "system_version": served.ref}
        else:
            answer = await routed
            outputs = answer.outputs
            parameters = {"lane": answer.lane, "system_version": answer.version,
                          **answer.parameters}  # fmt: skip
        response = encode(
            model_name=model, model_version=name, request_id=decoded.id, outputs=outputs,
            signature=served.signature, wanted=decoded.outputs, parameters=parameters,
        )  # fmt: skip
        return 200, orjson.dumps(response, option=_NUMPY), {}
    except ClientGone:
        code = 499  # as nginx counts a client that left
        raise
    except Exception as exc:
        code, content, extra = error_body(exc)
        return code, content, extra
    finally:
        state.metrics.request(model, "infer", code, perf_counter() - start)


def _counted(state: ServeState, model: str) -> CandidateFailed:
    """Counts a rollout candidate's failures to score ``model``'s requests, by lane."""

    def failed(lane: str, error: BaseException) -> None:
        state.metrics.candidate_error(model, lane)

    return failed


def error_body(exc: BaseException) -> tuple[int, bytes, dict[str, str]]:
    """The status, ``{"error": ...}`` body and extra headers answering ``exc``."""
    status = status_of(exc)
    if status == 500 and isinstance(exc, RegrowError):
        status = (
            404 if isinstance(exc, LookupError) else 400 if isinstance(exc, ValueError) else 500
        )
    if status == 500:
        log.error("unexpected error answering a request", exc_info=exc)
        text = f"internal error ({type(exc).__name__}); the server log has the details"
    elif isinstance(exc, RegrowError) and "\n" in exc.message:
        # a library's own multi-line advice (scikit-learn's on NaN, with its links) is for
        # its users, not an API client: its first line, and regrow's hint
        text = exc.message.splitlines()[0].rstrip() + (f"; {exc.hint}" if exc.hint else "")
    else:
        text = str(exc)
    extra = {"www-authenticate": "Bearer"} if status == 401 else {}
    return status, orjson.dumps({"error": text}), extra


class ServeApp(FastAPI):
    """FastAPI, except that infer requests are answered before its middleware and routing."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            match = _INFER.fullmatch(scope["path"])
            if match is not None:
                await self._infer(scope, receive, send, match[1], match[2])
                return
        await super().__call__(scope, receive, send)

    async def _infer(
        self, scope: Scope, receive: Receive, send: Send, model: str, wanted: str | None
    ) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            status, content, extra = await answer_infer(
                self.state.regrow, model, wanted, headers, _chunks(receive)
            )
        except ClientGone:
            return
        head = [_JSON_HEADER, (b"content-length", str(len(content)).encode())]
        head += [(k.encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": content})


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message: Any = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return
