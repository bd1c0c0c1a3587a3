"""``DeploymentConfig``: the seed's fields plus typed sections, validated at the edge.

The sections (resources, scaling, health_check, batching, canary, ensemble) are frozen
dataclasses defined in ``core/deployments/sections.py`` with their defaults; plain dicts (the
seed's constructor, a TOML/JSON file, an HTTP body, a stored row) are converted once, in
``__post_init__``. ``to_dict()`` gives back the plain JSON shape.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from core.deployments.sections import (
    BatchingSettings,
    CanaryConfig,
    EnsembleSpec,
    HealthCheckConfig,
    ResourcesConfig,
    ScalingConfig,
    Section,
    check_number,
    parse_memory,
)
from core.errors import ValidationError

__all__ = [
    "BatchingSettings",
    "CanaryConfig",
    "DeploymentConfig",
    "EnsembleSpec",
    "HealthCheckConfig",
    "ResourcesConfig",
    "ScalingConfig",
    "parse_memory",
]

_DEPLOYMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
_SECTIONS: dict[str, type[Section]] = {
    "resources": ResourcesConfig,
    "scaling": ScalingConfig,
    "health_check": HealthCheckConfig,
    "batching": BatchingSettings,
    "canary": CanaryConfig,
}


@dataclass
class DeploymentConfig:
    model_id: str = ""  # may be left empty for an ensemble: its first member
    version: str = ""
    deployment_id: str = ""
    environment: str = "production"
    # A section or a partial dict merged over its defaults (converted in __post_init__).
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    scaling: ScalingConfig = field(default_factory=ScalingConfig)
    health_check: HealthCheckConfig = field(default_factory=HealthCheckConfig)
    traffic_percentage: float = 100.0
    rollback_on_error: bool = True
    canary_deployment: bool = False
    canary_success_threshold: float = 0.95
    canary_duration_hours: float = 24.0
    batching: BatchingSettings = field(default_factory=BatchingSettings)
    max_audio_seconds: float = 60.0
    canary: CanaryConfig = field(default_factory=CanaryConfig)
    # {"models": ["id:version", ...], "voting_strategy": ..., "weights": [...]} (ensemble.py)
    ensemble: EnsembleSpec | None = None

    def __post_init__(self) -> None:
        # The one edge where dicts become sections: partial dicts merge over the defaults,
        # unknown keys and out-of-range values raise a ValidationError naming section.key.
        for name, section in _SECTIONS.items():
            setattr(self, name, section.from_value(getattr(self, name)))
        if self.ensemble is not None:
            self.ensemble = EnsembleSpec.parse(self.ensemble)
            if not (self.model_id and self.version):
                self.model_id, _, self.version = self.ensemble.members[0].rpartition(":")
        if not self.deployment_id and self.model_id and self.version:
            safe_version = re.sub(r"[^A-Za-z0-9]+", "_", self.version).strip("_")
            self.deployment_id = f"{self.model_id}_{safe_version}_{self.environment}"

    @property
    def model_ref(self) -> str:
        return f"{self.model_id}:{self.version}"

    @property
    def serving_ref(self) -> str:
        """What answers this deployment's requests: the version, or the ensemble."""
        if self.ensemble is None:
            return self.model_ref
        return self.ensemble.ref(self.deployment_id)

    @property
    def memory_bytes(self) -> int:
        return self.resources.memory_bytes

    def validate(self) -> DeploymentConfig:
        """Raise one ValidationError naming the first fault; returns self for chaining.

        The sections validated themselves when they were built; this checks the rest."""
        if not _DEPLOYMENT_ID.match(self.deployment_id or ""):
            raise ValidationError(
                f"invalid deployment_id {self.deployment_id!r}: letters, digits, '_', '-', '.'"
            )
        if not self.environment or not _DEPLOYMENT_ID.match(self.environment):
            raise ValidationError(f"invalid environment {self.environment!r}")
        check_number("config.traffic_percentage", self.traffic_percentage, 0, 100)
        check_number("config.canary_success_threshold", self.canary_success_threshold, 0, 1)
        check_number("config.canary_duration_hours", self.canary_duration_hours, 0)
        check_number("config.max_audio_seconds", self.max_audio_seconds, 0.1, 3600)
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values, sections as dicts: stored rows, ``--json`` and HTTP."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if hasattr(value, "to_dict") else value
        return out

    def to_toml(self) -> str:
        """The config as a TOML document that ``from_file`` reads back (None values omitted:
        they are the defaults)."""
        top = {k: v for k, v in self.to_dict().items() if not isinstance(v, dict)}
        tables = {k: v for k, v in self.to_dict().items() if isinstance(v, dict)}
        lines = [f"{k} = {_toml_value(v)}" for k, v in top.items() if v is not None]
        for name, table in tables.items():
            lines += ["", f"[{name}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None]
        return "\n".join(lines) + "\n"

    def to_file(self, path: str | Path) -> Path:
        """Write TOML (``.toml``) or JSON (anything else) that ``from_file`` reads back."""
        path = Path(path)
        text = self.to_toml() if path.suffix == ".toml" else json.dumps(self.to_dict(), indent=2)
        path.write_text(text)
        return path

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


def _toml_value(value: Any) -> str:
    """A TOML literal for the scalars and lists a config holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ValidationError(f"cannot write {value!r} to TOML")
