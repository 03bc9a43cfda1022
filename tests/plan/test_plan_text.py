"""A plan never shows None or nan where a number belongs, whatever kind of plan it is."""

from __future__ import annotations

import re
from itertools import pairwise

import pytest

from regrow.cli import main
from regrow.errors import DataQualityWarning
from regrow.plan.actions import Refit
from regrow.plan.plan import Plan, diff_plans
from regrow.plan.policy import Policy

from .conftest import make

#: Python's None, and nan or inf in any case (a plan may say "none" in words).
MISSING = re.compile(r"\bNone\b|(?i:\bnan\b|\binf\b)")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def plan_text(plan: Plan) -> list[str]:
    """Everything a plan says in words: actions, reasons, rationale, contingency, expected."""
    return [
        *(a.describe() for a in plan.actions),
        *(a.reason for a in plan.actions),
        *plan.rationale,
        plan.contingency,
        *(f"{k}: {v}" for k, v in plan.expected.items()),
    ]


def assert_no_missing_numbers(text: str) -> None:
    found = [line for line in text.splitlines() if MISSING.search(line)]
    assert not found, found


def test_plans_of_every_kind_render_without_none_or_nan(trained, capsys) -> None:  # type: ignore[no-untyped-def]
    ws, v1, home = trained
    h = ("--home", str(home))
    shifted = make(1200, 6)
    for col in ("a1", "b1", "c1", "a2"):
        shifted[col] = shifted[col] + 1.5
    early = Policy.from_dict({"escalation": {"max_drifted_share": 0.5}})
    few_labels = shifted.assign(y=shifted["y"].where(shifted.index < 50))  # 50 of 1,200
    with pytest.warns(DataQualityWarning, match="1,150 nulls"):
        few = ws.snapshot(few_labels, name="shifted-text")
    plans = {
        "empty": ws.plan(v1, "quiet"),
        "partial": ws.plan(v1, "alpha-changed"),
        "escalated": ws.plan(v1, "all-changed"),
        # broad drift with too few labels to weigh it: escalated before any probe
        "escalated early": ws.plan(v1, few, policy=early),
        # ... and with none, nothing to train a full retrain on
        "needs labels": ws.plan(
            v1, ws.snapshot(shifted.drop(columns=["y"]), name="shifted-blind"), policy=early
        ),
        "unlabelled": ws.plan(v1, "unlabelled"),
        "by hand": ws.apply(v1, "alpha-changed", [Refit("alpha")]).plan,
    }
    assert plans["empty"].empty
    assert plans["escalated"].escalated
    # escalated by the members that need an update, with no full-retrain probe: the loss
    # "after" is the partial update's, and says so (it read as the full retrain's)
    assert "full_retrain" not in plans["escalated"].expected
    assert plans["escalated"].expected["after_of"] == "partial"
    assert plans["escalated early"].escalated
    assert plans["escalated early"].diagnosis is None
    blind = plans["needs labels"]
    assert not blind.escalated
    assert not blind.actions
    assert "escalation.max_drifted_share" in blind.signals["full_retrain_needs_labels"][0]
    assert any("nothing is planned until labels arrive" in line for line in blind.rationale)
    assert plans["unlabelled"].diagnosis is None
    assert plans["partial"].actions
    for kind, plan in plans.items():
        assert_no_missing_numbers("\n".join(plan_text(plan)))
        shown = cli(capsys, "plans", "show", plan.id, *h)
        assert "rationale:" in shown, kind
        assert_no_missing_numbers(shown)
    for a, b in pairwise(plans.values()):
        assert_no_missing_numbers("\n".join(diff_plans(a, b)))
        assert_no_missing_numbers(cli(capsys, "plans", "diff", a.id, b.id, *h))
    # The command that plans prints the same way.
    out = cli(capsys, "plan", "--version", v1, "--window", "all-changed", *h)
    assert "expected squared_error:" in out
    assert "after the partial update the probes weighed (the full retrain this plan" in out
    assert_no_missing_numbers(out)


def test_a_diff_names_a_missing_number_plainly() -> None:
    base = {"system": "s", "version": "s:v1", "version_id": "a" * 32, "window": "w" * 64}
    a = Plan(**base, expected={"after": None, "before": float("nan")})  # type: ignore[arg-type]
    b = Plan(**base, expected={"after": 0.5, "before": 1.0})  # type: ignore[arg-type]
    assert diff_plans(a, b) == [
        "~ expected after: (none) -> 0.5",
        "~ expected before: (none) -> 1",
    ]


def test_an_add_member_move_says_it_adds_a_copy() -> None:
    """'not chosen: add-member net' read, to a first user, like adding a member the stack
    already has."""
    from regrow.plan.gains import Diagnosis, Gain, Move
    from regrow.plan.proposals import diagnosis_lines

    gain = Gain(0.01, -0.02, 0.04, 300)
    moves = (Move("add-member", "net", "refit", gain, 0.5, False, "its interval reaches 0"),
             Move("update", "lr", "refit", gain, 0.5, False, "its interval reaches 0"))  # fmt: skip
    d = Diagnosis("log_loss", 600, 300, 300, 0.51, 0.51, (), moves)
    lines = diagnosis_lines(d)
    assert (
        "not chosen: add-member net (a refitted copy beside it) — its interval reaches 0" in lines
    )
    assert "not chosen: update lr — its interval reaches 0" in lines


def test_a_broad_drift_escalation_over_a_partial_plan_says_what_it_weighs(trained) -> None:  # type: ignore[no-untyped-def]
    # The rationale said "a full retrain is not expected to do better by enough", then
    # "escalated to a full retrain", and the expected loss was the partial update's "(the full
    # retrain this plan makes was not probed)" beside the probes' estimate of the full retrain.
    ws, v1, _ = trained
    shifted = make(1600, 6, frozenset({"alpha"}))
    for col in ("a1", "a2", "b2", "c2"):
        shifted[col] = shifted[col] * 1.3 + 0.3
    early = Policy.from_dict({"escalation": {"max_drifted_share": 0.5}})
    plan = ws.plan(v1, ws.snapshot(shifted, name="broad-kept"), policy=early)
    assert plan.escalated
    kept = next(r for r in plan.rationale if r.startswith("a full retrain is not expected"))
    estimate = float(kept.split("about ")[1].split(" after a full retrain")[0])
    assert plan.expected["after"] == plan.expected["full_retrain"]
    assert plan.expected["after"] == pytest.approx(estimate, rel=1e-3)
    assert "after_of" not in plan.expected
    broad = next(r for r in plan.rationale if "escalation.max_drifted_share): on the" in r)
    assert broad.endswith(
        "with drift this broad, a full retrain is weighed against keeping the version as it "
        "is, not against the partial plan above"
    )
