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

# A/B experiments and serving load on first use: they pull in scipy, numpy and FastAPI-free but
# heavy modules that `import core` (and so `nightscan registry list`) should not pay for.
_LAZY_EXPORTS = {
    "core.experiments": (
        "ABTestManager",
        "AllocationChange",
        "ConfigValidationError",
        "ExperimentConfig",
        "ExperimentInfo",
        "ExperimentMonitor",
        "ExperimentStatus",
        "MetricSpec",
        "get_ab_test_manager",
    ),
    "core.deployments": (
        "DeploymentConfig",
        "DeploymentInfo",
        "DeploymentManager",
        "PerformanceMetrics",
        "get_deployment_manager",
    ),
}
_LAZY = {name: module for module, names in _LAZY_EXPORTS.items() for name in names}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'core' has no attribute {name!r}")


__all__ = [
    *_LAZY,
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
