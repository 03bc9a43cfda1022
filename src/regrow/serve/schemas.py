"""The bodies of the app's endpoints, as JSON Schema for its OpenAPI document.

The app does not validate requests with these models: the inference hot path decodes the raw
JSON itself (:mod:`regrow.serve.oip`), faster and with the protocol's own errors (400, never
422). These models only describe the bodies, so that clients, generated clients and
schemathesis read what the app accepts and answers. :func:`openapi_components` gives them as
OpenAPI components; the app refers to them with :func:`ref`.

>>> sorted(openapi_components())[:3]
['ErrorBody', 'FeedbackLabel', 'FeedbackRequest']
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "ErrorBody",
    "FeedbackRequest",
    "FeedbackResponse",
    "InferRequest",
    "InferResponse",
    "LiveResponse",
    "ModelMetadata",
    "ModelReady",
    "ReadyResponse",
    "ServerMetadata",
    "openapi_components",
    "ref",
]

Datatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES",
]  # fmt: skip
Scalar = bool | int | float | str | None


class RequestInput(BaseModel):
    """One input tensor: a feature ([N] or [N, 1]), or F features ([N, F] with columns)."""

    name: str = Field(min_length=1)
    shape: list[Annotated[int, Field(ge=0)]] = Field(min_length=1, max_length=2)
    datatype: Datatype
    parameters: dict[str, Any] | None = Field(
        None, description='{"columns": [...]} names the columns of a 2-D tensor'
    )
    data: list[Scalar | list[Scalar]] = Field(description="row-major, flat or nested")


class RequestOutput(BaseModel):
    """An output to return (default: all)."""

    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    """An Open Inference Protocol v2 infer request (JSON tensors only)."""

    id: str | None = Field(None, min_length=1, max_length=256)
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    """An output tensor; ``data`` flat, row-major."""

    name: str
    datatype: Datatype
    shape: list[int]
    data: list[Scalar]
    parameters: dict[str, Any] | None = None


class InferResponse(BaseModel):
    """The outputs, the request's id, and (in parameters) the lane and system version."""

    model_name: str
    model_version: str | None = None
    id: str
    parameters: dict[str, Any] | None = None
    outputs: list[ResponseOutput]


class ErrorBody(BaseModel):
    """What went wrong, naming the value, and what to do."""

    error: str


class LiveResponse(BaseModel):
    live: bool


class ReadyResponse(BaseModel):
    ready: bool


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class TensorMetadata(BaseModel):
    name: str
    datatype: Datatype
    shape: list[int]


class ModelMetadata(BaseModel):
    """A model (a system): its versions served, inputs, outputs, and which version it is."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: dict[str, Any] | None = None


class ModelReady(BaseModel):
    name: str
    ready: bool


class FeedbackLabel(BaseModel):
    """The true label of row ``row`` of request ``id``."""

    id: str = Field(min_length=1, max_length=256)
    row: int = Field(0, ge=0)
    label: bool | int | float | str


class FeedbackRequest(BaseModel):
    """Labels for predictions of ``model_name``, by request id and row."""

    model_name: str = Field(min_length=1)
    labels: list[FeedbackLabel] = Field(min_length=1)


class FeedbackResponse(BaseModel):
    received: int


_MODELS: tuple[type[BaseModel], ...] = (
    InferRequest, InferResponse, ErrorBody, LiveResponse, ReadyResponse, ServerMetadata,
    ModelMetadata, ModelReady, FeedbackRequest, FeedbackResponse,
)  # fmt: skip


def ref(model: type[BaseModel]) -> dict[str, str]:
    """A JSON reference to ``model`` among the OpenAPI components."""
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def openapi_components() -> dict[str, Any]:
    """Every model above and the models they use, as OpenAPI component schemas."""
    found: dict[str, Any] = {}
    for model in _MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        found.update(schema.pop("$defs", {}))
        found[model.__name__] = schema
    return found
