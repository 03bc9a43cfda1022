"""Fixes from the first-user review of rollouts: a step never raises on bad data (it pauses
the rollout, or skips unusable labels and counts them); what can never be analysed is refused
at start; feedback refuses labels no version could compare; a rollout that would serve a
candidate to everyone on a protected alias needs the promotion rules at start; replicas hold
once a period; an alias moved by hand ends the rollout and abort leaves it; an A/B promotion
picks the best lane."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from regrow import Member, System, Workspace
from regrow.catalog.rollouts import RolloutRecord
from regrow.errors import ConfigError, DataError, PromotionRefused
from regrow.plan.policy import Policy
from regrow.rollout import machine
from regrow.rollout.evidence import CANDIDATE, Evidence, read_evidence
from regrow.serve.predlog import PredictionLog
from regrow.testing import routed_by

Log = Callable[..., None]


def _soon() -> datetime:
    """A serving time just after a rollout started now."""
    return datetime.now(UTC) + timedelta(seconds=1)


def _actions(ws: Workspace, ref: str) -> list[str]:
    return [e.action.removeprefix("rollout.") for e in machine.history(ws, ref)]


def _old_rollout(ws: Workspace, candidate: str, **params: Any) -> RolloutRecord:
    """A rollout written as an older regrow did, without today's checks at start."""
    v = ws.catalog.get_system_version(candidate)
    stable = ws.catalog.get_alias(v.system, "live").version_id
    record = ws.catalog.rollouts.start(
        system=v.system, alias="live", stable_id=stable, candidate_id=v.id, mode="split",
        steps=(0.5, 1.0), min_requests=5, params={"tolerance": 0.02, "alpha": 0.05, **params},
    )  # fmt: skip
    return machine.step(ws, record.id).rollout  # begins


@pytest.fixture
def reg(ws: Workspace) -> Workspace:
    """``ws`` with reg:v1 and reg:v2, regressors of x1, and reg@live on reg:v1."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=200)
    train = ws.snapshot(pd.DataFrame({"x1": x, "y": 2 * x}), name="reg-train")
    for intercept in (True, False):
        model = LinearRegression(fit_intercept=intercept)
        ws.train(System("reg", target="y", task="regression", components=[
            Member("m", model, inputs=["x1"])]), train)  # fmt: skip
    ws.catalog.move_alias("reg", "live", ws.catalog.get_system_version("reg:v1").id)
    return ws


def _log_reg(ws: Workspace, lane: str, version: str, ids: list[str], at: datetime) -> None:
    predlog = PredictionLog(ws.catalog, ws.store, flush_seconds=60)
    predlog.record(system="reg", version=version, lane=lane, request_ids=ids,
                   rows=[0] * len(ids), inputs=pd.DataFrame({"x1": [0.0] * len(ids)}),
                   outputs={"predict": [1.0] * len(ids)}, at=at,
                   rollout=routed_by(ws, "reg"))  # fmt: skip
    predlog.close()


# -- 1. a step never raises on bad data ------------------------------------------------------


def test_a_slice_the_logged_requests_cannot_answer_pauses_the_rollout_once(
    ws: Workspace, log: Log
) -> None:
    r = _old_rollout(ws, "toy:v2", slices={"late": "ts > 0"})  # ts is no served input
    log(_soon(), CANDIDATE, "toy:v2", ["a", "b"], set())
    result = machine.step(ws, r.id)
    assert (result.action, result.rollout.state) == ("analysis_failed", "paused")
    assert "analysis failed" in result.rollout.reason
    assert "'ts'" in result.rollout.reason
    assert _actions(ws, r.id)[-1] == "analysis_failed"
    assert machine.status(ws, r.id)[0].reason == result.rollout.reason  # status shows it
    assert machine.step(ws, r.id).action == "idle"  # not an error every period


def test_an_old_regressor_rollout_without_loss_cap_pauses_naming_it(reg: Workspace) -> None:
    r = _old_rollout(reg, "reg:v2")
    _log_reg(reg, CANDIDATE, "reg:v2", ["a"], _soon())
    reg.feedback("reg", {"a": 1.5})
    result = machine.step(reg, r.id)
    assert (result.action, result.rollout.state) == ("analysis_failed", "paused")
    assert "loss_cap" in result.rollout.reason


def test_unusable_labels_are_skipped_and_counted_in_the_evidence(reg: Workspace) -> None:
    r = machine.start(reg, "reg:v2", alias="live", steps="50,100", min_requests=2, loss_cap=4.0)
    at = _soon()
    _log_reg(reg, CANDIDATE, "reg:v2", ["a", "b", "c"], at)
    _log_reg(reg, "main", "reg:v1", ["d"], at)
    # stored as an older server did, past feedback()'s check
    reg.catalog.predictions.add_feedback("reg", [("a", 0, 3.0), ("b", 0, "n/a"),
                                                 ("c", 0, True), ("d", 0, 1.0)])  # fmt: skip
    ev = read_evidence(reg.catalog, reg.store, reg.catalog.rollouts.get(r.id))
    assert (ev.candidate, ev.stable, ev.unusable_labels) == ([0.5], [0.0], 2)
    result = machine.step(reg, r.id)
    assert result.action == "hold"
    assert result.rollout.evidence is not None
    assert result.rollout.evidence["unusable_labels"] == 2


# -- 2. refused at start ---------------------------------------------------------------------


def test_a_slice_on_a_column_requests_do_not_carry_or_not_boolean_is_refused(
    ws: Workspace,
) -> None:
    ws.catalog.move_alias("toy", "wide", ws.catalog.get_system_version("toy:v2").id)
    # toy:v1 reads x1 only: its requests carry no x2, though its training snapshot has it
    with pytest.raises(ConfigError, match=r"slice 'b'.*'x2' is not defined.*\(x1\)"):
        machine.start(ws, "toy:v1", alias="wide", slices={"b": "x2 > 0"})
    for expression in ("x1", "x1 + 1"):
        with pytest.raises(ConfigError, match="not True/False for each row"):
            machine.start(ws, "toy:v2", alias="live", slices={"s": expression})
    assert ws.catalog.rollouts.list() == []


def test_a_regressor_rollout_without_loss_cap_is_refused_at_start(reg: Workspace) -> None:
    with pytest.raises(ConfigError, match="reg:v2 is a regressor") as caught:
        machine.start(reg, "reg:v2", alias="live")
    assert "--loss-cap" in str(caught.value)
    assert reg.catalog.rollouts.list() == []


# -- 3. feedback -----------------------------------------------------------------------------


def test_feedback_refuses_labels_no_version_could_compare_and_stores_none_of_the_call(
    reg: Workspace,
) -> None:
    with pytest.raises(DataError, match=r"request 'b' row 0: 'yes'") as caught:
        reg.feedback("toy", [("a", 0, 1), ("b", 0, "yes"), ("c", 1, 7)])
    assert "request 'c' row 1: 7" in str(caught.value)
    assert "the classes [0, 1]" in str(caught.value)
    assert reg.catalog.predictions.labels("toy", ["a", "b", "c"]) == {}
    assert reg.feedback("toy", [("a", 0, 1), ("b", 0, "0"), ("c", 0, 1.0), ("d", 0, True)]) == 4
    with pytest.raises(DataError, match=r"request 'q0' row 0: 'n/a'.*a number") as caught:
        reg.feedback("reg", {"q0": "n/a"})
    # each version named says why it may serve: reg:v2 holds no alias, it is the latest
    assert "reg:v1 (alias live), reg:v2 (latest)" in str(caught.value)
    assert reg.feedback("reg", {"q0": "2.5", "q1": 3}) == 2


# -- 4. governance ---------------------------------------------------------------------------


def test_a_rollout_serving_everyone_on_a_protected_alias_needs_the_rules_at_start(
    ws: Workspace,
) -> None:
    for mode, steps in (("split", "50,100"), ("blue-green", None), ("blend", "20,100")):
        with pytest.raises(PromotionRefused, match=r"toy:v2 to every request.*approval") as e:
            machine.start(ws, "toy:v2", alias="prod", mode=mode, steps=steps)
        assert "--mode shadow" in str(e.value)
    assert ws.catalog.rollouts.list() == []
    assert not [e for e in ws.catalog.audit_events() if e.action.startswith("rollout.")]
    shadow = machine.start(ws, "toy:v2", alias="prod", mode="shadow")  # serves nothing
    machine.abort(ws, shadow.id)
    part = machine.start(ws, "toy:v2", alias="prod", steps="10,50")  # never everyone
    machine.abort(ws, part.id)


def test_a_rollout_that_meets_the_promotion_rules_starts_on_a_protected_alias(
    ws: Workspace,
) -> None:
    rules = {"promotion": {"protected": ["prod"], "require_blessed": False}}
    ws.set_policy(Policy.from_dict(rules))
    ws.catalog.identities.add("bob", "approver")
    _, token = ws.catalog.identities.create_token("bob")
    with pytest.raises(PromotionRefused, match="1 approval") as refused:
        machine.start(ws, "toy:v2", alias="prod", mode="blue-green")
    # v2 reads an input v1 does not: its clients could not call it as they call v1.
    assert "input 'x2' (FP64) is new" in str(refused.value)
    ws.set_policy(Policy.from_dict({**rules, "contracts": {"interface": "allow"}}))
    with Workspace.open(ws.home, token=token) as bob:
        bob.approve("toy:v2", "prod")
    r = machine.start(ws, "toy:v2", alias="prod", mode="blue-green")
    assert (r.state, r.share) == ("progressing", 1.0)


# -- 5. replicas -----------------------------------------------------------------------------


def _ev(cand: float, stable: float, n: int) -> Evidence:
    c, s = round(cand * n), round(stable * n)
    return Evidence([1.0] * c + [0.0] * (n - c), [1.0] * s + [0.0] * (n - s), None, n)


def test_a_hold_is_written_once_a_period_whatever_the_number_of_replicas(
    ws: Workspace,
) -> None:
    r = machine.start(ws, "toy:v2", alias="live", steps="50,100", min_requests=100)
    thin = _ev(0.1, 0.1, 10)
    replicas = [machine.step(ws, r, evidence=thin, min_interval=30) for _ in range(4)]
    assert [x.action for x in replicas] == ["skip"] * 4  # begun just now
    assert machine.status(ws, r.id)[0].revision == r.revision
    held = machine.step(ws, r, evidence=thin, min_interval=0)
    assert (held.action, held.rollout.holds) == ("hold", 1)
    # an advance is never held back
    moved = machine.step(ws, held.rollout, evidence=_ev(0.05, 0.2, 1000), min_interval=3600)
    assert (moved.action, moved.rollout.step) == ("advance", 1)


# -- 6. aliases moved by hand ----------------------------------------------------------------


def test_a_step_ends_a_rollout_whose_alias_was_moved_by_hand_and_leaves_the_alias(
    ws: Workspace,
) -> None:
    r = machine.start(ws, "toy:v2", alias="live", steps="50,100")
    v3 = ws.catalog.get_system_version("toy:v3").id
    ws.catalog.move_alias("toy", "live", v3, reason="manual during rollout")
    result = machine.step(ws, r.id)
    assert (result.action, result.rollout.state) == ("superseded", "rolled_back")
    assert "toy:v3" in result.rollout.reason
    assert ws.catalog.get_alias("toy", "live").version_id == v3
    assert _actions(ws, r.id)[-1] == "superseded"


def test_abort_moves_the_alias_back_only_from_a_candidate(ws: Workspace) -> None:
    v1, v3 = (ws.catalog.get_system_version(f"toy:{v}").id for v in ("v1", "v3"))
    r = machine.start(ws, "toy:v2", alias="live", steps="50,100")
    ws.catalog.move_alias("toy", "live", v3, reason="manual during rollout")
    machine.abort(ws, r.id)
    assert ws.catalog.get_alias("toy", "live").version_id == v3  # left where it was put
    ws.catalog.move_alias("toy", "live", v1)
    r = machine.start(ws, "toy:v2", alias="live", steps="50,100")
    ws.catalog.move_alias("toy", "live", r.candidate_id)
    machine.abort(ws, r.id)
    assert ws.catalog.get_alias("toy", "live").version_id == v1  # back from the candidate


# -- 7. promotion of an A/B rollout ----------------------------------------------------------


def test_an_ab_promotion_takes_the_live_lane_of_lowest_loss_or_the_one_named(
    ws: Workspace,
) -> None:
    r = machine.start(ws, ["toy:v2", "toy:v3"], alias="live", mode="ab", steps="10,50",
                      min_requests=1000)  # fmt: skip
    lanes = {"candidate": _ev(0.3, 0.2, 50), "candidate-2": _ev(0.1, 0.2, 50)}
    held = machine.step(ws, r.id, evidence=Evidence([], [0.0] * 50, None, 100, lanes=lanes))
    assert held.action == "hold"
    done = machine.promote(ws, r.id)
    v3 = ws.catalog.get_system_version("toy:v3").id
    assert ws.catalog.get_alias("toy", "live").version_id == v3
    assert done.evidence is not None
    assert done.evidence["promoted_lane"] == "candidate-2"
    r = machine.start(ws, ["toy:v1", "toy:v2"], alias="live", mode="ab", steps="10,50")
    machine.promote(ws, r.id, lane="candidate-2")
    assert ws.catalog.get_system_version(ws.catalog.get_alias("toy", "live").version_id).ref == (
        "toy:v2"
    )


def test_a_refused_rollout_promotion_suggests_no_missing_option(ws: Workspace) -> None:
    r = machine.start(ws, "toy:v2", alias="prod", steps="50")
    with pytest.raises(PromotionRefused) as caught:
        machine.promote(ws, r.id)
    assert "--force" not in str(caught.value)
    assert f"promote rollout {r.id[:12]} again" in str(caught.value)
