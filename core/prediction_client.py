"""What a client of ``predict`` needs on either side of HTTP: which running deployment serves a
given version, and one shape for the answer (the ``/predict`` response, ``PredictResponse``), so
the CLI prints the same fields for in-process and ``--url`` predictions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from core.errors import NotFoundError
from core.model_metadata import parse_model_ref


def deployment_serving(
    model_ref: str,
    deployments: Iterable[dict[str, Any]],
    is_registered: Callable[[str, str], bool] | None = None,
) -> str:
    """The id of the running deployment that serves ``model_ref`` (``ID:VERSION``), from
    ``DeploymentInfo.to_dict()`` rows (local) or ``GET /deployments`` (remote): the first by id,
    as the Open Inference Protocol's ``/v2/models/{name}/versions/{version}`` picks it.
    When none does, ``is_registered`` tells a version nobody registered (a typo: say so) from
    one that is only not deployed (say how to deploy it)."""
    model_id, version = parse_model_ref(model_ref)
    serving = sorted(
        d["deployment_id"]
        for d in deployments
        if d["model_id"] == model_id and d["version"] == version and d["status"] == "running"
    )
    if not serving and is_registered is not None and not is_registered(model_id, version):
        raise NotFoundError(f"{model_id}:{version} is not registered; see nightscan registry list")
    if not serving:
        raise NotFoundError(
            f"no running deployment serves {model_id}:{version}; "
            f"deploy it first (nightscan deploy {model_id} {version})"
        )
    return serving[0]


def prediction_response(result: dict[str, Any], experiment_id: str | None) -> dict[str, Any]:
    """``Predictor.run_inference``'s dict (which carries ``variant``) as ``/predict`` answers."""
    return {
        "request_id": result["request_id"],
        "model_version": result["model_version"],
        "predictions": result["predictions"],
        "inference_time": result["inference_time"],
        "deployment_id": result["deployment_id"],
        "experiment_info": (
            {"experiment_id": experiment_id, "variant": result.get("variant")}
            if experiment_id
            else None
        ),
    }
