"""What a user trying the served loop (serve, feedback, watch, rollouts) ran into.

- A request with a null in an input the model cannot take was answered "Input X contains
  NaN" (scikit-learn's words), naming neither the input nor the row.
- A client that reuses a request id: `regrow window --labelled` gives a label to the latest
  prediction under the id, but a rollout's evidence counted it against every prediction of
  that id (a wrong loss for the request).
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder

from regrow import Member, System, Transform, Workspace
from regrow.config import ServeSettings
from regrow.rollout.evidence import request_losses

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*install `httpx2`", category=UserWarning)
    from fastapi.testclient import TestClient


def _trained(home: Path) -> None:
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50.0, 15.0, n),
            "plan": rng.choice(["free", "pro"], n),
        }
    )
    frame["bought"] = ((frame["income"] > 50) ^ (frame["plan"] == "pro")).astype(int)
    system = System(
        "shop",
        target="bought",
        components=[
            Transform("plan_oh", OneHotEncoder(handle_unknown="ignore"), inputs=["plan"]),
            Member("lr", LogisticRegression(), inputs=["age", "income", "plan_oh"]),
        ],
    )
    with Workspace.init(home) as ws:
        version = ws.train(system, ws.snapshot(frame, name="shop")).version
        ws.catalog.move_alias("shop", "champion", version.id, reason="test")


def _request(age: list[Any], income: list[Any], plan: list[Any]) -> dict[str, Any]:
    n = len(age)
    return {
        "id": "r1",
        "inputs": [
            {"name": "age", "shape": [n], "datatype": "INT64", "data": age},
            {"name": "income", "shape": [n], "datatype": "FP64", "data": income},
            {"name": "plan", "shape": [n], "datatype": "BYTES", "data": plan},
        ],
    }


def test_a_null_the_model_cannot_take_is_named_by_input_and_row(tmp_path: Path) -> None:
    from regrow.serve.app import create_app

    home = tmp_path / "ws"
    _trained(home)
    app = create_app(home, ServeSettings(log_predictions=False), models=["shop@champion"])
    with TestClient(app, raise_server_exceptions=False) as client:
        ok = client.post(
            "/v2/models/shop/infer", json=_request([30, 40], [50.0, 60.0], ["free", "pro"])
        )
        assert ok.status_code == 200, ok.text
        bad = client.post(
            "/v2/models/shop/infer",
            json=_request([30, 40, 50], [50.0, None, 60.0], ["free", "pro", "pro"]),
        )
        assert bad.status_code == 400, bad.text
        error = bad.json()["error"]
        assert "(nulls: input 'income' in row 1)" in error, error
        assert "Default adapter" in error, error
        assert "Traceback" not in error


def test_a_reused_request_id_labels_only_its_latest_prediction() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    later = at + timedelta(seconds=5)
    # the same id sent twice: first predicted 1, then (other inputs) 0; the label is 0
    rows = [
        {"request_id": "x", "row": 0, "served_at": at, "prediction": 1, "classifier": True},
        {"request_id": "x", "row": 0, "served_at": later, "prediction": 0, "classifier": True},
    ]
    assert request_losses(rows, {("x", 0): 0}, None) == {"x": (0.0, later)}
    # in whatever order the log gives them
    assert request_losses(rows[::-1], {("x", 0): 0}, None) == {"x": (0.0, later)}
    # rows of one request keep their own labels
    one = [
        {"request_id": "y", "row": n, "served_at": at, "prediction": 1, "classifier": True}
        for n in range(4)
    ]
    labels = {("y", 0): 1, ("y", 1): 0, ("y", 2): 1}
    assert request_losses(one, labels, None) == {"y": (1 / 3, at)}
