"""The dashboard over one workspace, added to an app (``regrow serve``'s) or served alone
(``regrow ui``).

:class:`Dashboard` holds the workspace the pages read (as the identity it was opened with:
the viewer role is checked once), the plot cache and the templates; :func:`add_dashboard`
adds its JSON API (:mod:`.api`), its pages and plots (:mod:`.pages`) to an app;
:func:`create_ui_app` builds an app with the dashboard alone.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Response
from fastapi.responses import RedirectResponse

from regrow.config import Config, find_home
from regrow.errors import AuthError, ConfigError, RegrowError
from regrow.ui.plots import PlotCache

if TYPE_CHECKING:
    from regrow.workspace import Workspace

__all__ = ["VERIFY_SECONDS", "Dashboard", "add_dashboard", "create_ui_app"]

#: How long the dashboard trusts an audit-chain verification while no event is appended.
VERIFY_SECONDS = 30.0


class Dashboard:
    """The dashboard's state: the workspace it reads and the plots it drew."""

    def __init__(self, workspace: Workspace, *, owned: bool = False) -> None:
        workspace.require("viewer", "read the dashboard")
        self.workspace = workspace
        self.owned = owned
        self.plots = PlotCache()
        self._verified: tuple[float, int, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def verified(self) -> dict[str, Any]:
        """The audit chain's verification (:func:`regrow.ui.records.verification`: it hashes
        every event and covered record, a second or more on a busy catalog), remembered for
        :data:`VERIFY_SECONDS` while no event is appended."""
        from regrow.ui.records import verification

        newest = self.workspace.catalog.audit_events(limit=1)
        seq = newest[0].seq if newest else 0
        with self._lock:
            known = self._verified
            if (
                known is not None
                and known[1] == seq
                and time.monotonic() - known[0] < VERIFY_SECONDS
            ):
                return known[2]
            answer = {**verification(self.workspace), "at": datetime.now(UTC).isoformat()}
            self._verified = (time.monotonic(), seq, answer)
            return answer

    def act(self, header: str | None, rollout: str, action: str, reason: str) -> Response:
        """Make a rollout move as the identity of the ``Authorization`` header's token (a
        workspace opened with it, closed after): the rollout machine checks the role."""
        from regrow.serve.guard import bearer
        from regrow.ui import rollouts
        from regrow.ui.api import answer, error_response
        from regrow.workspace import Workspace

        if action not in rollouts.ACTIONS:  # a move that does not exist needs no token to say so
            return error_response(
                ConfigError(
                    f"unknown rollout action {action!r}",
                    hint=f"use one of {', '.join(rollouts.ACTIONS)}",
                )
            )
        token = bearer(header)
        if token is None:
            return error_response(
                AuthError(
                    f"{action} a rollout needs an API token",
                    hint="send 'Authorization: Bearer <token>' (on the page: paste a token of "
                    "the operator role; an admin creates one with `regrow tokens create NAME`)",
                )
            )
        try:
            acting = Workspace(self.workspace.config, token=token)
        except RegrowError as exc:
            return error_response(exc)
        try:
            return answer(lambda: rollouts.act(acting, rollout, action, reason=reason))
        finally:
            acting.close()

    def close(self) -> None:
        """Close the workspace if the dashboard opened it."""
        if self.owned:
            self.workspace.close()


def add_dashboard(app: FastAPI, workspace: Workspace, *, owned: bool = False) -> Dashboard:
    """Add the dashboard over ``workspace`` to ``app``: the pages under ``/ui``, the JSON API
    under ``/api/ui`` (in the app's OpenAPI document)."""
    from regrow.ui import api, pages

    board = Dashboard(workspace, owned=owned)
    app.state.ui = board
    app.include_router(api.router(board))
    app.include_router(pages.router(board))
    return board


def create_ui_app(source: Workspace | Config | str | os.PathLike[str] | None = None) -> FastAPI:
    """An app serving the dashboard alone, over ``source``: a :class:`~regrow.Workspace`
    (used as it is), a :class:`~regrow.config.Config` or a workspace folder (opened, and
    closed with the app). ``/`` redirects to ``/ui``."""
    from regrow import __version__
    from regrow.workspace import Workspace

    if isinstance(source, Workspace):
        ws, owned = source, False
    else:
        config = source if isinstance(source, Config) else Config.load(find_home(source))
        ws, owned = Workspace(config), True

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            board.close()

    app = FastAPI(
        title="regrow dashboard",
        version=__version__,
        summary="What drifted, what was retrained and why, how the rollout went.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    try:
        board = add_dashboard(app, ws, owned=owned)
    except BaseException:
        if owned:
            ws.close()
        raise

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/ui")

    _errors_as_json(app)
    return app


def _errors_as_json(app: FastAPI) -> None:
    """Routing and parameter errors as ``{"error": ...}`` (400 for a bad parameter, not
    FastAPI's 422), and an OpenAPI document that lists the statuses the endpoints answer."""
    import orjson
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.openapi.utils import get_openapi
    from starlette.exceptions import HTTPException

    def body(text: str, status: int) -> Response:
        return Response(orjson.dumps({"error": text}), status, media_type="application/json")

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        wrong = "; ".join(
            f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors()
        )
        return body(f"invalid request: {wrong}", 400)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        text = {404: f"no page {request.url.path!r}",
                405: f"{request.method} is not allowed on {request.url.path!r}"}  # fmt: skip
        return body(text.get(exc.status_code, str(exc.detail)), exc.status_code)

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, summary=app.summary,
                              routes=app.routes)  # fmt: skip
            schemas = doc.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            if not schemas:
                doc.get("components", {}).pop("schemas", None)
            doc.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
            for path in doc["paths"].values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
