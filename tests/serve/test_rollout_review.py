"""Serving through rollouts, as a first user found it: one rollout's error does not stop the
stepping of the others, a blend answers with the stable version when the candidate cannot
score (and every mode counts the candidate's failures), a version asked for by number is
never routed, ``regrow serve`` logs the moves, and a few small things (a routing key too large
for an integer, a viewer's abort message, a streamed body over the limit).

The candidate that cannot score is ``shop:v4``: shop's graph with an encoder that refuses a
plan it has not seen (``handle_unknown="error"``); the stable ``shop:v1`` ignores it.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from regrow import Workspace
from regrow.catalog.rollouts import RolloutRecord
from regrow.errors import StoreError
from regrow.rollout import machine
from regrow.serve.host import ModelHost
from regrow.serve.state import ServeState

from .conftest import shop_system

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

Client = Callable[..., "TestClient"]
Body = Callable[..., dict[str, Any]]


@pytest.fixture
def ws(serve_home: Path) -> Iterator[Workspace]:
    with Workspace.open(serve_home) as workspace:
        yield workspace


@pytest.fixture
def strict(ws: Workspace, shop_rows: Callable[..., Any]) -> str:
    """``shop:v4``: shop's graph, but its encoder refuses a plan it has not seen."""
    system = shop_system(handle_unknown="error")
    version = ws.train(system, ws.snapshot(shop_rows(300, 4), name="shop")).version
    assert version.ref == "shop:v4"
    live(ws)
    return version.ref


def live(ws: Workspace) -> None:
    """``shop@live`` on ``shop:v1``: an alias with no promotion rules, for rollouts that end
    at 100%."""
    ws.catalog.move_alias("shop", "live", ws.catalog.get_system_version("shop:v1").id,
                          reason="test")  # fmt: skip


def state_of(client: TestClient) -> ServeState:
    state: ServeState = client.app.state.regrow  # type: ignore[attr-defined]
    return state


def host_of(client: TestClient) -> ModelHost:
    return state_of(client).host


def gold(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with every row on plan ``gold``, which shop was never trained on."""
    inputs = [
        {**i, "data": ["gold"] * len(i["data"])} if i["name"] == "plan" else i
        for i in body["inputs"]
    ]
    return {**body, "inputs": inputs}


def post(
    client: TestClient, body: dict[str, Any], *, key: str | None = None, version: str | None = None
) -> Any:
    if key is not None:
        body = {**body, "parameters": {"routing_key": key}}
    path = "/v2/models/shop" + (f"/versions/{version}" if version else "") + "/infer"
    return client.post(path, json=body)


def proba(answer: dict[str, Any]) -> np.ndarray:
    out = next(o for o in answer["outputs"] if o["name"] == "probabilities")
    return np.asarray(out["data"], dtype=float).reshape(out["shape"])


def candidate_errors(client: TestClient, lane: str) -> float:
    prefix = f'regrow_rollout_candidate_errors_total{{lane="{lane}",model="shop"}} '
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(prefix):
            return float(line.removeprefix(prefix))
    return 0.0


def begun(ws: Workspace, alias: str, candidate: str, params: dict[str, Any]) -> RolloutRecord:
    """A split rollout under way, recorded as it is with ``params`` (as an older regrow, or
    another tool writing the catalog, may have left it)."""
    catalog = ws.catalog
    record = catalog.rollouts.start(
        system="shop", alias=alias, stable_id=catalog.get_alias("shop", alias).version_id,
        candidate_id=catalog.get_system_version(candidate).id, mode="split",
        steps=(0.5, 1.0), min_requests=5, params=params,
    )  # fmt: skip
    return catalog.rollouts.transition(
        record.id, "progressing", action="begin", expected_revision=record.revision, step=0,
        holds=0, reason="started",
    )  # fmt: skip


# -- 1. stepping is isolated per rollout --------------------------------------------------


def test_a_rollout_whose_log_cannot_be_read_does_not_stop_the_others_and_says_so_once(
    ws: Workspace,
    serve_home: Path,
    serve_client: Client,
    infer_body: Body,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    v1 = ws.catalog.get_system_version("shop:v1").id
    for alias in ("unread", "live"):
        ws.catalog.move_alias("shop", alias, v1, reason="test")
    begun(ws, "unread", "shop:v2", {})
    healthy = machine.start(ws, "shop:v2", alias="live", mode="split", steps="50,100",
                            begin=False)  # fmt: skip
    client = serve_client(serve_home, models=["shop@unread", "shop@live"], poll_seconds=3600,
                          rollout_step_seconds=30, log_predictions=True)  # fmt: skip
    for i in range(4):
        post(client, infer_body(1, seed=i), key=f"user-{i}", version="unread")
    state = state_of(client)
    assert state.predictions is not None
    state.predictions.flush()
    host = state.host
    assert host.rollouts.workspace is not None

    def unreachable(artifact: str) -> bytes:
        raise StoreError(f"the store cannot be reached now to read {artifact[:12]}",
                         hint="try again later")  # fmt: skip

    monkeypatch.setattr(host.rollouts.workspace.store, "get", unreachable)
    with caplog.at_level(logging.INFO, logger="regrow.serve"):
        events = host.rollouts.step()
        assert events == [
            f"shop@live: rollout {healthy.id[:12]} begin (progressing, share 0.5): started"
        ]
        assert ws.catalog.rollouts.get(healthy.id).state == "progressing"
        host.rollouts.step()  # the same error again: not logged again
    failed = [r for r in caplog.records if r.getMessage().startswith("shop@unread: stepping")]
    assert len(failed) == 1
    assert failed[0].levelno == logging.WARNING
    assert failed[0].exc_info is None  # a RegrowError: one line, no traceback
    assert "the store cannot be reached now" in failed[0].getMessage()


def test_an_unexpected_error_stepping_one_rollout_is_logged_once_with_its_traceback(
    ws: Workspace, serve_home: Path, serve_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    v1 = ws.catalog.get_system_version("shop:v1").id
    for alias in ("odd", "live"):
        ws.catalog.move_alias("shop", alias, v1, reason="test")
    begun(ws, "odd", "shop:v2", {"tolerance": "wide"})  # every analysis: a ValueError
    healthy = machine.start(ws, "shop:v2", alias="live", mode="split", steps="50,100",
                            begin=False)  # fmt: skip
    client = serve_client(serve_home, models=["shop@odd", "shop@live"], poll_seconds=3600,
                          rollout_step_seconds=30)  # fmt: skip
    host = host_of(client)
    with caplog.at_level(logging.INFO, logger="regrow.serve"):
        assert host.rollouts.step() == [
            f"shop@live: rollout {healthy.id[:12]} begin (progressing, share 0.5): started"
        ]
        host.rollouts.step()
        host.rollouts.step()
    failed = [r for r in caplog.records if "stepping its rollout failed" in r.getMessage()]
    assert len(failed) == 1
    assert failed[0].getMessage().startswith("shop@odd: stepping its rollout failed")
    assert failed[0].levelno == logging.ERROR
    assert failed[0].exc_info is not None  # not ours: its traceback, once
    assert "ValueError" in failed[0].getMessage()


def test_a_rollout_that_fails_again_with_another_error_is_logged_again(
    ws: Workspace, serve_home: Path, serve_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    record = begun(ws, "champion", "shop:v2", {"tolerance": "wide"})
    client = serve_client(serve_home, poll_seconds=3600, rollout_step_seconds=30)
    host = host_of(client)
    with caplog.at_level(logging.WARNING, logger="regrow.serve"):
        host.rollouts.step()
        host.rollouts.step()
        machine.abort(ws, record.id, reason="test")
        begun(ws, "champion", "shop:v2", {"tolerance": "narrow"})
        host.rollouts.step()
    said = [r.getMessage() for r in caplog.records if "stepping" in r.getMessage()]
    assert len(said) == 2
    assert "wide" in said[0]
    assert "narrow" in said[1]


def test_a_rollout_the_machine_pauses_is_a_warning(
    ws: Workspace, serve_home: Path, serve_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    record = begun(ws, "champion", "shop:v2", {"tolerance": -1.0})  # its analysis fails
    client = serve_client(serve_home, poll_seconds=3600, rollout_step_seconds=30)
    with caplog.at_level(logging.WARNING, logger="regrow.serve"):
        host_of(client).rollouts.step()
    said = [r for r in caplog.records if f"rollout {record.id[:12]}" in r.getMessage()]
    assert len(said) == 1
    assert said[0].levelno == logging.WARNING
    assert "(paused" in said[0].getMessage()
    assert "tolerance" in said[0].getMessage()


# -- 2. blend falls back to the stable version ----------------------------------------------


def test_blend_answers_with_the_stable_version_when_the_candidate_cannot_score(
    ws: Workspace,
    strict: str,
    serve_home: Path,
    serve_client: Client,
    infer_body: Body,
    caplog: pytest.LogCaptureFixture,
) -> None:
    machine.start(ws, strict, alias="live", mode="blend", steps="50,100")
    client = serve_client(serve_home, models=["shop@live"], poll_seconds=3600,
                          rollout_step_seconds=0)  # fmt: skip
    body = gold(infer_body(3))
    with caplog.at_level(logging.WARNING, logger="regrow.serve"):
        fell_back = post(client, body, key="user-1")
    assert fell_back.status_code == 200, fell_back.text
    assert fell_back.json()["parameters"] == {"lane": "main", "system_version": "shop:v1"}
    alone = post(client, body, version="v1").json()  # pinned: v1 alone
    np.testing.assert_allclose(proba(fell_back.json()), proba(alone))
    assert candidate_errors(client, "blend") == 1.0
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("shop:v4 could not score request" in m and "shop:v1" in m for m in warned)
    usual = post(client, infer_body(3), key="user-1").json()  # plans it knows: blended
    assert usual["parameters"] == {"lane": "blend", "system_version": "shop:v4",
                                   "blend_weight": 0.5}  # fmt: skip
    assert candidate_errors(client, "blend") == 1.0


def test_split_keeps_the_candidates_error_for_the_client_and_counts_it(
    ws: Workspace, strict: str, serve_home: Path, serve_client: Client, infer_body: Body
) -> None:
    machine.start(ws, strict, alias="live", mode="split", steps="50,100")
    client = serve_client(serve_home, models=["shop@live"], poll_seconds=3600,
                          rollout_step_seconds=0)  # fmt: skip
    body = gold(infer_body(1))
    codes = {"main": 0, "candidate": 0}
    for i in range(40):
        key = f"user-{i}"
        lane = host_of(client).slots[0].routing.router.lane_for(key)  # type: ignore[union-attr]
        response = post(client, body, key=key)
        assert response.status_code == (200 if lane == "main" else 400), response.text
        codes[lane] += 1
    assert min(codes.values()) > 5  # both lanes took requests
    assert candidate_errors(client, "candidate") == codes["candidate"]
    assert candidate_errors(client, "main") == 0.0


def test_shadow_counts_the_candidates_failures_and_answers_with_main(
    ws: Workspace, strict: str, serve_home: Path, serve_client: Client, infer_body: Body
) -> None:
    machine.start(ws, strict, alias="live", mode="shadow")
    client = serve_client(serve_home, models=["shop@live"], poll_seconds=3600,
                          rollout_step_seconds=0)  # fmt: skip
    for i in range(3):
        response = post(client, gold(infer_body(1)), key=f"user-{i}")
        assert response.json()["parameters"] == {"lane": "main", "system_version": "shop:v1"}
    deadline = time.monotonic() + 10
    while candidate_errors(client, "shadow") < 3 and time.monotonic() < deadline:
        time.sleep(0.02)  # shadow scoring ends off the response's path
    assert candidate_errors(client, "shadow") == 3.0


# -- 3. a pinned version is not routed ------------------------------------------------------


def test_a_version_asked_for_by_number_is_served_by_that_version_during_a_rollout(
    ws: Workspace, serve_home: Path, serve_client: Client, infer_body: Body
) -> None:
    live(ws)
    machine.start(ws, "shop:v2", alias="live", mode="split", steps="50,100")
    client = serve_client(serve_home, models=["shop@live"], poll_seconds=3600,
                          rollout_step_seconds=0)  # fmt: skip
    lanes = set()
    for i in range(30):
        for version in ("v1", "1"):
            answer = post(client, infer_body(1), key=f"user-{i}", version=version).json()
            assert answer["model_version"] == version
            assert answer["parameters"] == {"lane": "main", "system_version": "shop:v1"}
        routed = post(client, infer_body(1), key=f"user-{i}", version="live").json()
        lanes.add(routed["parameters"]["lane"])
    assert lanes == {"main", "candidate"}  # the alias still goes through the rollout


# -- 5. small things ------------------------------------------------------------------------


def test_a_routing_key_too_large_for_an_integer_gets_a_hint_to_send_a_string(
    ws: Workspace, serve_home: Path, serve_client: Client, infer_body: Body
) -> None:
    live(ws)
    machine.start(ws, "shop:v2", alias="live", mode="split", steps="50,100")
    client = serve_client(serve_home, models=["shop@live"], poll_seconds=3600,
                          rollout_step_seconds=0)  # fmt: skip
    response = post(client, infer_body(1), key=10**30)  # type: ignore[arg-type]
    assert response.status_code == 400
    assert "send it as a string" in response.json()["error"]


def test_a_viewer_server_that_cannot_abort_names_the_stable_version(
    ws: Workspace, serve_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from regrow.config import ServeSettings
    from regrow.serve.app import create_app

    ws.add_identity("viv", "viewer")
    secret = ws.create_token("viv")[1]
    machine.start(ws, "shop:v3", mode="shadow")  # shop:v3 reads another input: refused
    with Workspace.open(serve_home, token=secret) as viewer, caplog.at_level(logging.WARNING):
        app = create_app(viewer, ServeSettings(log_predictions=False, poll_seconds=3600))
        app.state.regrow.close()
    said = [r.getMessage() for r in caplog.records if "cannot abort" in r.getMessage()]
    assert len(said) == 1
    assert said[0].endswith("serving shop:v1 only")


def test_a_streamed_body_over_the_limit_says_it_has_at_least_what_was_read(
    serve_home: Path, serve_client: Client, infer_body: Body
) -> None:
    client = serve_client(serve_home, max_request_bytes=200)
    body = json.dumps(infer_body(20)).encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: read until the limit is passed
        yield from (body[i : i + 64] for i in range(0, len(body), 64))

    response = client.post("/v2/models/shop/infer", content=chunks())
    assert response.status_code == 413
    said = re.match(r"the request body has at least ([\d,]+) bytes, over the limit of 200",
                    response.json()["error"])  # fmt: skip
    assert said is not None, response.json()
    assert 200 < int(said[1].replace(",", "")) <= len(body)  # what was read before stopping


# -- 4. `regrow serve` logs the rollout's moves ---------------------------------------------


def fast_steps(home: Path) -> None:
    config = home / "config.toml"
    config.write_text(
        config.read_text()
        + "\n[serve]\npoll_seconds = 0.2\nrollout_step_seconds = 0.3\nlog_predictions = false\n"
    )


def wait_for(server: Any, text: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while text not in server.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    output: str = server.output()
    return output


def test_serve_at_log_level_info_logs_the_rollouts_moves(
    ws: Workspace, serve_home: Path, live_server: Callable[..., Any]
) -> None:
    fast_steps(serve_home)
    record = machine.start(ws, "shop:v2", mode="split", steps="50,90", begin=False)
    server = live_server(serve_home, "--log-level", "info")
    moved = f"shop@champion: rollout {record.id[:12]} begin (progressing, share 0.5): started"
    output = wait_for(server, moved)
    assert moved in output
    startup = f"serving shop@champion (shop:v1; rollout {record.id[:12]} (split, pending) to "
    assert startup + "shop:v2) on " in output  # the startup line names the rollout
    routed = f"shop@champion: rollout {record.id[:12]} (split): main 0.5, candidate 0.5"
    assert routed in wait_for(server, routed)
    assert server.stop(signal.SIGTERM) == 0


def test_serve_shows_a_rollouts_step_error_once_at_the_default_level(
    ws: Workspace, serve_home: Path, live_server: Callable[..., Any]
) -> None:
    fast_steps(serve_home)
    begun(ws, "champion", "shop:v2", {"tolerance": "wide"})
    server = live_server(serve_home)
    output = wait_for(server, "stepping its rollout failed")
    time.sleep(1.0)  # three more periods: the same error is not said again
    output = server.output()
    assert output.count("shop@champion: stepping its rollout failed") == 1, output
    assert output.count("Traceback") == 1, output
    assert server.stop(signal.SIGTERM) == 0
