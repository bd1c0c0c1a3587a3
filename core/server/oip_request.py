"""An Open Inference Protocol v2 infer request -> a prepared waveform (in a worker thread).

Every field a client controls is checked before it costs anything: the JSON header's depth and,
for a large header, its samples parsed without a Python object apiece (``json_samples``); the
tensor shape's size against the sample limit; ``binary_data_size`` as a non-negative integer that
matches the shape and fits the body.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import ValidationError as PydanticValidationError

from core.errors import PayloadTooLargeError, ValidationError
from core.server.audio_input import SMALL_JSON_BYTES, Waveform, from_samples
from core.server.json_samples import loads_bounded, split_numeric_array
from core.server.limits import AudioLimits
from core.server.schemas import InferRequestV2, first_problem

INPUT_NAME = "waveform"


def parse_infer_request(
    body: bytes, header_length: str | None, limits: AudioLimits
) -> tuple[InferRequestV2, Waveform]:
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise ValidationError("Inference-Header-Content-Length does not fit the body")
        header, binary = body[: int(header_length)], body[int(header_length) :]
    else:
        header, binary = body, b""
    cut = None
    if len(header) > SMALL_JSON_BYTES:
        split = split_numeric_array(header, "data", limits.max_samples)
        if split is None:
            raise ValidationError(
                f"an inference header over {SMALL_JSON_BYTES // 1024**2} MiB must hold one "
                "input whose data is a flat array of numbers"
            )
        document, cut = split.rest, split.values
    else:
        document = loads_bounded(header or b"null")
    try:
        request = InferRequestV2.model_validate(document)
    except PydanticValidationError as exc:
        raise ValidationError(f"invalid inference request: {first_problem(exc)}") from None
    data, rate = _tensor_values(request, binary, cut, limits)
    return request, from_samples(data, rate, limits)


def _tensor_values(
    req: InferRequestV2, binary: bytes, cut: np.ndarray | None, limits: AudioLimits
) -> tuple[np.ndarray, int]:
    tensors = {t.name: t for t in req.inputs}
    tensor = tensors.get(INPUT_NAME) or (req.inputs[0] if len(req.inputs) == 1 else None)
    if tensor is None:
        raise ValidationError(f"expected one input tensor named {INPUT_NAME!r}")
    if cut is not None and len(req.inputs) != 1:
        raise ValidationError("a large inference header must hold exactly one input")
    if tensor.datatype != "FP32":
        raise ValidationError(f"input {tensor.name!r} must be FP32, got {tensor.datatype}")
    if len(tensor.shape) == 2 and tensor.shape[0] != 1:
        raise ValidationError("send one waveform per request (shape [1, samples])")
    size = math.prod(tensor.shape) if tensor.shape else 0
    if size > limits.max_samples:
        raise PayloadTooLargeError(
            f"input {tensor.name!r} has {size} values; the limit is {limits.max_samples}"
        )
    params = tensor.parameters or {}
    if "binary_data_size" in params:
        nbytes = params["binary_data_size"]
        if not isinstance(nbytes, int) or isinstance(nbytes, bool) or nbytes < 0:
            raise ValidationError("binary_data_size must be a non-negative integer")
        if nbytes != size * 4 or nbytes > len(binary):
            raise ValidationError("binary_data_size does not match the tensor shape")
        data = np.frombuffer(binary[:nbytes], dtype="<f4")
    else:
        if cut is not None:
            data = cut
        elif tensor.data is None:
            raise ValidationError(f"input {tensor.name!r} has no data")
        else:
            try:
                data = np.asarray(tensor.data, dtype=np.float32).reshape(-1)
            except (ValueError, TypeError, OverflowError):
                raise ValidationError(f"input {tensor.name!r} data must be numbers") from None
        if data.size != size:
            raise ValidationError(
                f"input {tensor.name!r}: shape {tensor.shape} needs {size} values"
            )
    rate = (req.parameters or {}).get("sample_rate", params.get("sample_rate", 22_050))
    if not isinstance(rate, int) or isinstance(rate, bool):
        raise ValidationError("parameter sample_rate must be an integer")
    return data, rate
