"""Train a model on the synthetic calls and register it with its measured held-out metrics."""

from __future__ import annotations

from collections.abc import Callable

from core.errors import ConflictError, ValidationError
from core.lifecycle import ModelStatus
from core.model_metadata import ModelMetadata
from core.registry import ModelRegistry, get_model_registry

EpochCallback = Callable[[int, int, float], None]


def train_and_register(
    model_id: str,
    version: str,
    *,
    architecture: str = "small_cnn",
    epochs: int | None = None,
    seed: int = 0,
    samples_per_class: int | None = None,
    status: ModelStatus | str = ModelStatus.VALIDATION,
    tags: list[str] | None = None,
    description: str = "",
    on_epoch: EpochCallback | None = None,
    registry: ModelRegistry | None = None,
) -> ModelMetadata:
    registry = registry or get_model_registry()
    meta = ModelMetadata(
        model_id=model_id,
        version=version,
        architecture=architecture,
        status=status,
        tags=list(tags or []),
        description=description,
    )
    meta.validate()  # fail before spending a minute on training
    if registry.exists(model_id, version):
        raise ConflictError(f"{meta.ref} is already registered")
    if epochs is not None and epochs < 1:
        raise ValidationError("epochs must be at least 1")

    from inference.architectures import BUILTIN_ARCHITECTURES, UnknownArchitectureError
    from inference.training import TrainingConfig, train_model

    if architecture not in BUILTIN_ARCHITECTURES and ":" not in architecture:
        raise ValidationError(
            f"unknown architecture {architecture!r}; built-in: {', '.join(BUILTIN_ARCHITECTURES)}"
            " or package.module:factory"
        )
    config = TrainingConfig(architecture=architecture, seed=seed)
    if epochs is not None:
        config.epochs = epochs
    if samples_per_class is not None:
        config.n_per_class = samples_per_class
    try:
        result = train_model(config, on_epoch=on_epoch)
    except UnknownArchitectureError as exc:
        raise ValidationError(str(exc)) from None
    meta.name = f"{model_id} {version}"
    meta.dataset_version = result.dataset_version
    from core.quality.registration import held_out_reference, per_class_metrics

    meta.training_config = {**result.training_config, "held_out_confusion": result.confusion}
    reference = held_out_reference(result.labels, result.confusion, result.confidence_bins)
    if reference is not None:
        meta.training_config["held_out_reference"] = reference

    meta.metrics = {**result.metrics, **per_class_metrics(result.labels, result.confusion)}
    registry.register_model(result.model, meta)
    return meta
