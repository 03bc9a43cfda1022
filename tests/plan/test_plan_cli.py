"""`regrow plan`, `regrow run`, `regrow plans` and `regrow policy`, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from regrow.plan.policy import Policy
from regrow.testing import run_cli as run


def test_plan_explains_then_run_executes_it(trained, capsys) -> None:  # type: ignore[no-untyped-def]
    _, v1, home = trained
    h = ("--home", str(home))
    code, out, err = run(capsys, "plan", "--version", v1, "--window", "alpha-changed", *h)
    assert code == 0, err
    for text in ("refit", "alpha", "gain", "rationale:", "contingency:", "cost:",
                 "chosen: update alpha", "not chosen", "run it with `regrow run"):  # fmt: skip
        assert text in out
    code, out, _ = run(capsys, "plan", "--version", v1, "--window", "alpha-changed", "--json", *h)
    plan = json.loads(out)
    assert [a["kind"] for a in plan["actions"]] == ["refit", "reweight"]
    assert plan["actions"][0]["gain"]["low"] > 0

    code, out, _ = run(capsys, "plans", "list", "effects", "--json", *h)
    listed = {p["id"]: p for p in json.loads(out)}
    assert listed[plan["id"]]["status"] == "proposed"
    code, out, _ = run(capsys, "plans", "list", *h)
    assert code == 0
    assert "proposed" in out
    for bad, message in ((("--workers", "0"), "workers must be an integer >= 1"),
                         (("--seed", str(10**23)), "'seed' must be a 64-bit integer")):  # fmt: skip
        code, _, err = run(capsys, "run", plan["id"][:10], *bad, *h)
        assert code == 2
        assert message in err
    code, out, _ = run(capsys, "plans", "list", "effects", "--json", *h)
    assert {p["id"]: p for p in json.loads(out)}[plan["id"]]["status"] == "proposed"  # untouched
    code, out, err = run(capsys, "run", plan["id"][:10], "--json", *h)
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["trained"] == ["alpha", "combine"]
    assert result["reused"] == ["beta", "gamma"]
    assert result["actual_cpu_seconds"] > 0
    code, out, _ = run(capsys, "plans", "show", plan["id"][:10], *h)
    assert "status: executed" in out
    assert "estimated" in out
    assert "run it with" not in out  # it ran: no hint to run it
    code, _, err = run(capsys, "run", plan["id"][:10], *h)
    assert code == 2
    assert f"plan {plan['id'][:12]} ran already: it made {result['version']}" in err
    assert "another run may have taken it" not in err


def test_escalated_plan_needs_approve_and_plans_diff(trained, capsys) -> None:  # type: ignore[no-untyped-def]
    _, v1, home = trained
    h = ("--home", str(home))
    _, out, _ = run(capsys, "plan", "--version", v1, "--window", "all-changed", "--json", *h)
    broad = json.loads(out)
    assert broad["escalated"]
    code, _, err = run(capsys, "run", broad["id"], *h)
    assert code == 2
    assert "needs approval" in err
    assert "--approve" in err
    _, out, _ = run(capsys, "plan", "--version", v1, "--window", "quiet", "--json", *h)
    quiet = json.loads(out)
    assert quiet["actions"] == []
    code, out, _ = run(capsys, "plans", "diff", quiet["id"], broad["id"], *h)
    assert code == 0
    assert "+ full-retrain of every component" in out
    assert "~ escalated: no -> yes" in out


def test_policy_check_and_show(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(capsys, "policy", "show")
    assert code == 0
    good = tmp_path / "policy.yaml"
    good.write_text(out)
    code, out, _ = run(capsys, "policy", "check", str(good))
    assert code == 0
    assert "valid" in out
    code, out, _ = run(capsys, "policy", "show", "--json")  # every read command has --json
    assert code == 0
    assert json.loads(out)["id"] == Policy.default().id
    bad = tmp_path / "bad.yaml"
    bad.write_text("budgets:\n  max_epoch: 3\n")
    code, _, err = run(capsys, "policy", "check", str(bad))
    assert code == 2
    assert "budgets.max_epoch: unknown key (did you mean 'max_epochs'?)" in err
    code, _, err = run(capsys, "plan", "--version", "x", "--window", "y", "--policy", str(bad),
                       "--home", str(tmp_path / "nope"))  # fmt: skip
    assert code == 2
    assert "max_epoch" in err


def test_plans_list_says_an_empty_plan_has_nothing_to_run(trained, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # it stayed "proposed" for ever, as if it waited for someone to run it
    from regrow.cli import _app

    monkeypatch.setattr(_app.out, "width", 250)  # no cell cut, whatever width a pipe gets
    _, v1, home = trained
    h = ("--home", str(home))
    code, out, err = run(capsys, "plan", "--version", v1, "--window", "quiet", "--json", *h)
    assert code == 0, err
    quiet = json.loads(out)
    assert quiet["actions"] == []
    code, out, _ = run(capsys, "plans", "list", "effects", *h)
    (row,) = [line for line in out.splitlines() if quiet["id"][:12] in line]
    assert "nothing to run" in row
    code, out, _ = run(capsys, "plans", "list", "effects", "--json", *h)
    assert {p["id"]: p for p in json.loads(out)}[quiet["id"]]["status"] == "proposed"
    code, out, _ = run(capsys, "plans", "show", quiet["id"][:12], *h)
    assert "status: nothing to run" in out  # as the list says (it said "proposed")


def test_a_plan_made_by_hand_says_it_measured_no_signals(trained, capsys) -> None:  # type: ignore[no-untyped-def]
    # it read "signals: 0/0 features drifted; ...; labelled rows 0" for a full retrain the
    # watcher escalated to on 2,100 labelled rows
    from regrow import Workspace
    from regrow.plan.actions import FullRetrain
    from regrow.plan_runs import manual_plan

    _, v1, home = trained
    with Workspace.open(home) as ws:
        plan = manual_plan(ws._services(), v1, "quiet", [FullRetrain("*")], note="watch: x")
    code, out, err = run(capsys, "plans", "show", plan.id[:12], "--home", str(home))
    assert code == 0, err
    assert "signals: none measured: a plan made by hand or escalated" in out
    assert "0/0 features" not in out
    assert "a full retrain: 0.00" not in out  # it made no estimate of one


def test_a_plan_whose_run_was_interrupted_says_so_and_how_to_resume(
    trained, capsys, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    # after Ctrl-C, `plans list` said "failed" (and `plans show`: "error: KeyboardInterrupt: "),
    # though the run resumes where it stopped
    from regrow import Workspace
    from regrow.cli import _app
    from regrow.plan.actions import FullRetrain
    from regrow.plan_runs import manual_plan

    monkeypatch.setattr(_app.out, "width", 250)
    _, v1, home = trained
    h = ("--home", str(home))
    with Workspace.open(home) as ws:
        plan = manual_plan(ws._services(), v1, "quiet", [FullRetrain("*")], note="interrupted")

    def stopped(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("regrow.plan_runs.execute", stopped)
    code, _, err = run(capsys, "run", plan.id[:12], "--approve", *h)
    assert code == 130
    assert "Traceback" not in err
    code, out, _ = run(capsys, "plans", "list", *h)
    (row,) = [line for line in out.splitlines() if plan.id[:12] in line]
    assert " interrupted " in row
    code, out, _ = run(capsys, "plans", "show", plan.id[:12], *h)
    assert (
        "status: interrupted: finished components are kept; "
        f"`regrow run {plan.id[:12]} --approve` resumes" in out  # the plan needs approval
    )
    assert "error:" not in out
