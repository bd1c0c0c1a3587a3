"""Pydantic models for every request and response body of the HTTP endpoint."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictFloat, StrictInt

from core.server.identifiers import PRINTABLE, BodyId


class Predictions(BaseModel):
    predicted_class: str
    confidence: float
    probabilities: dict[str, float]


class ExperimentInfo(BaseModel):
    experiment_id: str
    variant: str | None


class PredictResponse(BaseModel):
    request_id: str
    model_version: str
    predictions: Predictions
    inference_time: float = Field(description="Seconds, queueing included.")
    deployment_id: str
    experiment_info: ExperimentInfo | None = None


class WaveformRequest(BaseModel):
    """A waveform as JSON, for clients that have samples rather than a file."""

    audio: list[StrictFloat] | list[list[StrictFloat]] = Field(
        description="Mono samples, or frames of channel samples ([n][channels]); over 1 MiB "
        "of JSON, mono only. Magnitudes up to 1e6."
    )
    sample_rate: StrictInt = Field(22_050, description="Samples per second of `audio`.")


class FeedbackRequest(BaseModel):
    request_id: BodyId
    true_label: str = Field(min_length=1, max_length=100, pattern=PRINTABLE)
    experiment_id: BodyId | None = None


class FeedbackResponse(BaseModel):
    request_id: str
    model_version: str
    variant: str | None
    experiment_id: str | None
    predicted_class: str
    true_label: str
    correct: bool
    duplicate: bool


class Problem(BaseModel):
    detail: str
    error: str | None = None  # the core exception's class name, when a core rule refused


class Health(BaseModel):
    status: str
    detail: str = ""
    deployments: list[dict[str, Any]] = []


# ---- Open Inference Protocol v2 -------------------------------------------------------------


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ServerMetadataV2(BaseModel):
    name: str
    version: str
    extensions: list[str]


class LiveV2(BaseModel):
    live: bool


class ReadyV2(BaseModel):
    ready: bool


class ModelReadyV2(BaseModel):
    name: str
    version: str | None = None  # present for the versioned route
    ready: bool


class ModelMetadataV2(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class InferTensor(BaseModel):
    name: str = Field(max_length=200)
    shape: list[Annotated[int, Field(ge=0, le=2**31)]] = Field(max_length=8)
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferRequestV2(BaseModel):
    id: BodyId | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[InferTensor]
    outputs: list[RequestedOutput] | None = None


class InferResponseV2(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[InferTensor]


def first_problem(exc: Any) -> str:
    """``where: what`` of a pydantic ValidationError's first error, for a one-line detail."""
    first = exc.errors()[0]
    return f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg')}"


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its ``$defs`` written in place, for a request body given
    through ``openapi_extra`` (a ``#/$defs`` reference would not resolve in the document)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)
