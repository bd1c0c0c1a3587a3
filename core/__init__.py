"""NightScan Ops core: the domain services every face (CLI, console, HTTP) calls.

The seed's public API lives here. Nothing in this package imports Textual; torch is imported
only where weights are touched.
"""

from core.comparison import compare_metadata
from core.context import configure, get_context
from core.errors import (
    ConflictError,
    IntegrityError,
    InvalidTransitionError,
    NightScanError,
    NotFoundError,
    UnsafeArtifactError,
    ValidationError,
)
from core.lifecycle import ModelStatus
from core.model_metadata import ModelMetadata, parse_model_ref
from core.registry import ModelRegistry, StatusChange, get_model_registry

__all__ = [
    "ConflictError",
    "IntegrityError",
    "InvalidTransitionError",
    "ModelMetadata",
    "ModelRegistry",
    "ModelStatus",
    "NightScanError",
    "NotFoundError",
    "StatusChange",
    "UnsafeArtifactError",
    "ValidationError",
    "compare_metadata",
    "configure",
    "get_context",
    "get_model_registry",
    "parse_model_ref",
]
