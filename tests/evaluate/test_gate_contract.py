"""One contract for every registered gate: a well-formed, JSON-able, NaN-free result that
depends only on the seed, with or without a baseline, on a tiny evaluation set, for a
classifier and a regressor."""

from __future__ import annotations

import json
from typing import Any

import pytest

from regrow.evaluate.gates import STATUSES, Gate, GateResult, gate_names, get_gate
from regrow.evaluate.gates.base import BaseGate

from .conftest import Toy

#: Thresholds each built-in gate is run with here (a gate registered without an entry fails
#: test_every_registered_gate_has_an_example: add it, so the contract covers it).
EXAMPLES: dict[str, dict[str, Any]] = {
    "improvement": {"min": 0.0},
    "slice_regression": {"max": 0.02},
    "stability": {"margin": 0.01},
    "fairness": {"sensitive": "group", "max_difference": 0.2},
    "data_quality": {},
    "calibration": {"max_ece": 0.1},
    "latency": {"max_seconds": 60.0, "runs": 2, "rows": 200},
    "size": {"max_bytes": 10_000_000},
    "coverage": {},
    "signature": {},
}


def gate(name: str) -> Gate:
    return get_gate(name)(**EXAMPLES[name])


def check_well_formed(result: GateResult, name: str) -> dict[str, Any]:
    assert isinstance(result, GateResult)
    assert result.name == name
    assert result.status in STATUSES
    assert result.why.strip()
    assert "\n" not in result.why
    data = result.to_dict()
    text = json.dumps(data, allow_nan=False)  # NaN-free, plain JSON types
    assert GateResult.from_dict(json.loads(text)).to_dict() == data
    if result.interval is not None and None not in data["interval"]:
        low, high = data["interval"]
        assert low <= high
    return data


def test_every_registered_gate_has_an_example() -> None:
    assert set(gate_names()) == set(EXAMPLES)


@pytest.mark.parametrize("name", gate_names())
def test_a_gate_is_named_and_validates_its_thresholds(name: str) -> None:
    made = gate(name)
    assert made.name == name
    assert isinstance(made, Gate)
    if isinstance(made, BaseGate):
        assert type(made)(**made.settings()) == made  # its settings rebuild it


@pytest.mark.parametrize("name", gate_names())
def test_a_gate_returns_a_well_formed_result(toy: Toy, name: str) -> None:
    check_well_formed(gate(name).check(toy.context()), name)


@pytest.mark.parametrize("name", gate_names())
def test_a_gate_depends_only_on_the_seed(toy: Toy, name: str) -> None:
    first = gate(name).check(toy.context(seed=7))
    again = gate(name).check(toy.context(seed=7))
    if getattr(get_gate(name), "deterministic", True):
        assert first.to_dict() == again.to_dict()
    else:  # it measures time: the status holds, the seconds differ
        assert first.status == again.status


@pytest.mark.parametrize("name", gate_names())
def test_a_gate_handles_no_baseline(toy: Toy, name: str) -> None:
    data = check_well_formed(gate(name).check(toy.context(baseline=False)), name)
    if name in ("improvement", "slice_regression", "stability", "signature"):
        assert data["status"] == "inconclusive"
        assert "baseline" in data["why"]


@pytest.mark.parametrize("name", gate_names())
def test_a_gate_handles_a_tiny_evaluation_set(toy: Toy, name: str) -> None:
    tiny = toy.evaluation.iloc[:6]
    check_well_formed(gate(name).check(toy.context(frame=tiny, n_boot=50)), name)


@pytest.mark.parametrize("name", gate_names())
def test_a_gate_handles_a_regression_system(toy_regression: Toy, name: str) -> None:
    data = check_well_formed(gate(name).check(toy_regression.context()), name)
    if name in ("fairness", "calibration"):
        assert data["status"] == "inconclusive"
        assert "regression" in data["why"]
