"""A stack refitted in a partial update learns its coefficients on a held-out fifth of the
window, predicted by one copy of each refitted member fitted on the other four fifths; a full
training (and a small window) cross-fits. Either way the stack is the same whether the kept
members' outputs were stored or predicted, after an interrupted run is resumed, and when the
version is reproduced; the component's record says which rows it learned on."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMRegressor

from regrow import Ensemble, Member, System, Workspace
from regrow.components.stack_rows import MIN_HELD_OUT_ROWS, held_out_rows
from regrow.errors import RunError
from regrow.plan.actions import Refit
from regrow.reproduce import reproduce
from regrow.run.backends import LocalBackend
from regrow.run.tasks import TaskSpec

GROUPS = {"alpha": ["a1", "a2"], "beta": ["b1", "b2"], "gamma": ["c1", "c2"]}


def make(rows: int, seed: int, changed: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = [c for g in GROUPS.values() for c in g]
    df = pd.DataFrame(rng.normal(size=(rows, len(cols))), columns=cols)
    a = -1.5 * np.tanh(2 * df.a1) if changed else 1.5 * np.sin(2 * df.a1)
    df["y"] = a + 0.5 * df.a2 + df.b1 - 0.5 * df.b2 + 0.8 * df.c1 * df.c2
    df["y"] += 0.3 * rng.normal(size=rows)
    return df


def build() -> System:
    def gbdt() -> LGBMRegressor:
        return LGBMRegressor(n_estimators=30, num_leaves=7, n_jobs=1, verbose=-1)

    return System(
        "effects",
        target="y",
        task="regression",
        components=[
            *(Member(g, gbdt(), inputs=cols) for g, cols in GROUPS.items()),
            Ensemble("stack", weights=dict.fromkeys(GROUPS, 1.0), method="stack"),
        ],
    )


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of rows of every LightGBM fit, in order."""
    rows: list[int] = []
    fit = LGBMRegressor.fit

    def counted(self: LGBMRegressor, X: Any, y: Any, *args: Any, **kwargs: Any) -> Any:
        rows.append(len(X))
        return fit(self, X, y, *args, **kwargs)

    monkeypatch.setattr(LGBMRegressor, "fit", counted)
    return rows


def trained(home: Path, window_rows: int) -> tuple[Workspace, str]:
    ws = Workspace.init(home)
    v1 = ws.train(build(), ws.snapshot(make(1200, 1), name="old")).version.ref
    ws.snapshot(make(window_rows, 2, changed=True), name="new")
    return ws, v1


def stack_info(ws: Workspace, ref: str) -> dict[str, Any]:
    version = ws.catalog.get_system_version(ref)
    record = ws.catalog.get_component_versions([version.manifest["stack"]])
    return dict(next(iter(record.values())).info)


def coefficients(ws: Workspace, ref: str) -> tuple[np.ndarray, float]:
    stacker = ws.load(ref).components["stack"].estimator
    return np.asarray(stacker.coef_), float(stacker.intercept_)


def test_held_out_rows_are_a_fifth_drawn_from_the_seed() -> None:
    rows = held_out_rows(1500, seed=3)
    assert len(rows) == 300
    assert len(set(rows.tolist())) == 300
    assert np.array_equal(rows, held_out_rows(1500, seed=3))
    assert not np.array_equal(rows, held_out_rows(1500, seed=4))


def test_a_partial_update_learns_the_stack_on_held_out_rows_with_one_copy(
    tmp_path: Path, fits: list[int]
) -> None:
    ws, v1 = trained(tmp_path / "ws", 1500)
    with ws:
        ws.monitor(v1, "new")  # stores the kept members' outputs on the window
        fits.clear()
        ran = ws.apply(v1, "new", [Refit("alpha")])
        assert ran.result.trained == ["alpha", "stack"]
        assert fits == [1500, 1200]  # the member on every row, one copy on four fifths
        info = stack_info(ws, ran.result.version.ref)
        assert info["held_out"] == ["alpha"]
        assert info["held_out_rows"] == 300
        assert info["cross_fitted"] == []
        assert info["n_rows"] == 1500


def test_a_full_training_and_a_small_window_cross_fit(tmp_path: Path, fits: list[int]) -> None:
    assert round(0.2 * 600) < MIN_HELD_OUT_ROWS
    ws, v1 = trained(tmp_path / "ws", 600)
    with ws:
        info = stack_info(ws, v1)
        assert info["cross_fitted"] == ["alpha", "beta", "gamma"]
        assert "held_out" not in info
        fits.clear()
        ran = ws.apply(v1, "new", [Refit("alpha")])
        assert fits == [600, 300, 300]  # the member, then two copies on half the rows each
        info = stack_info(ws, ran.result.version.ref)
        assert info["cross_fitted"] == ["alpha"]
        assert "held_out" not in info


class FailsTheStack(LocalBackend):
    """The local backend, whose stack task fails (as a killed worker would)."""

    def run(self, tasks: Sequence[TaskSpec]) -> Iterator[tuple[TaskSpec, object]]:  # type: ignore[override]
        for task, outcome in super().run(tasks):
            yield task, RuntimeError("worker lost") if task.name == "stack" else outcome


def test_the_held_out_stack_is_the_same_stored_or_predicted_resumed_and_reproduced(
    tmp_path: Path,
) -> None:
    ws, v1 = trained(tmp_path / "ws", 1500)
    with ws:
        ws.monitor(v1, "new")
        mine = ws.apply(v1, "new", [Refit("alpha")]).result.version.ref
        coef, intercept = coefficients(ws, mine)
        report = reproduce(ws, mine)
        assert report.reproduced, report.as_dict()

    other, o1 = trained(tmp_path / "other", 1500)  # no stored outputs: every one predicted
    with other:
        theirs = other.apply(o1, "new", [Refit("alpha")]).result.version.ref
        assert np.array_equal(coefficients(other, theirs)[0], coef)
        assert coefficients(other, theirs)[1] == intercept

    third, t1 = trained(tmp_path / "third", 1500)
    with third:
        with pytest.raises(RunError, match="worker lost"):
            third.apply(t1, "new", [Refit("alpha")], backend=FailsTheStack())
        plan = third.catalog.list_plans("effects")[0]
        resumed = third.run_plan(plan.id)
        assert resumed.result.reused == ["alpha", "beta", "gamma"]
        assert resumed.result.trained == ["stack"]
        assert np.array_equal(coefficients(third, resumed.result.version.ref)[0], coef)


def test_a_classifier_stack_learns_on_held_out_rows_after_a_partial_update(
    tmp_path: Path,
) -> None:
    from sklearn.linear_model import LogisticRegression

    def binary(rows: int, seed: int, changed: bool = False) -> pd.DataFrame:
        df = make(rows, seed, changed)
        df["y"] = (df["y"] > df["y"].median()).astype(int)
        return df

    system = System(
        "labels",
        target="y",
        task="classification",
        components=[
            *(Member(g, LogisticRegression(), inputs=cols) for g, cols in GROUPS.items()),
            Ensemble("stack", weights=dict.fromkeys(GROUPS, 1.0), method="stack"),
        ],
    )
    with Workspace.init(tmp_path / "ws") as ws:
        v1 = ws.train(system, ws.snapshot(binary(1200, 1), name="old")).version.ref
        window = ws.snapshot(binary(1000, 2, changed=True), name="new")
        ran = ws.apply(v1, window, [Refit("alpha")])
        v2 = ran.result.version.ref
        info = stack_info(ws, v2)
        assert info["held_out"] == ["alpha"]
        assert info["held_out_rows"] == 200
        assert info["classes"] == [0, 1]
        proba = ws.load(v2).predict_proba(binary(50, 3, changed=True))
        assert proba.shape == (50, 2)
        assert np.allclose(proba.sum(axis=1), 1.0)
