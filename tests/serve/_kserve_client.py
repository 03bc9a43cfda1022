"""Drive a live `regrow serve` with kserve's ``InferenceRESTClient``; run by the kserve venv.

This file is not a test: ``test_clients.py`` runs it with the interpreter of the venv that
:mod:`_client_venv` builds (kserve cannot be installed next to regrow), feeds it a JSON job on
stdin and asserts on the JSON it prints on stdout. kserve is imported inside the functions, so
that pytest's doctest collection can import this module without kserve.

The job::

    {"url": "http://127.0.0.1:PORT", "model": "shop",
     "requests": [{"id": "k1", "outputs": ["predict"], "parameters": {...},
                   "inputs": [{"name": "age", "datatype": "INT64", "shape": [2],
                               "data": [30, 41], "parameters": {...}, "raw": false}]}]}

Each input goes through ``InferInput.set_data_from_numpy(..., binary_data=False)``, as a
kserve user would send a numpy array, unless ``raw`` is true: then ``data`` is sent as given
(a 2-D tensor mixing numbers and strings has no numpy dtype kserve would send).

What it prints: ``live`` and ``ready`` (the health calls, which read the JSON bodies),
``model_ready`` and ``unknown_model_ready`` (``is_model_ready`` of the model and of a model
that does not exist), one ``responses`` entry per request (id, model name, parameters, and per
output its datatype, shape and ``as_numpy()`` as a list), and ``unknown_model_error`` (the
``HTTPStatusError`` an inference on an unknown model raises: status and message). kserve's REST
client has no metadata call, so metadata is left to the other two clients.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

_DTYPES = {"INT64": "int64", "FP64": "float64", "FP32": "float32", "BOOL": "bool", "BYTES": "O"}


def _request(model: str, spec: dict[str, Any]) -> Any:
    """The kserve ``InferRequest`` of one job request."""
    import numpy as np
    from kserve import InferInput, InferRequest
    from kserve.protocol.infer_type import RequestedOutput

    inputs = []
    for tensor in spec["inputs"]:
        name, shape, datatype = tensor["name"], tensor["shape"], tensor["datatype"]
        parameters = tensor.get("parameters")
        if tensor.get("raw"):
            inputs.append(InferInput(name, shape, datatype, tensor["data"], parameters))
            continue
        one = InferInput(name, shape, datatype, None, parameters)
        array = np.array(tensor["data"], dtype=_DTYPES[datatype]).reshape(shape)
        one.set_data_from_numpy(array, binary_data=False)
        inputs.append(one)
    outputs = [RequestedOutput(n) for n in spec.get("outputs", [])] or None
    return InferRequest(
        model,
        inputs,
        request_id=spec.get("id"),
        parameters=spec.get("parameters"),
        request_outputs=outputs,
    )


def _answer(response: Any) -> dict[str, Any]:
    return {
        "id": response.id,
        "model_name": response.model_name,
        "parameters": response.parameters,
        "outputs": {
            out.name: {
                "datatype": out.datatype,
                "shape": list(out.shape),
                "data": out.as_numpy().tolist(),
            }
            for out in response.outputs
        },
    }


async def _drive(job: dict[str, Any]) -> dict[str, Any]:
    import httpx
    from kserve import InferenceRESTClient, RESTConfig

    url, model = job["url"], job["model"]
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
    report: dict[str, Any] = {}
    try:
        report["live"] = await client.is_server_live(url)
        report["ready"] = await client.is_server_ready(url)
        report["model_ready"] = await client.is_model_ready(url, model)
        report["unknown_model_ready"] = await client.is_model_ready(url, "no-such-model")
        report["responses"] = [
            _answer(await client.infer(url, _request(model, spec), model_name=model))
            for spec in job["requests"]
        ]
        report["unknown_model_error"] = None
        unknown = _request("no-such-model", job["requests"][0])
        try:
            await client.infer(url, unknown, model_name="no-such-model")
        except httpx.HTTPStatusError as exc:
            report["unknown_model_error"] = {
                "status": exc.response.status_code,
                "message": str(exc),
            }
    finally:
        await client.close()
    return report


def main() -> None:
    """Read the job from stdin, drive the server, print the report as one JSON line."""
    job = json.load(sys.stdin)
    print(json.dumps(asyncio.run(_drive(job))))


if __name__ == "__main__":
    main()
