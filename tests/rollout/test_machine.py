"""The rollout state machine on a real workspace: every transition (begin, hold, inconclusive,
advance, promote, promotion refused, fail, pause, resume, abort to the last known good), each
audited with its evidence; evidence read from a real prediction log joined with feedback."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from regrow import Workspace
from regrow.catalog.rollouts import Rollouts
from regrow.errors import CatalogError, ConfigError
from regrow.rollout import machine
from regrow.rollout.evidence import CANDIDATE, SHADOW, Evidence, read_evidence
from regrow.rollout.router import RolloutRouter, router_for

Log = Callable[..., None]


def _ev(cand: float, stable: float, n: int, fresh: int | None = None) -> Evidence:
    """``n`` requests a lane, ``round(rate * n)`` of them wrong."""
    c, s = round(cand * n), round(stable * n)
    return Evidence([1.0] * c + [0.0] * (n - c), [1.0] * s + [0.0] * (n - s), None,
                    n if fresh is None else fresh)  # fmt: skip


def _actions(ws: Workspace, ref: str) -> list[str]:
    return [e.action.removeprefix("rollout.") for e in machine.history(ws, ref)]


def test_a_good_split_rollout_advances_every_step_and_promotes_itself(ws: Workspace) -> None:
    r = machine.start(ws, "toy:v2", alias="live", steps="10,50,100", min_requests=200)
    assert (r.state, r.step, r.share, r.mode) == ("progressing", 0, 0.1, "split")
    shares = []
    for _ in range(3):
        result = machine.step(ws, r.id, evidence=_ev(0.05, 0.2, 1000))
        shares.append(result.rollout.share)
    assert result.action == "promote"
    assert result.rollout.state == "promoted"
    assert shares == [0.5, 1.0, 0.0]
    assert ws.catalog.get_alias("toy", "live").version_id == r.candidate_id
    assert _actions(ws, r.id) == ["start", "begin", "advance", "advance", "promote"]
    assert machine.history(ws, r.id)[-1].payload["evidence"]["decision"] == "pass"
    assert machine.step(ws, r.id).action == "idle"
    ws.catalog.verify_audit()


def test_the_policy_gives_the_defaults(ws: Workspace) -> None:
    r = machine.start(ws, "toy:v2", begin=False)
    section = ws.policy().rollout
    assert (r.state, r.mode, r.steps, r.min_requests) == (
        "pending",
        "split",
        section.steps,
        section.min_requests,
    )
    assert machine.step(ws, r.id).action == "begin"
    assert machine.status(ws)[0].state == "progressing"


def test_a_bad_candidate_is_rolled_back_at_the_first_step(ws: Workspace) -> None:
    r = machine.start(ws, "toy:v2", steps="5,25,50,100", min_requests=100)
    result = machine.step(ws, r.id, evidence=_ev(0.5, 0.1, 300))
    assert (result.action, result.rollout.state, result.rollout.share) == ("fail", "rolled_back", 0)
    assert ws.catalog.get_alias("toy", "champion").version_id == r.stable_id
    assert result.rollout.evidence is not None
    assert result.rollout.evidence["lower"] > 0.02


def test_no_data_holds_then_is_inconclusive_never_failed(ws: Workspace) -> None:
    r = machine.start(ws, "toy:v2", min_requests=100, inconclusive_after=3)
    actions = [machine.step(ws, r.id, evidence=Evidence()).action for _ in range(4)]
    assert actions == ["hold", "hold", "inconclusive", "hold"]
    r = machine.status(ws, r.id)[0]
    assert (r.state, r.share, r.holds) == ("inconclusive", 0.05, 4)  # traffic as it was
    # evidence arriving brings it back to progressing, at the next step
    result = machine.step(ws, r.id, evidence=_ev(0.1, 0.1, 200))
    assert (result.action, result.rollout.state, result.rollout.step) == (
        "advance",
        "progressing",
        1,
    )


def test_an_undecided_last_step_holds_and_a_refused_promotion_pauses(ws: Workspace) -> None:
    # a last step of 50% never serves the candidate to every request: no rules at start
    r = machine.start(ws, "toy:v2", alias="prod", steps="50", min_requests=50)
    assert machine.step(ws, r.id, evidence=_ev(0.2, 0.2, 60)).action == "hold"  # continue
    result = machine.step(ws, r.id, evidence=_ev(0.0, 0.3, 2000))
    assert (result.action, result.rollout.state) == ("promotion-refused", "paused")
    assert "blessed evaluation" in result.rollout.reason or "approval" in result.rollout.reason
    assert ws.catalog.get_alias("toy", "prod").version_id == r.stable_id  # governance held


def test_pause_resume_and_abort_to_the_last_known_good(ws: Workspace) -> None:
    r = machine.start(ws, "toy:v2", alias="live", mode="blue-green", min_requests=10)
    assert (r.steps, r.share) == ((1.0,), 1.0)
    r = machine.pause(ws, r.id, reason="on call is busy")
    assert machine.step(ws, r.id, evidence=_ev(0.9, 0.1, 100)).action == "idle"
    with pytest.raises(CatalogError, match="not paused"):
        machine.resume(ws, machine.resume(ws, r.id).id)
    # someone moved the alias to the candidate by hand; abort returns it to the stable
    ws.catalog.move_alias("toy", "live", r.candidate_id)
    done = machine.abort(ws, r.id, reason="pager")
    assert (done.state, done.share) == ("rolled_back", 0.0)
    assert ws.catalog.get_alias("toy", "live").version_id == r.stable_id
    assert _actions(ws, r.id) == ["start", "begin", "pause", "resume", "abort"]
    with pytest.raises(CatalogError, match="finished"):
        machine.pause(ws, r.id)
    with pytest.raises(CatalogError, match="rolled_back"):
        machine.promote(ws, r.id)


def test_promote_by_hand_goes_through_governance(ws: Workspace) -> None:
    r = machine.start(ws, "toy:v2", alias="live", mode="shadow", min_requests=10)
    assert (r.state, r.share) == ("shadow", 0.0)
    done = machine.promote(ws, r.id, reason="looks fine")
    assert done.state == "promoted"
    assert ws.catalog.get_alias("toy", "live").version_id == r.candidate_id
    assert "looks fine" in [m.reason for m in ws.catalog.alias_history("toy", "live")]


def test_bad_inputs_are_refused(ws: Workspace) -> None:
    with pytest.raises(ConfigError, match="not numbers"):
        machine.start(ws, "toy:v2", steps="5,x")
    with pytest.raises(ConfigError, match="tolerance"):
        machine.start(ws, "toy:v2", tolerance=2.0)
    with pytest.raises(ConfigError, match="inconclusive_after"):
        machine.start(ws, "toy:v2", inconclusive_after=0)
    with pytest.raises(ConfigError, match="loss_cap"):
        machine.start(ws, "toy:v2", loss_cap=0.0)
    for bad in ("0,150", "150", "50,25", ""):
        with pytest.raises(ConfigError, match=r"not numbers|do not rise"):
            machine.start(ws, "toy:v2", steps=bad)
    assert Rollouts(ws.catalog).list() == []


def test_steps_are_refused_before_governance_is_asked(ws: Workspace) -> None:
    """On a protected alias, steps that are no shares are named first: a user should not
    meet the promotion rules (an evaluation, an approval) to learn they never were."""
    with pytest.raises(ConfigError, match=r"rollout steps '0,150' do not rise"):
        machine.start(ws, "toy:v2", alias="prod", steps="0,150")


def test_a_lane_is_refused_on_a_rollout_without_lanes(ws: Workspace) -> None:
    r = machine.start(ws, "toy:v2", alias="live", mode="shadow", min_requests=10)
    with pytest.raises(ConfigError, match="no lane 'candidate-2'"):
        machine.promote(ws, r.id, lane="candidate-2")
    assert ws.catalog.get_alias("toy", "live").version_id == r.stable_id
    assert machine.promote(ws, r.id, lane="candidate").state == "promoted"


def test_evidence_is_read_from_the_prediction_log_and_feedback(ws: Workspace, log: Log) -> None:
    r = machine.start(ws, "toy:v2", steps="50,100", min_requests=100)
    router = router_for(ws.catalog, "toy")
    assert isinstance(router, RolloutRouter)
    assert router.share == 0.5
    ids = [f"q{i}" for i in range(600)]
    lanes = {i: router.lane_for(i) for i in ids}
    at = datetime.now(UTC) + timedelta(seconds=1)
    stable = [i for i in ids if lanes[i] == "main"]
    cand = [i for i in ids if lanes[i] == CANDIDATE]
    log(at, "main", "toy:v1", stable, set(stable[: len(stable) // 5]))  # 20% wrong
    log(at, CANDIDATE, "toy:v2", cand, set(cand[: len(cand) // 2]))  # 50% wrong
    log(at, "main", "toy:v2", ["other"], set())  # another version's rows are not read
    ev = read_evidence(ws.catalog, ws.store, Rollouts(ws.catalog).get(r.id))
    assert (len(ev.candidate), len(ev.stable), ev.step_requests) == (
        len(cand),
        len(stable),
        len(cand),
    )
    assert sum(ev.candidate) == len(cand) // 2
    result = machine.step(ws, r.id)
    assert (result.action, result.rollout.state) == ("fail", "rolled_back")
    assert result.rollout.evidence is not None
    assert result.rollout.evidence["candidate_requests"] == len(cand)
    assert router_for(ws.catalog, "toy") is None


def test_shadow_evidence_is_paired_by_request(ws: Workspace, log: Log) -> None:
    r = machine.start(ws, "toy:v2", alias="live", mode="shadow", min_requests=50)
    router = router_for(ws.catalog, "toy", "live")
    assert router is not None
    assert router.shadow == SHADOW
    assert router.lane_for("a") == "main"
    assert router.version_for(SHADOW) == r.candidate_id
    ids = [f"s{i}" for i in range(300)]
    at = datetime.now(UTC) + timedelta(seconds=1)
    log(at, "main", "toy:v1", ids, set(ids[:90]))
    log(at, SHADOW, "toy:v2", ids[:200], set(), labels=False)  # right on all 200
    ev = read_evidence(ws.catalog, ws.store, Rollouts(ws.catalog).get(r.id))
    assert ev.paired is not None
    assert len(ev.paired) == 200
    assert sum(ev.paired) == -90


def test_blue_green_compares_with_the_stable_before_the_switch(ws: Workspace, log: Log) -> None:
    r = machine.start(ws, "toy:v2", alias="live", mode="blue-green", min_requests=50)
    router = router_for(ws.catalog, "toy", "live")
    assert router is not None
    assert router.lanes == {"main": 0.0, CANDIDATE: 1.0}
    before = r.created_at - timedelta(hours=2)
    old = [f"b{i}" for i in range(200)]
    log(before, "main", "toy:v1", old, set(old[:20]))  # 10% wrong before the switch
    log(r.created_at - timedelta(hours=30), "main", "toy:v1", ["ancient"], set())
    new = [f"g{i}" for i in range(200)]
    log(datetime.now(UTC) + timedelta(seconds=1), CANDIDATE, "toy:v2", new, set(new[:10]))
    ev = read_evidence(ws.catalog, ws.store, Rollouts(ws.catalog).get(r.id))
    assert (len(ev.stable), sum(ev.stable), len(ev.candidate), sum(ev.candidate)) == (
        200,
        20,
        200,
        10,
    )


def test_request_losses_average_rows_and_cap_a_regressors_error() -> None:
    from regrow.rollout.evidence import request_losses

    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [{"request_id": "a", "row": n, "served_at": at, "prediction": p, "classifier": True}
            for n, p in enumerate(["yes", "no", "yes", "no"])]  # fmt: skip
    labels = {("a", 0): "yes", ("a", 1): "yes", ("a", 2): "yes"}  # row 3 has no label
    assert request_losses(rows, labels, None) == {"a": (1 / 3, at)}
    reg = [{"request_id": "r", "row": 0, "served_at": at, "prediction": 2.0, "classifier": False}]
    assert request_losses(reg, {("r", 0): 5}, 10.0) == {"r": (0.3, at)}
    assert request_losses(reg, {("r", 0): 500}, 10.0) == {"r": (1.0, at)}
    with pytest.raises(ConfigError, match="loss_cap"):
        request_losses(reg, {("r", 0): 5}, None)


def test_a_replica_stepping_a_stale_record_moves_nothing(ws: Workspace) -> None:
    r = machine.start(ws, "toy:v2", steps="10,50,100", min_requests=100)
    first = machine.step(ws, r, evidence=_ev(0.1, 0.1, 500))
    assert first.action == "advance"
    late = machine.step(ws, r, evidence=_ev(0.1, 0.1, 500))  # r is the record before it
    assert late.action == "raced"
    assert late.rollout == first.rollout
    assert _actions(ws, r.id) == ["start", "begin", "advance"]


def test_a_stale_failing_analysis_does_not_undo_a_promotion(ws: Workspace) -> None:
    r = machine.start(ws, "toy:v2", alias="live", steps="100", min_requests=100)
    done = machine.step(ws, r, evidence=_ev(0.0, 0.3, 2000))
    assert done.action == "promote"
    late = machine.step(ws, r, evidence=_ev(0.9, 0.1, 2000))  # would fail, on a stale record
    assert (late.action, late.rollout.state) == ("raced", "promoted")
    assert ws.catalog.get_alias("toy", "live").version_id == r.candidate_id


def test_a_stale_passing_analysis_does_not_promote_an_aborted_rollout(ws: Workspace) -> None:
    r = machine.start(ws, "toy:v2", alias="live", steps="100", min_requests=100)
    machine.abort(ws, r.id, reason="pager")
    late = machine.step(ws, r, evidence=_ev(0.0, 0.3, 2000))  # would promote, on a stale record
    assert (late.action, late.rollout.state) == ("raced", "rolled_back")
    assert ws.catalog.get_alias("toy", "live").version_id == r.stable_id


def test_a_server_stepper_beginning_the_rollout_first_is_no_error(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A serving replica's stepper can begin a rollout between its record and ``start``'s own
    begin (seen in CI under load, in the demo's canary): the rollout is begun either way."""
    recorded = Rollouts.start

    def start_then_a_stepper_begins_it(self: Rollouts, **kwargs: object) -> object:
        record = recorded(self, **kwargs)  # type: ignore[arg-type]
        assert machine.step(ws, record.id).action == "begin"  # the server's stepper, first
        return record

    monkeypatch.setattr(Rollouts, "start", start_then_a_stepper_begins_it)
    r = machine.start(ws, "toy:v2", steps="10,100", min_requests=100)
    assert (r.state, r.step, r.share) == ("progressing", 0, 0.1)
    assert _actions(ws, r.id) == ["start", "begin"]


def test_the_rollout_s_experiment_carries_the_evaluation_made_before_it(ws: Workspace) -> None:
    """It said "not evaluated yet" though a blessed evaluation let the rollout start (from
    a user trial)."""
    import numpy as np
    import pandas as pd

    from regrow.catalog.experiments import experiment_id

    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 2))
    held = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": (x.sum(axis=1) > 0).astype(int)})
    ws.evaluate("toy:v2", ws.snapshot(held, name="holdout"), baseline="toy:v1")
    (made,) = ws.catalog.list_evaluations(ws.catalog.get_system_version("toy:v2").id)
    r = machine.start(ws, "toy:v2", alias="live", mode="shadow", min_requests=10)
    record = ws.catalog.experiments.get(experiment_id("rollout", r.id))
    assert record.evaluation_id == made.id
    assert record.actual is not None
    assert record.actual["baseline_id"] == r.stable_id
