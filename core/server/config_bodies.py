"""Request bodies of POST /deployments and POST /experiments: the seed's ``DeploymentConfig`` and
``ExperimentConfig`` fields, typed, so that ``/openapi.json`` says what a body may hold.

The section models (resources, scaling, health_check, batching, canary) are generated from the
frozen dataclasses in ``core.deployments.sections``: the same names, types and ranges, every key
optional (a partial section merges over the defaults). Unknown keys are refused (422). Rules
across fields (a split summing to 100, an ensemble's members, a variant's model) stay in the
core configs, which these bodies are handed to (``to_config``) and which answer 422 as well.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from core.deployments.config import DeploymentConfig
from core.deployments.sections import (
    STRATEGIES,
    BatchingSettings,
    CanaryConfig,
    HealthCheckConfig,
    ResourcesConfig,
    ScalingConfig,
    Section,
)
from core.experiments.config import AllocationMode, ExperimentConfig, MetricKind
from core.server.identifiers import MAX_ID_LENGTH, PRINTABLE, TEXT, BodyId, reject_nul

_STRICT = ConfigDict(extra="forbid", protected_namespaces=())
Name = typing.Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=PRINTABLE)]
Text = typing.Annotated[str, Field(max_length=2000, pattern=TEXT)]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # absent means "the section's default", not null


def _section_model(section: type[Section]) -> type[BaseModel]:
    """A pydantic model of a section dataclass: its fields, all optional (absent: the default),
    with their ranges; null only where the section allows it."""
    hints = typing.get_type_hints(section)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(section):
        rule = f.metadata.get("range", {})
        kind: Any = hints[f.name]
        if rule.get("integer"):
            kind = int
        bounds = {
            k: v for k, v in (("ge", rule.get("low")), ("le", rule.get("high"))) if v is not None
        }
        if rule.get("optional"):
            kind = kind | None
        fields[f.name] = (kind, Field(None, json_schema_extra=_no_default, **bounds))
    name = section.__name__.removesuffix("Config").removesuffix("Settings") + "Section"
    doc = f"``{section.section_name}``: any of its keys; the others keep their defaults."
    return create_model(name, __config__=_STRICT, __doc__=doc, **fields)


ResourcesSection = _section_model(ResourcesConfig)
ScalingSection = _section_model(ScalingConfig)
HealthCheckSection = _section_model(HealthCheckConfig)
BatchingSection = _section_model(BatchingSettings)
CanarySection = _section_model(CanaryConfig)


class EnsembleBody(BaseModel):
    """The seed's ``ensemble_config``: two or more ``model_id:version`` members voting."""

    model_config = _STRICT
    models: list[Name] = Field(min_length=2, max_length=16)
    voting_strategy: Literal[STRATEGIES] = "weighted_average"  # type: ignore[valid-type]
    weights: list[float] | None = Field(None, max_length=16)


class DeploymentRequest(BaseModel):
    """``DeploymentConfig`` fields (the seed's names). ``model_id`` and ``version`` are
    required unless ``ensemble`` is given; ``deployment_id`` defaults to
    ``<model_id>_<version>_<environment>``."""

    model_config = _STRICT
    model_id: str = Field("", max_length=MAX_ID_LENGTH, pattern=PRINTABLE)
    version: str = Field("", max_length=MAX_ID_LENGTH, pattern=PRINTABLE)
    deployment_id: str = Field("", max_length=MAX_ID_LENGTH, pattern=PRINTABLE)
    environment: str = Field("production", max_length=100, pattern=PRINTABLE)
    resources: ResourcesSection | None = None  # type: ignore[valid-type]
    scaling: ScalingSection | None = None  # type: ignore[valid-type]
    health_check: HealthCheckSection | None = None  # type: ignore[valid-type]
    traffic_percentage: float = 100.0
    rollback_on_error: bool = True
    canary_deployment: bool = False
    canary_success_threshold: float = 0.95
    canary_duration_hours: float = 24.0
    batching: BatchingSection | None = None  # type: ignore[valid-type]
    max_audio_seconds: float = 60.0
    canary: CanarySection | None = None  # type: ignore[valid-type]
    ensemble: EnsembleBody | None = None

    def to_config(self) -> DeploymentConfig:
        """The core config (its own checks raise ValidationError, a 422)."""
        return DeploymentConfig.from_dict(_given(self))


class MetricBody(BaseModel):
    model_config = _STRICT
    kind: MetricKind | None = None
    higher_is_better: bool | None = None


class BanditBody(BaseModel):
    """The seed's ``bandit_config``: sugar for the flat bandit fields."""

    model_config = _STRICT
    algorithm: AllocationMode | None = None
    exploration_rate: float | None = None
    reward_metric: Name | None = None
    update_frequency: float | None = None
    floor: float | None = None
    allocation_floor: float | None = None


class ExperimentRequest(BaseModel):
    """``ExperimentConfig`` fields (the seed's names): variants map to ``model_id:version``,
    ``traffic_allocation`` holds percentages per variant summing to 100."""

    model_config = _STRICT
    experiment_id: BodyId
    name: Text = ""
    description: Text = ""
    model_variants: dict[BodyId, Name] = Field(default_factory=dict, max_length=100)
    traffic_allocation: dict[BodyId, float] = Field(default_factory=dict, max_length=100)
    success_metrics: list[Name] = Field(default_factory=list, max_length=100)
    minimum_sample_size: int = 1000
    maximum_duration_days: float = 14.0
    confidence_level: float = 0.95
    primary_metric: Name | None = None
    control_variant: BodyId | None = None
    metrics: dict[Name, MetricBody] = Field(default_factory=dict, max_length=100)
    allocation_mode: AllocationMode = AllocationMode.FIXED
    exploration_rate: float = 0.1
    reward_metric: Name | None = None
    update_frequency: float = 3600.0
    allocation_floor: float = 5.0
    minimum_detectable_effect: float = 0.05
    bandit_config: BanditBody | None = None

    def to_config(self) -> ExperimentConfig:
        """The core config (its own checks raise ValidationError, a 422)."""
        return ExperimentConfig.from_dict(_given(self))


def _given(body: BaseModel) -> dict[str, Any]:
    """The fields the client sent (sections partial), as plain JSON values."""
    data = body.model_dump(mode="json", exclude_unset=True)
    reject_nul(data)
    return data
