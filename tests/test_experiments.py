"""Experiment records: every plan and manual change with its rationale, what it expected,
the contingency and tags; the candidate it produced; expected next to actual once evaluated."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from lightgbm import LGBMRegressor

import regrow.cli.experiments  # noqa: F401  (registers `regrow experiments`)
from regrow import Ensemble, Member, System, Workspace
from regrow.catalog import Catalog
from regrow.catalog.experiments import experiment_id
from regrow.catalog.models import Experiment
from regrow.cli._app import out as cli_out
from regrow.errors import AuditChainBroken, CatalogError, ConfigError, NotFound
from regrow.experiments import expectation_met, record_evaluation, record_update
from regrow.plan.actions import Refit
from regrow.testing import run_cli

GROUPS = {"alpha": ["a1", "a2"], "beta": ["b1", "b2"], "gamma": ["c1", "c2"]}


def make(rows: int, seed: int, changed: bool = False) -> pd.DataFrame:
    """Three groups of features, each read by one member; ``changed``: alpha's effect flips."""
    rng = np.random.default_rng(seed)
    cols = [c for g in GROUPS.values() for c in g]
    df = pd.DataFrame(rng.normal(size=(rows, len(cols))), columns=cols)
    a = -1.5 * np.tanh(2 * df.a1) if changed else 1.5 * np.sin(2 * df.a1)
    df["y"] = a + 0.5 * df.a2 + 1.2 * df.b1 * (df.b1 > 0) + 0.8 * df.c1 * df.c2
    df["y"] += 0.3 * rng.normal(size=rows)
    return df


def build() -> System:
    def gbdt() -> LGBMRegressor:
        return LGBMRegressor(n_estimators=40, num_leaves=15, n_jobs=1, verbose=-1)

    return System(
        "effects",
        target="y",
        task="regression",
        components=[
            *(Member(g, gbdt(), inputs=cols) for g, cols in GROUPS.items()),
            Ensemble("combine", weights=dict.fromkeys(GROUPS, 1.0), method="stack"),
        ],
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, str, Path]]:
    """v1 trained on old rows; windows where alpha changed (one per test, so that each test
    plans its own plan), and a labelled holdout to evaluate on."""
    home = tmp_path_factory.mktemp("experiments-ws")
    with Workspace.init(home) as ws:
        v1 = ws.train(build(), ws.snapshot(make(2000, 1), name="old"))
        for n, name in enumerate(("w-plan", "w-run", "w-cli", "w-errors"), 2):
            ws.snapshot(make(1000, n, changed=True), name=name)
        ws.snapshot(make(1000, 9, changed=True), name="holdout")
        yield ws, v1.version.ref, home


def test_a_plan_is_recorded_with_rationale_expected_gain_contingency_and_tags(
    trained: tuple[Workspace, str, Path],
) -> None:
    ws, v1, _ = trained
    plan = ws.plan(v1, "w-plan", tags=["q3", "drift", "q3"])
    [record] = ws.catalog.experiments.list(subject_id=plan.id)
    assert record.id == experiment_id("plan", plan.id)
    assert (record.kind, record.system, record.tags) == ("plan", "effects", ("q3", "drift"))
    assert record.version_id == ws.catalog.get_system_version(v1).id
    assert record.rationale == plan.rationale
    e = record.expected
    assert e["loss"] == "squared_error"
    assert e["before"] > e["after"]
    assert e["gain"] == pytest.approx(e["before"] - e["after"], abs=1e-5)
    assert e["estimated_cpu_seconds"] == plan.cost["estimated_cpu_seconds"] > 0
    assert [x["action"] for x in e["actions"]] == [a.describe() for a in plan.actions]
    assert e["actions"][0]["action"] == "refit alpha"
    assert e["actions"][0]["interval"][0] > 0  # the chosen refit's gain is significant
    # The gain is the chosen moves' (here one: the interval is that move's own).
    assert plan.diagnosis is not None
    [move] = plan.diagnosis["chosen"]
    assert e["gain"] == pytest.approx(move["gain"]["value"], abs=1e-5)
    assert e["gain_interval"] == pytest.approx([move["gain"]["low"], move["gain"]["high"]])
    assert record.contingency.startswith(
        f"if the evaluation rejects the candidate or it regresses in production, keep (or roll "
        f"back to) {v1}; then "
    )
    assert (record.candidate_id, record.actual) == (None, None)
    event = ws.catalog.audit_events(subject=f"experiment:{record.id}")[0]
    assert (event.action, event.payload["tags"]) == ("experiment.create", ["q3", "drift"])
    assert ws.catalog.verify_audit() > 0

    # The same plan again: the same experiment, new tags and a new contingency added.
    again = ws.plan(v1, "w-plan", tags=["urgent"], contingency="keep v1 and page the owner")
    assert again.id == plan.id
    [updated] = ws.catalog.experiments.list(subject_id=plan.id)
    assert updated.id == record.id
    assert updated.tags == ("q3", "drift", "urgent")
    assert updated.contingency == "keep v1 and page the owner"


def test_a_mean_ensembles_expected_gain_lies_in_its_own_interval(tmp_path: Path) -> None:
    # Its expected loss after the plan is the full-retrain probe's; the interval summed the
    # residual probes' moves instead: "+0.101 [0.106, 0.157]".
    from regrow.experiments import plan_expected
    from regrow.plan.policy import Policy

    from .plan.test_escalation import interaction, mean_system

    with Workspace.init(tmp_path) as ws:
        v1 = ws.train(mean_system(), ws.snapshot(interaction(4000, 1), name="old")).version.ref
        window = ws.snapshot(interaction(3000, 2, flipped=True), name="flipped")
        policy = Policy.from_dict({"escalation": {"full_retrain_gain": 0.9}})  # stays partial
        plan = ws.plan(v1, window, policy=policy, record=False)
    assert not plan.escalated
    probe = plan.signals["full_retrain_probe"]
    e = plan_expected(plan)
    low, high = e["gain_interval"]
    assert low <= e["gain"] <= high
    assert (low, high) == pytest.approx((probe["gain"]["low"], probe["gain"]["high"]))


def test_the_run_records_the_candidate_and_an_evaluation_the_actual(
    trained: tuple[Workspace, str, Path],
) -> None:
    ws, v1, _ = trained
    plan = ws.plan(v1, "w-run", tags=["run"])
    ran = ws.run_plan(plan.id)
    [record] = ws.catalog.experiments.list(subject_id=plan.id)
    assert record.candidate_id == ran.result.version.id
    assert expectation_met(record) is None
    with pytest.raises(CatalogError, match=r"contingency .* is kept"):
        ws.catalog.experiments.set_contingency(record.id, "something else")

    evaluation, comparison = ws.evaluate(ran.result.version.ref, "holdout", baseline=v1)
    [filled] = record_evaluation(ws.catalog, evaluation)
    assert filled.evaluation_id == evaluation.id
    actual = filled.actual
    assert actual is not None
    assert (actual["metric"], actual["verdict"]) == ("rmse", comparison.verdict)
    assert actual["delta"] == pytest.approx(comparison.delta)
    # rmse: lower is better, so the improvement is the delta turned around.
    assert actual["improvement"] == pytest.approx(-comparison.delta)
    assert actual["improvement_ci"] == pytest.approx(
        [-comparison.delta_ci[1], -comparison.delta_ci[0]]
    )
    assert actual["outcome"] == "improved"
    assert actual["baseline_id"] == record.version_id
    assert expectation_met(filled) is True

    # An evaluation against another baseline does not replace the like-for-like comparison.
    other, _ = ws.evaluate(ran.result.version.ref, "holdout")
    assert record_evaluation(ws.catalog, other) == []
    assert ws.catalog.experiments.get(record.id).evaluation_id == evaluation.id
    assert ws.catalog.verify_audit() > 0


def test_a_manual_change_is_recorded_with_what_is_known(
    trained: tuple[Workspace, str, Path],
) -> None:
    ws, v1, _ = trained
    ran = ws.apply(v1, "w-run", [Refit("gamma")], tags=["by-hand"])
    [record] = ws.catalog.experiments.list(kind="manual", tag="by-hand")
    assert record.subject_id == ran.record.id
    assert record.candidate_id == ran.result.version.id
    assert record.rationale == ("written by hand",)
    assert record.expected["actions"][0]["action"] == "refit gamma"
    assert record.expected["estimated_cpu_seconds"] >= 0
    assert "gain" not in record.expected  # nothing was measured before a change by hand
    assert record.contingency.endswith(f"keep (or roll back to) {v1}")

    # A partial update run without a plan, recorded by its run.
    update = ws.update(v1, "w-run", components=["beta"], note="beta by hand")
    made = record_update(ws.catalog, update, components=["beta"], note="beta by hand")
    assert made is not None
    assert (made.kind, made.subject_id) == ("manual", update.run.id)
    assert made.candidate_id == update.version.id
    assert made.rationale == ("beta by hand",)
    assert (
        record_update(ws.catalog, ws.update(v1, "w-run", components=["beta"]), components=["beta"])
        is None
    )  # fmt: skip  (nothing new: no change)


def test_list_filters_by_tag_system_and_kind(tmp_path: Path) -> None:
    with Catalog(f"sqlite:///{tmp_path / 'c.db'}") as catalog:
        _filters(catalog)


def test_list_filters_on_postgresql(postgres_url: str) -> None:
    with Catalog(postgres_url) as catalog:
        _filters(catalog)


def _filters(catalog: Catalog) -> None:
    add = catalog.experiments.add
    a = add(kind="rollout", system="churn", subject_id="r1", contingency="roll back",
            tags=["q3", "blend"])  # fmt: skip
    b = add(kind="rollout", system="churn", subject_id="r2", contingency="roll back", tags=["q4"])
    c = add(kind="rollout", system="fraud", subject_id="r3", contingency="roll back", tags=["q3"])
    ids = lambda **kw: {e.id for e in catalog.experiments.list(**kw)}  # noqa: E731
    assert ids(tag="q3") == {a.id, c.id}
    assert ids(tag="q3", system="churn") == {a.id}
    assert ids(system="churn") == {a.id, b.id}
    assert ids(tag="q") == set()  # a tag matches whole
    assert ids(kind="plan") == set()
    assert len(catalog.experiments.list(limit=2)) == 2
    assert catalog.experiments.tag(b.id, ["q3", "q4"]).tags == ("q4", "q3")
    assert ids(tag="q3") == {a.id, b.id, c.id}
    assert catalog.verify_audit() == 4
    # Every write is covered by the audit chain: a record edited behind regrow's back is caught.
    with catalog._engine.begin() as conn:
        conn.execute(
            sa.update(Experiment).where(Experiment.id == b.id).values(contingency="keep it")
        )
    with pytest.raises(AuditChainBroken, match=f"experiments row .{b.id}. was altered"):
        catalog.verify_audit()


def test_unknown_and_ambiguous_ids_and_bad_input_are_refused(tmp_path: Path) -> None:
    with Catalog(f"sqlite:///{tmp_path / 'c.db'}") as catalog:
        exp = catalog.experiments
        with pytest.raises(NotFound, match=r"unknown experiment 'abcdef'.*regrow experiments list"):
            exp.get("abcdef")
        # Two rollouts whose ids share their first 6 characters.
        seen: dict[str, str] = {}
        for n in range(20_000):
            prefix = experiment_id("rollout", f"r{n}")[:6]
            if prefix in seen:
                break
            seen[prefix] = f"r{n}"
        for subject in (seen[prefix], f"r{n}"):
            exp.add(kind="rollout", system="churn", subject_id=subject, contingency="roll back")
        with pytest.raises(NotFound, match="ambiguous"):
            exp.get(prefix)
        events = catalog.verify_audit()
        with pytest.raises(ConfigError, match="tag 'no spaces' is not a valid tag"):
            exp.add(kind="rollout", system="churn", subject_id="x", contingency="c",
                    tags=["no spaces"])  # fmt: skip
        with pytest.raises(ConfigError, match="contingency must be a non-empty"):
            exp.add(kind="rollout", system="churn", subject_id="x", contingency="  ")
        with pytest.raises(ConfigError, match="unknown experiment kind 'trial'"):
            exp.add(kind="trial", system="churn", subject_id="x", contingency="c")
        with pytest.raises(NotFound, match="unknown plan 'nope'"):
            exp.add(kind="plan", system="churn", subject_id="nope", contingency="c")
        assert catalog.verify_audit() == events  # nothing was written
        assert len(exp.list()) == 2


@pytest.mark.parametrize("limit", ["0", "-5"])
def test_cli_list_refuses_a_limit_below_one(
    trained: tuple[Workspace, str, Path], capsys: pytest.CaptureFixture[str], limit: str
) -> None:
    _, _, home = trained
    code, out, err = run_cli(capsys, "experiments", "list", "--limit", limit, "--home", str(home))
    assert code == 2, out + err
    flat = " ".join(err.replace("│", " ").split())  # the message as one line, unboxed
    assert "Invalid value for '--limit': Input should be greater than or equal to 1" in flat
    assert "Traceback" not in out + err
    code, out, err = run_cli(capsys, "experiments", "list", "--limit", "1", "--home", str(home))
    assert code == 0, err


def test_bad_tags_are_refused_before_planning(trained: tuple[Workspace, str, Path]) -> None:
    ws, v1, _ = trained
    plans = len(ws.catalog.list_plans())
    with pytest.raises(ConfigError, match="tag 'a b'"):
        ws.plan(v1, "w-errors", tags=["a b"])
    with pytest.raises(ConfigError, match="contingency"):
        ws.apply(v1, "w-errors", [Refit("gamma")], contingency="")
    assert len(ws.catalog.list_plans()) == plans


def test_evaluation_of_another_version_cannot_be_the_actual(
    trained: tuple[Workspace, str, Path],
) -> None:
    ws, v1, _ = trained
    baseline_eval, _ = ws.evaluate(v1, "holdout")
    record = ws.catalog.experiments.add(
        kind="rollout", system="effects", subject_id="rollout-1", contingency="roll back",
        version_id=ws.catalog.get_system_version(v1).id,
    )  # fmt: skip
    with pytest.raises(CatalogError, match="is not of the candidate"):
        ws.catalog.experiments.set_actual(
            record.id, evaluation_id=baseline_eval.id, actual={"verdict": "none"}
        )


def test_cli_plan_tags_then_list_show_and_tag(
    trained: tuple[Workspace, str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli_out, "width", 160)  # the tables' cells unwrapped
    ws, v1, home = trained
    h = ("--home", str(home))
    tags = ("--tag", "cli", "--tag", "q3", "--contingency", "keep v1")
    code, out, err = run_cli(capsys, "plan", "--version", v1, "--window", "w-cli", *tags,
                             "--json", *h)  # fmt: skip
    assert code == 0, err
    planned = json.loads(out)
    exp_id = planned["experiment"]
    code, out, err = run_cli(capsys, "run", planned["id"][:12], *h)
    assert code == 0, err
    [record] = ws.catalog.experiments.list(tag="cli")
    evaluation, _ = ws.evaluate(record.candidate_id or "", "holdout", baseline=v1)
    record_evaluation(ws.catalog, evaluation)

    code, out, err = run_cli(capsys, "experiments", "list", "--tag", "cli", *h)
    assert code == 0, err
    assert exp_id[:12] in out
    assert f"{v1} -> effects:v" in out
    assert "blessed" in out
    code, out, _ = run_cli(capsys, "experiments", "list", "--system", "effects", "--json", *h)
    listed = json.loads(out)
    assert exp_id in {e["id"] for e in listed}
    mine = next(e for e in listed if e["id"] == exp_id)
    assert (mine["version"], mine["borne_out"]) == (v1, True)
    assert mine["candidate"].startswith("effects:v")

    code, out, err = run_cli(capsys, "experiments", "show", exp_id[:10], *h)
    assert code == 0, err
    for text in ("expected vs actual", "rationale:", "squared_error", "rmse", "contingency: "
                 "keep v1", "borne out: yes", "tags: cli, q3", f"plan {planned['id'][:12]}",
                 f"evaluation {evaluation.id[:12]}"):  # fmt: skip
        assert text in out, text
    code, out, _ = run_cli(capsys, "experiments", "show", exp_id, "--json", *h)
    shown = json.loads(out)
    assert shown["evaluation_id"] == evaluation.id
    assert shown["links"]["plan"].startswith(planned["id"][:12])

    code, out, err = run_cli(capsys, "experiments", "tag", exp_id[:10], "reviewed", *h)
    assert code == 0, err
    assert "cli, q3, reviewed" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("experiments", "show", "ffffff"), "unknown experiment 'ffffff'"),
        (("experiments", "show", "ff"), "unknown experiment 'ff'"),
        (("experiments", "list", "--tag", "a b"), "tag 'a b' is not a valid tag"),
        (("experiments", "list", "--kind", "trial"), "unknown experiment kind 'trial'"),
        (("experiments", "tag", "ffffff", "x"), "unknown experiment"),
        (("plan", "--version", "effects:v1", "--window", "w-errors", "--tag", "a b"), "tag 'a b'"),
    ],
)
def test_cli_refuses_bad_input_without_a_traceback(
    trained: tuple[Workspace, str, Path],
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    _, _, home = trained
    code, _, err = run_cli(capsys, *args, "--home", str(home))
    assert code == 2
    assert message in err
    assert "hint:" in err
    assert "Traceback" not in err


def test_a_rollouts_experiment_shows_how_the_rollout_ended(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verdict column is the offline evaluation's; the rollout's own outcome is listed
    beside it (and in `show` and the JSON), so a rolled-back candidate does not read as live."""
    from regrow.rollout import machine

    monkeypatch.setattr(cli_out, "width", 250)
    member = Member("m", LGBMRegressor(n_estimators=5, verbose=-1), ["a1"])
    system = System("toy", target="y", task="regression", components=[member])
    with Workspace.init(tmp_path / "ws") as ws:
        data = ws.snapshot(make(300, 1), name="toy")
        v1, v2 = ws.train(system, data), ws.train(system, data, seed=7)
        ws.catalog.move_alias("toy", "live", v1.version.id)
        rollout = machine.start(ws, v2.version.ref, alias="live", mode="split", steps="0.5,1",
                                min_requests=5, loss_cap=2.0)  # fmt: skip
        [record] = ws.catalog.experiments.list(kind="rollout")
        h = ("--home", str(ws.home))
        code, out, err = run_cli(capsys, "experiments", "list", "--kind", "rollout", *h)
        assert code == 0, err
        assert "progressing" in out
        machine.abort(ws, rollout.id, reason="latency")
        code, out, err = run_cli(capsys, "experiments", "list", "--kind", "rollout", *h)
        assert code == 0, err
        assert "rolled back" in out
        code, out, err = run_cli(capsys, "experiments", "show", record.id[:12], *h)
        assert "rollout: rolled back" in out
        code, out, err = run_cli(capsys, "experiments", "show", record.id, "--json", *h)
        assert json.loads(out)["rollout_state"] == "rolled_back"
