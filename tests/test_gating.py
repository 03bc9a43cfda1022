"""Gated ensembles: rows routed by rules or blended by a learned gate (regrow.components.gating)."""

from __future__ import annotations

import pickle
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LinearRegression, LogisticRegression

from regrow import Ensemble, Member, System, Workspace
from regrow.components.fitted import FittedComponent, combine, fit_component
from regrow.components.gating import LearnedGate
from regrow.config import ServeSettings
from regrow.errors import ComponentError, DataError, PlanError, SliceError, SystemSpecError
from regrow.model import FittedSystem
from regrow.plan.diagnostics import diagnose
from regrow.plan.policy import Planning
from regrow.run.tasks import dumps_fitted, load_fitted
from regrow.serve.app import create_app

RULES = {"a": "x0 > 0"}


def regions(rows: int, seed: int) -> pd.DataFrame:
    """``y`` follows x1 where x0 > 0 and x2 elsewhere: member a (x1) is right on one region,
    member b (x2) on the other; ``c`` is a label of the same structure."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(rows, 3))
    y = np.where(x[:, 0] > 0, 3 * x[:, 1], 3 * x[:, 2]) + rng.normal(0, 0.1, rows)
    frame = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "y": y})
    frame["c"] = (y > 0).astype(int)
    return frame


def system(ensemble: Ensemble, task: str = "regression") -> System:
    model = LinearRegression if task == "regression" else LogisticRegression
    return System("regions", target="y" if task == "regression" else "c", task=task, components=[
        Member("a", model(), inputs=["x0", "x1"]),
        Member("b", model(), inputs=["x0", "x2"]),
        ensemble,
    ])  # fmt: skip


def rule_gate(**changes: Any) -> Ensemble:
    settings: dict[str, Any] = {"gates": RULES, "default": "b", **changes}
    return Ensemble("e", ["a", "b"], method="gate", **settings)


def fitted(task: str, ensemble: Ensemble, frame: pd.DataFrame) -> FittedSystem:
    """The system fitted in memory, as a run fits it: members, then the ensemble on them."""
    spec = system(ensemble, task)
    target = spec.target
    members = {
        n: fit_component(spec[n], frame, target=target, upstream={}, seed=0) for n in ("a", "b")
    }
    ens = fit_component(
        ensemble, frame, target=target, upstream=members, seed=0, in_sample=("a", "b")
    )
    record = {"name": spec.name, "target": target, "task": task, "seed": 0}
    return FittedSystem(record, {**members, "e": ens})


def mse(model: FittedSystem, frame: pd.DataFrame) -> float:
    return float(np.mean((model.predict(frame) - frame["y"].to_numpy()) ** 2))


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_rule_gate_gives_each_row_the_output_of_the_member_its_rule_picks(task: str) -> None:
    train, rows = regions(300, 0), regions(40, 1)
    gate = Ensemble("e", ["a", "b"], method="gate",
                    gates={"a": "x0 > 0.5", "b": "x0 > 0"}, default="a")  # fmt: skip
    model = fitted(task, gate, train)
    outputs = model.member_outputs(rows)
    combined = model.output_of(outputs, rows)
    goes_to_b = (rows["x0"] > 0) & ~(rows["x0"] > 0.5)  # the first rule that holds wins
    for member, taken in (("b", goes_to_b), ("a", ~goes_to_b)):
        np.testing.assert_array_equal(combined[taken.to_numpy()], outputs[member][taken])
    assert goes_to_b.any()
    assert (~goes_to_b).any()
    if task == "classification":
        np.testing.assert_allclose(model.predict_proba(rows), combined)
    else:
        np.testing.assert_array_equal(model.predict(rows), combined)


def test_rows_that_no_rule_takes_without_a_default_are_refused_naming_the_fix() -> None:
    covering = rule_gate(default=None, gates={"a": "x0 > 0", "b": "x0 <= 0"})
    assert fitted("regression", covering, regions(100, 0)).predict(regions(20, 1)).shape == (20,)
    gap = rule_gate(default=None, gates={"a": "x0 > 0", "b": "x0 < -0.5"})
    rows = pd.DataFrame({"x0": [0.3, -0.2], "x1": [0.0, 0.0], "x2": [0.0, 0.0]})
    with pytest.raises(
        DataError, match=r"1 of 2 row\(s\) match no rule \(first at position 1\)"
    ) as e:
        fitted("regression", gap, regions(100, 0)).predict(rows)
    assert "default=" in (e.value.hint or "")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"gates": {"a": "x0 >"}}, "does not parse"),
        ({"gates": {"a": "x0 > @limit"}}, "does not parse"),
        ({"gates": {"a": ""}}, "non-empty expression"),
        ({"gates": {"zed": "x0 > 0"}}, "routes rows to 'zed'"),
        ({"default": "zed"}, "routes rows to 'zed'"),
        ({"default": None}, "sends no rows to members \\['b'\\]"),
        ({"gates": {}}, "has no rules"),
        ({"weights": {"a": 1.0, "b": 2.0}}, "takes no weights"),
        ({"gate": "learned"}, "takes no gates or default"),
        ({"gate": "tree"}, "unknown gate 'tree'"),
    ],
)
def test_bad_gates_are_refused_at_construction_with_a_hint(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(SystemSpecError, match=message) as info:
        rule_gate(**settings)
    assert info.value.hint


def test_gate_settings_on_another_method_are_refused() -> None:
    with pytest.raises(SystemSpecError, match="method='gate' only"):
        Ensemble("e", ["a", "b"], gates=RULES, default="b")


def test_members_default_to_the_ruled_members_and_the_default() -> None:
    gate = Ensemble("e", method="gate", gates={"a": "`x 0` > 0 and x1 < x2"}, default="b")
    assert gate.members == ("a", "b")
    assert gate.gate_columns == ["x 0", "x1", "x2"]


def test_rules_on_columns_no_member_reads_are_refused_by_the_system() -> None:
    with pytest.raises(SystemSpecError, match=r"reads \['region'\], which no member") as info:
        fitted("regression", rule_gate(gates={"a": "region == 'north'"}), regions(50, 0))
    assert "add the column to a member's inputs" in (info.value.hint or "")


def test_a_rule_that_does_not_apply_to_the_data_names_the_rule() -> None:
    model = fitted("regression", rule_gate(gates={"a": "x0.str.startswith('n')"}), regions(50, 0))
    with pytest.raises(SliceError, match="e:a"):
        model.predict(regions(5, 1))


def test_a_gate_needs_the_rows_not_only_the_member_outputs() -> None:
    model = fitted("regression", rule_gate(), regions(50, 0))
    with pytest.raises(ComponentError, match="routes rows by their columns") as info:
        model.output_of(model.member_outputs(regions(5, 1)))
    assert "FittedSystem.predict" in (info.value.hint or "")


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_learned_gate_beats_the_mean_where_each_member_is_right_on_its_own_region(
    task: str,
) -> None:
    train, test = regions(800, 0), regions(2000, 1)
    learned = fitted(task, Ensemble("e", ["a", "b"], method="gate", gate="learned"), train)
    mean = fitted(task, Ensemble("e", ["a", "b"]), train)
    gate = learned.components["e"]
    assert isinstance(gate.estimator, LearnedGate)
    assert gate.info["cross_fitted"] == ["a", "b"]
    assert gate.info["columns"] == ["x0", "x1", "x2"]
    if task == "regression":
        assert mse(learned, test) < 0.8 * mse(mean, test)
        return
    y = test["c"].to_numpy()

    def log_loss(model: FittedSystem) -> float:
        return float(-np.mean(np.log(model.predict_proba(test)[np.arange(len(y)), y])))

    assert log_loss(learned) < 0.9 * log_loss(mean)
    np.testing.assert_allclose(learned.predict_proba(test).sum(axis=1), 1.0)


def test_learned_gate_weighs_the_member_that_is_right_on_each_region() -> None:
    model = fitted("regression", Ensemble("e", ["a", "b"], method="gate", gate="learned"),
                   regions(800, 0))  # fmt: skip
    gate = model.components["e"].estimator
    rows = pd.DataFrame({"x0": [0.8, -0.8], "x1": [0.0, 0.0], "x2": [0.0, 0.0]})
    weights = gate.weights(rows)
    assert weights[0, 0] > 0.8
    assert weights[1, 1] > 0.8
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)


def test_a_learned_gate_where_one_member_is_always_best_is_that_member() -> None:
    frame = regions(200, 0)
    frame["y"] = 2 * frame["x1"]
    model = fitted("regression", Ensemble("e", ["a", "b"], method="gate", gate="learned"), frame)
    gate = model.components["e"].estimator
    np.testing.assert_allclose(gate.weights(frame.head(3)), [[1.0, 0.0]] * 3)
    np.testing.assert_allclose(model.predict(frame), 2 * frame["x1"], atol=1e-6)


@pytest.mark.parametrize(
    "ensemble", [rule_gate(), Ensemble("e", ["a", "b"], method="gate", gate="learned")]
)
def test_a_fitted_gate_survives_pickling(ensemble: Ensemble) -> None:
    frame, rows = regions(300, 0), regions(30, 1)
    model = fitted("regression", ensemble, frame)
    again = load_fitted(dumps_fitted(model.components["e"]))
    assert isinstance(again, FittedComponent)
    outputs = model.member_outputs(rows)
    upstream = model.components
    np.testing.assert_array_equal(
        combine(ensemble, outputs, None, again.estimator, frame=rows, upstream=upstream),
        model.output_of(outputs, rows),
    )
    assert pickle.loads(pickle.dumps(again.spec)).gates == ensemble.gates


def test_rule_order_and_text_are_part_of_the_recipe() -> None:
    first = Ensemble("e", method="gate", gates={"a": "x0 > 0", "b": "x1 > 0"})
    swapped = Ensemble("e", method="gate", gates={"b": "x1 > 0", "a": "x0 > 0"})
    edited = Ensemble("e", method="gate", gates={"a": "x0 > 1", "b": "x1 > 0"})
    recipes = [e.recipe() for e in (first, swapped, edited)]
    assert recipes[0] != recipes[1]
    assert recipes[0] != recipes[2]
    assert recipes[0]["params"]["gates"] == [["a", "x0 > 0"], ["b", "x1 > 0"]]
    assert not first.learns_from_data


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gating") / "ws"


def test_train_load_and_predict_a_gated_system_retraining_only_the_ensemble_on_edits(
    home: Path,
) -> None:
    rows = regions(50, 1)
    with Workspace.init(home) as ws:
        snap = ws.snapshot(regions(400, 0).drop(columns="c"), name="regions")
        first = ws.train(system(rule_gate()), snap)
        assert sorted(first.run.summary["trained"]) == ["a", "b", "e"]
        edited = ws.train(system(rule_gate(gates={"a": "x0 > 0.1"})), snap)
        assert edited.run.summary["trained"] == ["e"]
        assert sorted(edited.run.summary["reused"]) == ["a", "b"]
        learned = ws.train(system(Ensemble("e", ["a", "b"], method="gate", gate="learned")), snap)
        assert learned.run.summary["trained"] == ["e"]
        again = ws.train(system(Ensemble("e", ["a", "b"], method="gate", gate="learned")), snap)
        assert again.run.summary["trained"] == []
        ws.catalog.move_alias("regions", "champion", learned.version.id, reason="test")
        for result, rule in ((first, 0.0), (edited, 0.1)):
            model = ws.load(result.version.ref)
            outs = model.member_outputs(rows)
            expected = np.where(rows["x0"] > rule, outs["a"], outs["b"])
            np.testing.assert_allclose(model.predict(rows), expected)
        model = ws.load(learned.version.ref)
        assert model.gated
        assert isinstance(model.components["e"].estimator, LearnedGate)
        assert mse(model, rows) < mse(ws.load(first.version.ref), rows)


@pytest.fixture(scope="module")
def client(home: Path) -> Iterator[TestClient]:
    app = create_app(home, ServeSettings(log_predictions=False))
    with TestClient(app) as c:
        yield c


def test_a_gated_version_is_served_through_the_system(client: TestClient, home: Path) -> None:
    served = client.app.state.regrow.host.slots[0].current  # type: ignore[attr-defined]
    assert served.direct is None  # the short path declines a gate
    names = [t["name"] for t in client.get("/v2/models/regions").json()["inputs"]]
    rows = regions(7, 5)
    body = {"inputs": [{"name": "x", "shape": [7, len(names)], "datatype": "FP64",
                        "data": rows[names].to_numpy().tolist(),
                        "parameters": {"columns": names}}]}  # fmt: skip
    answer = client.post("/v2/models/regions/infer", json=body).json()
    with Workspace.open(home) as ws:
        expected = ws.load("regions@champion").predict(rows)
    np.testing.assert_allclose(answer["outputs"][0]["data"], expected, rtol=1e-12)


def test_the_probes_refuse_a_gated_ensemble_with_a_hint() -> None:
    model = fitted("regression", rule_gate(), regions(100, 0))
    with pytest.raises(PlanError, match="gated ensemble 'e'") as info:
        diagnose(model, regions(200, 1), planning=Planning())
    assert "regrow update" in (info.value.hint or "")


def test_the_docs_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (Path(__file__).parents[1] / "docs" / "gating.md").read_text()
    (block,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(block, "docs/gating.md", "exec"), namespace)
    assert namespace["predictions"].shape == (400,)
