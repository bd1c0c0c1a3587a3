"""Registering small real models for tests: an untrained small_cnn with the five labels, seeded
so two versions have different weights. Importable from any test module (tests/ is on the path
through the root conftest)."""

from __future__ import annotations

import torch

from core import ModelMetadata, ModelStatus, get_model_registry
from inference.architectures import build_model

LABELS = ["owl", "hawk", "sparrow", "robin", "background"]


def register_version(
    model_id: str, version: str, seed: int = 0, status: ModelStatus = ModelStatus.VALIDATION
) -> ModelMetadata:
    """Register ``model_id:version``; the metadata comes back with checksum and size filled."""
    torch.manual_seed(seed)
    meta = ModelMetadata(
        model_id=model_id, version=version, status=status, training_config={"labels": LABELS}
    )
    get_model_registry().register_model(build_model("small_cnn", len(LABELS)), meta)
    return meta
