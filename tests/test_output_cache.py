"""Members' outputs are predicted once per row: within a command, and across commands through
the store (a monitor, then a plan or a run on the same window, an evaluation of versions that
share members). What is read back equals what would be predicted, and a cache never decides:
the same inputs give the same plan, the same stack, the same numbers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMRegressor
from sklearn.linear_model import LinearRegression

import regrow.components.outputs as outputs_module
from regrow import Ensemble, Member, System, Workspace
from regrow.cache import OutputCache
from regrow.components.outputs import KnownOutputs, OutputTable, output_key, row_keys
from regrow.monitoring import monitor_version
from regrow.plan.actions import Refit
from regrow.services import Services

GROUPS = {"alpha": ["a1", "a2"], "beta": ["b1", "b2"], "gamma": ["c1", "c2"]}


def make(rows: int, seed: int, changed: frozenset[str] = frozenset()) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = [c for g in GROUPS.values() for c in g]
    df = pd.DataFrame(rng.normal(size=(rows, len(cols))), columns=cols)
    a = -1.5 * np.tanh(2 * df.a1) if "alpha" in changed else 1.5 * np.sin(2 * df.a1)
    df["y"] = a + 0.5 * df.a2 + df.b1 - 0.5 * df.b2 + 0.8 * df.c1 * df.c2
    df["y"] += 0.3 * rng.normal(size=rows)
    return df


def build(method: str = "stack") -> System:
    def gbdt() -> LGBMRegressor:
        return LGBMRegressor(n_estimators=40, num_leaves=15, n_jobs=1, verbose=-1)

    return System(
        "effects",
        target="y",
        task="regression",
        components=[
            *(Member(g, gbdt(), inputs=cols) for g, cols in GROUPS.items()),
            Ensemble("combine", weights=dict.fromkeys(GROUPS, 1.0), method=method),  # type: ignore[arg-type]
        ],
    )


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace.init(tmp_path / "ws") as workspace:
        yield workspace


@pytest.fixture
def predicted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(member, rows) of every member prediction made through the output tables."""
    calls: list[tuple[str, int]] = []
    real = outputs_module.member_output

    def counting(fitted: Any, frame: pd.DataFrame, *args: Any) -> np.ndarray:
        calls.append((fitted.spec.name, len(frame)))
        return real(fitted, frame, *args)

    monkeypatch.setattr(outputs_module, "member_output", counting)
    monkeypatch.setattr("regrow.cache.member_output", counting)
    return calls


def _services(ws: Workspace) -> Services:
    return Services(ws.catalog, ws.store, ws.snapshot)


def test_rows_are_keyed_by_content_in_any_order_and_subset() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 1.0], "b": ["x", "y", "z", "x"]})
    k1, k2 = row_keys(frame, ["a", "b"])
    table = OutputTable.empty().merge(
        k1, k2, np.array([[0.1, 0.9], [0.2, 0.8], [0.3, 0.7], [0.1, 0.9]])
    )
    assert table.rows == 3  # the repeated row is kept once
    part = frame.iloc[[2, 0]]
    found, values = table.lookup(*row_keys(part, ["a", "b"]))
    assert found.all()
    assert values[:, 0].round(6).tolist() == [0.3, 0.1]
    as_int = frame.assign(a=frame.a.astype(int))  # other types: other keys
    assert not table.lookup(*row_keys(as_int, ["a", "b"]))[0].any()
    again = OutputTable.from_bytes(table.to_bytes())
    assert again.values.dtype == np.float32
    assert again.rows == 3


def test_the_cache_predicts_each_row_once_and_reads_as_float32(predicted: list) -> None:  # type: ignore[type-arg]
    frame = make(300, 1)
    system = build("mean")
    from regrow.components.fitted import fit_component
    from regrow.model import FittedSystem

    fitted = {
        m.name: fit_component(m, frame, target="y", upstream={}, seed=0) for m in system.members
    }
    model = FittedSystem(system.spec(), fitted, artifacts={n: n[0] * 64 for n in fitted})
    cache = OutputCache()
    first = cache.member_outputs(model, frame.iloc[:200])
    second = cache.member_outputs(model, frame.iloc[100:])
    assert predicted == [(m, 200) for m in GROUPS] + [(m, 100) for m in GROUPS]
    direct = model.member_outputs(frame)["alpha"]
    assert np.array_equal(second["alpha"][:100], first["alpha"][100:])
    assert np.array_equal(first["alpha"], direct[:200].astype(np.float32).astype(float))


def test_a_stored_table_is_read_only_for_the_member_version_it_came_from() -> None:
    frame = make(200, 2)
    system = build("mean")
    from regrow.components.fitted import fit_component

    fitted = {
        m.name: fit_component(m, frame, target="y", upstream={}, seed=0) for m in system.members
    }
    artifacts = {"alpha": "a" * 64}
    key = output_key("alpha", fitted, artifacts, None)
    assert key is not None
    fake = OutputTable.empty().merge(*row_keys(frame, ["a1", "a2"]), np.full(len(frame), 42.0))
    known = KnownOutputs({key: fake}, artifacts)
    assert (known.output("alpha", frame, fitted, None) == 42.0).all()
    refitted = KnownOutputs({key: fake}, {"alpha": "b" * 64})  # another version of alpha
    assert not (refitted.output("alpha", frame, fitted, None) == 42.0).any()


def test_a_second_monitor_of_a_window_predicts_nothing_again(
    ws: Workspace,
    predicted: list,  # type: ignore[type-arg]
) -> None:
    v1 = ws.train(build("mean"), ws.snapshot(make(1500, 1), name="old")).version.ref
    window = ws.snapshot(make(600, 2, frozenset({"alpha"})), name="new")
    ws.monitor(v1, window)
    assert {name for name, _ in predicted} == {"alpha", "beta", "gamma"}
    predicted.clear()
    services = _services(ws)
    again = monitor_version(services, v1, window)
    assert predicted == []
    assert services.outputs.found >= 3 * 600
    assert again.performance is not None


def test_the_run_of_a_plan_reads_the_outputs_of_the_members_it_keeps(
    ws: Workspace,
    tmp_path: Path,
    predicted: list,  # type: ignore[type-arg]
) -> None:
    old, new = make(1500, 1), make(600, 2, frozenset({"alpha"}))
    v1 = ws.train(build(), ws.snapshot(old, name="old")).version.ref
    window = ws.snapshot(new, name="new")
    ws.monitor(v1, window)  # predicts every member on the window, and stores the rows
    predicted.clear()
    ran = ws.apply(v1, "new", [Refit("alpha")])
    assert ran.result.trained == ["alpha", "combine"]
    assert not [name for name, _ in predicted if name in ("beta", "gamma")]
    assert {"load", "run"} <= set(ran.timings)
    # The same run without stored outputs gives the same stack, to the bit.
    with Workspace.init(tmp_path / "other") as other:
        o1 = other.train(build(), other.snapshot(old, name="old")).version.ref
        other.snapshot(new, name="new")
        fresh = other.apply(o1, "new", [Refit("alpha")])
        mine = ws.load(ran.result.version.ref).components["combine"].estimator
        theirs = other.load(fresh.result.version.ref).components["combine"].estimator
        assert np.array_equal(mine.coef_, theirs.coef_)
        assert mine.intercept_ == theirs.intercept_


def test_an_evaluation_predicts_a_member_both_versions_share_once(
    ws: Workspace,
    predicted: list,  # type: ignore[type-arg]
) -> None:
    v1 = ws.train(build("mean"), ws.snapshot(make(1500, 1), name="old")).version.ref
    ws.snapshot(make(600, 2, frozenset({"alpha"})), name="new")
    v2 = ws.update(v1, "new", components=["alpha"]).version.ref
    holdout = ws.snapshot(make(500, 3, frozenset({"alpha"})), name="holdout")
    predicted.clear()
    events: list[Any] = []
    _, result = ws.evaluate(v2, holdout, baseline=v1, progress=events.append)
    assert sorted(name for name, _ in predicted) == ["alpha", "alpha", "beta", "gamma"]
    assert {"load", "predict", "compare", "record"} <= set(result.timings)
    assert [e.state for e in events if e.name == "predict"][-1] == "done"


def test_commands_that_record_nothing_store_no_outputs(ws: Workspace) -> None:
    v1 = ws.train(build("mean"), ws.snapshot(make(1500, 1), name="old")).version.ref
    window = ws.snapshot(make(600, 2, frozenset({"alpha"})), name="new")
    before = {f.key for f in ws.store.list_files()}
    ws.monitor(v1, window, record=False)
    assert {f.key for f in ws.store.list_files()} == before
    assert ws.catalog.outputs.artifacts() == set()


def test_doctor_keeps_the_stored_outputs(ws: Workspace) -> None:
    v1 = ws.train(build("mean"), ws.snapshot(make(1500, 1), name="old")).version.ref
    ws.monitor(v1, ws.snapshot(make(600, 2, frozenset({"alpha"})), name="new"))
    tables = ws.catalog.outputs.artifacts()
    assert len(tables) == 6  # 3 members on the window, and on the reference the estimators use
    report = ws.doctor(grace=0)
    assert report.ok, report.problems
    assert all(ws.store.exists(key) for key in tables)


def test_members_fitted_in_memory_are_predicted_and_not_shared() -> None:
    frame = make(100, 4)
    member = Member("m", LinearRegression(), inputs=["a1"])
    from regrow.components.fitted import fit_component
    from regrow.model import FittedSystem

    spec = System("s", target="y", task="regression", components=[member]).spec()
    model = FittedSystem(spec, {"m": fit_component(member, frame, target="y", upstream={}, seed=0)})
    cache = OutputCache()
    cache.member_outputs(model, frame)
    cache.member_outputs(model, frame)
    assert (cache.predicted, cache.found) == (200, 0)
