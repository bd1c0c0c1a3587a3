"""The sections of a ``DeploymentConfig``: frozen dataclasses, validated when built.

Each section's defaults are its field defaults, defined here once (the batching defaults come
from ``inference.batching.BatchingConfig``, which the runtime measured them for). A plain dict
from a file, an HTTP body or the seed's constructor becomes a section through
``Section.from_value``: its keys merge over the defaults and unknown keys are refused. A
section's ``to_dict()`` is the plain JSON shape stored in deployment rows and shown by
``--json`` and HTTP.

Adding a setting is one field: ``name: float = setting(default, low, high)`` (``integer=True``
for counts); cross-field rules go in the section's ``_check``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self

from core.errors import ValidationError
from core.model_metadata import parse_model_ref
from inference.batching import BatchingConfig

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|K|M|G|T)?B?\s*$")
_MEMORY_UNITS = {
    None: 1,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}


def parse_memory(value: str | int | float) -> int:
    """``"4Gi"`` -> 4294967296 bytes; a bare number is bytes."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    m = _MEMORY.match(str(value))
    if not m:
        raise ValidationError(f"resources.memory {value!r} is not a size like 512Mi or 4Gi")
    return int(float(m.group(1)) * _MEMORY_UNITS[m.group(2)])


def check_number(
    name: str, value: Any, low: float, high: float | None = None, integer: bool = False
) -> None:
    """Raise ``ValidationError("<name> must be a number >= low, got ...")`` unless in range."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    ok = ok and (not integer or float(value).is_integer())
    ok = ok and value >= low and (high is None or value <= high)
    if not ok:
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        kind = "an integer" if integer else "a number"
        raise ValidationError(f"{name} must be {kind} {bound}, got {value!r}")


def setting(
    default: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    integer: bool = False,
    optional: bool = False,
) -> Any:
    """A numeric field with its default and its range; ``optional`` also allows None."""
    rule = {"low": low, "high": high, "integer": integer, "optional": optional}
    return field(default=default, metadata={"range": rule})


class Section:
    """Shared by every section: conversion from dicts, range checks, ``to_dict()``."""

    section_name: ClassVar[str]  # the DeploymentConfig field, used in error messages

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            rule = f.metadata.get("range")
            value = getattr(self, f.name)
            if rule is None or (value is None and rule["optional"]):
                continue
            name = f"{self.section_name}.{f.name}"
            check_number(name, value, rule["low"], rule["high"], rule["integer"])
            if rule["integer"] and not isinstance(value, int):
                object.__setattr__(self, f.name, int(value))  # 2.0 -> 2
        self._check()

    def _check(self) -> None:
        """Cross-field rules; override."""

    @classmethod
    def from_value(cls, value: Any) -> Self:
        """A section, a partial dict (merged over the defaults) or None (all defaults)."""
        if isinstance(value, cls):
            return value
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise ValidationError(f"{cls.section_name} must be a table of settings, got {value!r}")
        known = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        unknown = set(value) - set(known)
        if unknown:
            raise ValidationError(
                f"unknown {cls.section_name} keys: {', '.join(sorted(map(str, unknown)))}; "
                f"known: {', '.join(known)}"
            )
        return cls(**value)

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: _plain(getattr(self, f.name))
            for f in fields(self)  # type: ignore[arg-type]
        }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class ResourcesConfig(Section):
    section_name: ClassVar[str] = "resources"

    # Intra-op torch threads of each of the deployment's replicas: floor(cpu), at least 1, at
    # most the machine's cores, set per runtime (inference/runtime.py). The autoscaler measures
    # the process's CPU use against it. See the README, "What resources.cpu means".
    cpu: float = setting(1, 0.1, 1024)
    memory: str | int = "2Gi"  # a size like 512Mi or 4Gi (at least 64Mi); bytes if a number
    gpu: int = setting(0, 0, 64, integer=True)  # > 0 serves on CUDA where available

    def _check(self) -> None:
        if self.memory_bytes < 64 * 1024**2:
            raise ValidationError(f"resources.memory {self.memory!r} is below 64Mi")

    @property
    def memory_bytes(self) -> int:
        return parse_memory(self.memory)

    @property
    def threads(self) -> int:
        """Torch intra-op threads per replica (the runtime clamps it to the cores)."""
        return max(1, int(self.cpu))


@dataclass(frozen=True)
class ScalingConfig(Section):
    section_name: ClassVar[str] = "scaling"

    min_replicas: int = setting(1, 1, 64, integer=True)  # worker threads at start
    max_replicas: int = setting(2, 1, 64, integer=True)  # the autoscaler's ceiling
    target_cpu_utilization: float = setting(70, 1, 100)  # percent of resources.cpu

    def _check(self) -> None:
        if self.max_replicas < self.min_replicas:
            raise ValidationError(
                f"scaling.max_replicas ({self.max_replicas}) is below "
                f"min_replicas ({self.min_replicas})"
            )


@dataclass(frozen=True)
class HealthCheckConfig(Section):
    section_name: ClassVar[str] = "health_check"

    interval: float = setting(30, 0.05)  # seconds between probes
    timeout: float = setting(10, 0.01)  # seconds one probe (a real inference) may take
    failure_threshold: int = setting(3, 1, 1000, integer=True)  # failed probes in a row


_RUNTIME = BatchingConfig  # one source of truth for the batching defaults


@dataclass(frozen=True)
class BatchingSettings(Section):
    """A deployment's batching; replicas and threads come from scaling and resources."""

    section_name: ClassVar[str] = "batching"

    max_batch_size: int = setting(_RUNTIME.max_batch_size, 1, 1024, integer=True)
    max_batch_delay_ms: float = setting(_RUNTIME.max_batch_delay_ms, 0, 1000)
    queue_capacity: int = setting(_RUNTIME.queue_capacity, 1, 100_000, integer=True)

    def _check(self) -> None:
        if self.queue_capacity < self.max_batch_size:
            raise ValidationError("batching.queue_capacity must be at least max_batch_size")

    def runtime(self, replicas: int, threads: int | None = None) -> BatchingConfig:
        return BatchingConfig(
            max_batch_size=self.max_batch_size,
            max_batch_delay_ms=float(self.max_batch_delay_ms),
            queue_capacity=self.queue_capacity,
            replicas=replicas,
            threads=threads,
        )


@dataclass(frozen=True)
class CanaryConfig(Section):
    """Canary rollouts: the schedule (canary.py) and the policy's evidence (canary_policy.py,
    whose guarantees the README's "Canary guarantees" states)."""

    section_name: ClassVar[str] = "canary"

    steps: tuple[float, ...] = (5, 25, 50, 100)  # traffic percentages, the last one 100
    analysis_interval_s: float = setting(60.0, 0.001)
    # Seconds at each weight; None: canary_duration_hours spread evenly over the steps below 100.
    step_seconds: float | None = setting(None, 0, optional=True)
    # Superseded by the sequential policy (an abort needs no count of failed analyses); kept so
    # that configurations and stored rows that name it still load.
    failure_threshold: int = setting(2, 1, 1000, integer=True)
    min_samples: int = setting(100, 2, integer=True)  # canary requests before the promotion
    min_feedback: int = setting(30, 2, integer=True)  # labelled requests per arm for accuracy
    # The chance over a WHOLE rollout that a canary within the margins is aborted (split evenly
    # over errors, latency, accuracy and each quality metric), at any traffic and any analysis
    # frequency.
    alpha: float = setting(0.05, 0.0001, 0.5)
    error_margin: float = setting(0.01, 0)  # absolute error-rate difference tolerated
    latency_tolerance: float = setting(0.2, 0)  # relative, on the latency threshold
    latency_margin_ms: float = setting(5.0, 0)  # absolute, on the latency threshold
    accuracy_margin: float = setting(0.02, 0)  # absolute accuracy loss tolerated
    # The latency threshold: this quantile of the stable arm's first calibration_samples
    # latencies, fixed before the data it judges; both arms' exceedances are then counted.
    latency_quantile: float = setting(0.9, 0.5, 0.99)
    calibration_samples: int = setting(200, 20, 5000, integer=True)
    # Quality metrics judged from labelled feedback beside accuracy: recall.CLASS,
    # precision.CLASS, f1.CLASS, macro_f1 (canary_quality.py); each takes a share of alpha.
    quality_metrics: tuple[str, ...] = ()
    quality_margin: float = setting(0.05, 0, 1)  # absolute loss tolerated on each of them

    def __post_init__(self) -> None:
        from core.quality.names import check_quality_metrics

        metrics = self.quality_metrics
        if isinstance(metrics, str):
            metrics = (metrics,)
        if not isinstance(metrics, list | tuple):
            raise ValidationError(f"canary.quality_metrics must be a list, got {metrics!r}")
        check_quality_metrics(metrics, "canary.quality_metrics")
        object.__setattr__(self, "quality_metrics", tuple(metrics))
        steps = self.steps
        if (
            not isinstance(steps, list | tuple)
            or not steps
            or any(isinstance(x, bool) or not isinstance(x, int | float) for x in steps)
            or any(not 0 < x <= 100 for x in steps)
            or any(b <= a for a, b in zip(steps, steps[1:], strict=False))
            or steps[-1] != 100
        ):
            raise ValidationError(
                f"canary.steps must be increasing percentages in (0, 100] ending at 100, "
                f"got {list(steps) if isinstance(steps, tuple) else steps!r}"
            )
        object.__setattr__(self, "steps", tuple(steps))
        super().__post_init__()


STRATEGIES = ("weighted_average", "majority")


@dataclass(frozen=True)
class EnsembleSpec:
    """The ``ensemble`` section (the seed's ``ensemble_config``); see ensemble.py."""

    members: tuple[str, ...]
    voting_strategy: str
    weights: tuple[float, ...]

    @classmethod
    def parse(cls, data: Any) -> EnsembleSpec:
        """Validate the seed's ``ensemble_config`` shape; weights default to equal."""
        if isinstance(data, EnsembleSpec):
            return data
        if not isinstance(data, Mapping):
            raise ValidationError("ensemble must be a table with models, voting_strategy, weights")
        unknown = set(data) - {"models", "voting_strategy", "weights"}
        if unknown:
            raise ValidationError(f"unknown ensemble keys: {', '.join(sorted(unknown))}")
        models = data.get("models")
        if not isinstance(models, list | tuple) or len(models) < 2:
            raise ValidationError("ensemble.models needs at least two 'model_id:version' entries")
        members = tuple(str(m).strip() for m in models)
        for ref in members:
            parse_model_ref(ref)
        if len(set(members)) != len(members):
            raise ValidationError("ensemble.models lists a version twice")
        strategy = data.get("voting_strategy", "weighted_average")
        if strategy not in STRATEGIES:
            raise ValidationError(
                f"ensemble.voting_strategy {strategy!r} is unknown; expected one of "
                f"{', '.join(STRATEGIES)}"
            )
        weights = data.get("weights")
        if weights is None:
            weights = [1.0] * len(members)
        if not isinstance(weights, list | tuple) or len(weights) != len(members):
            raise ValidationError(
                f"ensemble.weights must have one weight per model ({len(members)}), got {weights!r}"
            )
        if any(
            isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w < 0
            for w in weights
        ):
            raise ValidationError(f"ensemble.weights must be non-negative numbers, got {weights!r}")
        if sum(weights) <= 0:
            raise ValidationError("ensemble.weights must not all be zero")
        return cls(members, strategy, tuple(float(w) for w in weights))

    def ref(self, deployment_id: str) -> str:
        canonical = json.dumps([self.members, self.voting_strategy, self.weights])
        return f"ensemble:{deployment_id}@{hashlib.sha256(canonical.encode()).hexdigest()[:8]}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "models": list(self.members),
            "voting_strategy": self.voting_strategy,
            "weights": list(self.weights),
        }
