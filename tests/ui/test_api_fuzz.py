"""schemathesis against the dashboard's JSON API (``regrow ui``'s app on a copy of the demo's
workspace): never a server error, a status the operation lists, a body matching its schema,
and a 4xx for a request the schema does not allow.

Each operation gets :data:`EXAMPLES` generated requests per way of fixing its parameters and
per mode (valid, invalid): made-up names (404s), and the demo's real ones (``churn``,
``churn:v2``, its rollout, plan and run) so that requests reach the pages' data; the rollout
moves go with the operator's token and without.
"""

from __future__ import annotations

import shutil
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

EXAMPLES = 3
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def schema(demo: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The dashboard app's schema, loaded from the app in process (a copy of the demo)."""
    from regrow.ui import create_ui_app

    home = tmp_path_factory.mktemp("fuzz") / "demo"
    shutil.copytree(demo.home, home)
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", create_ui_app(Path(home)))
    finally:
        asgi.shutdown_lifespans()  # closes the app's workspace


def test_the_schema_lists_the_dashboard_api(schema: Any) -> None:
    listed = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert ("POST", "/api/ui/rollouts/{rollout_id}/{action}") in listed
    assert all(path.startswith("/api/ui/") for _, path in listed)
    assert len(listed) == 13


def test_the_api_never_fails_and_answers_as_its_schema_says(schema: Any, demo: Any) -> None:
    real = {"system": "churn", "ref": "churn:v2", "column": "distance_km",
            "plan_id": demo.plan, "run_id": demo.run, "rollout_id": demo.rollout}  # fmt: skip
    strategies = []
    for op in schema.get_all_operations():
        operation = op.ok()
        names = {p.name for p in operation.path_parameters}
        fixed: list[dict[str, Any]] = [{}]
        if names:
            fixed.append({"path_parameters": {n: real[n] for n in names if n in real}})
        if operation.method.upper() == "POST":
            auth = {"headers": {"Authorization": f"Bearer {demo.operator}"}}
            fixed += [{**f, **auth} for f in fixed]
        strategies += [
            operation.as_strategy(mode, **given_values)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
            for given_values in fixed
        ]

    @seed(19)
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
