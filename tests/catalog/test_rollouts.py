"""Rollouts in the catalog (``Rollouts(catalog)``), on SQLite and PostgreSQL: only allowed
moves, by compare-and-set, each an audit event with its evidence; one active rollout per
alias; an experiment of kind ``rollout`` per rollout."""

from __future__ import annotations

import pytest

from regrow.catalog import Catalog
from regrow.catalog.rollouts import ACTIVE, STATES, TRANSITIONS, RolloutRecord, Rollouts
from regrow.errors import AliasConflict, CatalogError, ConfigError, NotFound

from .conftest import Builder


def _start(catalog: Catalog, build: Builder, **kw: object) -> RolloutRecord:
    stable, candidate = build.version(), build.version()
    catalog.move_alias("churn", "champion", stable.id)
    args: dict[str, object] = {
        "system": "churn", "alias": "champion", "stable_id": stable.id,
        "candidate_id": candidate.id, "mode": "split", "steps": (0.1, 0.5, 1.0),
        "min_requests": 50, "params": {"tolerance": 0.02}, "reason": "new member",
    }  # fmt: skip
    args.update(kw)
    return Rollouts(catalog).start(**args)  # type: ignore[arg-type]


def test_start_records_a_pending_rollout_its_event_and_experiment(
    catalog: Catalog, build: Builder
) -> None:
    r = _start(catalog, build)
    assert (r.state, r.step, r.steps, r.revision, r.share) == ("pending", 0, (0.1, 0.5, 1.0), 1, 0)
    assert r.active
    assert r.params == {"tolerance": 0.02}
    assert r.actor == "tester"
    [event] = Rollouts(catalog).history(r.id)
    assert event.action == "rollout.start"
    assert event.payload["candidate"] == r.candidate_id
    [experiment] = catalog.experiments.list(kind="rollout")
    assert (experiment.subject_id, experiment.candidate_id) == (r.id, r.candidate_id)
    assert Rollouts(catalog).get(r.id[:8]) == r
    assert Rollouts(catalog).active("churn") == r
    assert Rollouts(catalog).list(active=False) == []
    catalog.verify_audit()


def test_every_move_is_audited_with_its_evidence(catalog: Catalog, build: Builder) -> None:
    rollouts = Rollouts(catalog)
    r = _start(catalog, build)
    r = rollouts.transition(r.id, "progressing", action="begin", expected_revision=1, step=0)
    assert r.share == 0.1
    r = rollouts.transition(r.id, "progressing", action="hold", expected_revision=2, holds=1,
                            evidence={"n": 3}, reason="too few")  # fmt: skip
    assert (r.state, r.holds, r.evidence, r.step) == ("progressing", 1, {"n": 3}, 0)
    r = rollouts.transition(r.id, "progressing", action="advance", expected_revision=3, step=1)
    assert (r.step, r.share) == (1, 0.5)
    assert r.step_started_at >= r.created_at
    r = rollouts.transition(r.id, "paused", action="pause", expected_revision=4)
    assert r.share == 0.5  # a paused rollout keeps its traffic
    r = rollouts.transition(r.id, "inconclusive", action="inconclusive", expected_revision=5)
    r = rollouts.transition(r.id, "progressing", action="resume", expected_revision=6)
    r = rollouts.transition(r.id, "rolled_back", action="fail", expected_revision=7,
                            evidence={"decision": "fail"})  # fmt: skip
    assert (r.state, r.share, r.active) == ("rolled_back", 0.0, False)
    actions = [e.action for e in rollouts.history(r.id)]
    assert actions == [
        "rollout.start",
        "rollout.begin",
        "rollout.hold",
        "rollout.advance",
        "rollout.pause",
        "rollout.inconclusive",
        "rollout.resume",
        "rollout.fail",
    ]
    last = rollouts.history(r.id)[-1].payload
    assert (last["from"], last["state"], last["evidence"]) == (
        "progressing",
        "rolled_back",
        {"decision": "fail"},
    )
    assert rollouts.active("churn") is None
    catalog.verify_audit()


@pytest.mark.parametrize("state", STATES)
def test_only_the_allowed_moves_happen(catalog: Catalog, build: Builder, state: str) -> None:
    rollouts = Rollouts(catalog)
    r = _start(catalog, build)
    if state != "pending":  # reach `state` along allowed moves
        path = {"shadow": ["shadow"], "progressing": ["progressing"], "paused": ["paused"],
                "inconclusive": ["progressing", "inconclusive"], "promoted": ["progressing",
                "promoted"], "rolled_back": ["rolled_back"]}[state]  # fmt: skip
        for to in path:
            r = rollouts.transition(r.id, to, action="x", expected_revision=r.revision, step=0)
    for to in STATES:
        allowed = to in TRANSITIONS[state] and not (to == state == "progressing")
        if allowed or to == state:
            continue
        with pytest.raises(CatalogError, match=f"is {state}: it cannot go to {to}"):
            rollouts.transition(r.id, to, action="x", expected_revision=r.revision)
    if state not in ACTIVE:
        with pytest.raises(CatalogError, match="start a new one"):
            rollouts.transition(r.id, state, action="hold", expected_revision=r.revision, holds=1)


def test_a_stale_revision_loses_the_race(catalog: Catalog, build: Builder) -> None:
    rollouts = Rollouts(catalog)
    r = _start(catalog, build)
    rollouts.transition(r.id, "progressing", action="begin", expected_revision=1)
    with pytest.raises(AliasConflict, match="revision 2, expected 1"):
        rollouts.transition(r.id, "rolled_back", action="abort", expected_revision=1)
    assert rollouts.get(r.id).state == "progressing"


def test_one_rollout_per_alias_at_a_time(catalog: Catalog, build: Builder) -> None:
    r = _start(catalog, build)
    other = build.version()
    with pytest.raises(CatalogError, match="still under way"):
        Rollouts(catalog).start(system="churn", alias="champion", stable_id=r.stable_id,
                                candidate_id=other.id, mode="split", steps=(1.0,),
                                min_requests=1)  # fmt: skip
    Rollouts(catalog).transition(r.id, "rolled_back", action="abort", expected_revision=1)
    again = Rollouts(catalog).start(system="churn", alias="champion", stable_id=r.stable_id,
                                    candidate_id=other.id, mode="shadow", steps=(1.0,),
                                    min_requests=1)  # fmt: skip
    assert Rollouts(catalog).active("churn") == again
    assert [x.id for x in Rollouts(catalog).list(system="churn")] == [again.id, r.id]


@pytest.mark.parametrize(
    ("kw", "error", "words"),
    [
        ({"mode": "bandit"}, ConfigError, "'mode' must be one of"),
        ({"steps": (0.5, 0.2)}, ConfigError, "do not rise"),
        ({"steps": ()}, ConfigError, "do not rise"),
        ({"min_requests": 0}, ConfigError, "min_requests"),
    ],
)
def test_bad_starts_are_refused_and_leave_nothing(
    catalog: Catalog, build: Builder, kw: dict[str, object], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        _start(catalog, build, **kw)
    assert Rollouts(catalog).list() == []


def test_versions_must_belong_to_the_system_and_differ(catalog: Catalog, build: Builder) -> None:
    stable = build.version()
    foreign = build.version("fraud")
    with pytest.raises(CatalogError, match="not a version of 'churn'"):
        Rollouts(catalog).start(system="churn", alias="champion", stable_id=stable.id,
                                candidate_id=foreign.id, mode="split", steps=(1.0,),
                                min_requests=1)  # fmt: skip
    # it named the version by an id prefix
    with pytest.raises(CatalogError, match=r"the candidate churn:v\d+ already holds"):
        Rollouts(catalog).start(system="churn", alias="champion", stable_id=stable.id,
                                candidate_id=stable.id, mode="split", steps=(1.0,),
                                min_requests=1)  # fmt: skip


def test_unknown_rollouts_are_named(catalog: Catalog) -> None:
    with pytest.raises(NotFound, match="unknown rollout 'abcdef12'"):
        Rollouts(catalog).get("abcdef12")


def test_a_move_to_the_state_a_rollout_is_in_says_so(catalog: Catalog, build: Builder) -> None:
    # pausing twice said "is paused: it cannot go to paused"
    rollouts = Rollouts(catalog)
    r = _start(catalog, build)
    r = rollouts.transition(r.id, "paused", action="pause", expected_revision=r.revision, step=0)
    with pytest.raises(CatalogError, match=r"is paused already;"):
        rollouts.transition(r.id, "paused", action="pause", expected_revision=r.revision)
