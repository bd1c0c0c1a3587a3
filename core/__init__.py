"""NightScan Ops core: the domain services every face (CLI, console, HTTP) calls.

The seed's public API lives here. Nothing in this package imports Textual; torch is imported
only where weights are touched.

Every name loads on first use (PEP 562): ``import core`` (and so importing any submodule, such
as ``core.formatting`` or the CLI's direct read path ``core.direct_reads``) costs nothing, and
SQLAlchemy, scipy or numpy are imported only by the services that need them.
"""

from __future__ import annotations

from core.lazy_exports import lazy_exports

_EXPORT_MODULES = {
    "core.comparison": ("compare_metadata",),
    "core.context": ("configure", "get_context"),
    "core.errors": (
        "ConflictError",
        "IntegrityError",
        "InvalidTransitionError",
        "NightScanError",
        "NotFoundError",
        "UnsafeArtifactError",
        "ValidationError",
    ),
    "core.lifecycle": ("ModelStatus",),
    "core.model_metadata": ("ModelMetadata", "parse_model_ref"),
    "core.registry": ("ModelRegistry", "StatusChange", "get_model_registry"),
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
_EXPORTS = {name: module for module, names in _EXPORT_MODULES.items() for name in names}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
