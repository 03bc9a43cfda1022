"""Serving through a rollout: lanes by routing key, shadow and blend scoring and logging,
blue-green, the server stepping rollouts, promotion and abort without reloading, and a
refused candidate aborting its rollout while serving goes on."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from regrow import Workspace
from regrow.config import ServeSettings
from regrow.plan.policy import Policy
from regrow.rollout import machine
from regrow.rollout.evidence import read_evidence
from regrow.rollout.router import RolloutRouter
from regrow.serve.host import ModelHost
from regrow.serve.state import ServeState

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

Client = Callable[..., "TestClient"]
Body = Callable[..., dict[str, Any]]


@pytest.fixture
def ws(serve_home: Path) -> Iterator[Workspace]:
    """The workspace the tests move rollouts in (the server opens its own). Its policy
    protects ``prod`` only, so rollouts of ``champion`` may reach 100% before a promotion
    (these tests are about serving, not governance)."""
    with Workspace.open(serve_home) as workspace:
        workspace.set_policy(Policy.from_dict({"promotion": {"protected": ["prod"]}}))
        yield workspace


def state_of(client: TestClient) -> ServeState:
    state: ServeState = client.app.state.regrow  # type: ignore[attr-defined]
    return state


def host_of(client: TestClient) -> ModelHost:
    return state_of(client).host


def infer(
    client: TestClient,
    body: dict[str, Any],
    *,
    key: str | None = None,
    header: str | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    """The JSON answer to ``body``, with a routing key as a parameter or a header."""
    if key is not None:
        body = {**body, "parameters": {"routing_key": key}}
    headers = {"x-regrow-routing-key": header} if header is not None else {}
    path = "/v2/models/shop" + (f"/versions/{version}" if version else "") + "/infer"
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def proba(answer: dict[str, Any]) -> np.ndarray:
    out = next(o for o in answer["outputs"] if o["name"] == "probabilities")
    return np.asarray(out["data"], dtype=float).reshape(out["shape"])


def weight(client: TestClient, lane: str) -> float | None:
    prefix = f'regrow_rollout_weight{{lane="{lane}",model="shop"}} '
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(prefix):
            return float(line.removeprefix(prefix))
    return None


def logged(ws: Workspace) -> pd.DataFrame:
    """Every row of shop's prediction log: request id, lane, system version."""
    parts = []
    for f in ws.catalog.predictions.files("shop"):
        table = pq.read_table(pa.BufferReader(ws.store.get(f.artifact)))
        parts.append(table.select(["request_id", "lane", "system_version"]).to_pandas())
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def test_without_a_rollout_every_request_takes_lane_main(
    serve_home: Path, serve_client: Client, infer_body: Body
) -> None:
    client = serve_client(serve_home, poll_seconds=3600)
    assert host_of(client).slots[0].routing is None
    answer = infer(client, infer_body(3), key="user-1")
    assert answer["parameters"] == {"lane": "main", "system_version": "shop:v1"}
    assert weight(client, "main") == 1.0


def test_a_split_rollout_routes_its_share_sticky_by_routing_key(
    ws: Workspace, serve_home: Path, serve_client: Client, infer_body: Body
) -> None:
    machine.start(ws, "shop:v2", mode="split", steps="25,100")
    client = serve_client(serve_home, poll_seconds=3600, rollout_step_seconds=0)
    body = infer_body(1)
    lanes: Counter[str] = Counter()
    for i in range(400):
        answer = infer(client, body, key=f"user-{i}")
        lane, version = answer["parameters"]["lane"], answer["parameters"]["system_version"]
        assert (lane, version) in {("main", "shop:v1"), ("candidate", "shop:v2")}
        lanes[lane] += 1
    assert 0.17 < lanes["candidate"] / 400 < 0.33  # 25% of 400: sd 2.2%
    for key in ("user-3", "user-4", "user-5"):  # the same key, the same lane, every time
        seen = {infer(client, body, key=key)["parameters"]["lane"] for _ in range(5)}
        assert len(seen) == 1
    by_header = {infer(client, body, header="user-9")["parameters"]["lane"] for _ in range(5)}
    assert by_header == {infer(client, body, key="user-9")["parameters"]["lane"]}
    assert (weight(client, "main"), weight(client, "candidate")) == (0.75, 0.25)


def test_a_routing_key_that_is_not_a_string_is_a_400(
    ws: Workspace, serve_home: Path, serve_client: Client, infer_body: Body
) -> None:
    machine.start(ws, "shop:v2", mode="split", steps="50,100")
    client = serve_client(serve_home, poll_seconds=3600, rollout_step_seconds=0)
    body = {**infer_body(1), "parameters": {"routing_key": 1.5}}
    response = client.post("/v2/models/shop/infer", json=body)
    assert response.status_code == 400
    assert "routing_key" in response.json()["error"]


def test_a_routing_key_that_is_not_a_string_is_a_400_without_a_rollout_too(
    serve_home: Path, serve_client: Client, infer_body: Body
) -> None:
    """As docs/serving.md says; it was taken (200) while no rollout was under way."""
    client = serve_client(serve_home, poll_seconds=3600)
    body = {**infer_body(1), "parameters": {"routing_key": [1]}}
    response = client.post("/v2/models/shop/infer", json=body)
    assert response.status_code == 400
    assert "routing_key" in response.json()["error"]


def test_shadow_serves_main_and_logs_both_lanes_once_each_in_windows(
    ws: Workspace, serve_home: Path, serve_client: Client, infer_body: Body
) -> None:
    machine.start(ws, "shop:v2", mode="shadow")
    client = serve_client(serve_home, poll_seconds=3600, rollout_step_seconds=0,
                          log_predictions=True)  # fmt: skip
    for i in range(20):
        answer = infer(client, infer_body(2, request_id=f"r{i}"), key=f"user-{i}")
        assert answer["parameters"] == {"lane": "main", "system_version": "shop:v1"}
    predictions = state_of(client).predictions
    assert predictions is not None
    predictions.flush()
    rows = logged(ws)
    counts = rows.groupby(["lane", "system_version"]).size().to_dict()
    assert counts == {("main", "shop:v1"): 40, ("shadow", "shop:v2"): 40}
    window = ws.window("shop", since="1h")
    assert window.rows == 40  # served traffic only: the shadow's rows are not counted again


def test_a_rollout_reads_only_the_requests_it_routed(
    ws: Workspace, serve_home: Path, serve_client: Client, infer_body: Body
) -> None:
    """Two rollouts of the same versions on two aliases: each row is logged with the rollout
    that routed it, and a rollout's evidence is its own rows (the one on ``staging``, which
    this server does not serve, gets none: it used to count the champion's)."""
    ws.catalog.move_alias("shop", "staging", ws.catalog.get_system_version("shop:v1").id)
    staging = machine.start(ws, "shop:v2", alias="staging", mode="shadow")
    champion = machine.start(ws, "shop:v2", mode="shadow")
    client = serve_client(serve_home, poll_seconds=3600, rollout_step_seconds=0,
                          log_predictions=True)  # fmt: skip
    ids = [f"r{i}" for i in range(20)]
    for i in ids:
        infer(client, infer_body(2, request_id=i), key=f"user-{i}")
    predictions = state_of(client).predictions
    assert predictions is not None
    predictions.flush()
    rollouts = set()
    for f in ws.catalog.predictions.files("shop"):
        rollouts |= set(
            pq.read_table(pa.BufferReader(ws.store.get(f.artifact)))["rollout"].to_pylist()
        )
    assert rollouts == {champion.id}
    ws.feedback("shop", [(i, row, 1) for i in ids for row in (0, 1)])
    theirs = read_evidence(ws.catalog, ws.store, ws.catalog.rollouts.get(staging.id))
    mine = read_evidence(ws.catalog, ws.store, ws.catalog.rollouts.get(champion.id))
    assert (len(theirs.stable), len(theirs.candidate)) == (0, 0)
    assert (len(mine.stable), len(mine.candidate)) == (20, 20)


def test_blend_serves_the_mix_of_the_two_versions_outputs(
    trained: Any,
    serve_home: Path,
    serve_client: Client,
    infer_body: Body,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    v1, v2 = trained.versions["v1"], trained.versions["v2"]
    router = RolloutRouter("r-blend", stable_id=v1, mode="blend", blend=(v2, 0.3))
    monkeypatch.setattr("regrow.serve.follow.router_for", lambda *_: router)
    client = serve_client(serve_home, models=["shop:v1", "shop:v2", "shop@champion"],
                          poll_seconds=3600, rollout_step_seconds=0,
                          log_predictions=True)  # fmt: skip
    body = infer_body(6, request_id="b1")
    blended = infer(client, body, version="champion")
    assert blended["parameters"] == {"lane": "blend", "system_version": "shop:v2",
                                     "blend_weight": 0.3}  # fmt: skip
    alone = [proba(infer(client, infer_body(6), version=v)) for v in ("v1", "v2")]
    mixed = 0.7 * alone[0] + 0.3 * alone[1]
    np.testing.assert_allclose(proba(blended), mixed, rtol=1e-12)
    predict = next(o for o in blended["outputs"] if o["name"] == "predict")["data"]
    assert predict == mixed.argmax(axis=1).tolist()
    assert not np.allclose(alone[0], alone[1])  # the blend is not either version
    assert weight(client, "blend") == 0.3
    predictions = state_of(client).predictions
    assert predictions is not None
    predictions.flush()
    with Workspace.open(serve_home) as ws:
        mine = logged(ws).query("request_id == 'b1'")
    counts = mine.groupby(["lane", "system_version"]).size().to_dict()
    assert counts == {("main", "shop:v1"): 6, ("shadow", "shop:v2"): 6}


def test_a_blend_rollout_started_for_real_serves_the_step_weight(
    ws: Workspace, serve_home: Path, serve_client: Client, infer_body: Body
) -> None:
    machine.start(ws, "shop:v2", mode="blend", steps="20,100")
    client = serve_client(serve_home, poll_seconds=3600, rollout_step_seconds=0)
    answer = infer(client, infer_body(2), key="user-1")
    assert answer["parameters"] == {"lane": "blend", "system_version": "shop:v2",
                                    "blend_weight": 0.2}  # fmt: skip
    assert (weight(client, "main"), weight(client, "blend")) == (0.0, 0.2)


def test_an_ab_rollout_routes_each_candidate_lane_at_its_share(
    trained: Any,
    serve_home: Path,
    serve_client: Client,
    infer_body: Body,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    v1, v2 = trained.versions["v1"], trained.versions["v2"]
    lanes = {"candidate": (v2, 0.25), "candidate-2": (v2, 0.25)}
    router = RolloutRouter("r-ab", stable_id=v1, lanes=lanes, mode="ab")
    monkeypatch.setattr("regrow.serve.follow.router_for", lambda *_: router)
    client = serve_client(serve_home, poll_seconds=3600, rollout_step_seconds=0)
    seen: Counter[tuple[str, str]] = Counter()
    for i in range(400):
        seen[tuple(infer(client, infer_body(1), key=f"u{i}")["parameters"].values())] += 1
    assert set(seen) == {("main", "shop:v1"), ("candidate", "shop:v2"), ("candidate-2", "shop:v2")}
    assert 0.17 < seen["candidate", "shop:v2"] / 400 < 0.33
    assert 0.17 < seen["candidate-2", "shop:v2"] / 400 < 0.33
    assert weight(client, "candidate-2") == 0.25


def test_blue_green_sends_everything_to_the_candidate(
    ws: Workspace, serve_home: Path, serve_client: Client, infer_body: Body
) -> None:
    machine.start(ws, "shop:v2", mode="blue-green")
    client = serve_client(serve_home, poll_seconds=3600, rollout_step_seconds=0)
    seen = {
        tuple(infer(client, infer_body(1), key=f"u{i}")["parameters"].values()) for i in range(40)
    }
    assert seen == {("candidate", "shop:v2")}
    assert (weight(client, "main"), weight(client, "candidate")) == (0.0, 1.0)


def test_abort_sends_all_traffic_back_to_main(
    ws: Workspace, serve_home: Path, serve_client: Client, infer_body: Body
) -> None:
    record = machine.start(ws, "shop:v2", mode="split", steps="50,100")
    client = serve_client(serve_home, poll_seconds=3600, rollout_step_seconds=0)
    host = host_of(client)
    before = {infer(client, infer_body(1), key=f"u{i}")["parameters"]["lane"] for i in range(40)}
    assert before == {"main", "candidate"}
    machine.abort(ws, record, reason="pager")
    assert host.poll() == ["shop@champion: rollout " + record.id[:12] + " over, all to main"]
    assert host.slots[0].routing is None
    after = {
        tuple(infer(client, infer_body(1), key=f"u{i}")["parameters"].values()) for i in range(40)
    }
    assert after == {("main", "shop:v1")}
    assert (weight(client, "main"), weight(client, "candidate")) == (1.0, 0.0)


def test_an_incompatible_candidate_aborts_its_rollout_and_serving_goes_on(
    ws: Workspace, serve_home: Path, serve_client: Client, infer_body: Body
) -> None:
    client = serve_client(serve_home, poll_seconds=3600, rollout_step_seconds=0)
    host = host_of(client)
    record = machine.start(ws, "shop:v3", mode="split", steps="50,100")
    events = host.poll()
    assert len(events) == 1
    assert "refused shop:v3" in events[0]
    assert "visits" in events[0]
    assert host.slots[0].routing is None
    now = ws.catalog.rollouts.get(record.id)
    assert now.state == "rolled_back"
    assert "refused shop:v3" in now.reason
    refused = [e for e in ws.catalog.audit_events(limit=50) if e.action == "serve.swap_refused"]
    assert refused[0].payload["rollout"] == record.id
    assert [e.action for e in machine.history(ws, record.id)][-1] == "rollout.serve_refused"
    seen = {
        tuple(infer(client, infer_body(1), key=f"u{i}")["parameters"].values()) for i in range(20)
    }
    assert seen == {("main", "shop:v1")}
    assert host.poll() == []  # not tried again


def label_of(frame: Callable[..., pd.DataFrame], seed: int) -> int:
    return int(frame(1, seed)["bought"].iloc[0])


def test_the_stepper_advances_a_rollout_and_promotion_swaps_without_a_reload(
    ws: Workspace,
    trained: Any,
    serve_home: Path,
    serve_client: Client,
    infer_body: Body,
    shop_rows: Callable[..., pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws.catalog.move_alias("shop", "live", trained.versions["v1"], reason="test")
    record = machine.start(ws, "shop:v2", alias="live", mode="split", steps="50,100",
                           min_requests=20, tolerance=0.5)  # fmt: skip
    client = serve_client(serve_home, models=["shop@live"], poll_seconds=3600,
                          rollout_step_seconds=0, log_predictions=True)  # fmt: skip
    state = state_of(client)
    host = state.host
    assert state.predictions is not None
    for i in range(120):
        infer(client, infer_body(1, seed=i, request_id=f"r{i}"))
    state.predictions.flush()
    ws.feedback("shop", {f"r{i}": label_of(shop_rows, i) for i in range(120)})
    events = host.rollouts.step()
    assert len(events) == 1
    assert f"rollout {record.id[:12]} advance (progressing, share 1)" in events[0]
    assert host.poll() == [f"shop@live: rollout {record.id[:12]} (split): main 0, candidate 1"]
    slot = host.slots[0]
    assert slot.routing is not None
    candidate = slot.routing.served[trained.versions["v2"]]
    seen = {tuple(infer(client, infer_body(1))["parameters"].values()) for _ in range(20)}
    assert seen == {("candidate", "shop:v2")}

    def no_loading(record: Any) -> Any:
        raise AssertionError(f"{record.ref} loaded again")

    monkeypatch.setattr(host, "load_version", no_loading)
    machine.promote(ws, record.id, reason="looks fine")
    assert host.poll() == [
        "shop@live: shop:v1 -> shop:v2 (swapped)",
        f"shop@live: rollout {record.id[:12]} over, all to main",
    ]
    assert slot.current is candidate
    assert slot.routing is None
    answer = infer(client, infer_body(1))
    assert answer["parameters"] == {"lane": "main", "system_version": "shop:v2"}


def test_the_poller_steps_rollouts_on_its_period(
    ws: Workspace, serve_home: Path, serve_client: Client, infer_body: Body
) -> None:
    record = machine.start(ws, "shop:v2", mode="split", steps="50,100", begin=False)
    client = serve_client(serve_home, poll_seconds=0.05, rollout_step_seconds=0.1)
    host = host_of(client)
    deadline = time.monotonic() + 20
    while host.slots[0].routing is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ws.catalog.rollouts.get(record.id).state == "progressing"  # begun by the server
    assert host.slots[0].routing is not None
    lanes = {infer(client, infer_body(1), key=f"u{i}")["parameters"]["lane"] for i in range(40)}
    assert lanes == {"main", "candidate"}


def test_a_server_that_may_not_step_says_so_once(
    ws: Workspace, serve_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from regrow.serve.app import create_app

    ws.add_identity("viv", "viewer")
    secret = ws.create_token("viv")[1]
    machine.start(ws, "shop:v2", mode="split", steps="50,100", begin=False)
    with Workspace.open(serve_home, token=secret) as viewer:
        settings = ServeSettings(log_predictions=False, poll_seconds=3600)
        app = create_app(viewer, settings)
        host = app.state.regrow.host
        with caplog.at_level(logging.WARNING, logger="regrow.serve"):
            assert host.rollouts.step() == []
            assert host.rollouts.step() == []
        warned = [r for r in caplog.records if "not stepping rollouts" in r.getMessage()]
        assert len(warned) == 1
        assert "operator" in warned[0].getMessage()
        app.state.regrow.close()
