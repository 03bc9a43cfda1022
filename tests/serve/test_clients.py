"""Three real Open Inference Protocol clients against a live `regrow serve` on localhost.

The server is ``regrow serve`` in a subprocess, serving ``shop@champion`` (``shop:v1``) of the
``trained`` fixture: inputs ``age`` (INT64), ``income`` (FP64) and ``plan`` (BYTES); outputs
``predict`` (INT64) and ``probabilities`` (FP64, ``[-1, 2]``). Each client checks health and
readiness, reads metadata where it can, and infers; the predictions must equal
``Workspace.load("shop@champion")`` on the same rows, not just come back with a 200.

- ``tritonclient.http`` (its URL has no scheme), with ``binary_data=False`` on inputs and
  requested outputs: the server speaks JSON tensors only, and says so with a 400 to a binary
  request.
- ``open-inference-openapi``: its pydantic models turn every number into a float, so INT64
  inputs go out as ``30.0`` (which the protocol lets the server accept) and INT64 outputs come
  back as floats.
- kserve's ``InferenceRESTClient`` (0.21, ``protocol="v2"``): kserve pins ``pandas<3``, so it
  runs in a venv of its own (:mod:`_client_venv`) and drives the server from
  ``_kserve_client.py``, printing what it saw as JSON. When that venv cannot be built, the kserve
  test is skipped on a laptop and fails in CI.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from open_inference.openapi import InferenceRequest, RequestInput, RequestOutput
from open_inference.openapi.client import OpenInferenceClient
from open_inference.openapi.core.api_error import ApiError
from tritonclient.utils import InferenceServerException

from regrow import Workspace

from ._client_venv import VenvUnavailable, ensure_kserve_venv, isolated_env

KSERVE_SCRIPT = Path(__file__).with_name("_kserve_client.py")
INPUTS = [
    {"name": "age", "datatype": "INT64", "shape": [-1]},
    {"name": "income", "datatype": "FP64", "shape": [-1]},
    {"name": "plan", "datatype": "BYTES", "shape": [-1]},
]
OUTPUTS = [
    {"name": "predict", "datatype": "INT64", "shape": [-1]},
    {"name": "probabilities", "datatype": "FP64", "shape": [-1, 2]},
]
NUMPY = {"INT64": np.int64, "FP64": np.float64, "BYTES": np.object_}


@dataclass(frozen=True)
class Served:
    """The live server, the rows the tests send, and what the workspace predicts for them."""

    url: str  # http://127.0.0.1:PORT
    port: int
    version: str  # the system version behind shop@champion
    rows: pd.DataFrame
    predict: np.ndarray
    probabilities: np.ndarray

    def arrays(self) -> list[tuple[str, str, np.ndarray]]:
        """(name, datatype, values) of each input, typed as the protocol datatype says."""
        return [
            (t["name"], t["datatype"], self.rows[t["name"]].to_numpy(NUMPY[t["datatype"]]))
            for t in INPUTS
        ]

    def tensors(self) -> list[dict[str, Any]]:
        """The rows as JSON tensors, one per input."""
        return [
            {"name": n, "datatype": d, "shape": [len(v)], "data": v.tolist()}
            for n, d, v in self.arrays()
        ]


@pytest.fixture(scope="module")
def served(
    module_serve_home: Path,
    module_live_server: Callable[..., Any],
    shop_rows: Callable[..., pd.DataFrame],
) -> Served:
    server = module_live_server(module_serve_home)
    rows = shop_rows(6, 11).drop(columns="bought")
    with Workspace.open(module_serve_home) as ws:
        model = ws.load("shop@champion")
        version = ws.catalog.get_system_version("shop@champion").ref
        predict, probabilities = model.predict(rows), model.predict_proba(rows)
    return Served(server.url, server.port, version, rows, predict, probabilities)


def check_parameters(parameters: Any, served: Served) -> None:
    """The response names the lane (one, ``main``, until rollouts) and the version that served."""
    assert parameters["lane"] == "main"
    assert parameters["system_version"] == served.version


def check_outputs(served: Served, predict: Any, probabilities: Any) -> None:
    """Predictions equal the workspace's: labels exactly, probabilities to rounding."""
    np.testing.assert_array_equal(np.asarray(predict, dtype=np.int64), served.predict)
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1, 2)
    np.testing.assert_allclose(probabilities, served.probabilities, rtol=1e-9, atol=1e-12)


# -- tritonclient ------------------------------------------------------------------------------


@pytest.fixture
def tritonc(served: Served) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(url=f"127.0.0.1:{served.port}")  # no scheme
    try:
        yield client
    finally:
        client.close()


def triton_inputs(served: Served, *, binary: bool = False) -> list[triton.InferInput]:
    inputs = []
    for name, datatype, values in served.arrays():
        tensor = triton.InferInput(name, [len(values)], datatype)
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    return inputs


def test_tritonclient_sees_a_live_ready_server_and_reads_metadata(
    tritonc: triton.InferenceServerClient, served: Served
) -> None:
    assert tritonc.is_server_live()
    assert tritonc.is_server_ready()
    assert tritonc.is_model_ready("shop")
    assert tritonc.is_model_ready("shop", "champion")
    assert tritonc.is_model_ready("shop", "v1")
    assert not tritonc.is_model_ready("no-such-model")
    assert not tritonc.is_model_ready("shop", "v9")
    server = tritonc.get_server_metadata()
    assert server["name"] == "regrow"
    assert {"regrow_feedback", "regrow_prediction_log"} <= set(server["extensions"])
    for version in ("", "champion", "v1"):
        meta = tritonc.get_model_metadata("shop", version)
        assert meta["name"] == "shop"
        assert meta["platform"] == "regrow"
        assert meta["inputs"] == INPUTS
        assert meta["outputs"] == OUTPUTS
        assert meta["parameters"]["system_version"] == served.version
        assert meta["parameters"]["classes"] == [0, 1]
        assert {"champion", "v1"} <= set(meta["versions"])


@pytest.mark.parametrize("version", ["", "champion", "v1"])
def test_tritonclient_predicts_what_the_workspace_predicts(
    tritonc: triton.InferenceServerClient, served: Served, version: str
) -> None:
    outputs = [
        triton.InferRequestedOutput("predict", binary_data=False),
        triton.InferRequestedOutput("probabilities", binary_data=False),
    ]
    result = tritonc.infer(
        "shop",
        triton_inputs(served),
        model_version=version,
        outputs=outputs,
        request_id=f"triton-{version or 'default'}",
    )
    response = result.get_response()
    assert response["id"] == f"triton-{version or 'default'}"
    assert response["model_name"] == "shop"
    check_parameters(response["parameters"], served)
    assert result.as_numpy("predict").dtype == np.int64
    assert result.as_numpy("probabilities").shape == (len(served.rows), 2)
    check_outputs(served, result.as_numpy("predict"), result.as_numpy("probabilities"))


def test_tritonclient_gets_one_output_when_it_asks_for_one(
    tritonc: triton.InferenceServerClient, served: Served
) -> None:
    wanted = [triton.InferRequestedOutput("probabilities", binary_data=False)]
    result = tritonc.infer("shop", triton_inputs(served), outputs=wanted)  # no request id
    response = result.get_response()
    assert len(response["id"]) == 32  # generated: a uuid4 in hex
    assert int(response["id"], 16) >= 0
    assert [o["name"] for o in response["outputs"]] == ["probabilities"]
    assert result.as_numpy("predict") is None
    np.testing.assert_allclose(result.as_numpy("probabilities"), served.probabilities, rtol=1e-9)


def test_tritonclient_errors_are_the_servers_own_messages(
    tritonc: triton.InferenceServerClient, served: Served
) -> None:
    outputs = [triton.InferRequestedOutput("predict", binary_data=False)]
    with pytest.raises(InferenceServerException) as unknown:
        tritonc.infer("no-such-model", triton_inputs(served), outputs=outputs)
    assert unknown.value.status() == "404"
    assert "no-such-model" in unknown.value.message()
    # Binary tensors (tritonclient's default) are not supported: a clear 400, not a crash.
    with pytest.raises(InferenceServerException) as binary:
        tritonc.infer("shop", triton_inputs(served, binary=True), outputs=outputs)
    assert binary.value.status() == "400"
    assert "binary" in binary.value.message()
    with pytest.raises(InferenceServerException) as no_outputs:  # binary_data_output: true
        tritonc.infer("shop", triton_inputs(served))
    assert no_outputs.value.status() == "400"
    assert "binary" in no_outputs.value.message()


# -- open-inference-openapi --------------------------------------------------------------------


@pytest.fixture
def openinf(served: Served) -> Iterator[OpenInferenceClient]:
    with httpx.Client(timeout=30) as http:
        yield OpenInferenceClient(base_url=served.url, httpx_client=http)


def test_open_inference_client_checks_health_and_reads_metadata(
    openinf: OpenInferenceClient, served: Served
) -> None:
    # Each check returns None when the server answers 2xx, and raises otherwise.
    openinf.check_server_liveness()
    openinf.check_server_readiness()
    openinf.check_model_readiness("shop")
    openinf.check_model_version_readiness("shop", "champion")
    openinf.check_model_version_readiness("shop", "v1")
    server = openinf.read_server_metadata()
    assert server.name == "regrow"
    assert "regrow_feedback" in server.extensions
    for meta in (
        openinf.read_model_metadata("shop"),
        openinf.read_model_version_metadata("shop", "champion"),
    ):
        assert meta.name == "shop"
        assert meta.platform == "regrow"
        assert [t.dict() for t in meta.inputs or []] == INPUTS
        assert [t.dict() for t in meta.outputs or []] == OUTPUTS


@pytest.mark.parametrize("version", [None, "champion", "v1"])
def test_open_inference_client_predicts_what_the_workspace_predicts(
    openinf: OpenInferenceClient, served: Served, version: str | None
) -> None:
    request = InferenceRequest(
        id=f"oi-{version}",
        inputs=[RequestInput(**t) for t in served.tensors()],
        outputs=[RequestOutput(name="predict"), RequestOutput(name="probabilities")],
    )
    ages = request.inputs[0].data.__root__
    assert ages == served.rows["age"].tolist()
    assert isinstance(ages[0], float)  # the client sends age 34 as 34.0
    if version is None:
        response = openinf.model_infer("shop", request=request)
    else:
        response = openinf.model_version_infer("shop", version, request=request)
    assert response.id == f"oi-{version}"
    assert response.model_name == "shop"
    check_parameters(response.parameters, served)
    outputs = {o.name: o for o in response.outputs}
    assert outputs["predict"].datatype == "INT64"
    assert outputs["probabilities"].shape == [len(served.rows), 2]
    # The client's models read every number as a float: 1 arrives as 1.0.
    check_outputs(served, outputs["predict"].data.__root__, outputs["probabilities"].data.__root__)


def test_open_inference_client_raises_the_servers_404(
    openinf: OpenInferenceClient, served: Served
) -> None:
    with pytest.raises(ApiError) as metadata:
        openinf.read_model_metadata("no-such-model")
    assert metadata.value.status_code == 404
    assert "no-such-model" in metadata.value.body["error"]
    request = InferenceRequest(inputs=[RequestInput(**t) for t in served.tensors()])
    with pytest.raises(ApiError) as infer:
        openinf.model_version_infer("shop", "v9", request=request)
    assert infer.value.status_code == 404
    assert "v9" in infer.value.body["error"]


# -- kserve (in its own venv) ------------------------------------------------------------------


@pytest.fixture(scope="session")
def kserve_python() -> Path:
    """The interpreter of the kserve venv: built on first use (needs the package index)."""
    try:
        venv = ensure_kserve_venv()
    except VenvUnavailable as exc:
        message = f"kserve's client is unavailable: {exc}"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the kserve client tests")
        pytest.skip(message)
    if venv.built_seconds is not None:
        print(f"built the kserve venv in {venv.built_seconds} s")
    return venv.python


def run_kserve(python: Path, job: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), str(KSERVE_SCRIPT)],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=120,
        env=isolated_env(),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_kserve_client_checks_health_and_predicts_what_the_workspace_predicts(
    kserve_python: Path, served: Served
) -> None:
    columns = [t["name"] for t in INPUTS]
    matrix = served.rows[columns].astype(object).to_numpy().tolist()
    job = {
        "url": served.url,
        "model": "shop",
        "requests": [
            {"id": "kserve-1", "inputs": served.tensors(), "outputs": ["predict", "probabilities"]},
            {  # one 2-D tensor, its columns named in its parameters
                "id": "kserve-2",
                "inputs": [
                    {
                        "name": "features",
                        "datatype": "BYTES",
                        "shape": [len(matrix), len(columns)],
                        "data": matrix,
                        "parameters": {"columns": columns},
                        "raw": True,
                    }
                ],
            },
        ],
    }
    report = run_kserve(kserve_python, job)
    assert report["live"] is True
    assert report["ready"] is True
    assert report["model_ready"] is True
    assert report["unknown_model_ready"] is False
    for response, rid in zip(report["responses"], ["kserve-1", "kserve-2"], strict=True):
        assert response["id"] == rid
        assert response["model_name"] == "shop"
        check_parameters(response["parameters"], served)
        outputs = response["outputs"]
        assert outputs["predict"]["datatype"] == "INT64"
        assert outputs["probabilities"]["shape"] == [len(served.rows), 2]
        check_outputs(served, outputs["predict"]["data"], outputs["probabilities"]["data"])
    error = report["unknown_model_error"]
    assert error["status"] == 404
    assert "no-such-model" in error["message"]
