"""The HTTP endpoint: FastAPI over the same core services as the CLI and the console.

``create_app()`` is the factory that ``nightscan serve``, the console's background server and the
tests share. Every client mistake is a 4xx with a ``detail``; a full queue is 503 + Retry-After.
"""

from __future__ import annotations

import logging
import math
import os
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError as PydanticValidationError

from core.auth import AuthenticationError
from core.deployments import DeploymentManager, get_deployment_manager
from core.errors import NightScanError, OverloadedError, PayloadTooLargeError, ValidationError
from core.server import actions, oip, views
from core.server.routers import quality as quality_router
from core.server.schemas import (
    FeedbackRequest,
    FeedbackResponse,
    Health,
    PredictResponse,
    Problem,
    WaveformRequest,
)
from core.server.security import require

log = logging.getLogger(__name__)
MAX_UPLOAD_BYTES = 64 * 1024**2
AUDIO_CONTENT_TYPES = ("audio/", "application/octet-stream")
TRUE = ("1", "true", "yes", "on")
EXPERIMENT_CHECK_S = 30.0
ERRORS = {
    400: {"model": Problem},
    404: {"model": Problem},
    413: {"model": Problem},
    415: {"model": Problem},
    422: {"model": Problem},
    503: {"model": Problem},
}


class UnsupportedMediaType(ValidationError):
    http_status = 415


def _problem(
    status: int, detail: str, headers: dict[str, str] | None = None, error: str | None = None
) -> JSONResponse:
    """``detail`` for people; ``error`` names the core exception, so that a client of this API
    (the attached console) raises the same one (several share a status code)."""
    body = {"detail": detail} if error is None else {"detail": detail, "error": error}
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(
    manager: DeploymentManager | None = None,
    *,
    background: bool = True,
    interval_s: float = 1.0,
    require_predict_token: bool | None = None,
) -> FastAPI:
    """The app; with ``background`` the serving loop (reconcile, health checks, autoscaling,
    snapshots, alerts) and the experiment monitor run while the app does. Shutdown drains
    queued requests. ``/predict`` and ``/feedback`` take a token only when
    ``require_predict_token`` (default: ``$NIGHTSCAN_REQUIRE_PREDICT_TOKEN``)."""
    if require_predict_token is None:
        require_predict_token = os.environ.get("NIGHTSCAN_REQUIRE_PREDICT_TOKEN", "") in TRUE
    predict_guard = [Depends(require("viewer"))] if require_predict_token else []

    def get_manager() -> DeploymentManager:
        return manager or get_deployment_manager()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        mgr = get_manager()
        app.state.manager = mgr
        import anyio

        await anyio.to_thread.run_sync(mgr.reconcile)  # restore deployments after a restart
        monitor = None
        if background:
            from core.experiments import ExperimentMonitor

            mgr.start_background(interval_s)
            monitor = ExperimentMonitor(interval=EXPERIMENT_CHECK_S).start()  # auto-stop, bandits
        try:
            yield
        finally:
            if monitor is not None:
                monitor.stop()
            # uvicorn has let in-flight requests finish; each acknowledged experiment result was
            # committed before its response, so draining the runtimes is all that is left.
            await anyio.to_thread.run_sync(mgr.close)

    app = FastAPI(
        title="NightScan Ops",
        version="0.1.0",
        description="Wildlife-sound inference with model versioning and A/B experiments.",
        lifespan=lifespan,
    )

    @app.exception_handler(NightScanError)
    async def nightscan_error(_request: Request, exc: NightScanError) -> JSONResponse:
        headers = None
        if isinstance(exc, AuthenticationError):
            headers = {"WWW-Authenticate": "Bearer"}
        if isinstance(exc, OverloadedError):
            headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
        return _problem(exc.http_status, str(exc), headers, error=type(exc).__name__)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: {e.get('msg')}"
            for e in exc.errors()
        ]
        return _problem(422, "; ".join(parts) or "invalid request")

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return _problem(500, f"internal error: {type(exc).__name__}")

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses=ERRORS,
        summary="Classify an audio clip",
        dependencies=predict_guard,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {"file": {"type": "string", "format": "binary"}},
                            "required": ["file"],
                        }
                    },
                    "application/json": {"schema": WaveformRequest.model_json_schema()},
                    "audio/wav": {"schema": {"type": "string", "format": "binary"}},
                },
            }
        },
    )
    async def predict(
        request: Request,
        experiment_id: str | None = Query(None, max_length=200),
        deployment_id: str | None = Query(None, max_length=200),
        request_id: str | None = Query(None, max_length=200),
    ) -> PredictResponse:
        """A WAV/FLAC/OGG file (multipart field `file`, or the raw body with an audio content
        type) or JSON samples. With `experiment_id`, the A/B experiment picks the version."""
        audio, sample_rate = await _read_audio(request)
        result = await request.app.state.manager.run_inference(
            audio,
            request_id=request_id or request.headers.get("x-request-id"),
            experiment_id=experiment_id,
            sample_rate=sample_rate,
            deployment_id=deployment_id,
        )
        return PredictResponse(
            request_id=result["request_id"],
            model_version=result["model_version"],
            predictions=result["predictions"],
            inference_time=result["inference_time"],
            deployment_id=result["deployment_id"],
            experiment_info={"experiment_id": experiment_id, "variant": result["variant"]}
            if experiment_id
            else None,
        )

    @app.post(
        "/feedback", response_model=FeedbackResponse, responses=ERRORS, dependencies=predict_guard
    )
    def feedback(body: FeedbackRequest, request: Request) -> FeedbackResponse:
        """Ground truth for an earlier prediction; recorded as accuracy for its version."""
        return FeedbackResponse(
            **request.app.state.manager.record_feedback(
                body.request_id, body.true_label, body.experiment_id
            )
        )

    @app.get("/metrics", include_in_schema=True, response_class=Response)
    def metrics(request: Request) -> Response:
        """Prometheus text format: request counters and latency/batch histograms, plus the
        gauges the seed's alert rules use (model_inference_latency_p95, model_error_rate,
        ab_test_confidence)."""
        body, content_type = request.app.state.manager.metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/health", response_model=Health)
    def health() -> Health:
        """Liveness: the process answers."""
        return Health(status="ok")

    @app.get("/ready", response_model=Health, responses={503: {"model": Health}})
    def ready(request: Request) -> Any:
        """Readiness: at least one deployment is loaded here and healthy."""
        mgr: DeploymentManager = request.app.state.manager
        served = []
        with mgr.pool.lock:
            for dep in mgr.pool.deployments.values():
                served.append(
                    {
                        "deployment_id": dep.config.deployment_id,
                        "model_version": dep.model_ref,
                        "healthy": dep.healthy,
                    }
                )
        if any(d["healthy"] for d in served):
            return Health(status="ready", deployments=served)
        detail = "no deployment is loaded" if not served else "no deployment is healthy"
        return JSONResponse(
            Health(status="not ready", detail=detail, deployments=served).model_dump(),
            status_code=503,
        )

    app.include_router(views.router)
    app.include_router(actions.router)
    app.include_router(oip.router)
    app.include_router(quality_router.router)
    return app


async def _read_audio(request: Request) -> tuple[Any, int]:
    """(bytes of an audio file or a list of samples, sample rate) from any accepted body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_UPLOAD_BYTES:
        raise _too_large()
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=5)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ValidationError("multipart body needs a file field named 'file'")
        data = await upload.read()
        _require_bytes(data)
        return data, 0
    if content_type == "application/json":
        raw = await _read_body(request)
        try:
            body = WaveformRequest.model_validate_json(raw)
        except PydanticValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise ValidationError(f"invalid JSON body: {where}: {first.get('msg')}") from None
        return body.audio, body.sample_rate
    if content_type.startswith(AUDIO_CONTENT_TYPES):
        data = await _read_body(request)
        _require_bytes(data)
        return data, 0
    raise UnsupportedMediaType(
        f"unsupported content type {content_type or '(none)'!r}; send multipart/form-data with "
        "a 'file' field, an audio/* body, or application/json samples"
    )


def _too_large() -> PayloadTooLargeError:
    return PayloadTooLargeError(f"request body is larger than {MAX_UPLOAD_BYTES // 1024**2} MiB")


async def _read_body(request: Request) -> bytes:
    """The body, refusing to buffer more than the limit even without a Content-Length."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _require_bytes(data: bytes) -> None:
    if not data:
        raise ValidationError("the audio file is empty")
