"""Turning a registered version into a warmed-up batched runtime.

Weights come through the registry (checksum verified on every load) into an LRU model cache, so
two deployments or experiment variants of one version never load it twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from core import events
from core.deployments.config import DeploymentConfig
from core.deployments.probe import probe_runtime
from core.deployments.served import ServedModel
from core.errors import ValidationError
from core.model_metadata import ModelMetadata
from core.registry import ModelRegistry

if TYPE_CHECKING:
    from inference.model_cache import ModelCache

MODEL_CACHE_BYTES = 2 * 1024**3


class ModelLoader:
    def __init__(
        self,
        registry: ModelRegistry,
        on_batch: Callable[[str], Callable[[int, float], None]] | None = None,
    ) -> None:
        self.registry = registry
        self.on_batch = on_batch  # model version -> hook called after every forward pass
        self._cache: ModelCache | None = None
        self._load_lock = threading.Lock()

    def cache(self) -> ModelCache:
        from inference.model_cache import ModelCache

        if self._cache is None:
            self._cache = ModelCache(budget_bytes=2 * 1024**3)
        return self._cache

    def load(self, meta: ModelMetadata, config: DeploymentConfig) -> ServedModel:
        """Verified weights -> module -> batched runtime, warmed up."""
        from inference.features import FeatureConfig
        from inference.runtime import BatchedRuntime

        labels = meta.labels
        if len(labels) < 2:
            raise ValidationError(f"{meta.ref} has no labels in its training_config")
        with self._load_lock:
            module = self.cache().get_or_load(
                (meta.model_id, meta.version),
                lambda: self.registry.load_model(meta.model_id, meta.version),
            )
        device = self._device(config)
        features = FeatureConfig.from_dict(meta.training_config.get("features") or {})
        if device == "cpu":  # one C++ call per forward pass (built-in architectures only)
            from inference.tracing import trace_for_serving, traced_by_default

            if traced_by_default(meta.architecture):
                module = trace_for_serving(module, features.clip_samples, device)
        # resources.cpu: torch threads of this runtime's workers only (README, "resources.cpu").
        runtime = BatchedRuntime(
            module,
            config.batching.runtime(config.scaling.min_replicas, config.resources.threads),
            device=device,
            name=meta.ref,
            on_batch=self.on_batch(meta.ref) if self.on_batch else None,
        )
        served = ServedModel(meta.ref, labels, features.clip_samples, runtime, device)
        try:
            runtime.infer_now(np.zeros((1, served.clip_samples), dtype=np.float32))  # warm-up
        except Exception:
            runtime.close(drain=False)
            raise
        return served

    def _device(self, config: DeploymentConfig) -> str:
        if config.resources.gpu <= 0:
            return "cpu"
        import torch

        if torch.cuda.is_available():
            return "cuda"
        events.emit(
            "deployment.gpu_unavailable",
            f"{config.deployment_id} asked for {config.resources.gpu} GPU(s) but CUDA is not "
            "available here; serving on the CPU",
            source=config.deployment_id,
            severity="warning",
        )
        return "cpu"

    def verified_load(self, meta: ModelMetadata, config: DeploymentConfig) -> ServedModel:
        """Load, warm up and probe; any failure closes what was started and raises."""
        served = self.load(meta, config)
        result = probe_runtime(served, timeout_s=float(config.health_check.timeout))
        if not result.ok:
            served.runtime.close(drain=False)
            raise RuntimeError(f"health check failed: {result.detail}")
        return served
