"""Decoding infer requests and encoding responses (regrow.serve.oip), and signatures."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from regrow.errors import SystemSpecError
from regrow.serve.errors import BadRequest, PayloadTooLarge
from regrow.serve.oip import coerce, decode, encode, flatten, frame_columns
from regrow.serve.signature import Signature, TensorSpec, compatible, differences

SIG = Signature(
    (
        TensorSpec("age", "INT64", (-1,), "int"),
        TensorSpec("income", "FP64", (-1,), "float"),
        TensorSpec("plan", "BYTES", (-1,), "category"),
        TensorSpec("member", "BOOL", (-1,), "bool"),
        TensorSpec("since", "BYTES", (-1,), "datetime"),
    ),
    (
        TensorSpec("predict", "INT64", (-1,), "int"),
        TensorSpec("probabilities", "FP64", (-1, 2), "float"),
    ),
    "classification",
    (0, 1),
)
ROW = {"age": 30, "income": 1.5, "plan": "pro", "member": True, "since": "2024-05-01T12:00:00"}
BINARY = {"binary_data": True}
TYPES = {"age": "INT64", "income": "FP64", "plan": "BYTES", "member": "BOOL", "since": "BYTES"}


def tensors(rows: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "inputs": [
            {"name": k, "shape": [len(rows)], "datatype": TYPES[k], "data": [r[k] for r in rows]}
            for k in TYPES
        ]
    }
    body.update(overrides)
    return body


def test_a_request_of_one_tensor_per_input_is_coerced_to_the_signature() -> None:
    other = {**ROW, "age": 41.0, "plan": "free", "member": False}
    req = decode(tensors([ROW, other], id="r1"), SIG)
    assert (req.id, req.rows) == ("r1", 2)
    assert req.columns["age"].dtype == np.int64
    assert req.columns["age"].tolist() == [30, 41]
    assert req.columns["income"].dtype == np.float64
    assert req.columns["plan"].tolist() == ["pro", "free"]
    assert req.columns["member"].tolist() == [True, False]
    assert str(req.columns["since"].dtype) == "datetime64[us]"
    assert list(req.columns) == list(TYPES)  # the signature's order


def test_a_request_without_an_id_gets_a_fresh_one() -> None:
    first, second = decode(tensors([ROW]), SIG), decode(tensors([ROW]), SIG)
    assert len(first.id) == 32
    assert first.id != second.id


def test_one_2d_tensor_with_columns_on_the_tensor_or_the_request() -> None:
    names = list(TYPES)
    flat = [ROW[k] for k in names] * 2
    nested = [[ROW[k] for k in names]] * 2
    on_tensor = {"name": "x", "shape": [2, 5], "datatype": "BYTES", "data": flat,
                 "parameters": {"columns": names}}  # fmt: skip
    a = decode({"inputs": [on_tensor]}, SIG)
    on_request = {"name": "x", "shape": [2, 5], "datatype": "BYTES", "data": nested}
    b = decode({"inputs": [on_request], "parameters": {"columns": names}}, SIG)
    for name in names:
        assert a.columns[name].tolist() == b.columns[name].tolist()
    assert a.columns["age"].tolist() == [30, 30]


def test_a_2d_tensor_mixes_with_per_feature_tensors() -> None:
    two = {"name": "nums", "shape": [1, 2], "datatype": "FP64", "data": [[30, 1.5]],
           "parameters": {"columns": ["age", "income"]}}  # fmt: skip
    rest = [t for t in tensors([ROW])["inputs"] if t["name"] not in ("age", "income")]
    req = decode({"inputs": [two, *rest]}, SIG)
    assert req.columns["age"].tolist() == [30]
    assert req.columns["income"].tolist() == [1.5]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.update(id=3), "request id must be a string"),
        (lambda b: b.update(inputs=[]), "non-empty list 'inputs'"),
        (lambda b: b["inputs"].pop(), r"missing input\(s\) \['since'\]"),
        (lambda b: b["inputs"].append({**b["inputs"][0], "name": "agee"}), "unknown input"),
        (lambda b: b["inputs"].append(b["inputs"][0]), "sent twice"),
        (lambda b: b["inputs"][0].update(shape=[2]), "1 values for shape"),
        (lambda b: b["inputs"][0].update(shape=[1, 1, 1]), "has shape"),
        (lambda b: b["inputs"][0].update(shape=[-1]), "has shape"),
        (lambda b: b["inputs"][0].update(datatype="INT65"), "not one the protocol names"),
        (lambda b: b["inputs"][0].update(data=[30.5]), "30.5 is not an integer"),
        (lambda b: b["inputs"][0].update(data=["30"]), "'30' is not one of JSON numbers"),
        (lambda b: b["inputs"][0].update(data=[True]), "True is not one of JSON numbers"),
        (lambda b: b["inputs"][0].update(data=[2.0**70]), "out of the INT64 range"),
        (lambda b: b["inputs"][2].update(data=[7]), "7 is not one of JSON strings"),
        (lambda b: b["inputs"][3].update(data=[1]), "is not one of true or false"),
        (lambda b: b["inputs"][4].update(data=["yesterday"]), "not an ISO 8601"),
        (lambda b: b["inputs"][0].update(data={"a": 1}), "needs a list 'data'"),
        (lambda b: b["inputs"][0].update(data=[[30], 1]), "does not fit shape"),
        (lambda b: b["inputs"][0].update(data=[1, [30]]), "mixes lists and values"),
        (lambda b: b["inputs"][0].update(parameters={"binary_data_size": 8}), "binary tensor"),
        (lambda b: b.update(parameters={"binary_data_output": True}), "binary tensor"),
        (lambda b: b.update(outputs=[{"name": "score"}]), "unknown output 'score'"),
        (lambda b: b.update(outputs=[{"name": "predict"}] * 2), "asked for twice"),
        (lambda b: b.update(outputs=[{"name": "predict", "parameters": BINARY}]), "binary tensor"),
        (lambda b: b["inputs"][1].update(shape=[1, 3], data=[1.0, 2, 3]), "no 'columns' parameter"),
    ],
)
def test_bad_requests_are_400s_that_name_the_value(mutate: Any, message: str) -> None:
    body = tensors([ROW])
    mutate(body)
    with pytest.raises(BadRequest, match=message) as caught:
        decode(body, SIG)
    assert caught.value.status == 400


@pytest.mark.parametrize("body", [None, [], "x", 3])
def test_a_body_that_is_not_an_object_is_a_400(body: object) -> None:
    with pytest.raises(BadRequest, match="must be a JSON object"):
        decode(body, SIG)


def test_rows_disagreeing_between_inputs_and_empty_requests_are_400s() -> None:
    body = tensors([ROW, ROW])
    body["inputs"][0] = {"name": "age", "shape": [1], "datatype": "INT64", "data": [1]}
    with pytest.raises(BadRequest, match="has 2 rows, the inputs before it 1"):
        decode(body, SIG)
    with pytest.raises(BadRequest, match="no rows"):
        decode(tensors([]), SIG)


def test_more_rows_than_allowed_is_a_413() -> None:
    with pytest.raises(PayloadTooLarge, match="3 rows, over the limit of 2") as caught:
        decode(tensors([ROW] * 3), SIG, max_rows=2)
    assert caught.value.status == 413


def test_nulls_are_missing_values() -> None:
    row = dict.fromkeys(TYPES)
    req = decode(tensors([row, ROW]), SIG)
    assert math.isnan(req.columns["age"][0])
    assert req.columns["age"][1] == 30
    assert req.columns["plan"].tolist() == [None, "pro"]
    assert req.columns["member"].tolist() == [None, True]
    assert np.isnat(req.columns["since"][0])


def test_datetimes_with_a_zone_are_converted_to_utc() -> None:
    values = coerce("t", ["2024-05-01T14:00:00+02:00", "2024-05-01T12:00:00Z"], "datetime")
    assert values[0] == values[1] == np.datetime64("2024-05-01T12:00:00")


def test_flatten_checks_nesting_against_the_shape() -> None:
    assert flatten([[1, 2], [3, 4]], [2, 2]) == [1, 2, 3, 4]
    with pytest.raises(BadRequest, match="every row"):
        flatten([[1, 2], [3]], [2, 2])
    with pytest.raises(BadRequest, match="does not fit shape"):
        flatten([[1, 2]], [2, 1])
    with pytest.raises(BadRequest, match="deeper"):
        flatten([[[1]], [[2]]], [2, 1])


def test_encode_names_outputs_with_their_datatype_and_shape() -> None:
    outputs = {"predict": np.array([1, 0]), "probabilities": np.array([[0.2, 0.8], [0.9, 0.1]])}
    body = encode(
        model_name="shop", model_version="champion", request_id="r1", outputs=outputs,
        signature=SIG, parameters={"lane": "main"},
    )  # fmt: skip
    assert body["id"] == "r1"
    assert body["parameters"] == {"lane": "main"}
    predict, proba = body["outputs"]
    assert (predict["datatype"], predict["shape"], predict["data"].tolist()) == (
        "INT64", [2], [1, 0],
    )  # fmt: skip
    assert (proba["shape"], proba["data"].tolist()) == ([2, 2], [0.2, 0.8, 0.9, 0.1])
    only = encode(model_name="shop", model_version="v1", request_id="r", outputs=outputs,
                  signature=SIG, wanted=["probabilities"])  # fmt: skip
    assert [t["name"] for t in only["outputs"]] == ["probabilities"]


def test_frame_columns_takes_a_files_rows_like_a_request() -> None:
    frame = pd.DataFrame(
        {
            "age": [30.0, np.nan],
            "income": [1.5, 2.5],
            "plan": ["pro", None],
            "member": [True, False],
            "since": pd.to_datetime(["2024-05-01", "2024-06-01"]),
            "extra": [1, 2],
        }
    )
    columns = frame_columns(frame, SIG)
    assert math.isnan(columns["age"][1])
    assert columns["plan"].tolist() == ["pro", None]
    assert columns["member"].tolist() == [True, False]
    with pytest.raises(BadRequest, match=r"lacks input column\(s\) \['income'\]"):
        frame_columns(frame.drop(columns="income"), SIG)


# -- properties -------------------------------------------------------------------------------

ints = st.integers(-(2**62), 2**62)
floats = st.floats(allow_nan=False, allow_infinity=False, width=64)
words = st.text(max_size=8)


@given(st.lists(ints, min_size=1, max_size=20), st.booleans())
def test_integers_survive_as_ints_or_integral_floats(values: list[int], as_float: bool) -> None:
    sent = [float(v) for v in values] if as_float else values
    if as_float and any(float(v) != v for v in values):
        return  # not exactly representable as a float: not what a client sends
    assert coerce("n", sent, "int").tolist() == values


@given(st.lists(st.one_of(ints, floats, words, st.booleans(), st.none()), min_size=1, max_size=10))
def test_int_columns_accept_exactly_integral_numbers_and_nulls(values: list[Any]) -> None:
    ok = all(
        v is None
        or (type(v) is int and abs(v) < 2**63)
        or (type(v) is float and v.is_integer() and abs(v) < 2**63)
        for v in values
    )
    if ok:
        got = coerce("n", values, "int").tolist()
        # with a null the column is float (as pandas reads it): ints past 2**53 round
        want = [v if v is None or None not in values else float(v) for v in values]
        assert [None if isinstance(x, float) and math.isnan(x) else x for x in got] == want
    else:
        with pytest.raises(BadRequest):
            coerce("n", values, "int")


@st.composite
def requests(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]], bool]:
    rows = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "age": ints,
                    "income": floats,
                    "plan": words,
                    "member": st.booleans(),
                    "since": st.datetimes(allow_imaginary=False).map(lambda d: d.isoformat()),
                }
            ),
            min_size=1,
            max_size=6,
        )
    )
    as_2d = draw(st.booleans())
    nested = draw(st.booleans())
    if not as_2d:
        body = tensors(rows)
        if nested:
            for t in body["inputs"]:
                t["shape"] = [len(rows), 1]
                t["data"] = [[v] for v in t["data"]]
        return body, rows, False
    names = draw(st.permutations(list(TYPES)))
    data: list[Any] = [[r[k] for k in names] for r in rows]
    if not nested:
        data = [v for row in data for v in row]
    tensor = {"name": "x", "shape": [len(rows), len(names)], "datatype": "BYTES", "data": data,
              "parameters": {"columns": names}}  # fmt: skip
    return {"inputs": [tensor]}, rows, True


@given(requests())
def test_every_layout_of_the_same_rows_decodes_to_the_same_columns(
    case: tuple[dict[str, Any], list[dict[str, Any]], bool],
) -> None:
    body, rows, _ = case
    req = decode(body, SIG)
    assert req.rows == len(rows)
    assert req.columns["age"].tolist() == [r["age"] for r in rows]
    assert req.columns["income"].tolist() == [r["income"] for r in rows]
    assert req.columns["plan"].tolist() == [r["plan"] for r in rows]
    assert req.columns["member"].tolist() == [r["member"] for r in rows]


def _json(kids: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(kids, max_size=4) | st.dictionaries(words, kids, max_size=4)


JSON = st.recursive(st.none() | st.booleans() | ints | floats | words, _json, max_leaves=12)


@given(JSON)
def test_any_json_is_decoded_or_refused_with_a_400(body: Any) -> None:
    with contextlib.suppress(BadRequest, PayloadTooLarge):
        decode(body, SIG)


def _field(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(good, JSON)


TENSOR = st.fixed_dictionaries(
    {
        "name": _field(st.sampled_from([*TYPES, "x"])),
        "shape": _field(st.lists(st.integers(0, 3), min_size=1, max_size=2)),
        "datatype": _field(st.sampled_from(["INT64", "FP64", "BYTES", "BOOL"])),
        "data": _field(st.lists(st.one_of(JSON, st.lists(JSON, max_size=3)), max_size=6)),
    },
    optional={"parameters": _field(st.fixed_dictionaries({}, optional={
        "columns": _field(st.lists(st.sampled_from(list(TYPES)), max_size=5)),
        "binary_data_size": JSON,
    }))},
)  # fmt: skip


@given(
    st.fixed_dictionaries(
        {"inputs": _field(st.lists(TENSOR, max_size=6))},
        optional={"id": JSON, "parameters": JSON, "outputs": _field(st.lists(JSON, max_size=3))},
    )
)
def test_nearly_valid_requests_are_decoded_or_refused_with_a_400(body: Any) -> None:
    with contextlib.suppress(BadRequest, PayloadTooLarge):
        decode(body, SIG)


# -- signatures -------------------------------------------------------------------------------

SPEC = {
    "task": "classification",
    "components": {
        "onehot": {"kind": "transform", "inputs": ["plan"]},
        "m": {"kind": "member", "inputs": ["age", "onehot"]},
        "ens": {"kind": "ensemble", "inputs": ["m"]},
    },
}
COLUMNS = [("plan", "category"), ("age", "int"), ("y", "int"), ("t", "datetime")]
SCHEMA = {"columns": [{"name": n, "dtype": d} for n, d in COLUMNS]}


def test_a_signature_lists_the_raw_columns_in_schema_order_with_their_datatypes() -> None:
    sig = Signature.of(SPEC, SCHEMA, ["no", "yes"])
    assert [(t.name, t.datatype) for t in sig.inputs] == [("plan", "BYTES"), ("age", "INT64")]
    assert [(t.name, t.datatype) for t in sig.outputs] == [
        ("predict", "BYTES"), ("probabilities", "FP64"),
    ]  # fmt: skip
    regression = Signature.of({**SPEC, "task": "regression"}, SCHEMA, None)
    assert [(t.name, t.datatype) for t in regression.outputs] == [("predict", "FP64")]


def test_a_graph_reading_a_column_its_schema_lacks_cannot_be_served() -> None:
    with pytest.raises(SystemSpecError, match=r"\['age'\]"):
        Signature.of(SPEC, {"columns": [{"name": "plan", "dtype": "string"}]}, [0, 1])


def test_differences_name_what_a_client_would_notice() -> None:
    old = Signature.of(SPEC, SCHEMA, [0, 1])
    assert compatible(old, Signature.of(SPEC, SCHEMA, [0, 1]))
    wider = {**SPEC, "components": {**SPEC["components"], "m": {"kind": "member",
             "inputs": ["age", "onehot", "t"]}}}  # fmt: skip
    retyped = {"columns": [{**c, "dtype": "float"} if c["name"] == "age" else c
                           for c in SCHEMA["columns"]]}  # fmt: skip
    found = differences(old, Signature.of(wider, retyped, [0, 1, 2]))
    assert "input 't' (BYTES) is new" in found
    assert "input 'age' changes from int to float" in found
    assert "classes change from [0, 1] to [0, 1, 2]" in found
    assert not compatible(old, Signature.of(wider, SCHEMA, [0, 1]))


def test_a_numeric_2d_tensor_is_coerced_at_once_with_the_same_rules() -> None:
    sig = Signature(
        (TensorSpec("n", "INT64", (-1,), "int"), TensorSpec("x", "FP64", (-1,), "float")),
        (TensorSpec("predict", "FP64", (-1,), "float"),),
        "regression",
    )

    def body(data: list[Any]) -> dict[str, Any]:
        return {"inputs": [{"name": "m", "shape": [2, 2], "datatype": "FP64", "data": data,
                            "parameters": {"columns": ["n", "x"]}}]}  # fmt: skip

    req = decode(body([1, 0.5, 2.0, 3]), sig)
    assert req.columns["n"].dtype == np.int64
    assert req.columns["n"].tolist() == [1, 2]
    assert req.columns["x"].tolist() == [0.5, 3.0]
    with pytest.raises(BadRequest, match=r"input 'n' is INT64: 1.5 is not an integer"):
        decode(body([1.5, 0.5, 2, 3]), sig)
    exact = decode(body([2**60 + 1, 0.5, 2, 3]), sig)  # past 2**53: not through floats
    assert exact.columns["n"].tolist() == [2**60 + 1, 2]
    strings = Signature((TensorSpec("s", "BYTES", (-1,), "string"),
                         TensorSpec("x", "FP64", (-1,), "float")), (), "regression")  # fmt: skip
    two = {"inputs": [{"name": "m", "shape": [1, 2], "datatype": "FP64", "data": [1, 2],
                       "parameters": {"columns": ["s", "x"]}}]}  # fmt: skip
    with pytest.raises(BadRequest, match=r"input 's' is BYTES: 1\.0 is not one of JSON strings"):
        decode(two, strings)
