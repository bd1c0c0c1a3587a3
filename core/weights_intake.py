"""Weights checked from a file's header: names and shapes against the declared architecture,
built on torch's meta device, so registering a large .safetensors file never loads it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch

from core.errors import ValidationError
from core.model_metadata import ModelMetadata

T = TypeVar("T")


def check_layout(layout: dict[str, tuple[int, ...]], metadata: ModelMetadata) -> None:
    """Refuse (ValidationError) weights whose tensor names or shapes do not fit the declared
    architecture, without loading them."""

    features = metadata.training_config.get("features")
    model = fitting(
        metadata, lambda: _shapes_only(metadata.architecture, num_classes_of(metadata), features)
    )
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(layout))
    unexpected = sorted(set(layout) - set(expected))
    wrong = sorted(k for k in set(expected) & set(layout) if expected[k] != layout[k])
    if missing or unexpected or wrong:
        parts = [
            f"{what}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
            for what, keys in (("missing", missing), ("unexpected", unexpected),
                               ("size mismatch", wrong))
            if keys
        ]  # fmt: skip
        raise ValidationError(
            f"weights do not fit architecture {metadata.architecture!r}: {'; '.join(parts)}"
        )


def num_classes_of(metadata: ModelMetadata) -> int:
    cfg = metadata.training_config
    num_classes = int(cfg.get("num_classes") or len(cfg.get("labels") or []) or 0)
    if num_classes < 2:
        raise ValueError("training_config needs 'labels' (or 'num_classes') with 2+ classes")
    return num_classes


def fitting(metadata: ModelMetadata, build: Callable[[], T]) -> T:
    """``build()``, with its refusals as ValidationErrors that name the architecture."""
    from inference.architectures import UnknownArchitectureError

    try:
        return build()
    except UnknownArchitectureError as exc:
        raise ValidationError(str(exc)) from None
    except (ValueError, RuntimeError) as exc:
        raise ValidationError(
            f"weights do not fit architecture {metadata.architecture!r}: {exc}"
        ) from None


def _shapes_only(architecture: str, num_classes: int, features: Any) -> torch.nn.Module:
    """The architecture on torch's meta device (no memory for its weights); built for real
    when its factory computes something that needs data."""
    import torch

    from inference.architectures import build_model

    try:
        with torch.device("meta"):
            return build_model(architecture, num_classes, features)
    except (RuntimeError, NotImplementedError):
        return build_model(architecture, num_classes, features)
