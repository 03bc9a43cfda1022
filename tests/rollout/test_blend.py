"""Blend rollouts: every request gets ``(1 - w) * stable + w * candidate`` with the weight
ramping through the steps; the evidence is paired per request from the stable version's
outputs (lane ``main``) and the candidate's (lane ``shadow``), as in shadow mode."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sklearn.linear_model import LinearRegression

from regrow import Member, System, Workspace
from regrow.catalog.rollouts import Rollouts
from regrow.errors import ConfigError
from regrow.rollout import machine
from regrow.rollout.evidence import SHADOW, read_evidence
from regrow.rollout.router import BLEND, RolloutRouter, router_for

Log = Callable[..., None]


def _serve(log: Log, prefix: str, n: int, stable_wrong: int, candidate_wrong: int) -> None:
    """``n`` requests: the stable version's outputs under ``main``, the candidate's under
    ``shadow``, the first ``stable_wrong`` / ``candidate_wrong`` of them wrong."""
    ids = [f"{prefix}{i}" for i in range(n)]
    at = datetime.now(UTC) + timedelta(seconds=1)
    log(at, "main", "toy:v1", ids, set(ids[:stable_wrong]))
    log(at, SHADOW, "toy:v2", ids, set(ids[:candidate_wrong]), labels=False)


def test_the_record_and_the_router_agree_on_the_blend_weight(ws: Workspace) -> None:
    r = machine.start(ws, "toy:v2", mode="blend", steps="10,50,100", min_requests=50)
    assert (r.mode, r.state, r.share) == ("blend", "progressing", 0.1)
    router = router_for(ws.catalog, "toy")
    assert isinstance(router, RolloutRouter)
    assert router.blend == r.share == RolloutRouter.of(r).blend
    assert (router.lane_for("any"), router.shadow) == (BLEND, SHADOW)
    assert router.version_for(SHADOW) == r.candidate_id
    paused = machine.pause(ws, r.id)
    assert RolloutRouter.of(paused).blend == paused.share == 0.1


def test_a_good_blend_ramps_its_weight_and_promotes_on_paired_evidence(
    ws: Workspace, log: Log
) -> None:
    r = machine.start(ws, "toy:v2", mode="blend", steps="20,100", min_requests=100, alias="live")
    _serve(log, "a", 400, stable_wrong=120, candidate_wrong=20)
    ev = read_evidence(ws.catalog, ws.store, Rollouts(ws.catalog).get(r.id))
    assert ev.paired is not None
    assert (len(ev.paired), sum(ev.paired), ev.step_requests) == (400, -100, 400)
    first = machine.step(ws, r.id)
    assert (first.action, first.rollout.share) == ("advance", 1.0)
    router = router_for(ws.catalog, "toy", "live")
    assert router is not None
    assert router.blend == 1.0
    done = machine.step(ws, r.id)
    assert (done.action, done.rollout.state) == ("promote", "promoted")
    assert ws.catalog.get_alias("toy", "live").version_id == r.candidate_id
    assert done.rollout.evidence is not None
    assert done.rollout.evidence["paired_requests"] == 400


def test_a_bad_blend_is_rolled_back_at_once(ws: Workspace, log: Log) -> None:
    r = machine.start(ws, "toy:v2", mode="blend", steps="10,50,100", min_requests=100)
    _serve(log, "c", 300, stable_wrong=10, candidate_wrong=200)
    done = machine.step(ws, r.id)
    assert (done.action, done.rollout.state, done.rollout.share) == ("fail", "rolled_back", 0.0)
    assert router_for(ws.catalog, "toy") is None


def test_no_blend_mixes_tasks_a_system_cannot_change_its_task(ws: Workspace) -> None:
    # a regressor version of the classifier `toy` would be refused by the blend's own check
    # (regrow.rollout.validate); it cannot be made: training refuses the change of task
    data = ws.catalog.get_snapshot("train").id
    system = System("toy", target="y", task="regression",
                    components=[Member("m", LinearRegression(), inputs=["x1"])])  # fmt: skip
    with pytest.raises(ConfigError, match="is a classification system"):
        ws.train(system, data)
    assert machine.status(ws) == []
