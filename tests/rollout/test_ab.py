"""A/B rollouts: several candidate lanes against the stable one, each persisted with its
version and share; a lane proven worse is dropped (audited), the others go on; the passing
lane with the lowest loss is promoted; all dropped rolls back. Evidence from a real log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from regrow import Workspace
from regrow.catalog.rollouts import Rollouts
from regrow.errors import ConfigError
from regrow.rollout import machine
from regrow.rollout.evidence import Evidence, read_evidence
from regrow.rollout.router import RolloutRouter, router_for

Log = Callable[..., None]


def _lane(wrong: float, n: int, fresh: int | None = None) -> Evidence:
    k = round(wrong * n)
    return Evidence([1.0] * k + [0.0] * (n - k), [], None, n if fresh is None else fresh)


def _ab(stable: float, n: int, **lanes: Evidence) -> Evidence:
    k = round(stable * n)
    return Evidence([], [1.0] * k + [0.0] * (n - k), None, 0,
                    lanes={name.replace("_", "-"): ev for name, ev in lanes.items()})  # fmt: skip


def _fill(ev: Evidence) -> Evidence:
    """Give each lane the top level's stable losses (as read_evidence does)."""
    from dataclasses import replace

    return replace(ev, lanes={k: replace(v, stable=ev.stable) for k, v in ev.lanes.items()})


def test_ab_lanes_are_persisted_and_routed_at_the_steps_share(ws: Workspace) -> None:
    r = machine.start(ws, ["toy:v2", "toy:v3"], mode="ab", steps="10,50", min_requests=50)
    v2, v3 = (ws.catalog.get_system_version(f"toy:v{n}").id for n in (2, 3))
    assert (r.mode, r.candidate_id, r.share) == ("ab", v2, 0.1)
    assert [(x.name, x.version_id, x.dropped, x.share) for x in r.lanes] == [
        ("candidate", v2, False, 0.1),
        ("candidate-2", v3, False, 0.1),
    ]
    router = router_for(ws.catalog, "toy")
    assert isinstance(router, RolloutRouter)
    assert router.lanes == pytest.approx({"main": 0.8, "candidate": 0.1, "candidate-2": 0.1})
    assert router.version_for("candidate-2") == v3
    assert router.versions == (r.stable_id, v2, v3)
    # a step's share above 1/(K+1) is capped there: the stable lane keeps an equal part
    moved = machine.step(ws, r.id, evidence=_fill(_ab(0.1, 400, candidate=_lane(0.1, 400),
                                                      candidate_2=_lane(0.1, 400))))  # fmt: skip
    assert moved.action == "advance"
    assert [x.share for x in moved.rollout.lanes] == pytest.approx([1 / 3, 1 / 3])
    router = router_for(ws.catalog, "toy")
    assert router is not None
    assert router.lanes == pytest.approx({"main": 1 / 3, "candidate": 1 / 3, "candidate-2": 1 / 3})


def test_a_worse_lane_is_dropped_and_the_best_passing_lane_promoted(ws: Workspace) -> None:
    r = machine.start(ws, ["toy:v2", "toy:v3"], mode="ab", steps="20,50", min_requests=100,
                      alias="live")  # fmt: skip
    bad = _fill(_ab(0.1, 1000, candidate=_lane(0.1, 300), candidate_2=_lane(0.6, 300)))
    dropped = machine.step(ws, r.id, evidence=bad)
    assert dropped.action == "drop_lane"
    assert dropped.rollout.state == "progressing"
    lanes = {x.name: (x.dropped, x.share) for x in dropped.rollout.lanes}
    assert lanes == {"candidate": (False, 0.2), "candidate-2": (True, 0.0)}
    event = machine.history(ws, r.id)[-1]
    assert event.action == "rollout.drop_lane"
    assert event.payload["evidence"]["dropped"] == ["candidate-2"]
    assert "lane candidate-2" in event.payload["reason"]
    router = router_for(ws.catalog, "toy", "live")
    assert router is not None
    assert router.lanes["candidate-2"] == 0.0
    # the dropped lane is no longer analysed, however bad its numbers
    good = _fill(_ab(0.2, 3000, candidate=_lane(0.05, 3000), candidate_2=_lane(0.9, 3000)))
    assert machine.step(ws, r.id, evidence=good).action == "advance"
    done = machine.step(ws, r.id, evidence=good)
    assert (done.action, done.rollout.state) == ("promote", "promoted")
    assert ws.catalog.get_alias("toy", "live").version_id == r.lanes[0].version_id
    assert machine.history(ws, r.id)[-1].payload["evidence"]["promoted_lane"] == "candidate"


def test_the_lane_with_the_lowest_loss_is_promoted(ws: Workspace) -> None:
    r = machine.start(ws, ["toy:v2", "toy:v3"], mode="ab", steps="50", min_requests=100,
                      alias="live")  # fmt: skip
    ev = _fill(_ab(0.3, 4000, candidate=_lane(0.1, 3000), candidate_2=_lane(0.02, 3000)))
    done = machine.step(ws, r.id, evidence=ev)
    assert done.action == "promote"
    v3 = ws.catalog.get_system_version("toy:v3").id
    assert ws.catalog.get_alias("toy", "live").version_id == v3
    payload = machine.history(ws, r.id)[-1].payload
    assert payload["evidence"]["promoted_lane"] == "candidate-2"
    assert "candidate-2" in payload["reason"]
    verdicts = payload["evidence"]["verdicts"]
    assert set(verdicts) == {"candidate", "candidate-2"}
    assert verdicts["candidate"]["alpha"] == pytest.approx(0.025)  # alpha split over 2 lanes


def test_every_lane_dropped_rolls_back(ws: Workspace) -> None:
    r = machine.start(ws, ["toy:v2", "toy:v3"], mode="ab", steps="20,50", min_requests=100)
    first = _fill(_ab(0.1, 1000, candidate=_lane(0.1, 200), candidate_2=_lane(0.7, 300)))
    assert machine.step(ws, r.id, evidence=first).action == "drop_lane"
    worse = _fill(_ab(0.1, 1000, candidate=_lane(0.7, 300), candidate_2=_lane(0.7, 300)))
    done = machine.step(ws, r.id, evidence=worse)
    assert (done.action, done.rollout.state, done.rollout.share) == ("fail", "rolled_back", 0.0)
    assert ws.catalog.get_alias("toy", "champion").version_id == r.stable_id
    assert router_for(ws.catalog, "toy") is None


def test_a_lane_short_of_fresh_requests_holds_the_step(ws: Workspace) -> None:
    r = machine.start(ws, ["toy:v2", "toy:v3"], mode="ab", steps="20,50", min_requests=100)
    ev = _fill(_ab(0.1, 1000, candidate=_lane(0.1, 500), candidate_2=_lane(0.1, 500, fresh=40)))
    held = machine.step(ws, r.id, evidence=ev)
    assert held.action == "hold"
    assert "40 of 100" in held.rollout.reason
    assert "candidate-2" in held.rollout.reason


def test_ab_evidence_is_read_per_lane_from_the_log(ws: Workspace, log: Log) -> None:
    r = machine.start(ws, ["toy:v2", "toy:v3"], mode="ab", steps="30,50", min_requests=50)
    router = router_for(ws.catalog, "toy")
    assert router is not None
    ids = [f"q{i}" for i in range(900)]
    by: dict[str, list[str]] = {}
    for i in ids:
        by.setdefault(router.lane_for(i), []).append(i)
    at = datetime.now(UTC) + timedelta(seconds=1)
    log(at, "main", "toy:v1", by["main"], set(by["main"][: len(by["main"]) // 10]))
    log(at, "candidate", "toy:v2", by["candidate"], set())
    c2 = by["candidate-2"]
    log(at, "candidate-2", "toy:v3", c2, set(c2[: len(c2) * 6 // 10]))  # 60% wrong
    log(at, "candidate", "toy:v3", ["misrouted"], set())  # a lane's rows of another version
    ev = read_evidence(ws.catalog, ws.store, Rollouts(ws.catalog).get(r.id))
    assert len(ev.stable) == len(by["main"])
    assert {k: len(v.candidate) for k, v in ev.lanes.items()} == {
        "candidate": len(by["candidate"]),
        "candidate-2": len(c2),
    }
    assert sum(ev.lanes["candidate-2"].candidate) == len(c2) * 6 // 10
    result = machine.step(ws, r.id)
    assert result.action == "drop_lane"
    assert [x.name for x in result.rollout.lanes if x.dropped] == ["candidate-2"]
    again = read_evidence(ws.catalog, ws.store, result.rollout)
    assert again.lanes["candidate-2"] == Evidence()  # a dropped lane is not read
    ws.catalog.verify_audit()


def test_ab_inputs_are_checked(ws: Workspace) -> None:
    with pytest.raises(ConfigError, match="takes one candidate"):
        machine.start(ws, ["toy:v2", "toy:v3"], mode="split")
    with pytest.raises(ConfigError, match="twice"):
        machine.start(ws, ["toy:v2", "toy:v2"], mode="ab")
    one = machine.start(ws, ["toy:v2"], mode="ab")  # one lane is allowed
    assert [x.name for x in one.lanes] == ["candidate"]
    with pytest.raises(ConfigError, match="unknown rollout mode"):
        machine.start(ws, "toy:v2", mode="bandit")


def test_a_silent_lane_holds_and_ends_inconclusive_never_failed() -> None:
    from regrow.rollout.decide import decide

    ev = _fill(_ab(0.1, 1000, candidate=_lane(0.1, 500), candidate_2=Evidence()))
    state, holds, actions = "progressing", 0, []
    for _ in range(4):
        move = decide(state=state, mode="ab", step=0, steps=(0.2, 0.5), holds=holds,
                      min_requests=100, params={"inconclusive_after": 3}, evidence=ev)  # fmt: skip
        state, holds = move.state, move.holds
        actions.append(move.action)
    assert actions == ["hold", "hold", "inconclusive", "hold"]
    assert "0 of 100" in move.reason
    assert "candidate-2" in move.reason
