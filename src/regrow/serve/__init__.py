"""Serving: the HTTP app (Open Inference Protocol v2), the prediction log and feedback.

``regrow serve`` runs :func:`regrow.serve.app.create_app` on uvicorn; ``regrow predict``
scores a file on the same path. Each part lives in its own module:

=====================  ==========================================================================
module                 what
=====================  ==========================================================================
:mod:`.app`            ``create_app``: the FastAPI app over a workspace, its startup and shutdown
:mod:`.routes`         the endpoints and their OpenAPI description
:mod:`.inference`      the infer hot path, answered before FastAPI's routing (``ServeApp``)
:mod:`.state`          what endpoints share: who calls, reading bodies, counting and logging
:mod:`.oip`            decoding infer requests, encoding responses (pure functions)
:mod:`.coercion`       JSON values (or a file's columns) as the arrays a version reads
:mod:`.signature`      a version's inputs and outputs as protocol tensors; compatibility
:mod:`.batching`       adaptive micro-batching of concurrent requests into one predict call
:mod:`.served`         one loaded, warmed version, its golden set, the one scoring path
:mod:`.targets`        what a server serves: ``SYSTEM@ALIAS`` or ``SYSTEM:vN``
:mod:`.host`           the versions served, model name resolution, hot swap, the poller
:mod:`.follow`         the poller's rollout work: routing each alias through it, stepping it
:mod:`.routing`        a request's way through a rollout: routing key, lanes, shadow, blend
:mod:`.guard`          bearer tokens and roles, with a short cache
:mod:`.metrics`        Prometheus metrics on a registry per app
:mod:`.errors`         the app's errors and their HTTP statuses
:mod:`.schemas`        the bodies' JSON Schema, for the OpenAPI document
:mod:`.scoring`        batch scoring of a file (``regrow predict``)
:mod:`.predlog`        the prediction log: served rows to Parquet, off the request path
=====================  ==========================================================================

Nothing here is imported by ``import regrow``: FastAPI and uvicorn load only for serving.
"""
