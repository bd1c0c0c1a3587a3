"""/predict and /feedback: the routes clients call for every clip (token-guarded on demand)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from core.errors import ValidationError
from core.server.audio_input import require_finite
from core.server.deps import Limits, Manager
from core.server.identifiers import QueryId, valid_identifier
from core.server.problems import AUTH_ERRORS, ERRORS
from core.server.request_body import PredictsInFlight, read_audio
from core.server.schemas import (
    FeedbackRequest,
    FeedbackResponse,
    PredictResponse,
    WaveformRequest,
)
from core.server.security import require

PREDICT_BODY = {
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


def serving_router(require_token: bool) -> APIRouter:
    """The router, with a viewer token required on both routes when ``require_token``."""
    router = APIRouter(
        tags=["serving"],
        dependencies=[Depends(require("viewer"))] if require_token else [],
        responses={**ERRORS, **(AUTH_ERRORS if require_token else {})},
    )

    @router.post(
        "/predict",
        response_model=PredictResponse,
        summary="Classify an audio clip",
        openapi_extra={"requestBody": PREDICT_BODY},
    )
    async def predict(
        request: Request,
        mgr: Manager,
        limits: Limits,
        experiment_id: QueryId = None,
        deployment_id: QueryId = None,
        request_id: QueryId = None,
    ) -> PredictResponse:
        """A WAV/FLAC/OGG file (multipart field `file`, or the raw body with an audio content
        type) or JSON samples. With `experiment_id`, the A/B experiment picks the version."""
        header_id = request.headers.get("x-request-id")
        if header_id is not None and not valid_identifier(header_id):
            raise ValidationError(
                "X-Request-ID must be 1-200 characters without control characters"
            )
        with PredictsInFlight():
            waveform = await read_audio(request, limits)
            result = await mgr.run_inference(
                waveform.samples,
                request_id=request_id or header_id,
                experiment_id=experiment_id,
                sample_rate=waveform.sample_rate,
                deployment_id=deployment_id,
            )
        require_finite(result["predictions"])
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

    @router.post("/feedback", response_model=FeedbackResponse)
    def feedback(body: FeedbackRequest, mgr: Manager) -> FeedbackResponse:
        """Ground truth for an earlier prediction; recorded as accuracy for its version."""
        return FeedbackResponse(
            **mgr.record_feedback(body.request_id, body.true_label, body.experiment_id)
        )

    return router
