"""The short scoring path (regrow.serve.direct): taken only where it gives the system's outputs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from regrow import Ensemble, Member, System, Workspace
from regrow.config import ServeSettings
from regrow.serve.app import create_app


def numbers(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "n": rng.integers(0, 5, rows)})
    frame["y"] = (x[:, 0] + 0.5 * x[:, 1] - 0.2 * frame["n"] > 0).astype(int)
    frame["v"] = x[:, 0] * 2 + frame["n"]
    return frame


SYSTEMS: dict[str, Callable[[], System]] = {
    "vote": lambda: System("vote", target="y", components=[
        Member("trees", HistGradientBoostingClassifier(max_iter=20), inputs=["a", "b", "n"]),
        Member("linear", LogisticRegression(), inputs=["n", "a"]),
        Ensemble("mean", weights={"trees": 2.0, "linear": 1.0}),
    ]),
    "value": lambda: System("value", target="v", task="regression", components=[
        Member("trees", HistGradientBoostingRegressor(max_iter=20), inputs=["a", "n"]),
        Member("linear", LinearRegression(), inputs=["b", "n", "a"]),
        Ensemble("mean", weights={"trees": 1.0, "linear": 1.0}),
    ]),
    "piped": lambda: System("piped", target="y", components=[
        Member("m", make_pipeline(StandardScaler(), LogisticRegression()), inputs=["a", "b"]),
    ]),
}  # fmt: skip


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("numbers") / "ws"
    with Workspace.init(home) as ws:
        for name, build in SYSTEMS.items():
            target = "v" if name == "value" else "y"
            snap = ws.snapshot(numbers(200, 0).drop(columns=[{"v": "y", "y": "v"}[target]]),
                               name=name)  # fmt: skip
            version = ws.train(build(), snap).version
            ws.catalog.move_alias(name, "champion", version.id, reason="test")
    return home


@pytest.fixture(scope="module")
def client(home: Path) -> Iterator[TestClient]:
    app = create_app(home, ServeSettings(log_predictions=False))
    with TestClient(app) as c:
        yield c


def request(frame: pd.DataFrame, names: list[str]) -> dict[str, Any]:
    data = frame[names].to_numpy().tolist()
    return {"inputs": [{"name": "x", "shape": [len(frame), len(names)], "datatype": "FP64",
                        "data": data, "parameters": {"columns": names}}]}  # fmt: skip


@pytest.mark.parametrize(("system", "direct"), [("vote", True), ("value", True), ("piped", False)])
def test_the_short_path_is_taken_where_it_agrees_and_outputs_are_the_systems(
    client: TestClient, home: Path, system: str, direct: bool
) -> None:
    state = client.app.state.regrow  # type: ignore[attr-defined]
    served = next(s for s in state.host.slots if s.target.system == system).current
    assert (served.direct is not None) is direct
    names = [t["name"] for t in client.get(f"/v2/models/{system}").json()["inputs"]]
    rows = numbers(7, 5)
    body = client.post(f"/v2/models/{system}/infer", json=request(rows, names)).json()
    with Workspace.open(home) as ws:
        model = ws.load(f"{system}@champion")
    if system == "value":
        np.testing.assert_allclose(body["outputs"][0]["data"], model.predict(rows), rtol=1e-12)
    else:
        assert body["outputs"][0]["data"] == model.predict(rows).tolist()
        np.testing.assert_allclose(
            np.reshape(body["outputs"][1]["data"], (7, 2)), model.predict_proba(rows), rtol=1e-12
        )


def test_a_graph_with_a_transform_is_scored_through_the_system(
    serve_home: Path, serve_client: Callable[..., TestClient]
) -> None:
    client = serve_client(serve_home)
    slot = client.app.state.regrow.host.slots[0]  # type: ignore[attr-defined]
    assert slot.current.direct is None  # shop one-hot encodes its plan
