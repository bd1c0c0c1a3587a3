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

# A/B experiments load on first use: they pull in scipy, which `import core` should not pay for.
_EXPERIMENT_EXPORTS = (
    "ABTestManager",
    "AllocationChange",
    "ConfigValidationError",
    "ExperimentConfig",
    "ExperimentInfo",
    "ExperimentMonitor",
    "ExperimentStatus",
    "MetricSpec",
    "get_ab_test_manager",
)


def __getattr__(name: str):
    if name in _EXPERIMENT_EXPORTS:
        import core.experiments

        value = getattr(core.experiments, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'core' has no attribute {name!r}")


__all__ = [
    *_EXPERIMENT_EXPORTS,
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
