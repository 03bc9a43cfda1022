"""Reference servers for ``benchmarks/serving.py``, each run as its own process on uvicorn.

    python benchmarks/_serving_ref.py trivial PORT
    python benchmarks/_serving_ref.py fastapi PORT MODEL.joblib

- ``trivial``: a bare ASGI callable answering every request with a fixed two-byte JSON body
  (no framework, no model): what the load generator achieves against it is its own ceiling
  on this machine, with the server on core 0.
- ``fastapi``: the naive per-request path: a FastAPI route reads the Open Inference Protocol
  body, builds the 2-D array, calls ``predict_proba`` on the same fitted estimator for each
  request, and answers with ``predict`` and ``probabilities`` in the protocol's shape. It has
  no validation, logging, metrics or batching: it is the floor any real server adds to.

Both run uvicorn with uvloop and httptools and no access log, as the others do.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import uvicorn
from fastapi import FastAPI, Request


async def trivial(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # drain the body
        message = await receive()
        more = message.get("more_body", False)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}"})


def fastapi_app(model_path: str) -> Any:
    import joblib
    import numpy as np

    model = joblib.load(model_path)
    app = FastAPI()

    @app.post("/v2/models/{name}/infer")
    async def infer(name: str, request: Request) -> dict[str, Any]:
        body = json.loads(await request.body())
        tensor = body["inputs"][0]
        x = np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])
        proba = model.predict_proba(x)
        pred = model.classes_[proba.argmax(axis=1)]
        return {
            "model_name": name,
            "id": body.get("id", ""),
            "outputs": [
                {"name": "predict", "datatype": "INT64", "shape": [len(x)], "data": pred.tolist()},
                {
                    "name": "probabilities",
                    "datatype": "FP64",
                    "shape": list(proba.shape),
                    "data": proba.ravel().tolist(),
                },
            ],
        }

    @app.get("/v2/health/ready")
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    return app


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    app = trivial if kind == "trivial" else fastapi_app(sys.argv[3])
    uvicorn.run(
        app, host="127.0.0.1", port=port, loop="uvloop", http="httptools",
        access_log=False, log_level="warning",
    )  # fmt: skip


if __name__ == "__main__":
    main()
