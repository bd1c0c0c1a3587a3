"""A/B experiments: configuration, sticky routing, durable results, analysis, auto-stop, bandits.

See ``routing`` for the bucketing algorithm and its test vectors, ``results`` for the
group-commit writer, ``analysis`` for the result's shape and ``stopping`` for the auto-stop rule.
"""

from core.experiments.config import (
    AllocationMode,
    ConfigValidationError,
    ExperimentConfig,
    MetricKind,
    MetricSpec,
)
from core.experiments.manager import ABTestManager, get_ab_test_manager
from core.experiments.models import (
    AllocationChange,
    CheckAction,
    ExperimentInfo,
    ExperimentStatus,
)
from core.experiments.monitor import ExperimentMonitor
from core.experiments.routing import bucket_of

__all__ = [
    "ABTestManager",
    "AllocationChange",
    "AllocationMode",
    "CheckAction",
    "ConfigValidationError",
    "ExperimentConfig",
    "ExperimentInfo",
    "ExperimentMonitor",
    "ExperimentStatus",
    "MetricKind",
    "MetricSpec",
    "bucket_of",
    "get_ab_test_manager",
]
