"""A run stops once its components used more CPU than its budget, and resumes when run again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from regrow import Ensemble, Member, System, Workspace
from regrow.errors import RunError
from regrow.run.runner import execute, full_bindings


def _system() -> System:
    forests = [
        Member(f"forest{i}", RandomForestClassifier(n_estimators=40), inputs=["a", "b"])
        for i in range(3)
    ]
    return System(
        "budgeted",
        target="y",
        components=[
            *forests,
            Member("linear", LogisticRegression(), inputs=["a", "b"]),
            Ensemble("all", [m.name for m in forests] + ["linear"]),
        ],
    )


def test_a_run_over_its_cpu_budget_stops_and_resumes_where_it_stopped(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 2))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": (x.sum(axis=1) > 0).astype(int)})
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(frame, name="d")
        system = _system()
        bindings = full_bindings(system, snap, 0)

        def run(budget: float | None) -> object:
            return execute(ws.catalog, ws.store, system, bindings, kind="train", run_seed=0,
                           parent=None, workers=1, cpu_budget=budget)  # fmt: skip

        expected = r"run stopped over its budget: the 1 component\(s\) it fitted used [0-9.]+ CPU s"
        with pytest.raises(RunError, match=expected + r", over 1e-09 CPU s") as stopped:
            run(1e-9)
        assert "run it again to resume" in (stopped.value.hint or "")
        failed = ws.catalog.list_runs("budgeted")[0]
        assert failed.status == "failed"
        assert ws.catalog.list_system_versions("budgeted") == []  # no version from half a run
        result = run(None)
        assert result.created_version  # type: ignore[attr-defined]
        reused = [n for n, o in result.components.items() if o.action == "reused"]  # type: ignore[attr-defined]
        assert len(reused) == 1  # the one component the stopped run finished
