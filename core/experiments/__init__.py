"""A/B experiments: configuration, sticky routing, durable results, analysis, auto-stop, bandits.

See ``routing`` for the bucketing algorithm and its test vectors, ``results`` for the
group-commit writer, ``analysis`` for the result's shape and ``stopping`` for the auto-stop rule.

The names below load on first use (PEP 562), so importing ``core.experiments.models`` (the CLI's
direct read path) does not import the manager, SQLAlchemy or scipy.
"""

from __future__ import annotations

from core.lazy_exports import lazy_exports

_EXPORTS = {
    "AllocationMode": "core.experiments.config",
    "ConfigValidationError": "core.experiments.config",
    "ExperimentConfig": "core.experiments.config",
    "MetricKind": "core.experiments.config",
    "MetricSpec": "core.experiments.config",
    "ABTestManager": "core.experiments.manager",
    "get_ab_test_manager": "core.experiments.manager",
    "AllocationChange": "core.experiments.models",
    "CheckAction": "core.experiments.models",
    "ExperimentInfo": "core.experiments.models",
    "ExperimentStatus": "core.experiments.models",
    "ExperimentMonitor": "core.experiments.monitor",
    "bucket_of": "core.experiments.routing",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
