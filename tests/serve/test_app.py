"""The HTTP app over a workspace: every Open Inference Protocol endpoint, and its errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from regrow import Workspace
from regrow.config import ServeSettings
from regrow.serve.app import create_app

Body = Callable[..., dict[str, Any]]
ONLY_AGE = b'{"inputs": [{"name": "age", "shape": [1], "datatype": "INT64", "data": [3]}]}'


@pytest.fixture(scope="module")
def client(module_serve_home: Path) -> Iterator[TestClient]:
    """One app for the read-only tests of this module (no prediction log)."""
    app = create_app(module_serve_home, ServeSettings(log_predictions=False, max_batch_rows=50))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_health_and_server_metadata(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    meta = client.get("/v2").json()
    assert meta["name"] == "regrow"
    assert meta["extensions"] == ["regrow_feedback", "regrow_prediction_log"]


def test_model_metadata_lists_inputs_outputs_and_the_version_served(client: TestClient) -> None:
    meta = client.get("/v2/models/shop").json()
    assert meta["name"] == "shop"
    assert meta["platform"] == "regrow"
    assert meta["versions"] == ["champion", "v1"]
    assert meta["inputs"] == [
        {"name": "age", "datatype": "INT64", "shape": [-1]},
        {"name": "income", "datatype": "FP64", "shape": [-1]},
        {"name": "plan", "datatype": "BYTES", "shape": [-1]},
    ]
    assert meta["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP64", "shape": [-1, 2]},
    ]
    assert meta["parameters"] == {
        "system_version": "shop:v1",
        "alias": "champion",
        "classes": [0, 1],
    }
    for version in ("champion", "v1", "1"):
        assert client.get(f"/v2/models/shop/versions/{version}").json() == meta


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/shop/ready",
        "/v2/models/shop/versions/champion/ready",
        "/v2/models/shop/versions/1/ready",
    ],
)
def test_model_readiness(client: TestClient, path: str) -> None:
    assert client.get(path).json() == {"name": "shop", "ready": True}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/v2/models/nope", "unknown model 'nope'"),
        ("/v2/models/shop/versions/v2", "has no version 'v2' here"),
        ("/v2/models/shop/versions/challenger/ready", "has no version 'challenger'"),
        ("/v2/models/nope/ready", "unknown model"),
    ],
)
def test_unknown_models_and_versions_are_404s(client: TestClient, path: str, message: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert message in response.json()["error"]


def test_infer_answers_with_the_models_own_outputs(
    client: TestClient, module_serve_home: Path, infer_body: Body, shop_rows: Any
) -> None:
    response = client.post("/v2/models/shop/infer", json=infer_body(5, request_id="r-5"))
    assert response.status_code == 200
    body = response.json()
    assert (body["model_name"], body["model_version"], body["id"]) == ("shop", "champion", "r-5")
    assert body["parameters"] == {"lane": "main", "system_version": "shop:v1"}
    predict, proba = body["outputs"]
    assert (predict["name"], predict["datatype"], predict["shape"]) == ("predict", "INT64", [5])
    assert (proba["name"], proba["datatype"], proba["shape"]) == ("probabilities", "FP64", [5, 2])
    with Workspace.open(module_serve_home) as ws:
        model = ws.load("shop:v1")
    frame = shop_rows(5, 7)[["age", "income", "plan"]]
    assert predict["data"] == model.predict(frame).tolist()
    np.testing.assert_allclose(np.reshape(proba["data"], (5, 2)), model.predict_proba(frame))


def test_a_request_without_an_id_gets_one_and_each_path_names_its_version(
    client: TestClient, infer_body: Body
) -> None:
    seen = set()
    for path, version in [
        ("/v2/models/shop/infer", "champion"),
        ("/v2/models/shop/versions/champion/infer", "champion"),
        ("/v2/models/shop/versions/v1/infer", "v1"),
        ("/v2/models/shop/versions/1/infer", "1"),
    ]:
        body = client.post(path, json=infer_body(1)).json()
        assert body["model_version"] == version
        assert len(body["id"]) == 32
        seen.add(body["id"])
    assert len(seen) == 4


def test_a_2d_tensor_with_columns_and_integral_floats_for_ints(client: TestClient) -> None:
    request = {
        "id": "flat",
        "inputs": [
            {
                "name": "features",
                "shape": [2, 3],
                "datatype": "BYTES",
                "parameters": {"columns": ["plan", "age", "income"]},
                "data": [["pro", 30.0, 55.5], ["free", 61, 20]],
            }
        ],
        "outputs": [{"name": "probabilities"}],
    }
    body = client.post("/v2/models/shop/infer", json=request).json()
    assert [o["name"] for o in body["outputs"]] == ["probabilities"]
    per_feature = {
        "inputs": [
            {"name": "age", "shape": [2, 1], "datatype": "INT64", "data": [[30], [61]]},
            {"name": "income", "shape": [2], "datatype": "FP64", "data": [55.5, 20]},
            {"name": "plan", "shape": [2], "datatype": "BYTES", "data": ["pro", "free"]},
        ]
    }
    other = client.post("/v2/models/shop/infer", json=per_feature).json()
    assert body["outputs"][0]["data"] == other["outputs"][1]["data"]


@pytest.mark.parametrize(
    ("content", "headers", "message"),
    [
        (b"{not json", {}, "the body is not JSON"),
        (b"[1, 2]", {}, "must be a JSON object"),
        (b'{"inputs": []}', {"Inference-Header-Content-Length": "14"}, "binary tensor extension"),
        (ONLY_AGE, {}, "missing input(s) ['income', 'plan']"),
    ],
)
def test_bad_requests_are_400s_with_an_error_body(
    client: TestClient, content: bytes, headers: dict[str, str], message: str
) -> None:
    response = client.post("/v2/models/shop/infer", content=content, headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert message in response.json()["error"]


def test_a_value_of_the_wrong_type_is_a_400_naming_it(client: TestClient, infer_body: Body) -> None:
    request = infer_body(2)
    request["inputs"][0]["data"] = [30, "thirty"]
    response = client.post("/v2/models/shop/infer", json=request)
    assert response.status_code == 400
    assert "input 'age' is INT64: 'thirty'" in response.json()["error"]


def test_more_rows_than_max_batch_rows_is_a_413(client: TestClient, infer_body: Body) -> None:
    response = client.post("/v2/models/shop/infer", json=infer_body(51))
    assert response.status_code == 413
    assert "51 rows, over the limit of 50" in response.json()["error"]


def test_a_body_over_max_request_bytes_is_a_413_announced_or_streamed(
    serve_home: Path, serve_client: Callable[..., TestClient], infer_body: Body
) -> None:
    client = serve_client(serve_home, max_request_bytes=200)
    assert client.post("/v2/models/shop/infer", json=infer_body(1)).status_code == 200
    big = infer_body(20)
    response = client.post("/v2/models/shop/infer", json=big)
    assert response.status_code == 413
    assert "over the limit of 200" in response.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: read until the limit is passed
        yield b'{"inputs": ['
        yield b" " * 300
        yield b"]}"

    streamed = client.post("/v2/models/shop/infer", content=chunks())
    assert streamed.status_code == 413


def test_unknown_paths_and_methods_answer_an_error_body(client: TestClient) -> None:
    missing = client.get("/v3/nothing")
    assert (missing.status_code, missing.json()) == (404, {"error": "no endpoint '/v3/nothing'"})
    wrong = client.get("/v2/models/shop/infer")
    assert wrong.status_code == 405
    assert "GET is not allowed" in wrong.json()["error"]


def test_a_model_still_loading_is_a_503(
    serve_home: Path, serve_client: Callable[..., TestClient], infer_body: Body
) -> None:
    client = serve_client(serve_home, load="later")
    assert client.get("/v2/health/live").json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert (ready.status_code, ready.json()) == (503, {"ready": False})
    assert client.get("/v2/models/shop/ready").status_code == 503
    assert client.get("/v2/models/shop/ready").json() == {"name": "shop", "ready": False}
    response = client.post("/v2/models/shop/infer", json=infer_body(1))
    assert response.status_code == 503
    assert "not loaded yet" in response.json()["error"]
    client.app.state.regrow.host.load()  # type: ignore[attr-defined]
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.post("/v2/models/shop/infer", json=infer_body(1)).status_code == 200


def test_models_are_served_by_config_or_argument(
    serve_home: Path, trained: Any, serve_client: Callable[..., TestClient]
) -> None:
    with Workspace.open(serve_home) as ws:
        ws.catalog.move_alias("shop", "challenger", trained.versions["v2"], reason="test")
    client = serve_client(serve_home, models=["shop@challenger", "shop:v1"])
    meta = client.get("/v2/models/shop").json()
    assert meta["versions"] == ["challenger", "v2", "v1"]
    assert meta["parameters"]["system_version"] == "shop:v2"
    pinned = client.get("/v2/models/shop/versions/v1").json()
    assert pinned["parameters"] == {"system_version": "shop:v1", "alias": None, "classes": [0, 1]}


def test_predictions_are_logged_and_flushed_when_the_app_stops(
    serve_home: Path, infer_body: Body
) -> None:
    app = create_app(serve_home, ServeSettings(log_predictions=True))
    with TestClient(app) as client:
        for i in range(3):
            client.post("/v2/models/shop/infer", json=infer_body(2, request_id=f"log-{i}"))
    with Workspace.open(serve_home) as ws:
        files = ws.catalog.predictions.files("shop")
        assert sum(f.rows for f in files) == 6
        assert sum(f.versions.get("shop:v1", 0) for f in files) == 6
        logged = pd.concat(pq_frame(ws.store.get(f.artifact)) for f in files)
    assert sorted(set(logged["request_id"])) == ["log-0", "log-1", "log-2"]
    assert sorted(logged["row"].tolist()) == [0, 0, 0, 1, 1, 1]
    assert set(logged["lane"]) == {"main"}


def pq_frame(data: bytes) -> pd.DataFrame:
    import io

    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data)).to_pandas()


def test_the_openapi_document_describes_every_endpoint(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert {p for p in doc["paths"] if not p.startswith("/api/ui/")} == {  # /api/ui: tests/ui
        "/v2/health/live", "/v2/health/ready", "/v2", "/v2/models/{model_name}",
        "/v2/models/{model_name}/versions/{model_version}", "/v2/models/{model_name}/ready",
        "/v2/models/{model_name}/versions/{model_version}/ready", "/v2/models/{model_name}/infer",
        "/v2/models/{model_name}/versions/{model_version}/infer", "/regrow/v1/feedback", "/metrics",
    }  # fmt: skip
    infer = doc["paths"]["/v2/models/{model_name}/infer"]["post"]
    assert infer["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/InferRequest"
    }
    assert set(infer["responses"]) == {"200", "400", "404", "413", "503"}
    assert "422" not in str(doc)
    assert {"InferRequest", "InferResponse", "ErrorBody", "FeedbackRequest"} <= set(
        doc["components"]["schemas"]
    )
    feedback = doc["paths"]["/regrow/v1/feedback"]["post"]
    assert feedback["security"] == [{"bearer": []}]


def test_a_null_the_model_cannot_take_is_a_one_line_400(
    client: TestClient, infer_body: Body
) -> None:
    # the body quoted scikit-learn's whole multi-line advice, links included
    request = infer_body(2)
    column = next(i for i in request["inputs"] if i["datatype"] == "FP64")
    column["data"] = [None, *column["data"][1:]]
    response = client.post("/v2/models/shop/infer", json=request)
    assert response.status_code == 400
    error = response.json()["error"]
    assert "\n" not in error
    assert "scikit-learn.org" not in error
