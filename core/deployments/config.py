"""``DeploymentConfig``: the seed's fields plus the batching settings, validated at the edge."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from core.errors import ValidationError

_DEPLOYMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
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

DEFAULT_RESOURCES = {"cpu": 1, "memory": "2Gi", "gpu": 0}
DEFAULT_SCALING = {"min_replicas": 1, "max_replicas": 2, "target_cpu_utilization": 70}
DEFAULT_HEALTH_CHECK = {"interval": 30, "timeout": 10, "failure_threshold": 3}
# Chosen by benchmarks/runtime_bench.py on this kind of machine (see inference/runtime.py): no
# delay, because requests that arrive during a forward pass form the next batch anyway.
DEFAULT_BATCHING = {"max_batch_size": 16, "max_batch_delay_ms": 0.0, "queue_capacity": 256}
# Canary stepping and judging (core/deployments/canary.py, canary_judge.py, and the policy in
# canary_policy.py, whose README section "Canary guarantees" states what these keys guarantee).
# step_seconds None: canary_duration_hours spread evenly over the weights below 100.
# alpha: for the policy, the chance over a WHOLE rollout that a canary no worse than stable (within
# the margins) is aborted, split evenly over errors, latency and accuracy (for the old judge: per
# analysis). The policy aborts on the first look whose confidence sequence excludes a margin, so
# failure_threshold and canary_success_threshold are the old stepper's and the policy ignores them.
# latency_quantile / calibration_samples: the policy fixes its latency threshold at this quantile
# of the stable arm's first calibration_samples latencies, then counts exceedances in both arms
# (the canary's threshold is that one * (1 + latency_tolerance) + latency_margin_ms).
DEFAULT_CANARY = {
    "steps": [5, 25, 50, 100],
    "analysis_interval_s": 60.0,
    "step_seconds": None,
    "failure_threshold": 2,
    "min_samples": 100,
    "min_feedback": 30,
    "alpha": 0.05,
    "error_margin": 0.01,
    "latency_tolerance": 0.2,
    "latency_margin_ms": 5.0,
    "accuracy_margin": 0.02,
    "latency_quantile": 0.9,
    "calibration_samples": 200,
}


def parse_memory(value: str | int | float) -> int:
    """``"4Gi"`` -> 4294967296 bytes; a bare number is bytes."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    m = _MEMORY.match(str(value))
    if not m:
        raise ValidationError(f"resources.memory {value!r} is not a size like 512Mi or 4Gi")
    return int(float(m.group(1)) * _MEMORY_UNITS[m.group(2)])


@dataclass
class DeploymentConfig:
    model_id: str = ""  # may be left empty for an ensemble: its first member
    version: str = ""
    deployment_id: str = ""
    environment: str = "production"
    resources: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_RESOURCES))
    scaling: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SCALING))
    health_check: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_HEALTH_CHECK))
    traffic_percentage: float = 100.0
    rollback_on_error: bool = True
    canary_deployment: bool = False
    canary_success_threshold: float = 0.95
    canary_duration_hours: float = 24.0
    batching: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_BATCHING))
    max_audio_seconds: float = 60.0
    canary: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_CANARY))
    # {"models": ["id:version", ...], "voting_strategy": ..., "weights": [...]} (ensemble.py)
    ensemble: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        members = (self.ensemble or {}).get("models") if isinstance(self.ensemble, dict) else None
        if not (self.model_id and self.version) and members and isinstance(members[0], str):
            self.model_id, _, self.version = members[0].rpartition(":")
        if not self.deployment_id and self.model_id and self.version:
            safe_version = re.sub(r"[^A-Za-z0-9]+", "_", self.version).strip("_")
            self.deployment_id = f"{self.model_id}_{safe_version}_{self.environment}"
        # Partial dicts from a file or the seed's example merge over the defaults.
        self.resources = {**DEFAULT_RESOURCES, **(self.resources or {})}
        self.scaling = {**DEFAULT_SCALING, **(self.scaling or {})}
        self.health_check = {**DEFAULT_HEALTH_CHECK, **(self.health_check or {})}
        self.batching = {**DEFAULT_BATCHING, **(self.batching or {})}
        self.canary = {**DEFAULT_CANARY, **(self.canary or {})}
        if isinstance(self.canary["steps"], list | tuple):
            self.canary["steps"] = list(self.canary["steps"])  # never share the default's list

    @property
    def model_ref(self) -> str:
        return f"{self.model_id}:{self.version}"

    @property
    def serving_ref(self) -> str:
        """What answers this deployment's requests: the version, or the ensemble."""
        if not self.ensemble:
            return self.model_ref
        from core.deployments.ensemble import EnsembleSpec

        return EnsembleSpec.parse(self.ensemble).ref(self.deployment_id)

    @property
    def memory_bytes(self) -> int:
        return parse_memory(self.resources["memory"])

    def validate(self) -> DeploymentConfig:
        """Raise one ValidationError naming the first fault; returns self for chaining."""

        def number(section: str, key: str, value: Any, low: float, high: float | None = None,
                   integer: bool = False) -> None:  # fmt: skip
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            ok = ok and (not integer or float(value).is_integer())
            ok = ok and value >= low and (high is None or value <= high)
            if not ok:
                bound = f">= {low}" if high is None else f"between {low} and {high}"
                kind = "an integer" if integer else "a number"
                raise ValidationError(f"{section}.{key} must be {kind} {bound}, got {value!r}")

        if not _DEPLOYMENT_ID.match(self.deployment_id or ""):
            raise ValidationError(
                f"invalid deployment_id {self.deployment_id!r}: letters, digits, '_', '-', '.'"
            )
        if not self.environment or not _DEPLOYMENT_ID.match(self.environment):
            raise ValidationError(f"invalid environment {self.environment!r}")
        for section, allowed in (
            ("resources", DEFAULT_RESOURCES),
            ("scaling", DEFAULT_SCALING),
            ("health_check", DEFAULT_HEALTH_CHECK),
            ("batching", DEFAULT_BATCHING),
            ("canary", DEFAULT_CANARY),
        ):
            unknown = set(getattr(self, section)) - set(allowed)
            if unknown:
                raise ValidationError(
                    f"unknown {section} keys: {', '.join(sorted(unknown))}; "
                    f"known: {', '.join(allowed)}"
                )
        number("resources", "cpu", self.resources["cpu"], 0.1, 1024)
        number("resources", "gpu", self.resources["gpu"], 0, 64, integer=True)
        if self.memory_bytes < 64 * 1024**2:
            raise ValidationError(f"resources.memory {self.resources['memory']!r} is below 64Mi")
        s = self.scaling
        number("scaling", "min_replicas", s["min_replicas"], 1, 64, integer=True)
        number("scaling", "max_replicas", s["max_replicas"], 1, 64, integer=True)
        if s["max_replicas"] < s["min_replicas"]:
            raise ValidationError(
                f"scaling.max_replicas ({s['max_replicas']}) is below "
                f"min_replicas ({s['min_replicas']})"
            )
        number("scaling", "target_cpu_utilization", s["target_cpu_utilization"], 1, 100)
        h = self.health_check
        number("health_check", "interval", h["interval"], 0.05)
        number("health_check", "timeout", h["timeout"], 0.01)
        number("health_check", "failure_threshold", h["failure_threshold"], 1, 1000, integer=True)
        b = self.batching
        number("batching", "max_batch_size", b["max_batch_size"], 1, 1024, integer=True)
        number("batching", "max_batch_delay_ms", b["max_batch_delay_ms"], 0, 1000)
        number("batching", "queue_capacity", b["queue_capacity"], 1, 100_000, integer=True)
        if b["queue_capacity"] < b["max_batch_size"]:
            raise ValidationError("batching.queue_capacity must be at least max_batch_size")
        number("config", "traffic_percentage", self.traffic_percentage, 0, 100)
        number("config", "canary_success_threshold", self.canary_success_threshold, 0, 1)
        number("config", "canary_duration_hours", self.canary_duration_hours, 0)
        number("config", "max_audio_seconds", self.max_audio_seconds, 0.1, 3600)
        self._validate_canary(number)
        if self.ensemble is not None:
            from core.deployments.ensemble import EnsembleSpec

            EnsembleSpec.parse(self.ensemble)
        return self

    def _validate_canary(self, number: Any) -> None:
        c = self.canary
        steps = c["steps"]
        if (
            not isinstance(steps, list)
            or not steps
            or any(isinstance(x, bool) or not isinstance(x, int | float) for x in steps)
            or any(not 0 < x <= 100 for x in steps)
            or any(b <= a for a, b in zip(steps, steps[1:], strict=False))
            or steps[-1] != 100
        ):
            raise ValidationError(
                f"canary.steps must be increasing percentages in (0, 100] ending at 100, "
                f"got {steps!r}"
            )
        number("canary", "analysis_interval_s", c["analysis_interval_s"], 0.001)
        if c["step_seconds"] is not None:
            number("canary", "step_seconds", c["step_seconds"], 0)
        number("canary", "failure_threshold", c["failure_threshold"], 1, 1000, integer=True)
        number("canary", "min_samples", c["min_samples"], 2, integer=True)
        number("canary", "min_feedback", c["min_feedback"], 2, integer=True)
        number("canary", "alpha", c["alpha"], 0.0001, 0.5)
        for key in ("error_margin", "latency_tolerance", "latency_margin_ms", "accuracy_margin"):
            number("canary", key, c[key], 0)
        number("canary", "latency_quantile", c["latency_quantile"], 0.5, 0.99)
        number("canary", "calibration_samples", c["calibration_samples"], 20, 5000, integer=True)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeploymentConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValidationError(f"unknown deployment fields: {', '.join(sorted(unknown))}")
        missing = set() if data.get("ensemble") else {"model_id", "version"} - set(data)
        if missing:
            raise ValidationError(f"deployment config needs {', '.join(sorted(missing))}")
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> DeploymentConfig:
        """A TOML or JSON file; ``overrides`` (from the command line) win over the file."""
        path = Path(path)
        try:
            text = path.read_text()
            data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except FileNotFoundError:
            raise ValidationError(f"config file not found: {path}") from None
        except (OSError, ValueError) as exc:
            raise ValidationError(f"cannot parse {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ValidationError(f"{path} must hold a table/object of deployment fields")
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data)
