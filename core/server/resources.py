"""Response models of the resource views: the fields clients rely on, typed, so that
``/openapi.json`` says what a body holds and the contract check can hold the server to it.
Each allows extra keys: a view may grow a field without breaking a client or the contract."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _View(BaseModel):
    model_config = ConfigDict(extra="allow")


class ModelView(_View):
    """One registered version (``ModelMetadata.to_dict``, the seed's field names)."""

    model_id: str
    version: str
    name: str
    description: str
    created_at: str
    status: str
    framework: str
    architecture: str
    dataset_version: str
    training_config: dict[str, Any]
    metrics: dict[str, float]
    file_size_bytes: int
    checksum: str
    tags: list[str]


class StatusChangeView(_View):
    model_id: str
    version: str
    from_status: str | None
    to_status: str
    at: str
    actor: str
    reason: str


class DeploymentView(_View):
    """``DeploymentInfo.to_dict``; the list adds ``metrics``, the status view much more."""

    deployment_id: str
    model_id: str
    version: str
    model_version: str
    environment: str
    status: str
    health: str
    traffic_percentage: float
    config: dict[str, Any]
    generation: int
    reason: str
    created_at: str
    updated_at: str
    metrics: dict[str, Any] | None = None


class EventView(_View):
    id: int
    at: str
    kind: str
    severity: str
    source: str
    message: str
    data: dict[str, Any]


class AuditEntryView(_View):
    id: int
    at: str
    actor: str
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    detail: str


class Deleted(BaseModel):
    deleted: str


class Caller(BaseModel):
    name: str
    role: str


class ExperimentView(_View):
    """``ExperimentInfo.to_dict``: lifecycle, the live split and the configuration."""

    experiment_id: str
    name: str
    description: str
    status: str
    allocation: dict[str, float]
    allocation_version: int
    created_at: str
    created_by: str
    started_at: str | None
    ended_at: str | None
    stop_reason: str
    stopped_by: str
    config: dict[str, Any]


class ExperimentStatusChangeView(_View):
    from_status: str | None
    to_status: str
    at: str
    actor: str


class ExperimentStatusView(ExperimentView):
    """``get_experiment_status``: the experiment, units and values per variant, history."""

    duration_hours: float
    units: dict[str, int]
    results: dict[str, dict[str, float]]
    status_history: list[ExperimentStatusChangeView]
    allocation_versions: int


class ExperimentAnalysisView(_View):
    """``analyze_experiment`` (the seed's shape); the statistics per comparison nest inside."""

    experiment_id: str
    experiment_metadata: dict[str, Any]
    duration_hours: float
    analyzed_at: str
    variants: dict[str, Any]
    comparisons: Any
    recommendation: Any
    trustworthy: bool
    trust_notes: list[str]


class AllocationChangeView(_View):
    """One entry of an experiment's allocation history; ``version`` 1 is the configured split."""

    experiment_id: str
    version: int
    allocation: dict[str, float]
    source: str
    at: str
    actor: str
    reason: str
    detail: dict[str, Any]


class DeploymentMetricsView(BaseModel):
    """The rolling-window numbers (``PerformanceMetrics.to_dict``, null before any request) and
    each serving process's last snapshot, keyed ``host:pid``."""

    deployment_id: str
    metrics: dict[str, Any] | None
    processes: dict[str, dict[str, Any]]


class SecondView(BaseModel):
    t: float
    requests: int
    errors: int
    average_latency_ms: float
    p95_latency_ms: float


class DeploymentHistoryView(BaseModel):
    deployment_id: str
    samples: list[SecondView]


class HealthProbeView(_View):
    """A probe of one deployment with a real inference."""

    deployment_id: str
    healthy: bool
    status: str


class CanarySummaryView(_View):
    """A canary: its version, the stable one, its state and traffic weight (percent)."""

    canary_id: int
    canary: str
    stable: str
    state: str
    weight: float


class CanaryView(CanarySummaryView):
    """A canary in the list, or its status (which adds the steps, timers and recent checks)."""

    deployment_id: str


class MetricDifferenceView(BaseModel):
    model_a: float | None
    model_b: float | None
    higher_is_better: bool
    difference: float | None
    absolute_difference: float | None
    percentage_improvement: float | None
    better: str | None


class ComparisonView(_View):
    """The seed's comparison: ``metric_differences[metric].percentage_improvement`` is how much
    better b is than a (direction-aware)."""

    model_a: ModelView
    model_b: ModelView
    metric_differences: dict[str, MetricDifferenceView]
    per_class: dict[str, Any]
    size_difference_bytes: int
    same_weights: bool
    same_architecture: bool


class VerifiedView(BaseModel):
    model_id: str
    version: str
    size: int
    checksum: str
    store: str = Field(description="where every host reads the weights: local or database")
    cache: str = Field(description="this host's copy: local, ok, fetched, repaired or published")


class QualityScopeView(_View):
    deployment_id: str | None
    model_ref: str | None
    experiment_id: str | None
    canary_id: int | None
    split_by: str


class GroupQualityView(_View):
    """One version, variant or arm: label coverage, the quality metrics with their intervals,
    calibration, the predicted-class mix and the drift look (``core.quality.service``)."""

    group: str
    coverage: dict[str, Any]
    quality: dict[str, Any]
    calibration: dict[str, Any]
    predicted_mix: dict[str, int]
    drift: dict[str, Any] | None


class QualityReportView(_View):
    """``nightscan quality --json``: one group per version (or variant); ``since`` null for
    all-time."""

    scope: QualityScopeView
    since: str | None
    generated_at: str
    groups: list[GroupQualityView]
