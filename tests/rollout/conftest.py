"""A real workspace for rollout tests: toy:v1 (x1), toy:v2 and toy:v3 (x1, x2), with
``champion``, ``live`` and ``prod`` on toy:v1, and a helper that logs predictions with their
labels. Its policy protects only ``prod`` (a rollout serving a candidate to every request of a
protected alias needs the promotion rules at its start): the analysis tests roll out on
``champion`` and ``live``, the governance tests on ``prod``."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from regrow import Member, System, Workspace
from regrow.plan.policy import Policy
from regrow.serve.predlog import PredictionLog
from regrow.testing import routed_by

Log = Callable[..., None]


def _data(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2))
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": (x[:, 0] + x[:, 1] > 0).astype(int)})


@pytest.fixture(scope="package")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace template with toy:v1, v2 and v3 (trained once)."""
    home = tmp_path_factory.mktemp("rollout") / "ws"
    with Workspace.init(home) as ws:
        train = ws.snapshot(_data(300, 0), name="train")
        for inputs, c in ((["x1"], 1.0), (["x1", "x2"], 1.0), (["x1", "x2"], 0.1)):
            system = System("toy", target="y", components=[
                Member("m", LogisticRegression(C=c), inputs=inputs)])  # fmt: skip
            ws.train(system, train)
    return home


@pytest.fixture
def ws(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    monkeypatch.delenv("REGROW_TOKEN", raising=False)
    home = tmp_path / "ws"
    shutil.copytree(trained, home)
    with Workspace.open(home) as workspace:
        workspace.set_policy(Policy.from_dict({"promotion": {"protected": ["prod"]}}))
        for alias in ("champion", "live", "prod"):
            workspace.catalog.move_alias(
                "toy", alias, workspace.catalog.get_system_version("toy:v1").id
            )
        yield workspace


@pytest.fixture
def log(ws: Workspace) -> Log:
    """``log(at, lane, version, ids, wrong, labels=True, x1=None)``: log ``ids`` served by
    ``version`` in ``lane``, predicting 1 (0 for ids in ``wrong``); label them 1 with
    ``labels``; ``x1`` gives each row's logged input ``x1`` (default 0)."""

    def write(
        at: datetime,
        lane: str,
        version: str,
        ids: list[str],
        wrong: set[str],
        *,
        labels: bool = True,
        x1: list[float] | None = None,
    ) -> None:
        n = len(ids)
        predicted = [0 if i in wrong else 1 for i in ids]
        inputs = pd.DataFrame({"x1": x1 if x1 is not None else [0.0] * n, "x2": [0.0] * n})
        predlog = PredictionLog(ws.catalog, ws.store, flush_seconds=60)
        predlog.record(system="toy", version=version, lane=lane, request_ids=ids, rows=[0] * n,
                       inputs=inputs, outputs={"predict": predicted, "probabilities": [
                           [1.0 - p, float(p)] for p in predicted]},
                       classes=[0, 1], at=at, rollout=routed_by(ws, "toy"))  # fmt: skip
        predlog.close()
        if labels:
            ws.feedback("toy", [(i, 0, 1) for i in ids])

    return write
