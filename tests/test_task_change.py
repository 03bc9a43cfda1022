"""A system's task is part of what its versions share: changing it under the same name is
refused at training (it reused every classifier as a regressor, and a later evaluation blamed
"versions of another system")."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

from regrow import Member, System, Workspace
from regrow.demo import make_window
from regrow.errors import ConfigError


def _system(task: str) -> System:
    member = Member("m", LogisticRegression(), inputs=["tenure_months"])
    return System("churn", target="churned", task=task, components=[member])  # type: ignore[arg-type]


def test_changing_a_systems_task_is_refused_before_anything_is_trained(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(make_window(300, start="2026-01-01", days=30, seed=0), name="d")
        ws.train(_system("classification"), snap, workers=1)
        runs = len(ws.catalog.list_runs())
        with pytest.raises(ConfigError, match="is a classification system \\(churn:v1") as info:
            ws.train(_system("regression"), snap, workers=1)
        assert "a name of its own" in str(info.value.hint)
        assert len(ws.catalog.list_runs()) == runs
        assert [v.ref for v in ws.catalog.list_system_versions("churn")] == ["churn:v1"]
