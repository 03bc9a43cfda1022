"""The HTTP app: the Open Inference Protocol v2 (REST), feedback and metrics.

:func:`create_app` builds a FastAPI app over a workspace; ``regrow serve`` runs it on uvicorn.

=================================================  ==========================================
endpoint                                           answers
=================================================  ==========================================
``GET /v2/health/live``                            ``{"live": true}``
``GET /v2/health/ready``                           ``{"ready": true}``, 503 while loading
``GET /v2``                                        server name, version, extensions
``GET /v2/models/{m}[/versions/{v}]``              inputs, outputs, versions, system version
``GET /v2/models/{m}[/versions/{v}]/ready``        ``{"name": m, "ready": true}`` (or 503)
``POST /v2/models/{m}[/versions/{v}]/infer``       outputs, with the lane and system version
``POST /regrow/v1/feedback``                       ``{"received": n}`` (operator token)
``GET /metrics``                                   Prometheus text (:mod:`.metrics`)
``GET /ui``, ``GET /api/ui/...``                   the dashboard (:mod:`regrow.ui`); open inference
=================================================  ==========================================

A model is a system; its versions are the aliases served and the versions they hold
(:mod:`.host`). Errors are ``{"error": "..."}`` with 400, 401, 403, 404, 413 or 503
(:mod:`.errors`); an unexpected failure is a 500 that names no internals, logged with its
traceback. Inference (model metadata, readiness and infer) is open, or needs a token of role
viewer or above (``[serve] inference = "token"``); feedback needs an operator's token, and the
catalog audits every call (``feedback.add``). Health, server metadata and metrics are open.

The inference path is lean on purpose: the body is read as bytes, parsed with orjson and
decoded by :mod:`.oip` (no per-request validation models), concurrent requests share one
``predict`` call (:mod:`.batching`), and each batch is logged once (:mod:`.predlog`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Literal

import orjson
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from regrow.config import Config, ServeSettings, find_home
from regrow.serve import routes
from regrow.serve.guard import Guard
from regrow.serve.host import ModelHost, Target, default_targets
from regrow.serve.inference import ServeApp
from regrow.serve.metrics import Metrics
from regrow.serve.served import GOLDEN_ROWS
from regrow.serve.state import ServeState

if TYPE_CHECKING:
    from regrow.workspace import Workspace

__all__ = ["MODELS_ENV", "ServeState", "app_from_env", "create_app", "freeze_heap"]

log = logging.getLogger("regrow.serve")

#: How ``regrow serve --workers N --model ...`` hands its models to each worker process.
MODELS_ENV = "REGROW_SERVE_MODELS"


def create_app(
    source: Workspace | Config | str | os.PathLike[str] | None = None,
    settings: ServeSettings | None = None,
    *,
    models: list[str] | None = None,
    load: Literal["now", "background", "later"] = "now",
    token_ttl: float = 10.0,
    golden_rows: int | None = None,
) -> FastAPI:
    """The app over ``source``: a :class:`~regrow.Workspace` (used as it is), a
    :class:`~regrow.config.Config` or a workspace folder (opened, and closed with the app).

    ``settings`` default to the workspace's ``[serve]`` section; ``models`` (``SYSTEM@ALIAS``
    or ``SYSTEM:vN``) override its ``models``. ``load="now"`` loads every model before
    returning (a bad one raises here); ``"background"`` loads them when the app starts (ready
    answers 503 meanwhile); ``"later"`` leaves it to ``app.state.regrow.host.load()``.
    The poller and the prediction log run between the app's startup and shutdown.
    """
    from regrow.workspace import Workspace

    if isinstance(source, Workspace):
        ws, owned = source, False
    else:
        config = source if isinstance(source, Config) else Config.load(find_home(source))
        ws, owned = Workspace(config), True
    state: ServeState | None = None
    try:
        state = _state(ws, owned, settings or ws.config.serve, models, token_ttl, golden_rows)
        if load == "now":
            state.host.load()
    except BaseException:
        if state is not None:
            state.close()
        elif owned:
            ws.close()
        raise
    return _app(state, load)


def _state(
    ws: Workspace,
    owned: bool,
    settings: ServeSettings,
    models: list[str] | None,
    token_ttl: float,
    golden_rows: int | None,
) -> ServeState:
    ws.require("viewer", "serve models")  # the server reads the catalog as this identity
    refs = models or settings.models
    targets = [Target.parse(m) for m in refs] if refs else default_targets(ws.catalog)
    targets = list(dict.fromkeys(targets))
    metrics = Metrics(t.system for t in targets)
    state = ServeState(
        workspace=ws,
        settings=settings,
        host=None,  # type: ignore[arg-type]  # set just below: the host calls back into it
        guard=Guard(ws.catalog, inference=settings.inference, ttl=token_ttl),
        metrics=metrics,
        predictions=None,
        owned=owned,
    )
    state.host = ModelHost(
        ws.catalog, ws.store, targets, poll_seconds=settings.poll_seconds,
        max_rows=settings.max_batch_rows, home=str(ws.home), actor=ws.identity.name,
        metrics=metrics, on_scored=state.scored,
        golden_rows=GOLDEN_ROWS if golden_rows is None else golden_rows,
        workspace=ws, step_seconds=settings.rollout_step_seconds,
    )  # fmt: skip
    if settings.log_predictions:
        from regrow.serve.predlog import PredictionLog

        state.predictions = PredictionLog(
            ws.catalog, ws.store, flush_seconds=settings.log_flush_seconds
        )
    return state


def _app(state: ServeState, load: str) -> FastAPI:
    from regrow import __version__

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if load == "background":
            threading.Thread(target=_load_logged, args=(state.host,), daemon=True).start()
        state.host.start()
        try:
            yield
        finally:
            await run_in_threadpool(state.close)

    app = ServeApp(
        title="regrow",
        version=__version__,
        summary="Models served over the Open Inference Protocol v2, with feedback and metrics.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.regrow = state
    if state.guard.inference_open:
        # The dashboard (/ui pages, /api/ui JSON) reads the catalog as the server's identity:
        # a server whose inference needs a token does not show it to whoever reaches the port
        # (`regrow ui` serves it on a trusted host).
        from regrow.ui import add_dashboard

        add_dashboard(app, state.workspace)
    routes.add(app, state, __version__)
    return app


def _load_logged(host: ModelHost) -> None:
    try:
        host.load()
    except Exception:
        log.exception("loading the models failed; /v2/health/ready stays 503")


def app_from_env() -> FastAPI:
    """The app of the workspace ``$REGROW_HOME`` serving ``$REGROW_SERVE_MODELS`` (a JSON list;
    default: the workspace's ``[serve]`` models): what each ``--workers`` process runs."""
    raw = os.environ.get(MODELS_ENV)
    models = orjson.loads(raw) if raw else None
    app = create_app(None, models=models)
    freeze_heap()  # this worker process is the server's
    return app


def freeze_heap() -> None:
    """Move everything loaded so far (libraries, models) out of the garbage collector's sight,
    in a process that serves: ``regrow serve`` calls it once the models are loaded.

    A full collection walks every object of the heap: with pandas, scikit-learn and the models
    loaded that takes milliseconds, and requests allocate enough to trigger one every few
    seconds (it showed as a tenth of the server's time, and as its p99). What is loaded at
    startup lives until the end anyway (:func:`gc.freeze`).
    """
    import gc

    gc.collect()
    gc.freeze()
