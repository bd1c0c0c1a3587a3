"""Open Inference Protocol v2 (KServe / Triton HTTP): standard clients such as tritonclient work
unchanged. Input: one FP32 tensor ``waveform`` shaped [1, samples] (optional parameter
``sample_rate``); outputs: ``probabilities`` [1, classes] (FP32) and ``predicted_class`` [1]
(BYTES). JSON data and the binary tensor extension are both accepted."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from core.deployments import DeploymentManager
from core.errors import NightScanError, NotFoundError, OverloadedError, ValidationError
from core.registry import ModelRegistry
from core.server.deps import Manager, Registry
from core.server.schemas import (
    InferRequestV2,
    InferResponseV2,
    ModelMetadataV2,
    TensorMetadata,
)


class _ProtocolErrors(APIRoute):
    """Errors in the protocol's shape, ``{"error": message}`` (what tritonclient reads), with
    the endpoint's usual ``detail`` alongside."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except NightScanError as exc:
                headers = None
                if isinstance(exc, OverloadedError):
                    headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
                body = {"error": str(exc), "detail": str(exc)}
                return JSONResponse(body, status_code=exc.http_status, headers=headers)

        return route


router = APIRouter(prefix="/v2", tags=["open inference protocol v2"], route_class=_ProtocolErrors)
INPUT_NAME = "waveform"


@router.get("", response_model=dict[str, Any])
def server_metadata() -> dict[str, Any]:
    return {"name": "nightscan-ops", "version": "0.1.0", "extensions": ["binary_tensor_data"]}


@router.get("/health/live", response_model=dict[str, bool])
def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready", response_model=dict[str, bool])
def ready(mgr: Manager) -> Response:
    with mgr.pool.lock:
        ok = any(d.healthy for d in mgr.pool.deployments.values())
    return JSONResponse({"ready": ok}, status_code=200 if ok else 503)


def _deployment_for(
    mgr: DeploymentManager, name: str, version: str | None, healthy_only: bool = False
) -> str:
    """The running deployment that serves model ``name`` (at ``version``, when given); with
    ``healthy_only``, one whose health checks pass (what readiness means)."""
    candidates = [
        d
        for d in mgr.list_deployments()
        if d.model_id == name
        and (version is None or d.version == version)
        and not (healthy_only and d.health == "unhealthy")
    ]
    if not candidates:
        what = f"{name}:{version}" if version else name
        raise NotFoundError(f"model {what!r} is not deployed")
    return candidates[0].deployment_id


def _metadata(registry: ModelRegistry, name: str, version: str | None) -> ModelMetadataV2:
    if version:
        metas = [registry.get_model(name, version)]
    else:
        metas = registry.list_models(model_id=name)
        if not metas:
            raise NotFoundError(f"model {name!r} is not registered")
    labels = metas[-1].labels
    return ModelMetadataV2(
        name=name,
        versions=[m.version for m in metas],
        platform="pytorch",
        inputs=[TensorMetadata(name=INPUT_NAME, datatype="FP32", shape=[1, -1])],
        outputs=[
            TensorMetadata(name="probabilities", datatype="FP32", shape=[1, len(labels)]),
            TensorMetadata(name="predicted_class", datatype="BYTES", shape=[1]),
        ],
    )


@router.get("/models/{name}", response_model=ModelMetadataV2)
def model_metadata(name: str, registry: Registry) -> ModelMetadataV2:
    return _metadata(registry, name, None)


@router.get("/models/{name}/versions/{version}", response_model=ModelMetadataV2)
def model_version_metadata(name: str, version: str, registry: Registry) -> ModelMetadataV2:
    return _metadata(registry, name, version)


@router.get("/models/{name}/ready", response_model=dict[str, Any])
def model_ready(name: str, mgr: Manager) -> Response:
    try:
        _deployment_for(mgr, name, None, healthy_only=True)
    except NotFoundError:
        return JSONResponse({"name": name, "ready": False}, status_code=503)
    return JSONResponse({"name": name, "ready": True})


@router.get("/models/{name}/versions/{version}/ready", response_model=dict[str, Any])
def model_version_ready(name: str, version: str, mgr: Manager) -> Response:
    try:
        _deployment_for(mgr, name, version, healthy_only=True)
    except NotFoundError:
        return JSONResponse({"name": name, "version": version, "ready": False}, status_code=503)
    return JSONResponse({"name": name, "version": version, "ready": True})


async def _parse(request: Request) -> tuple[InferRequestV2, bytes]:
    """The JSON header and, with the binary extension, the bytes that follow it."""
    body = await request.body()
    header_len = request.headers.get("inference-header-content-length")
    if header_len is not None:
        if not header_len.isdigit() or int(header_len) > len(body):
            raise ValidationError("Inference-Header-Content-Length does not fit the body")
        header, binary = body[: int(header_len)], body[int(header_len) :]
    else:
        header, binary = body, b""
    try:
        return InferRequestV2.model_validate(json.loads(header or b"null")), binary
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"invalid inference request: {str(exc).splitlines()[0]}") from None


def _waveform(req: InferRequestV2, binary: bytes) -> tuple[np.ndarray, int]:
    tensors = {t.name: t for t in req.inputs}
    tensor = tensors.get(INPUT_NAME) or (req.inputs[0] if len(req.inputs) == 1 else None)
    if tensor is None:
        raise ValidationError(f"expected one input tensor named {INPUT_NAME!r}")
    if tensor.datatype != "FP32":
        raise ValidationError(f"input {tensor.name!r} must be FP32, got {tensor.datatype}")
    size = int(np.prod(tensor.shape)) if tensor.shape else 0
    params = tensor.parameters or {}
    if "binary_data_size" in params:
        nbytes = int(params["binary_data_size"])
        if nbytes != size * 4 or nbytes > len(binary):
            raise ValidationError("binary_data_size does not match the tensor shape")
        data = np.frombuffer(binary[:nbytes], dtype="<f4")
    else:
        if tensor.data is None:
            raise ValidationError(f"input {tensor.name!r} has no data")
        try:
            data = np.asarray(tensor.data, dtype=np.float32).reshape(-1)
        except (ValueError, TypeError):
            raise ValidationError(f"input {tensor.name!r} data must be numbers") from None
        if data.size != size:
            raise ValidationError(
                f"input {tensor.name!r}: shape {tensor.shape} needs {size} values"
            )
    if len(tensor.shape) == 2 and tensor.shape[0] != 1:
        raise ValidationError("send one waveform per request (shape [1, samples])")
    rate = (req.parameters or {}).get("sample_rate", params.get("sample_rate", 22_050))
    if not isinstance(rate, int) or isinstance(rate, bool):
        raise ValidationError("parameter sample_rate must be an integer")
    return data, rate


async def _infer(
    request: Request, mgr: DeploymentManager, name: str, version: str | None
) -> Response:
    req, binary = await _parse(request)
    waveform, rate = _waveform(req, binary)
    deployment_id = _deployment_for(mgr, name, version)
    result = await mgr.run_inference(
        waveform, request_id=req.id, sample_rate=rate, deployment_id=deployment_id
    )
    probs = list(result["predictions"]["probabilities"].values())
    served_version = result["model_version"].rsplit(":", 1)[1]
    return JSONResponse(
        {
            "model_name": name,
            "model_version": served_version,
            "id": req.id or result["request_id"],
            "outputs": [
                {
                    "name": "probabilities",
                    "datatype": "FP32",
                    "shape": [1, len(probs)],
                    "data": probs,
                },
                {
                    "name": "predicted_class",
                    "datatype": "BYTES",
                    "shape": [1],
                    "data": [result["predictions"]["predicted_class"]],
                },
            ],
        }  # fmt: skip
    )


@router.post("/models/{name}/infer", response_model=InferResponseV2)
async def infer(request: Request, name: str, mgr: Manager) -> Response:
    return await _infer(request, mgr, name, None)


@router.post("/models/{name}/versions/{version}/infer", response_model=InferResponseV2)
async def infer_version(request: Request, name: str, version: str, mgr: Manager) -> Response:
    return await _infer(request, mgr, name, version)
