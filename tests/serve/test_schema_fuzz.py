"""schemathesis against the app's own OpenAPI schema: no 500, and answers that conform.

The app is built in process (:func:`regrow.serve.app.create_app` over a copy of the
``trained`` workspace, serving ``shop@champion``) and reached through schemathesis' ASGI
transport: no port, no process. For each operation of the schema, schemathesis generates
requests from it, valid ones and invalid ones (bodies, path parameters), and checks every
answer (:data:`CHECKS`): never a server error, a status the operation lists, a documented
content type, a body matching the schema of its status, and a 4xx for a request the schema does
not allow.

It runs twice: with inference open, and with inference behind tokens (``[serve] inference =
"token"``; then the schema lists 401 and 403 as well). Some requests name model ``shop`` (and
version ``champion``) and carry an operator's token where one is needed, so that generated
bodies reach the infer decoder rather than a 404 for a made-up model or a 401; the others are
generated whole. Feedback is sent with the token and without.

The budget is small and seeded: :data:`EXAMPLES` examples per way of fixing the path and
headers and per mode (valid, invalid): at most 60 requests per operation, ~15 s in all.
(schemathesis' own ``@schema.parametrize()`` over ``schemathesis.pytest.from_fixture`` fails on
pytest 9, which removed the ``_nodeid`` it reads; its Hypothesis strategies are used instead.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python import asgi

from regrow import Workspace
from regrow.config import ServeSettings
from regrow.serve.app import create_app

EXAMPLES = 10
# Not `positive_data_acceptance`: a body the generic schema allows can still name inputs the
# model does not have, and that is a 400 by design.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
OPERATIONS = [
    ("GET", "/v2/health/live"),
    ("GET", "/v2/health/ready"),
    ("GET", "/v2"),
    ("GET", "/v2/models/{model_name}"),
    ("GET", "/v2/models/{model_name}/versions/{model_version}"),
    ("GET", "/v2/models/{model_name}/ready"),
    ("GET", "/v2/models/{model_name}/versions/{model_version}/ready"),
    ("POST", "/v2/models/{model_name}/infer"),
    ("POST", "/v2/models/{model_name}/versions/{model_version}/infer"),
    ("POST", "/regrow/v1/feedback"),
    ("GET", "/metrics"),
]


@pytest.fixture(scope="module")
def token(module_serve_home: Path) -> str:
    """An API token of role operator (enough for inference and for feedback)."""
    with Workspace.open(module_serve_home) as ws:
        ws.add_identity("fuzzer", "operator")
        _, secret = ws.create_token("fuzzer")
    return secret


@pytest.fixture(scope="module", params=["open", "token"])
def served(request: pytest.FixtureRequest, module_serve_home: Path) -> Iterator[tuple[Any, bool]]:
    """The app's schema, loaded from the app in process, and whether inference needs a token."""
    app = create_app(module_serve_home, ServeSettings(inference=request.param))
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app), request.param == "token"
    finally:
        asgi.shutdown_lifespans()  # stops the poller and flushes the app's prediction log


def test_the_schema_lists_every_endpoint_of_the_protocol(served: tuple[Any, bool]) -> None:
    schema, _ = served
    listed = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert {x for x in listed if not x[1].startswith("/api/ui/")} == set(
        OPERATIONS
    )  # /api/ui: tests/ui/test_api_fuzz.py


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_the_app_never_fails_and_answers_as_its_schema_says(
    served: tuple[Any, bool], token: str, method: str, path: str
) -> None:
    schema, secured = served
    operation = schema[path][method]
    # Everything generated (a made-up model: 404; no token where one is needed: 401), then
    # the real model (and version), with a token where one is needed, so that generated bodies
    # reach the infer decoder; feedback with and without an operator's token.
    auth = {"headers": {"Authorization": f"Bearer {token}"}}
    fixed: list[dict[str, Any]] = [{}]
    if path == "/regrow/v1/feedback":
        fixed.append(auth)
    if "{model_name}" in path:
        fixed.append({"path_parameters": {"model_name": "shop"}})
    if "{model_version}" in path:
        fixed.append({"path_parameters": {"model_name": "shop", "model_version": "champion"}})
    if secured:
        fixed[1:] = [{**given_values, **auth} for given_values in fixed[1:]]
    strategies = [
        operation.as_strategy(mode, **given_values)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        for given_values in fixed
    ]

    @seed(14)
    @settings(
        max_examples=EXAMPLES * len(strategies),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def check(case: Any) -> None:
        case.call_and_validate(checks=CHECKS)

    check()
