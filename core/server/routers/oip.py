"""Open Inference Protocol v2 (KServe / Triton HTTP): standard clients such as tritonclient work
unchanged. Input: one FP32 tensor ``waveform`` shaped [1, samples] (optional parameter
``sample_rate``); outputs: ``probabilities`` [1, classes] (FP32) and ``predicted_class`` [1]
(BYTES). JSON data and the binary tensor extension are both accepted."""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from core.deployments import DeploymentManager
from core.errors import NightScanError, NotFoundError, OverloadedError
from core.registry import ModelRegistry
from core.server.audio_input import require_finite
from core.server.deps import Limits, Manager, Registry
from core.server.identifiers import Id
from core.server.limits import AudioLimits
from core.server.oip_request import INPUT_NAME, parse_infer_request
from core.server.problems import problems
from core.server.request_body import body_chunks, joined
from core.server.schemas import (
    InferRequestV2,
    InferResponseV2,
    LiveV2,
    ModelMetadataV2,
    ModelReadyV2,
    ReadyV2,
    ServerMetadataV2,
    TensorMetadata,
    inline_schema,
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


INFER_ERRORS = problems(413, 503)
INFER_BODY = {
    "required": True,
    "content": {
        # With the binary tensor extension the JSON header is followed by the raw tensor bytes
        # (Inference-Header-Content-Length); the header alone is the JSON below.
        "application/json": {"schema": inline_schema(InferRequestV2)},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    },
}
router = APIRouter(prefix="/v2", tags=["open inference protocol v2"], route_class=_ProtocolErrors)


@router.get("", response_model=ServerMetadataV2)
def server_metadata() -> dict[str, Any]:
    return {"name": "nightscan-ops", "version": "0.1.0", "extensions": ["binary_tensor_data"]}


@router.get("/health/live", response_model=LiveV2)
def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready", response_model=ReadyV2, responses={503: {"model": ReadyV2}})
def ready(mgr: Manager) -> Response:
    ok = any(d.healthy for d in mgr.served_deployments().values())
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


def _metadata(registry: ModelRegistry, name: Id, version: str | None) -> ModelMetadataV2:
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
def model_metadata(name: Id, registry: Registry) -> ModelMetadataV2:
    return _metadata(registry, name, None)


@router.get("/models/{name}/versions/{version}", response_model=ModelMetadataV2)
def model_version_metadata(name: Id, version: Id, registry: Registry) -> ModelMetadataV2:
    return _metadata(registry, name, version)


@router.get(
    "/models/{name}/ready", response_model=ModelReadyV2, responses={503: {"model": ModelReadyV2}}
)
def model_ready(name: Id, mgr: Manager) -> Response:
    try:
        _deployment_for(mgr, name, None, healthy_only=True)
    except NotFoundError:
        return JSONResponse({"name": name, "ready": False}, status_code=503)
    return JSONResponse({"name": name, "ready": True})


@router.get(
    "/models/{name}/versions/{version}/ready",
    response_model=ModelReadyV2,
    responses={503: {"model": ModelReadyV2}},
)
def model_version_ready(name: Id, version: Id, mgr: Manager) -> Response:
    try:
        _deployment_for(mgr, name, version, healthy_only=True)
    except NotFoundError:
        return JSONResponse({"name": name, "version": version, "ready": False}, status_code=503)
    return JSONResponse({"name": name, "version": version, "ready": True})


async def _infer(
    request: Request,
    mgr: DeploymentManager,
    limits: AudioLimits,
    name: str,
    version: str | None,
) -> Response:
    chunks = await body_chunks(request)  # at most the body limit (core.server.body_limit)
    header_length = request.headers.get("inference-header-content-length")
    req, waveform = await anyio.to_thread.run_sync(
        lambda: parse_infer_request(joined(chunks), header_length, limits)
    )
    deployment_id = _deployment_for(mgr, name, version)
    result = await mgr.run_inference(
        waveform.samples,
        request_id=req.id,
        sample_rate=waveform.sample_rate,
        deployment_id=deployment_id,
    )
    require_finite(result["predictions"])
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


@router.post(
    "/models/{name}/infer",
    response_model=InferResponseV2,
    responses=INFER_ERRORS,
    openapi_extra={"requestBody": INFER_BODY},
)
async def infer(request: Request, name: Id, mgr: Manager, limits: Limits) -> Response:
    return await _infer(request, mgr, limits, name, None)


@router.post(
    "/models/{name}/versions/{version}/infer",
    response_model=InferResponseV2,
    responses=INFER_ERRORS,
    openapi_extra={"requestBody": INFER_BODY},
)
async def infer_version(
    request: Request, name: Id, version: Id, mgr: Manager, limits: Limits
) -> Response:
    return await _infer(request, mgr, limits, name, version)
