from __future__ import annotations

from pathlib import Path

import pytest

from regrow.errors import ConfigError, PolicyError
from regrow.plan.policy import ACTION_NAMES, Policy, default_policy_text, load_policy


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
