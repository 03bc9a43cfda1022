"""Prometheus metrics of the app: what is counted, by which labels, and bounded label values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from regrow import Workspace
from regrow.serve.metrics import Metrics

Body = Callable[..., dict[str, Any]]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def test_requests_rows_predictions_and_errors_are_counted(
    serve_home: Path, serve_client: Callable[..., TestClient], infer_body: Body
) -> None:
    client = serve_client(serve_home, log_predictions=True)
    for rows in (1, 3):
        assert client.post("/v2/models/shop/infer", json=infer_body(rows)).status_code == 200
    client.post("/v2/models/shop/infer", content=b"nope")
    client.post("/v2/models/no-such-model/infer", json=infer_body(1))
    client.get("/v2/models/shop")
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    with Workspace.open(serve_home) as ws:
        member = ws.catalog.get_system_version("shop:v1").manifest["buyer"]
    assert value(text, "regrow_requests_total", model="shop", endpoint="infer", code="200") == 2
    assert value(text, "regrow_requests_total", model="shop", endpoint="infer", code="400") == 1
    assert value(text, "regrow_errors_total", model="shop", endpoint="infer", code="400") == 1
    assert value(text, "regrow_errors_total", model="unknown", endpoint="infer", code="404") == 1
    assert value(text, "regrow_requests_total", model="shop", endpoint="metadata", code="200") == 1
    assert value(text, "regrow_request_duration_seconds_count", model="shop", endpoint="infer") == 3
    assert value(text, "regrow_rows_total", model="shop", lane="main") == 4
    assert value(
        text, "regrow_predictions_total", model="shop", lane="main", system_version="shop:v1",
        member="buyer", member_version=member,
    ) == 4  # fmt: skip
    assert value(text, "regrow_batch_rows_sum", model="shop") == 4
    assert value(text, "regrow_rollout_weight", model="shop", lane="main") == 1.0
    assert value(text, "regrow_served_version", model="shop", alias="champion",
                 system_version="shop:v1") == 1.0  # fmt: skip
    logged = sum(value(text, "regrow_prediction_log_rows", state=s) for s in ("logged", "pending"))
    assert logged == 4  # written or waiting: the 4 rows scored
    assert value(text, "regrow_prediction_log_rows", state="dropped") == 0
    assert "no-such-model" not in text


def test_label_values_come_from_bounded_sets() -> None:
    metrics = Metrics(["churn"])
    for i in range(50):
        metrics.request(f"guess-{i}", "infer", 404, 0.001)
        metrics.feedback(f"guess-{i}", 1)
    text = metrics.render().decode()
    assert value(text, "regrow_requests_total", model="unknown", endpoint="infer", code="404") == 50
    assert value(text, "regrow_feedback_labels_total", model="unknown") == 50
    assert "guess-" not in text


def test_swaps_and_feedback_are_counted(tmp_path: Path) -> None:
    metrics = Metrics(["churn"])
    metrics.swap("churn", "champion", "swapped")
    metrics.swap("churn", "champion", "refused")
    metrics.serving("churn", "champion", "churn:v2", None)
    metrics.serving("churn", "champion", "churn:v3", "churn:v2")
    metrics.feedback("churn", 5)
    text = metrics.render().decode()
    assert (
        value(text, "regrow_swaps_total", model="churn", alias="champion", outcome="swapped") == 1
    )
    assert (
        value(text, "regrow_swaps_total", model="churn", alias="champion", outcome="refused") == 1
    )
    assert value(text, "regrow_served_version", model="churn", alias="champion",
                 system_version="churn:v2") == 0  # fmt: skip
    assert value(text, "regrow_served_version", model="churn", alias="champion",
                 system_version="churn:v3") == 1  # fmt: skip
    assert value(text, "regrow_feedback_labels_total", model="churn") == 5


def test_each_app_has_its_own_registry(
    serve_home: Path, serve_client: Callable[..., TestClient], infer_body: Body
) -> None:
    first, second = serve_client(serve_home), serve_client(serve_home)
    first.post("/v2/models/shop/infer", json=infer_body(1))
    assert value(first.get("/metrics").text, "regrow_rows_total", model="shop", lane="main") == 1
    assert value(second.get("/metrics").text, "regrow_rows_total", model="shop", lane="main") == 0
