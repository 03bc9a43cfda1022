"""The System graph: building, ordering, validation errors."""

from __future__ import annotations

import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.preprocessing import StandardScaler

from regrow import Ensemble, Member, System, Transform
from regrow.errors import SystemSpecError


def churn() -> System:
    return System(
        "churn",
        target="y",
        components=[
            Transform("scaled", StandardScaler(), inputs=["a", "b"]),
            Transform("scaled2", StandardScaler(), inputs=["scaled"]),
            Member("m1", LogisticRegression(), inputs=["scaled2", "c"]),
            Member("m2", LogisticRegression(), inputs=["d"]),
            Ensemble("ens", weights={"m1": 2, "m2": 1}),
        ],
    )


def test_order_puts_every_component_after_what_it_reads() -> None:
    system = churn()
    order = system.order()
    for name in order:
        for up in system.upstream(name):
            assert order.index(up) < order.index(name)
    assert system.levels() == [["scaled", "m2"], ["scaled2"], ["m1"], ["ens"]]


def test_columns_through_transforms_and_downstream() -> None:
    system = churn()
    assert system.raw_columns("m1") == {"a", "b", "c"}
    assert system.downstream("scaled") == ["scaled2", "m1", "ens"]
    assert system.ancestors("m1") == ["scaled", "scaled2"]
    assert system.columns() == {"a", "b", "c", "d", "y"}


def test_unknown_column_is_named_with_a_close_match() -> None:
    with pytest.raises(SystemSpecError, match=r"'m2' reads unknown column 'd'.*did you mean 'dd'"):
        churn().validate(columns=["a", "b", "c", "dd", "y"])


def test_missing_target_is_refused() -> None:
    with pytest.raises(SystemSpecError, match="target column 'y' is not in the data"):
        churn().validate(columns=["a", "b", "c", "d"])


def test_cycle_is_reported_with_its_path() -> None:
    system = System(
        "s",
        target="y",
        components=[
            Transform("t1", StandardScaler(), inputs=["t2"]),
            Transform("t2", StandardScaler(), inputs=["t1"]),
            Member("m", LogisticRegression(), inputs=["t1"]),
        ],
    )
    with pytest.raises(SystemSpecError, match="cycle: t1 -> t2 -> t1"):
        system.validate()


def test_duplicate_names_are_refused() -> None:
    system = System("s", target="y", components=[Member("m", LogisticRegression(), ["x"])])
    with pytest.raises(SystemSpecError, match="already has a component named 'm'"):
        system.add(Member("m", LogisticRegression(), ["x"]))


def test_no_target_is_refused() -> None:
    with pytest.raises(SystemSpecError, match="has no target"):
        System("s", target="")


def test_member_cannot_read_the_target_or_another_member() -> None:
    system = System(
        "s",
        target="y",
        components=[
            Member("m1", LogisticRegression(), ["x", "y"]),
            Member("m2", LogisticRegression(), ["m1"]),
            Ensemble("e", weights={"m1": 1, "m2": 1}),
        ],
    )
    with pytest.raises(SystemSpecError) as info:
        system.validate(columns=["x", "y"])
    assert "reads the target column 'y'" in str(info.value)
    assert "'m2' reads 'm1', a member" in str(info.value)


def test_several_members_need_an_ensemble() -> None:
    system = System(
        "s",
        target="y",
        components=[Member("a", LinearRegression(), ["x"]), Member("b", LinearRegression(), ["x"])],
        task="regression",
    )
    with pytest.raises(SystemSpecError, match="2 members and no ensemble"):
        system.validate(columns=["x", "y"])


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: Member("m", object(), ["x"]), "not a scikit-learn style estimator"),
        (lambda: Member("m", LogisticRegression(), "x"), r"write inputs=\['x'\]"),
        (lambda: Member("m", LogisticRegression(), []), "has no inputs"),
        (lambda: Member("bad name", LogisticRegression(), ["x"]), "invalid member name"),
        (lambda: Transform("t", LogisticRegression(), ["x"]), "has no transform"),
        (lambda: Ensemble("e", weights={"a": -1.0}), "must be a number >= 0"),
        (lambda: Ensemble("e", ["a"], weights={"b": 1.0}), "weights members it does not combine"),
        (lambda: Ensemble("e", ["a"], method="median"), "unknown method 'median'"),  # type: ignore[arg-type]
        (lambda: Ensemble("e"), "names no members"),
    ],
)
def test_bad_components_are_refused_with_a_clear_message(factory, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemSpecError, match=message):
        factory()


def test_spec_is_json_and_names_every_component() -> None:
    import json

    spec = churn().spec()
    assert list(spec["components"]) == ["scaled", "scaled2", "m1", "m2", "ens"]
    assert spec["components"]["ens"] == {
        "kind": "ensemble",
        "class": "regrow.Ensemble",
        "inputs": ["m1", "m2"],
    }
    assert system_recipe_weights(churn()) == {"m1": 2.0, "m2": 1.0}
    json.dumps(spec)


def system_recipe_weights(system: System) -> dict[str, float]:
    weights: dict[str, float] = system["ens"].recipe()["params"]["weights"]
    return weights


def test_definition_file_is_the_module_that_builds_the_system() -> None:
    assert churn().definition_file == __file__


def test_classification_members_need_probabilities() -> None:
    from sklearn.svm import LinearSVC

    system = System("s", target="y", components=[Member("m", LinearSVC(), ["x"])])
    with pytest.raises(SystemSpecError, match=r"'m' \(LinearSVC\) has no predict_proba") as info:
        system.validate(columns=["x", "y"])
    # The hint says how a regression is declared, not "fix the component inputs".
    assert 'task="regression"' in (info.value.hint or "")


def test_every_member_is_combined_and_votes_need_classes() -> None:
    system = System(
        "s",
        target="y",
        task="regression",
        components=[
            Member("a", LinearRegression(), ["x"]),
            Member("b", LinearRegression(), ["x"]),
            Ensemble("e", weights={"a": 1.0}, method="vote"),
        ],
    )
    with pytest.raises(SystemSpecError) as info:
        system.validate(columns=["x", "y"])
    assert "members ['b'] are not combined by ensemble 'e'" in str(info.value)
    assert "votes, but a regression has no classes" in str(info.value)


def test_a_component_cannot_hide_a_column() -> None:
    system = System("s", target="y", components=[Member("x", LogisticRegression(), ["z"])])
    with pytest.raises(SystemSpecError, match=r"components \['x'\] have the names of data columns"):
        system.validate(columns=["x", "z", "y"])


def test_partial_weights_are_refused() -> None:
    with pytest.raises(SystemSpecError, match=r"gives no weight to members \['b'\]"):
        Ensemble("e", ["a", "b"], weights={"a": 1.0})
