"""Ensemble refresh as a plan (:mod:`regrow.refreshing`), on real trained workspaces.

Two logistic members each read one feature; the system is trained where the label needs both.
On a window where the label follows ``x1`` member ``a`` is the better one, where it follows
``x2``, ``b`` is. Each refresh is stored as a plan and run like any plan.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.preprocessing import OneHotEncoder

from regrow import Ensemble, Member, System, Transform, Workspace
from regrow.errors import DataError, PlanError, VersionNotFound
from regrow.plan.policy import Policy
from regrow.refreshing import EnsembleRefresh, refresh_ensemble

ROOT = Path(__file__).resolve().parents[2]


def rows(n: int, seed: int, concept: str) -> pd.DataFrame:
    """Two features; the label follows both, ``x1`` only ("a") or ``x2`` only ("b")."""
    x = np.random.default_rng(seed).normal(size=(n, 2))
    score = {"both": x[:, 0] + x[:, 1], "a": x[:, 0], "b": x[:, 1]}[concept]
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": (score > 0).astype(int)})


def toy(method: str = "mean") -> System:
    return System(
        "toy",
        target="y",
        components=[
            Member("a", LogisticRegression(), inputs=["x1"]),
            Member("b", LogisticRegression(), inputs=["x2"]),
            Ensemble("ens", weights={"a": 1.0, "b": 1.0}, method=method),  # type: ignore[arg-type]
        ],
    )


def policy(**ensemble: float) -> Policy:
    body = Policy.default().to_dict()
    return Policy.from_dict({**body, "ensemble": {**body["ensemble"], **ensemble}})


@pytest.fixture
def toy_ws(tmp_path: Path) -> Iterator[Workspace]:
    """A workspace with ``toy:v1`` trained, and windows ``wa`` and ``wb``."""
    with Workspace.init(tmp_path / "ws") as ws:
        ws.train(toy(), ws.snapshot(rows(300, 0, "both"), name="train"))
        ws.snapshot(rows(200, 1, "a"), name="wa")
        ws.snapshot(rows(200, 2, "b"), name="wb")
        yield ws


def weights(ws: Workspace, ref: str) -> dict[str, float]:
    ens = ws.system(ref).ensemble
    assert ens is not None
    return dict(ens.weights)


def step(ws: Workspace, ref: str, window: str, **kw: object) -> tuple[EnsembleRefresh, str]:
    """Refresh ``ref`` on ``window`` and run the plan; the refresh and the new version."""
    done = refresh_ensemble(ws, ref, window, **kw)  # type: ignore[arg-type]
    return done, ws.run_plan(done.plan.id, approve=True).result.version.ref


def test_weights_move_toward_the_better_member_and_the_run_refits_no_member(
    toy_ws: Workspace,
) -> None:
    done = refresh_ensemble(toy_ws, "toy:v1", "wa")
    by = {r.member: r for r in done.rows}
    assert by["a"].loss < 0.15 < 0.4 < by["b"].loss  # error rates on the window
    assert by["a"].after > 0.9 > 0.1 > by["b"].after
    assert [a.kind for a in done.plan.actions] == ["reweight"]
    assert not done.plan.needs_approval
    blend = done.plan.signals["refresh"]["ensemble_loss"]
    assert blend["after"] < blend["before"]
    ran = toy_ws.run_plan(done.plan.id)
    assert ran.result.trained == ["ens"]
    assert sorted(ran.result.reused) == ["a", "b"]
    new = weights(toy_ws, ran.result.version.ref)
    assert new == pytest.approx({"a": by["a"].after, "b": by["b"].after}, abs=1e-6)


def test_a_system_name_means_its_champion(toy_ws: Workspace) -> None:
    with pytest.raises(VersionNotFound, match="champion"):
        refresh_ensemble(toy_ws, "toy", "wa", dry_run=True)
    toy_ws.catalog.move_alias("toy", "champion", toy_ws.catalog.get_system_version("toy:v1").id)
    assert refresh_ensemble(toy_ws, "toy", "wa", dry_run=True).plan.version == "toy:v1"


def test_fixed_share_keeps_every_weight_at_alpha_over_n(toy_ws: Workspace) -> None:
    rules = policy(eta=50.0, alpha=0.1, retire_after=50)
    ref, ages, refs = "toy:v1", [], []
    for seed in (11, 12, 13):  # three windows of the same concept
        done, ref = step(toy_ws, ref, rows(200, seed, "a"), policy=rules)
        assert min(r.after for r in done.rows) >= 0.1 / 2 - 1e-9
        ages.append({m.name: m.age for m in done.state.members}["a"])
        refs.append(ref)
    assert weights(toy_ws, ref)["b"] == pytest.approx(0.05, abs=1e-6)
    # the weights reach a fixed point: no new version, yet the state still advances
    assert refs == ["toy:v2", "toy:v2", "toy:v2"]
    assert ages == [2, 3, 4]


def test_the_same_refresh_at_a_fixed_point_is_the_same_plan(toy_ws: Workspace) -> None:
    rules = policy(eta=50.0, alpha=0.1, retire_after=50)
    _, v2 = step(toy_ws, "toy:v1", "wa", policy=rules)
    first, ref = step(toy_ws, v2, "wa", policy=rules)
    assert ref == v2  # a fixed point: the run made no new version, its plan resulted in v2
    # made again on the same version and window: its own state is not counted twice
    again = refresh_ensemble(toy_ws, v2, "wa", policy=rules)
    assert again.plan.id == first.plan.id
    assert again.state == first.state
    audited = [e.action for e in toy_ws.catalog.audit_events(subject="ensemble:toy", limit=100)]
    assert audited.count("ensemble.weights") == 2


def test_a_member_retires_to_the_pool_and_returns_when_it_wins_a_window(toy_ws: Workspace) -> None:
    rules = policy(retire_weight=0.1, retire_after=2)
    first, ref = step(toy_ws, "toy:v1", "wa", policy=rules)
    assert first.state_from is None
    second, ref = step(toy_ws, ref, "wa", policy=rules)
    assert second.state_from == "toy:v2"  # the state the first refresh stored
    assert {m.name: m.low for m in second.state.members}["b"] == 1
    third, ref = step(toy_ws, ref, "wa", policy=rules)
    assert {r.member: r.events for r in third.rows}["b"] == ("retired",)
    assert third.state.pool == ("b",)
    assert weights(toy_ws, ref) == {"a": pytest.approx(1.0), "b": 0.0}
    assert "b" in toy_ws.system(ref).components  # kept, fitted, at weight 0
    # the concept comes back: b wins the window from the pool
    back, ref = step(toy_ws, ref, "wb", policy=rules)
    assert {r.member: r.events for r in back.rows}["b"] == ("readmitted",)
    assert back.state.pool == ()
    assert weights(toy_ws, ref)["b"] > 0.9
    assert toy_ws.catalog.get_plan(back.plan.id).outcome["trained"] == ["ens"]
    audited = [e.action for e in toy_ws.catalog.audit_events(subject="ensemble:toy", limit=100)]
    assert audited.count("ensemble.retired") == 1
    assert audited.count("ensemble.readmitted") == 1
    assert audited.count("ensemble.weights") == 4


def test_a_newcomer_enters_within_the_reserved_share(toy_ws: Workspace) -> None:
    rules = policy(reserved=0.3)
    done = refresh_ensemble(toy_ws, "toy:v1", "wa", add_member="a", policy=rules)
    by = {r.member: r for r in done.rows}
    assert by["a_r1"].events == ("admitted", "capped")
    assert by["a_r1"].after == pytest.approx(0.3, abs=1e-6)
    assert by["a_r1"].loss is not None
    assert by["a_r1"].loss < 0.15
    assert [a.kind for a in done.plan.actions] == ["add-member", "reweight"]
    assert done.plan.needs_approval  # add-member waits for approval by default
    with pytest.raises(PlanError, match="needs approval"):
        toy_ws.run_plan(done.plan.id)
    ran = toy_ws.run_plan(done.plan.id, approve=True)
    assert sorted(ran.result.trained) == ["a_r1", "ens"]
    assert sorted(ran.result.reused) == ["a", "b"]
    assert weights(toy_ws, ran.result.version.ref)["a_r1"] == pytest.approx(0.3, abs=1e-6)
    # the newcomer is in probation once: the next refresh lets it out of the reserved share
    nxt = refresh_ensemble(toy_ws, ran.result.version.ref, "wa", policy=rules, dry_run=True)
    assert {m.name: m.age for m in nxt.state.members}["a_r1"] == 1


def test_every_event_is_audited_with_losses_and_weights(toy_ws: Workspace) -> None:
    done = refresh_ensemble(toy_ws, "toy:v1", "wa", add_member="a", policy=policy(reserved=0.3))
    events = toy_ws.catalog.audit_events(subject="ensemble:toy", limit=20)[::-1]
    assert [e.action for e in events] == [
        "ensemble.admitted",
        "ensemble.capped",
        "ensemble.weights",
    ]
    admitted, _, weighed = (e.payload for e in events)
    assert admitted["member"] == "a_r1"
    assert admitted["plan"] == done.plan.id
    assert (admitted["weight_before"], admitted["weight_after"]) == (0.0, pytest.approx(0.3))
    assert set(weighed["losses"]) == {"a", "b"}
    assert weighed["before"] == {"a": 0.5, "b": 0.5}
    assert set(weighed["after"]) == {"a", "b", "a_r1"}
    # the same refresh again is the same plan: audited once
    refresh_ensemble(toy_ws, "toy:v1", "wa", add_member="a", policy=policy(reserved=0.3))
    assert len(toy_ws.catalog.audit_events(subject="ensemble:toy", limit=20)) == 3


def test_a_dry_run_writes_nothing(toy_ws: Workspace) -> None:
    def count() -> tuple[int, int, int]:
        return (
            len(toy_ws.catalog.list_plans(limit=100)),
            len(toy_ws.catalog.audit_events(limit=1000)),
            len(toy_ws.catalog.list_snapshots()),
        )

    before = count()
    done = refresh_ensemble(toy_ws, "toy:v1", "wa", add_member="a", dry_run=True)
    fresh = refresh_ensemble(toy_ws, "toy:v1", rows(100, 9, "b"), dry_run=True)
    assert not done.stored
    assert not fresh.stored
    assert {r.member: r.events for r in done.rows}["a_r1"] == ("admitted",)
    assert count() == before


def test_a_regressor_is_weighed_by_its_normalised_absolute_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    frame = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1]})
    frame["y"] = 3 * frame.x1 + frame.x2 + 0.1 * rng.normal(size=300)
    with Workspace.init(tmp_path / "ws") as ws:
        ws.train(System("reg", target="y", task="regression", components=[
            Member("one", LinearRegression(), inputs=["x1"]),
            Member("two", LinearRegression(), inputs=["x2"]),
            Ensemble("ens", weights={"one": 1.0, "two": 1.0}),
        ]), ws.snapshot(frame.iloc[:200], name="train"))  # fmt: skip
        window = ws.snapshot(frame.iloc[200:], name="w")
        done = refresh_ensemble(ws, "reg:v1", window, add_member="one", dry_run=True)
    by = {r.member: r for r in done.rows}
    # the newcomer's 3-fold CV loss is scored like the members' losses
    assert by["one_r1"].loss == pytest.approx(by["one"].loss, abs=0.1)
    assert 0 <= by["one"].loss < by["two"].loss <= 1  # type: ignore[operator]
    assert done.loss.startswith("absolute error / ")
    assert by["one"].after > by["two"].after
    words = frame.iloc[200:].assign(y="high")
    bad = r"100 of 100 labels in 'y' .* are not numbers \(e\.g\. 'high'\) and reg:v1 is a regressor"
    with Workspace.open(tmp_path / "ws") as ws, pytest.raises(DataError, match=bad):
        refresh_ensemble(ws, "reg:v1", words, dry_run=True)


def test_a_stack_or_a_system_without_ensemble_is_refused(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        train = ws.snapshot(rows(300, 0, "both"), name="train")
        ws.snapshot(rows(100, 1, "a"), name="wa")
        ws.train(toy("stack"), train)
        with pytest.raises(PlanError, match="is a stack") as stack:
            refresh_ensemble(ws, "toy:v1", "wa")
        assert "regrow plan" in (stack.value.hint or "")
        single = System("one", target="y", components=[Member("m", LogisticRegression(),
                                                              inputs=["x1"])])  # fmt: skip
        ws.train(single, train)
        with pytest.raises(PlanError, match="has no ensemble"):
            refresh_ensemble(ws, "one:v1", "wa")


def test_a_window_without_enough_labels_is_refused(toy_ws: Workspace) -> None:
    unlabelled = rows(100, 3, "a")
    with pytest.raises(PlanError, match="no target column 'y'"):
        refresh_ensemble(toy_ws, "toy:v1", unlabelled.drop(columns=["y"]))
    unlabelled.loc[10:, "y"] = None
    with pytest.raises(PlanError, match="10 labelled row"):
        refresh_ensemble(toy_ws, "toy:v1", unlabelled)


def coloured(n: int, seed: int) -> pd.DataFrame:
    """``rows`` of concept "a" with a category column ``c`` that member ``a`` reads."""
    frame = rows(n, seed, "a")
    frame["c"] = np.random.default_rng(seed).choice(["red", "green", "blue"], size=n)
    return frame


@pytest.fixture
def cat_ws(tmp_path: Path) -> Iterator[Workspace]:
    """``cat:v1``: member ``a`` reads ``x1`` and ``c`` one-hot encoded (unknown values refused)."""
    system = System("cat", target="y", components=[
        Transform("oh", OneHotEncoder(sparse_output=False), inputs=["c"]),
        Member("a", LogisticRegression(), inputs=["x1", "oh"]),
        Member("b", LogisticRegression(), inputs=["x2"]),
        Ensemble("ens", weights={"a": 1.0, "b": 1.0}),
    ])  # fmt: skip
    with Workspace.init(tmp_path / "ws") as ws:
        ws.train(system, ws.snapshot(coloured(300, 0), name="train"))
        yield ws


def test_a_category_column_of_numbers_is_refused_naming_the_column(
    cat_ws: Workspace, tmp_path: Path
) -> None:
    window = tmp_path / "numcat.csv"
    coloured(200, 1).assign(c=123).to_csv(window, index=False)  # numbers where colours were
    with pytest.raises(
        DataError, match=re.escape(f"cannot refresh cat:v1 on window {str(window)!r}")
    ) as err:
        refresh_ensemble(cat_ws, "cat:v1", str(window))
    assert "'c': 200 of 200 values are categories never seen in training ('123'" in str(err.value)
    assert "member 'a' cannot take them" in str(err.value)
    assert "handle_unknown='ignore'" in (err.value.hint or "")
    assert cat_ws.catalog.list_plans(limit=10) == []
    with pytest.raises(
        DataError, match="'x1': 200 of 200 values are not of the column's trained type"
    ):
        refresh_ensemble(cat_ws, "cat:v1", coloured(200, 1).assign(x1="abc"), dry_run=True)


def test_a_few_rows_the_version_cannot_score_are_set_aside_and_run_on(cat_ws: Workspace) -> None:
    window = coloured(200, 1)
    window.loc[:4, "c"] = "purple"  # 2.5%: under planning.max_unusable_share (5%)
    done = refresh_ensemble(cat_ws, "cat:v1", window, add_member="a")
    assert done.plan.signals["labelled_rows"] == 195
    assert done.plan.data["set_aside_rows"] == 5
    assert any(n.startswith("set aside 5 of 200 rows") for n in done.notes)
    assert any(line.startswith("set aside 5 of 200") for line in done.plan.rationale)
    ran = cat_ws.run_plan(done.plan.id, approve=True)  # the newcomer fits on the same rows
    assert sorted(ran.result.trained) == ["a_r1", "ens"]


def test_labels_that_are_not_classes_are_refused_naming_one_and_the_classes(
    toy_ws: Workspace,
) -> None:
    window = rows(200, 1, "a")
    window["y"] = window["y"].map({0: "no", 1: "yes"})
    with pytest.raises(DataError, match=r"200 of 200 labels in 'y'") as err:
        refresh_ensemble(toy_ws, "toy:v1", window)
    assert re.search(r"not classes of toy:v1 \(e\.g\. '(no|yes)'; its classes: \[0, 1\]\)",
                     str(err.value))  # fmt: skip
    assert "map the labels" in (err.value.hint or "")
    # a few such labels count as unlabelled, and the plan says so
    window = rows(200, 1, "a").astype({"y": str})  # "0" and "1" read as 0 and 1
    window.loc[:2, "y"] = "maybe"
    done = refresh_ensemble(toy_ws, "toy:v1", window, dry_run=True)
    assert done.plan.signals["labelled_rows"] == 197
    assert any("3 of 200 labels are classes never seen" in n for n in done.notes)


def test_the_same_refresh_after_later_runs_measured_more_is_the_same_plan(
    toy_ws: Workspace,
) -> None:
    rules = policy(reserved=0.3)
    first = refresh_ensemble(toy_ws, "toy:v1", "wa", add_member="a", policy=rules)
    toy_ws.run_plan(first.plan.id, approve=True)
    # another run fits member a again, on many rows: its measured CPU time joins the history
    toy_ws.train(toy(), toy_ws.snapshot(rows(100_000, 5, "both"), name="big"))
    again = refresh_ensemble(toy_ws, "toy:v1", "wa", add_member="a", policy=rules)
    assert again.plan.id == first.plan.id
    assert again.plan.cost == first.plan.cost
    audited = [e.action for e in toy_ws.catalog.audit_events(subject="ensemble:toy", limit=100)]
    assert audited.count("ensemble.admitted") == 1


def test_the_docs_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "docs" / "refresh.md").read_text()
    blocks = re.findall(r"```python\n(.*?)\n```", text, flags=re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "docs/refresh.md", "exec"), {"__name__": "docs"})
