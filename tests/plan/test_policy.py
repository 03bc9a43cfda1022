from __future__ import annotations

from pathlib import Path

import pytest

from regrow.errors import ConfigError, PolicyError
from regrow.plan.policy import (
    ACTION_NAMES,
    SLA_METRICS,
    Policy,
    default_policy_text,
    load_policy,
)


def test_the_default_policy_ships_documented_and_valid() -> None:
    policy = Policy.default()
    assert policy == load_policy(None)
    assert set(policy.autonomy.allowed) | set(policy.autonomy.require_approval) == set(ACTION_NAMES)
    text = default_policy_text()
    for section in ("autonomy", "escalation", "planning", "budgets", "gates", "rollout"):
        assert f"\n{section}:" in text
    assert policy.needs_approval("full-retrain")
    assert not policy.needs_approval("refit")


def test_a_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("escalation:\n  max_drifted_share: 0.3\nbudgets: {max_epochs: 5}\n")
    policy = load_policy(path)
    assert policy.escalation.max_drifted_share == 0.3
    assert policy.budgets.max_epochs == 5
    assert policy.planning == Policy.default().planning
    assert policy.id != Policy.default().id


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("escalation:\n  max_drifted_shar: 0.3\n", ["escalation.max_drifted_shar", "unknown key",
                                                     "max_drifted_share"]),
        ("planing: {}\n", ["planing", "did you mean 'planning'"]),
        ("escalation: {max_drifted_share: 1.5}\n", ["escalation.max_drifted_share", "1.5"]),
        ("budgets: {lr_min: 0.5, lr_max: 0.1}\n", ["budgets", "lr_min 0.5 is above lr_max 0.1"]),
        ("autonomy: {allowed: [refit, teleport]}\n", ["autonomy.allowed.1", "teleport"]),
        ("autonomy: {allowed: [refit], require_approval: [refit]}\n", ["both allowed"]),
        ("rollout: {steps: [0.5, 0.2]}\n", ["rollout", "end at 1.0"]),
        ("planning: {probe_fraction: two}\n", ["planning.probe_fraction", "'two'"]),
        ("planning: {min_drift_share: 0}\n", ["planning.min_drift_share", "(got 0)"]),
        ("escalation: {unexplained_drift: sometimes}\n", ["escalation.unexplained_drift",
                                                          "'probe'", "sometimes"]),
        ("version: 2\n", ["version", "2"]),
        ("watch: {threat_gain: 1.5}\n", ["watch.threat_gain", "less than or equal to 1"]),
        ("watch: {plan_first: sometimes}\n", ["watch.plan_first", "'auto' or 'always'",
                                               "(got 'sometimes')"]),
        # YAML reads an unquoted no as false: said, with what to do
        ("watch: {plan_first: no}\n", ["watch.plan_first", "(got False: YAML reads an unquoted",
                                        "quote the word"]),
        ("watch: {sla: {roc_auc: {min: true}}}\n", ["a threshold is a number, not True"]),
        ("watch: {sla: {roc_auc: {min: 0}}}\n", ["no value breaks this min"]),
        ("monitoring: {alerts: {roc_auc: {max: 1}}}\n", ["no value breaks this max"]),
        # pydantic's "a valid tuple": in YAML it is a list
        ("promotion: {protected: champion}\n",
         ["promotion.protected: Input should be a list (got 'champion')"]),
        ("watch: {sla: {rsme: {max: 3.5}}}\n",
         ["watch.sla.rsme: unknown metric; did you mean 'rmse'?"]),
        ("watch: {sla: {uptime: {min: 0.9}}}\n",
         ["watch.sla.uptime: unknown metric; known: classification: roc_auc,", "regression: rmse"]),
        ("watch: {sla: {business_value: {min: 1}}}\n",
         ["watch.sla.business_value: estimated only with a monitoring.cost_matrix"]),
        ("watch: {sla: {rmse: {maximum: 3.5}}}\n",
         ["watch.sla.rmse.maximum: unknown key (did you mean 'max'?)"]),
        ("watch: {sla: {rmse: {ceiling: 3.5}}}\n",
         ["watch.sla.rmse.ceiling: unknown key (known: min, max)"]),
        ("monitoring: {alerts: {roc_auc: {floor: 0.8}}}\n",
         ["monitoring.alerts.roc_auc.floor: unknown key (known: min, max)"]),
        ("contracts: {systems: {churn: {colour: red}}}\n",
         ["contracts.systems.churn.colour: unknown key (known: compatibility, transitive"]),
        ("- just\n- a list\n", ["mapping of sections"]),
        ("a: [\n", ["not valid YAML"]),
    ],
)  # fmt: skip
def test_bad_policies_name_the_key_and_the_value(text: str, names: list[str]) -> None:
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml(text)
    for name in names:
        assert name in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_every_section_s_mistakes_are_named_in_one_error() -> None:
    """A user fixes a policy in one go: each wrong value of each section is named, and a
    section's own check (steps that do not rise) names its values, not the whole section."""
    text = (
        "planning: {min_relative_gain: -3, prefer: sideways}\n"
        "gates: {metric: accuracyy}\n"
        "rollout: {steps: [0.5, 0.2], min_requests: 100}\n"
        "autonomy: {allow: [refit]}\n"
    )
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml(text)
    said = str(info.value)
    named = [
        "planning.min_relative_gain",
        "planning.prefer",
        "'sideways'",
        "did you mean 'accuracy'",
        "autonomy.allow: unknown key",
        "rollout: steps must rise within (0, 1] and end at 1.0 (got [0.5, 0.2])",
    ]
    for name in named:
        assert name in said, name
    assert "min_requests" not in said


def test_a_missing_policy_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "nope.yaml")


def test_the_default_thresholds_and_a_policy_from_before_probes() -> None:
    policy = Policy.default()
    assert policy.planning.min_relative_gain == 0.1
    assert policy.planning.min_drift_share == 0.25
    assert policy.escalation.unexplained_drift == "probe"
    text = default_policy_text()
    for key in ("min_drift_share:", "unexplained_drift: probe", "competitive_share:"):
        assert key in text
    # A file written for the policy before probes still loads, and still means what it said.
    old = Policy.from_yaml(
        "planning: {competitive_share: 0.5}\nescalation: {unexplained_drift: escalate}\n"
    )
    assert old.escalation.unexplained_drift == "escalate"


def test_an_sla_may_name_every_metric_regrow_measures_or_estimates_and_no_other() -> None:
    from regrow.evaluate.metrics import METRICS
    from regrow.monitor.cbpe import CBPE_METRICS
    from regrow.monitor.dle import DLE_METRICS

    by_task = {task: {m for m in METRICS if METRICS[m].task == task} for task in SLA_METRICS}
    by_task["classification"] |= set(CBPE_METRICS) - {"confusion_matrix"}  # cells, not one value
    by_task["regression"] |= set(DLE_METRICS)
    assert {task: set(names) for task, names in SLA_METRICS.items()} == by_task
    for name in by_task["classification"] | by_task["regression"]:
        rule = {"max": 1.0} if name in ("log_loss", *by_task["regression"]) else {"min": 0.5}
        monitoring = {"cost_matrix": [[0, -1], [-5, 10]]} if name == "business_value" else {}
        policy = Policy.from_dict({"watch": {"sla": {name: rule}}, "monitoring": monitoring})
        assert list(policy.watch.sla) == [name]


def test_a_policy_with_an_unknown_sla_metric_is_not_pinned(tmp_path: Path) -> None:
    from regrow import Workspace

    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nwatch:\n  sla: {rsme: {max: 3.5}}\n")
    with Workspace.init(tmp_path / "ws") as ws:
        with pytest.raises(PolicyError, match=r"watch\.sla\.rsme: unknown metric"):
            ws.set_policy(path)
        assert ws.policy() == Policy.default()


def test_the_loop_docs_name_every_sla_metric() -> None:
    text = (Path(__file__).parents[2] / "docs" / "loop.md").read_text()
    for name in (m for names in SLA_METRICS.values() for m in names):
        assert f"`{name}`" in text


def test_an_sla_s_mistakes_are_named_with_the_section_s_others() -> None:
    # `horizon: 0` hid the unknown metric: a model validator runs only when every field passed
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml("watch: {horizon: 0, persistence: -1, sla: {rsme: {max: 3}}}\n")
    said = str(info.value)
    for part in ("watch.sla.rsme: unknown metric; did you mean 'rmse'?",
                 "watch.horizon: Input should be greater than or equal to 1 (got 0)",
                 "watch.persistence"):  # fmt: skip
        assert part in said, part
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml("watch: {horizon: 0, sla: {business_value: {min: 1}}}\n")
    assert "watch.horizon" in str(info.value)
    assert "watch.sla.business_value: estimated only with a monitoring.cost_matrix" in str(
        info.value
    )
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml(
            "monitoring: {alert_sigmas: 0, alerts: {rocauc: {min: 0.8}, f1: {mn: 0.5}}}\n"
        )
    for part in ("monitoring.alert_sigmas", "monitoring.alerts.rocauc: unknown metric",
                 "monitoring.alerts.f1.mn: unknown key"):  # fmt: skip
        assert part in str(info.value), part


@pytest.mark.parametrize(
    ("sla", "said"),
    [
        ("{roc_auc: {min: 1.8}}", "watch.sla.roc_auc.min: roc_auc lies in [0, 1]; every value "
         "breaks this min, so the SLA is always crossed: the watcher would act every cycle "
         "(got 1.8)"),
        ("{accuracy: {min: -0.1}}", "accuracy lies in [0, 1]; no value breaks this min, so the "
         "SLA is never crossed (got -0.1)"),
        ("{rmse: {max: -1}}", "watch.sla.rmse.max: rmse is at least 0; every value breaks"),
        ("{log_loss: {max: .inf}}", "watch.sla.log_loss.max: must be a finite number (got inf)"),
        ("{roc_auc: {max: 0.8}}", "watch.sla.roc_auc.max: roc_auc is better when higher: an SLA "
         "on it is a min, the least it may fall to; use {roc_auc: {min: ...}} (got 0.8)"),
        ("{mae: {min: 3}}", "watch.sla.mae.min: mae is better when lower: an SLA on it is a "
         "max, the most it may rise to; use {mae: {max: ...}}"),
    ],
)  # fmt: skip
def test_an_sla_its_metric_cannot_keep_or_on_the_wrong_side_is_refused(sla: str, said: str) -> None:
    # it was "valid", and the watcher would have acted every cycle (or never)
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml(f"watch: {{sla: {sla}}}\n")
    assert said in str(info.value)


@pytest.mark.parametrize("sla", ["{roc_auc: {min: 1}}", "{rmse: {max: 0}}", "{rmse: {max: 1e6}}"])
def test_an_sla_at_the_edge_of_its_metric_s_range_is_kept(sla: str) -> None:
    # (roc_auc below 0 cannot happen: a min of 0 is refused as never crossed)
    assert Policy.from_yaml(f"watch: {{sla: {sla}}}\n").watch.sla


def test_an_alert_may_watch_either_side_within_its_metric_s_range() -> None:
    # a roc_auc that jumps above 0.99 (a leak) and an rmse that falls below 0.1 are worth an
    # alert: only a threshold no value can cross, or every value crosses, is refused
    policy = Policy.from_yaml(
        "monitoring: {alerts: {roc_auc: {max: 0.99}, rmse: {min: 0.1}, "
        "false_positive: {max: 0.2}}}\n"
    )
    assert set(policy.monitoring.alerts) == {"roc_auc", "rmse", "false_positive"}
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml("monitoring: {alerts: {roc_auc: {min: 1.5}, false_positive: {max: 2}}}\n")
    said = str(info.value)
    assert "monitoring.alerts.roc_auc.min: roc_auc lies in [0, 1]; every value breaks" in said
    assert (
        "false_positive lies in [0, 1]; no value breaks this max, so it would never alert" in said
    )
    with pytest.raises(PolicyError, match=r"alerts.rmse.max: rmse is at least 0") as given:
        Policy.default().monitoring_with({"rmse": {"max": -3}})  # `regrow monitor --alert`
    assert given.value.hint == "give a threshold the metric can reach"


def test_the_sla_directions_and_ranges_are_the_monitor_s() -> None:
    from regrow.evaluate.metrics import METRICS
    from regrow.forecast import metric_bounds
    from regrow.monitor.signals import HIGHER_IS_BETTER, LOWER_IS_BETTER
    from regrow.plan.policy import _HIGHER_IS_BETTER, _RANGES, alert_metrics

    names = {m for task in SLA_METRICS.values() for m in task}
    assert HIGHER_IS_BETTER & names == _HIGHER_IS_BETTER
    assert LOWER_IS_BETTER & names == names - _HIGHER_IS_BETTER
    assert all(METRICS[m].higher_is_better == (m in _HIGHER_IS_BETTER) for m in METRICS)
    for name in {*alert_metrics("classification"), *alert_metrics("regression")}:
        assert _RANGES.get(name) == metric_bounds(name), name
