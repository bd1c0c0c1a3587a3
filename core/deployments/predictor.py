"""The data plane: one request in, a prediction out, and feedback joined to it later."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

from core.deployments.config import DeploymentConfig
from core.deployments.prediction_log import RETENTION_DAYS, Prediction, PredictionLog
from core.deployments.served import ServedModel
from core.errors import (
    InferenceFailedError,
    NightScanError,
    NotFoundError,
    OverloadedError,
    PayloadTooLargeError,
    ValidationError,
)

if TYPE_CHECKING:
    from core.deployments.canary import CanaryController
    from core.deployments.serving import LocalServing
    from core.deployments.tracker import PerformanceTracker
    from core.monitoring.metrics import ServingMetrics
    from data.database import Database

log = logging.getLogger(__name__)
SAMPLE_RATE = 22_050


class Predictor:
    def __init__(
        self,
        db: Database,
        serving: LocalServing,
        tracker: PerformanceTracker,
        canaries: CanaryController,
        metrics: ServingMetrics,
    ) -> None:
        self.serving = serving
        self.tracker = tracker
        self.canaries = canaries
        self.metrics = metrics
        self.predictions = PredictionLog(db)
        self._experiment_metrics: dict[str, set[str]] = {}

    def _windows(self, audio_data: Any, sample_rate: int, clip_samples: int, max_s: float):
        from inference.audio import (
            AudioDecodeError,
            AudioTooLongError,
            decode_audio,
            fixed_windows,
            prepare_waveform,
        )

        try:
            if isinstance(audio_data, bytes | bytearray | memoryview):
                samples, sample_rate = decode_audio(bytes(audio_data))
            else:
                samples = np.asarray(audio_data, dtype=np.float32)
            waveform = prepare_waveform(samples, sample_rate, max_seconds=max_s)
        except AudioTooLongError as exc:
            raise PayloadTooLargeError(str(exc)) from None
        except (AudioDecodeError, ValueError, TypeError) as exc:
            raise ValidationError(str(exc)) from None
        return fixed_windows(waveform, clip_samples)

    def _served_target(self, request_id: str, deployment_id: str | None, model_id: str | None):
        """``_target`` from what this process already serves (memory only, no database), or
        None when that needs the database: then ``_target`` runs in a thread."""
        if deployment_id is None:
            deployment_id = self.serving.pick(request_id, model_id)
            if deployment_id is None:
                return None
        local = self.serving.model_for(deployment_id)
        return None if local is None else (deployment_id, local[0], local[1])

    def _target(self, request_id: str, deployment_id: str | None, model_id: str | None):
        """(deployment id, served deployment, served model) for a request without experiment."""
        if deployment_id is None:
            deployment_id = self.serving.pick(request_id, model_id)
            if deployment_id is None:
                self.serving.reconcile()
                deployment_id = self.serving.pick(request_id, model_id)
            if deployment_id is None:
                raise NotFoundError(
                    "no healthy deployment is serving"
                    + (f" {model_id}" if model_id else "")
                    + "; deploy a model first (nightscan deploy MODEL_ID VERSION)"
                )
        local = self.serving.model_for(deployment_id)
        if local is None:
            info = self.serving.store.get(deployment_id)
            if info.status != "running":
                raise NotFoundError(f"deployment {deployment_id!r} is {info.status}")
            local = self.serving.reconcile_one(info)
        return deployment_id, local[0], local[1]

    def _experiment_target(self, model_ref: str) -> tuple[str, ServedModel, float]:
        """The runtime for an experiment variant: a deployment's, or one loaded for it."""
        for dep in self.serving.deployments.values():
            if dep.model_ref == model_ref:
                served = self.serving.served_model(model_ref)
                if served is not None:
                    return dep.config.deployment_id, served, dep.config.max_audio_seconds
        served = self.serving.serve_for_experiment(model_ref)
        return f"experiment:{model_ref}", served, DeploymentConfig.max_audio_seconds

    async def run_inference(
        self,
        audio_data: Any,
        request_id: str | None = None,
        experiment_id: str | None = None,
        *,
        sample_rate: int = SAMPLE_RATE,
        deployment_id: str | None = None,
        model_id: str | None = None,
        user_id: str | None = None,
    ) -> dict[str, Any]:
        """Classify one clip. ``audio_data`` is a waveform (numpy, any channels, at
        ``sample_rate``) or the bytes of a WAV/FLAC/OGG file. With ``experiment_id`` the A/B
        manager picks the variant (sticky per request id) and the result is recorded for it.
        A running canary takes its share sticky per ``user_id`` when given, else per request."""
        from inference.runtime import QueueFullError, RuntimeClosedError

        request_id = request_id or f"req_{uuid.uuid4().hex[:20]}"
        started = time.perf_counter()
        variant = None
        arm = None  # (canary id, "stable" | "canary") while a canary shares the deployment
        if experiment_id:
            from core.experiments import get_ab_test_manager

            ab = get_ab_test_manager()
            variant, model_ref = await asyncio.to_thread(ab.assign, experiment_id, request_id)
        for attempt in range(3):
            if experiment_id:
                dep_id, served, max_s = await asyncio.to_thread(self._experiment_target, model_ref)
            else:
                target = self._served_target(request_id, deployment_id, model_id)
                if target is None:
                    target = await asyncio.to_thread(
                        self._target, request_id, deployment_id, model_id
                    )
                dep_id, dep, served = target
                max_s = dep.config.max_audio_seconds
                served, arm = self.canaries.route(dep, served, user_id or request_id)
            windows = self._windows(audio_data, sample_rate, served.clip_samples, max_s)
            try:
                probs = await served.runtime.infer(windows)
                break
            except RuntimeClosedError:
                # A deploy or rollback switched versions between picking this runtime and
                # queueing on it: the new runtime answers (a rollback fails no request).
                if attempt == 2:
                    raise InferenceFailedError(f"{served.model_ref} is shutting down") from None
            except QueueFullError as exc:
                self._record(dep_id, served.model_ref, 0.0, False, arm, variant, "overloaded")
                raise OverloadedError(
                    f"{dep_id} is at capacity ({served.runtime.queue_depth} windows queued)",
                    retry_after_s=exc.retry_after_s,
                ) from None
            except Exception as exc:
                elapsed = time.perf_counter() - started
                self._record(dep_id, served.model_ref, elapsed, False, arm, variant, "error")
                raise InferenceFailedError(f"{served.model_ref} failed: {exc}") from None
        elapsed = time.perf_counter() - started
        self._record(dep_id, served.model_ref, elapsed, True, arm, variant, "ok")
        mean = probs.mean(axis=0)
        best = int(mean.argmax())
        predictions = {
            "predicted_class": served.labels[best],
            "confidence": float(mean[best]),
            "probabilities": {
                label: float(p) for label, p in zip(served.labels, mean, strict=True)
            },
        }
        logged = self.predictions.remember(
            Prediction(
                request_id,
                dep_id,
                served.model_ref,
                tuple(served.labels),
                predictions["predicted_class"],
                experiment_id,
                variant,
                arm,
                predictions["confidence"],
            )
        )
        if self.predictions.durable:  # answered only once its row is committed
            await self.predictions.written(logged)
        if experiment_id:
            await asyncio.to_thread(
                self._record_for_experiment,
                experiment_id,
                request_id,
                variant,
                {"confidence": predictions["confidence"], "inference_time": elapsed},
            )
        return {
            "request_id": request_id,
            "model_version": served.model_ref,
            "variant": variant,
            "deployment_id": dep_id,
            "predictions": predictions,
            "inference_time": elapsed,
            **({"ensemble": served.describe()} if hasattr(served, "describe") else {}),
        }

    def _record(
        self, dep_id: str, model_ref: str, latency_s: float, ok: bool, arm, variant, status: str
    ) -> None:
        """One served request, for the tracker, the canary judge and Prometheus."""
        self.tracker.record(dep_id, model_ref, latency_s, ok=ok)
        self.canaries.observe(arm, latency_s, ok)
        self.metrics.observe_request(dep_id, model_ref, variant, status, latency_s)

    def _record_for_experiment(self, experiment_id, request_id, variant, metrics) -> None:
        from core.experiments import get_ab_test_manager

        ab = get_ab_test_manager()
        known = self._experiment_metrics.get(experiment_id)
        if known is None:  # experiment configs are immutable once created
            known = set(ab.get_experiment(experiment_id).config.metric_specs())
            self._experiment_metrics[experiment_id] = known
        wanted = {k: v for k, v in metrics.items() if k in known}
        if not wanted:
            return
        try:
            ab.record_result(experiment_id, request_id, variant, wanted)
        except NightScanError as exc:  # e.g. stopped meanwhile: the prediction still stands
            log.warning("result for %s not recorded: %s", request_id, exc)

    def record_feedback(
        self, request_id: str, true_label: str, experiment_id: str | None = None
    ) -> dict[str, Any]:
        """Ground truth for an earlier prediction, from this server process or another, before
        or after a restart: joined to its version (and variant) and recorded as accuracy.
        Idempotent everywhere: only the first feedback for a request counts."""
        found = self.predictions.find(request_id)
        if found is None:
            raise NotFoundError(
                f"request {request_id!r} is unknown: no prediction was recorded for it in the "
                f"last {RETENTION_DAYS} days"
            )
        if experiment_id and found.experiment_id and experiment_id != found.experiment_id:
            raise ValidationError(
                f"request {request_id!r} belongs to experiment {found.experiment_id!r}"
            )
        if true_label not in found.labels:
            raise ValidationError(
                f"unknown label {true_label!r}; expected one of: {', '.join(found.labels)}"
            )
        first, correct = self.predictions.claim(
            request_id, found.predicted_class == true_label, true_label
        )
        if first:
            self.tracker.record_feedback(found.deployment_id, found.model_ref, bool(correct))
            self.canaries.observe_feedback(found.canary_arm, bool(correct))
            if found.experiment_id:
                hit = 1.0 if correct else 0.0
                self._record_for_experiment(  # only the metrics the experiment declares
                    found.experiment_id,
                    request_id,
                    found.variant,
                    {  # per-class recall and precision are per-request 0/1 outcomes too
                        "accuracy": hit,
                        f"recall.{true_label}": hit,
                        f"precision.{found.predicted_class}": hit,
                    },
                )
        return {
            "request_id": request_id,
            "model_version": found.model_ref,
            "variant": found.variant,
            "experiment_id": found.experiment_id,
            "predicted_class": found.predicted_class,
            "true_label": true_label,
            "correct": correct,
            "duplicate": not first,
        }
