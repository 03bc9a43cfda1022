"""The policy's gates section: which gates run, their thresholds, and what is refused."""

from __future__ import annotations

import pytest

from regrow.errors import ConfigError, PolicyError
from regrow.evaluate.gates import Fairness, Improvement, SliceRegression, get_gate, register
from regrow.evaluate.gates.base import BaseGate, GateResult
from regrow.evaluate.gates.registry import _GATES
from regrow.plan.policy import Policy, default_policy_text


def test_the_default_policy_runs_todays_gates() -> None:
    gates = Policy.default().gates
    assert gates.gates() == [Improvement(min=0.0), SliceRegression(max=0.02)]
    assert gates.resamples == 1000
    assert gates.level == 0.95
    assert gates.inconclusive == "none"
    assert Policy.from_yaml("budgets: {max_epochs: 3}\n").gates == gates  # not named: defaults
    text = default_policy_text()
    for name in ("fairness:", "data_quality:", "stability:", "calibration:", "latency:",
                 "size:", "coverage:", "signature:"):  # fmt: skip
        assert name in text  # every gate is documented with an example


def test_a_policy_from_before_gates_still_means_what_it_said() -> None:
    old = Policy.from_yaml(
        "gates:\n  metric: log_loss\n  min_improvement: 0.01\n  max_slice_regression: 0.05\n"
        "  level: 0.9\n"
    )
    assert old.gates.metric == "log_loss"
    assert old.gates.level == 0.9
    assert old.gates.gates() == [Improvement(min=0.01), SliceRegression(max=0.05)]
    partial = Policy.from_yaml("gates: {min_improvement: 0.02}\n")
    assert partial.gates.gates() == [Improvement(min=0.02), SliceRegression(max=0.02)]


def test_checks_list_the_gates_to_run_with_their_defaults() -> None:
    policy = Policy.from_yaml("gates:\n  checks:\n    fairness: {sensitive: sex}\n")
    assert policy.gates.gates() == [Fairness(sensitive="sex")]
    assert policy.gates.checks["fairness"]["max_difference"] == 0.1  # completed, stored
    assert Policy.from_yaml("gates: {checks: {}}\n").gates.gates() == []
    assert Policy.from_yaml("gates: {checks: {}}\n").id != Policy.default().id


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("gates: {checks: {fairnes: {sensitive: sex}}}", ["gates.checks.fairnes", "unknown gate",
                                                           "did you mean 'fairness'"]),
        ("gates: {checks: {fairness: {}}}", ["gates.checks.fairness.sensitive", "required"]),
        ("gates: {checks: {fairness: {sensitive: sex, max_difference: 1.5}}}",
         ["gates.checks.fairness.max_difference", "1.5"]),
        ("gates: {checks: {fairness: {sensitive: sex, metrics: []}}}",
         ["gates.checks.fairness", "at least one"]),
        ("gates: {checks: {slice_regression: {max: -0.1}}}",
         ["gates.checks.slice_regression.max", "-0.1"]),
        ("gates: {checks: {slice_regression: {maxx: 0.1}}}",
         ["gates.checks.slice_regression.maxx", "unknown key", "'max'"]),
        ("gates: {checks: {calibration: {max_ece: 0}}}", ["gates.checks.calibration.max_ece"]),
        ("gates: {checks: {latency: {max_seconds: -1}}}", ["gates.checks.latency.max_seconds"]),
        ("gates: {checks: {size: {max_bytes: 0}}}", ["gates.checks.size.max_bytes"]),
        ("gates: {checks: {data_quality: {max_unseen: 2}}}",
         ["gates.checks.data_quality.max_unseen", "2"]),
        ("gates: {checks: {signature: {allow: [everything]}}}",
         ["gates.checks.signature.allow.0", "everything"]),
        ("gates: {checks: {improvement: 0.1}}", ["gates.checks.improvement", "mapping"]),
        ("gates: {metric: roc_auc, checks: {improvement: {min: 1.0}}}",
         ["gates.checks.improvement.min", "impossible"]),
        ("gates: {metric: rmse, checks: {improvement: {min: 1.0, relative: true}}}",
         ["gates.checks.improvement.min", "impossible"]),
        ("gates: {metric: rocauc}", ["gates.metric", "did you mean 'roc_auc'"]),
        ("gates: {inconclusive: maybe}", ["gates.inconclusive", "maybe"]),
        ("gates: {resamples: 5}", ["gates.resamples", "5"]),
        ("gates: {min_improvement: 0.1, checks: {improvement: {min: 0.2}}}",
         ["min_improvement and checks.improvement"]),
    ],
)  # fmt: skip
def test_bad_gate_settings_name_the_key_and_the_value(text: str, names: list[str]) -> None:
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml(text)
    for name in names:
        assert name in str(info.value)


class Always(BaseGate):
    """A project's own gate."""

    name = "always"
    answer: str = "pass"

    def check(self, context: object) -> GateResult:
        return self.result("pass" if self.answer == "pass" else "fail", f"said {self.answer}")


def test_a_registered_gate_is_configured_like_a_built_in_one() -> None:
    register(Always)
    try:
        policy = Policy.from_yaml("gates: {checks: {always: {answer: nope}}}")
        assert policy.gates.gates() == [Always(answer="nope")]
        with pytest.raises(ConfigError, match="already registered"):
            register(type("Other", (Always,), {}), name="always")
    finally:
        _GATES.pop("always", None)
    with pytest.raises(ConfigError, match="unknown gate 'always'"):
        get_gate("always")
