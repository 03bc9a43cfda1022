"""Open Inference Protocol v2 (REST) requests in, responses out: pure functions.

:func:`decode` takes an infer request (the parsed JSON) and the served version's
:class:`~regrow.serve.signature.Signature`, and returns the request's rows as one numpy array
per input column, coerced to the signature's types; :func:`encode` builds the response.
Nothing here knows about HTTP or models, so every rule is tested on its own.

What a request may look like:

- one tensor per input (``shape`` ``[N]`` or ``[N, 1]``), or one 2-D tensor ``[N, F]`` whose
  columns are named by a ``"columns"`` parameter, on the tensor or on the request (the two
  kinds may be mixed);
- ``data`` row-major, flat or nested to the tensor's shape;
- ``INT64`` inputs accept integral floats (``30.0``); ``BYTES`` inputs are JSON strings;
  datetime inputs ISO 8601 strings; ``null`` is a missing value anywhere;
- ``outputs`` (optional) picks which outputs to return.

Everything else is a :class:`~regrow.serve.errors.BadRequest` (400) naming the value: a
binary tensor (``binary_data_size``, or ``binary_data``/``binary_data_output`` other than
``false``: this server speaks JSON only), a shape the data does not fill, an unknown or
missing input, a value of the wrong type (:mod:`.coercion`). More rows than allowed is
:class:`~regrow.serve.errors.PayloadTooLarge` (413).

>>> from regrow.serve.signature import Signature, TensorSpec
>>> sig = Signature((TensorSpec("age", "INT64", (-1,), "int"),
...                  TensorSpec("plan", "BYTES", (-1,), "string")),
...                 (TensorSpec("predict", "FP64", (-1,), "float"),), "regression")
>>> req = decode({"id": "r1", "inputs": [
...     {"name": "age", "shape": [2], "datatype": "FP64", "data": [30.0, 41]},
...     {"name": "plan", "shape": [2, 1], "datatype": "BYTES", "data": [["pro"], ["free"]]}]}, sig)
>>> req.id, req.rows, req.columns["age"].tolist(), req.columns["plan"].tolist()
('r1', 2, [30, 41], ['pro', 'free'])
>>> decode({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "BYTES",
...     "parameters": {"columns": ["age", "plan"]}, "data": [1.5, "pro", 2, "go"]}]}, sig)
Traceback (most recent call last):
...
regrow.serve.errors.BadRequest: input 'age' is INT64: 1.5 is not an integer; ...
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from regrow.serve.coercion import coerce, frame_columns
from regrow.serve.errors import BadRequest, PayloadTooLarge
from regrow.serve.signature import Signature

__all__ = [
    "DATATYPES",
    "Decoded",
    "coerce",
    "decode",
    "encode",
    "flatten",
    "frame_columns",
    "json_ready",
]

#: Every datatype the protocol names (a tensor may declare any; values decide).
DATATYPES = frozenset(
    {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
     "FP16", "FP32", "FP64", "BYTES"}
)  # fmt: skip
#: Parameters of the binary tensor extension: any but ``false`` asks for binary data.
_BINARY = ("binary_data_size", "binary_data_output", "binary_data")
_MAX_ID = 255  # the catalog keeps feedback ids of up to 255 characters


@dataclass(frozen=True)
class Decoded:
    """A decoded infer request: its ``id`` (generated when absent), its ``rows`` as one array
    per input column (in the signature's order), and the outputs asked for (None: all)."""

    id: str
    rows: int
    columns: dict[str, np.ndarray]
    outputs: tuple[str, ...] | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


def decode(body: object, signature: Signature, *, max_rows: int | None = None) -> Decoded:
    """The rows of infer request ``body`` (parsed JSON), coerced to ``signature``.

    Raises :class:`~regrow.serve.errors.BadRequest` for anything the protocol or the signature
    does not accept, and :class:`~regrow.serve.errors.PayloadTooLarge` for more than
    ``max_rows`` rows.
    """
    if not isinstance(body, dict):
        raise BadRequest(
            f"the request body must be a JSON object (got {_kind(body)})",
            hint='send {"inputs": [{"name": ..., "shape": [...], "datatype": ..., "data": [...]}]}',
        )
    request_id = body.get("id")
    if request_id is None:
        request_id = uuid.uuid4().hex
    elif not isinstance(request_id, str) or not 0 < len(request_id) <= _MAX_ID:
        raise BadRequest(
            f"the request id must be a string of 1 to {_MAX_ID} characters "
            f"(got {_short(request_id)})",
            hint="send a string id, or none and one is generated",
        )
    parameters = _parameters(body.get("parameters"), "the request")
    tensors = body.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise BadRequest(
            f"the request needs a non-empty list 'inputs' (got {_short(tensors)})",
            hint=f"send one tensor per input: {signature.input_names}",
        )
    raw: dict[str, Sequence[Any] | np.ndarray] = {}
    rows: int | None = None
    for position, tensor in enumerate(tensors):
        for name, values, n in _split(tensor, position, parameters.get("columns")):
            if name in raw:
                raise BadRequest(f"input {name!r} is sent twice", hint="send each input once")
            if rows is not None and n != rows:
                raise BadRequest(
                    f"input {name!r} has {n} rows, the inputs before it {rows}",
                    hint="send the same number of rows for every input",
                )
            rows = n
            raw[name] = values
    assert rows is not None
    if signature.aliases:  # a renamed upstream column, bridged by a rename adapter
        renamed = {signature.canonical(n): v for n, v in raw.items()}
        if len(renamed) < len(raw):
            twice = sorted(n for n in raw if signature.canonical(n) != n)
            raise BadRequest(
                f"input(s) {twice} and their old names are both sent",
                hint="send each input under one name",
            )
        raw = renamed
    unknown = [n for n in raw if signature.input(n) is None]
    if unknown:
        raise BadRequest(
            f"unknown input(s) {unknown}", hint=f"the inputs are {signature.input_names}"
        )
    for name in signature.optional - raw.keys():
        raw[name] = [None] * rows  # the version's default adapter fills them
    missing = [n for n in signature.input_names if n not in raw]
    if missing:
        also = {a: n for a, n in signature.aliases.items() if n in missing}
        raise BadRequest(
            f"missing input(s) {missing}",
            hint="send a tensor for every input"
            + "".join(f"; {n!r} is also accepted as {a!r}" for a, n in also.items()),
        )
    if rows == 0:
        raise BadRequest("the request has no rows", hint="send at least one row")
    if max_rows is not None and rows > max_rows:
        raise PayloadTooLarge(
            f"the request has {rows} rows, over the limit of {max_rows}",
            hint="split it into smaller requests, or raise [serve] max_batch_rows",
        )
    columns = {t.name: coerce(t.name, raw[t.name], t.dtype) for t in signature.inputs}
    outputs = _outputs(body.get("outputs"), signature)
    return Decoded(request_id, rows, columns, outputs, parameters)


def _parameters(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"the parameters of {where} must be an object (got {_short(value)})")
    binary = [k for k in _BINARY if k in value and value[k] is not False]
    if binary:
        raise BadRequest(
            f"{where} asks for binary tensor data ({binary[0]!r}), which this server does "
            "not support",
            hint="send and read tensors as JSON (tritonclient: binary_data=False)",
        )
    return value


def _split(
    tensor: object, position: int, request_columns: object
) -> list[tuple[str, Sequence[Any] | np.ndarray, int]]:
    """The (column, values, rows) a tensor holds: one column, or several for a 2-D tensor."""
    if not isinstance(tensor, dict):
        raise BadRequest(f"inputs[{position}] must be an object (got {_kind(tensor)})")
    name = tensor.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest(f"inputs[{position}] needs a string 'name' (got {_short(name)})")
    datatype = tensor.get("datatype")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise BadRequest(
            f"input {name!r} has datatype {_short(datatype)}, not one the protocol names",
            hint="use one of " + ", ".join(sorted(DATATYPES)),
        )
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 2
        or not all(type(d) is int and d >= 0 for d in shape)
    ):
        raise BadRequest(
            f"input {name!r} has shape {_short(shape)}",
            hint="send [N] or [N, 1] for one input, [N, F] with 'columns' for F inputs",
        )
    params = _parameters(tensor.get("parameters"), f"input {name!r}")
    columns = params.get("columns")
    if (
        columns is None
        and len(shape) == 2
        and isinstance(request_columns, list)
        and (shape[1] != 1 or len(request_columns) == 1)
    ):
        columns = request_columns
    values = flatten(tensor.get("data"), shape, name)
    if columns is None:
        if len(shape) == 2 and shape[1] != 1:
            raise BadRequest(
                f"input {name!r} has shape {shape}: {shape[1]} columns, but no 'columns' "
                "parameter names them",
                hint='add "parameters": {"columns": [...]} to the tensor or the request',
            )
        return [(name, values, shape[0])]
    if (
        not isinstance(columns, list)
        or not all(isinstance(c, str) for c in columns)
        or len(shape) != 2
        or len(columns) != shape[1]
    ):
        raise BadRequest(
            f"input {name!r} of shape {shape} names columns {_short(columns)}",
            hint="a 2-D tensor [N, F] needs 'columns': a list of F input names",
        )
    width = shape[1]
    numbers = _numeric(values, shape[0], width)
    if numbers is not None:  # coerced once for all its columns
        return [(col, numbers[:, j], shape[0]) for j, col in enumerate(columns)]
    return [(col, values[j::width], shape[0]) for j, col in enumerate(columns)]


def _numeric(values: list[Any], rows: int, width: int) -> np.ndarray | None:
    """The values of a 2-D tensor as a float matrix, if they are all JSON numbers (that a
    float holds exactly); else None, and each column is coerced on its own."""
    kinds = set(map(type, values))
    if not values or not kinds <= {int, float}:
        return None
    matrix = np.array(values, dtype=np.float64)
    if int in kinds and np.abs(matrix).max() > 2**53:
        return None
    return matrix.reshape(rows, width)


def flatten(data: object, shape: Sequence[int], name: str = "?") -> list[Any]:
    """``data`` as a flat row-major list, checked against ``shape``: flat, or nested to it.

    >>> flatten([[1, 2], [3, 4]], [2, 2]), flatten([1, 2, 3, 4], [2, 2])
    ([1, 2, 3, 4], [1, 2, 3, 4])
    """
    if not isinstance(data, list):
        raise BadRequest(f"input {name!r} needs a list 'data' (got {_kind(data)})")
    size = math.prod(shape)
    flat = data
    if data and type(data[0]) is list:
        flat = _unnest(data, shape, name)
    elif any(type(v) is list for v in data):
        raise BadRequest(f"input {name!r} mixes lists and values in its data")
    if len(flat) != size:
        raise BadRequest(
            f"input {name!r} has {len(flat)} values for shape {list(shape)} ({size} values)",
            hint="send as many values as the shape holds",
        )
    return flat


def _unnest(data: list[Any], shape: Sequence[int], name: str) -> list[Any]:
    if len(shape) != 2 or len(data) != shape[0]:
        raise BadRequest(
            f"input {name!r} nests its data in {len(data)} lists, which does not fit shape "
            f"{list(shape)}",
            hint="nest the data as the shape says, or send it flat (row-major)",
        )
    width = shape[1]
    if not all(type(row) is list and len(row) == width for row in data):
        raise BadRequest(
            f"input {name!r}: every row of shape {list(shape)} must be a list of {width} values"
        )
    flat = [v for row in data for v in row]
    if any(type(v) is list for v in flat):
        raise BadRequest(f"input {name!r} nests its data deeper than its shape {list(shape)}")
    return flat


def _outputs(value: object, signature: Signature) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise BadRequest(f"'outputs' must be a list (got {_kind(value)})")
    names: list[str] = []
    for position, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequest(f"outputs[{position}] must be an object with a string 'name'")
        _parameters(item.get("parameters"), f"output {item['name']!r}")
        if item["name"] not in signature.output_names:
            raise BadRequest(
                f"unknown output {item['name']!r}", hint=f"the outputs are {signature.output_names}"
            )
        if item["name"] in names:
            raise BadRequest(
                f"output {item['name']!r} is asked for twice in 'outputs'",
                hint="name each output once",
            )
        names.append(item["name"])
    return tuple(names)


def encode(
    *,
    model_name: str,
    model_version: str,
    request_id: str,
    outputs: Mapping[str, np.ndarray],
    signature: Signature,
    wanted: Sequence[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The infer response for ``outputs`` (output name -> array, rows first).

    Numeric arrays are left as numpy arrays (``orjson`` writes them with
    ``OPT_SERIALIZE_NUMPY``; :func:`json_ready` makes them lists for other encoders).
    """
    specs = {t.name: t for t in signature.outputs}
    tensors = []
    for name in wanted if wanted is not None else signature.output_names:
        arr = outputs[name]
        spec = specs[name]
        data: Any = arr.ravel() if arr.dtype.kind in "fiub" else arr.ravel().tolist()
        if spec.datatype == "INT64" and arr.dtype.kind not in "iu":
            data = [int(v) for v in arr.ravel().tolist()]
        tensors.append(
            {"name": name, "datatype": spec.datatype, "shape": list(arr.shape), "data": data}
        )
    return {
        "model_name": model_name,
        "model_version": model_version,
        "id": request_id,
        "parameters": dict(parameters or {}),
        "outputs": tensors,
    }


def json_ready(response: dict[str, Any]) -> dict[str, Any]:
    """``response`` with numpy arrays turned into lists (for the standard ``json`` module)."""
    for tensor in response["outputs"]:
        if isinstance(tensor["data"], np.ndarray):
            tensor["data"] = tensor["data"].tolist()
    return response


def _kind(value: object) -> str:
    return "null" if value is None else f"a {type(value).__name__}"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
