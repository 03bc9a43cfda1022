"""The demo's traffic: a client of ``regrow serve`` speaking the Open Inference Protocol v2.

What a production caller does, with nothing but the standard library: read the model's
metadata for its inputs, send rows as one tensor per input, keep the request ids the server
answers with, and later send the labels back by request id (``POST /regrow/v1/feedback``).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import numpy as np
import pandas as pd

from regrow.errors import ConfigError

__all__ = ["send_labels", "send_rows", "served_version"]


def _call(url: str, body: Any = None, token: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise ConfigError(
            f"the demo's server answered {exc.code} to {url}: {detail}",
            hint="this is a bug in the demo: please report it",
        ) from exc


def _values(column: pd.Series, datatype: str) -> list[Any]:
    if datatype == "BYTES":
        return [str(v) for v in column]
    return np.asarray(column).tolist()  # type: ignore[no-any-return]


def send_rows(url: str, model: str, rows: pd.DataFrame, *, per_request: int = 100) -> list[str]:
    """Send ``rows`` to ``model`` in requests of ``per_request`` rows; the request id of each
    row, in order (rows of one request are numbered from 0 within it)."""
    meta = _call(f"{url}/v2/models/{model}")
    inputs = [(i["name"], i["datatype"]) for i in meta["inputs"]]
    ids: list[str] = []
    for start in range(0, len(rows), per_request):
        chunk = rows.iloc[start : start + per_request]
        body = {
            "inputs": [
                {
                    "name": name,
                    "shape": [len(chunk)],
                    "datatype": datatype,
                    "data": _values(chunk[name], datatype),
                }
                for name, datatype in inputs
            ]
        }
        answer = _call(f"{url}/v2/models/{model}/infer", body)
        ids.extend([answer["id"]] * len(chunk))
    return ids


def send_labels(
    url: str, model: str, token: str, ids: list[str], labels: list[Any], *, per_call: int = 1000
) -> int:
    """Send each row's label back by its request id and row number; how many were received."""
    rows: list[int] = []
    for n, rid in enumerate(ids):  # a row's number within its request
        rows.append(rows[-1] + 1 if n and ids[n - 1] == rid else 0)
    items = [{"id": i, "row": r, "label": v} for i, r, v in zip(ids, rows, labels, strict=True)]
    received = 0
    for start in range(0, len(items), per_call):
        body = {"model_name": model, "labels": items[start : start + per_call]}
        received += int(_call(f"{url}/regrow/v1/feedback", body, token)["received"])
    return received


def served_version(url: str, model: str, ref: str, *, timeout: float = 15.0) -> float:
    """Seconds until ``model`` is served as version ``ref`` (the server follows its alias)."""
    started = time.monotonic()
    while True:
        meta = _call(f"{url}/v2/models/{model}")
        if meta["parameters"]["system_version"] == ref:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise ConfigError(
                f"the demo's server still serves {meta['parameters']['system_version']} "
                f"{timeout:g} s after {ref} was promoted",
                hint="this is a bug in the demo: please report it",
            )
        time.sleep(0.05)
