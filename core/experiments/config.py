"""Experiment configuration: the seed's ``ExperimentConfig`` plus what a trustworthy test needs.

Beyond the seed's fields a config names a primary metric, each metric's kind (``binary``: values
in [0, 1], fractions allowed; ``continuous``) and direction, the control variant, and the
allocation mode: ``fixed`` or a bandit (``thompson_sampling``, ``epsilon_greedy``) with the
seed's ``exploration_rate``, ``reward_metric`` and ``update_frequency`` (seconds). The seed's
``bandit_config`` dict is accepted too. Validation collects every fault, one message each.

Files: ``ExperimentConfig.from_file`` reads TOML or JSON with the same keys, e.g.::

    experiment_id = "accuracy_improvement_test"
    success_metrics = ["accuracy", "confidence", "inference_time"]
    [model_variants]
    control = "wildlife_detector:v2.0.0"
    treatment = "wildlife_detector:v2.1.0"
    [traffic_allocation]
    control = 70.0
    treatment = 30.0
    [metrics.confidence]
    kind = "continuous"
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.errors import ValidationError
from core.metric_direction import higher_is_better

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_BINARY_NAMES = {
    "accuracy",
    "correct",
    "is_correct",
    "success",
    "conversion",
    "converted",
    "click",
    "clicked",
    "detected",
    "error",
}
_BINARY_SUFFIXES = ("_rate", "_accuracy", "_correct", "_success", "_converted")
ALLOCATION_TOLERANCE = 1e-6
_BANDIT_KEYS = {
    "algorithm": "allocation_mode",
    "exploration_rate": "exploration_rate",
    "reward_metric": "reward_metric",
    "update_frequency": "update_frequency",
    "floor": "allocation_floor",
    "allocation_floor": "allocation_floor",
}


class MetricKind(StrEnum):
    BINARY = "binary"
    CONTINUOUS = "continuous"


class AllocationMode(StrEnum):
    FIXED = "fixed"
    THOMPSON_SAMPLING = "thompson_sampling"
    EPSILON_GREEDY = "epsilon_greedy"


class ConfigValidationError(ValidationError):
    """A config with one or more faults; ``problems`` lists them, one message each."""

    def __init__(self, experiment_id: str, problems: list[str]) -> None:
        self.problems = list(problems)
        head = f"invalid experiment config {experiment_id!r}" if experiment_id else "invalid config"
        super().__init__(f"{head}: " + "; ".join(self.problems))


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: MetricKind
    higher_is_better: bool

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "higher_is_better": self.higher_is_better}


def default_metric_kind(name: str) -> MetricKind:
    """Correct/incorrect-style names are binary; everything else (latency, scores) continuous."""
    lowered = name.lower()
    if lowered in _BINARY_NAMES or lowered.endswith(_BINARY_SUFFIXES):
        return MetricKind.BINARY
    if lowered.startswith(("recall.", "precision.")):  # recall.owl: from feedback, per class
        return MetricKind.BINARY
    return MetricKind.CONTINUOUS


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class ExperimentConfig:
    experiment_id: str
    name: str = ""
    description: str = ""
    model_variants: dict[str, str] = field(default_factory=dict)
    traffic_allocation: dict[str, float] = field(default_factory=dict)
    success_metrics: list[str] = field(default_factory=list)
    minimum_sample_size: int = 1000  # units per variant (primary metric) before auto-stop
    maximum_duration_days: float = 14.0
    confidence_level: float = 0.95
    primary_metric: str | None = None  # default: the first success metric
    control_variant: str | None = None  # default: the first variant
    metrics: dict[str, Any] = field(default_factory=dict)  # name -> {kind, higher_is_better}
    allocation_mode: str = AllocationMode.FIXED.value
    exploration_rate: float = 0.1  # epsilon for epsilon_greedy
    reward_metric: str | None = None  # bandit reward; default: the primary metric
    update_frequency: float = 3600.0  # seconds between bandit updates
    allocation_floor: float = 5.0  # percent every bandit arm keeps, so none starves
    minimum_detectable_effect: float = 0.05  # relative, for power and remaining sample size
    bandit_config: dict[str, Any] | None = None  # the seed's dict form of the bandit fields

    def __post_init__(self) -> None:
        # The seed's bandit dict is sugar for the flat fields; unknown keys are reported later.
        self._bandit_problems: list[str] = []
        if not self.bandit_config:
            self.bandit_config = None
            return
        if not isinstance(self.bandit_config, dict):
            self._bandit_problems.append("bandit_config must be a table")
        else:
            for key, value in self.bandit_config.items():
                if key not in _BANDIT_KEYS:
                    self._bandit_problems.append(f"bandit_config: unknown key {key!r}")
                else:
                    setattr(self, _BANDIT_KEYS[key], value)
        self.bandit_config = None

    # ---- derived -----------------------------------------------------------------------------

    @property
    def variants(self) -> list[str]:
        return list(self.model_variants)

    @property
    def control(self) -> str:
        return self.control_variant or next(iter(self.model_variants), "")

    @property
    def treatments(self) -> list[str]:
        return [v for v in self.model_variants if v != self.control]

    @property
    def primary(self) -> str:
        return self.primary_metric or (self.success_metrics[0] if self.success_metrics else "")

    @property
    def reward(self) -> str:
        return self.reward_metric or self.primary

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence_level

    @property
    def is_bandit(self) -> bool:
        return self.allocation_mode != AllocationMode.FIXED.value

    def metric_spec(self, name: str) -> MetricSpec:
        override = self.metrics.get(name) or {}
        if isinstance(override, MetricSpec):
            return override
        kind = MetricKind(override.get("kind", default_metric_kind(name)))
        better = override.get("higher_is_better")
        if better is None and "direction" in override:
            better = override["direction"] == "higher"
        return MetricSpec(name, kind, higher_is_better(name) if better is None else bool(better))

    def metric_specs(self) -> dict[str, MetricSpec]:
        return {m: self.metric_spec(m) for m in self.success_metrics}

    # ---- validation ----------------------------------------------------------------------------

    def problems(self) -> list[str]:
        """Every fault that needs no database, one clear message each (empty when valid)."""
        problems = list(self._bandit_problems)
        if not isinstance(self.experiment_id, str) or not _ID.match(self.experiment_id):
            problems.append(
                f"experiment_id {self.experiment_id!r} must be 1-200 letters, digits, '_', '-' "
                "or '.'"
            )
        problems += self._variant_problems()
        problems += self._metric_problems()
        problems += self._number_problems()
        return problems

    def validate(self) -> ExperimentConfig:
        problems = self.problems()
        if problems:
            raise ConfigValidationError(str(self.experiment_id), problems)
        return self

    def _variant_problems(self) -> list[str]:
        out: list[str] = []
        variants, alloc = self.model_variants, self.traffic_allocation
        if not isinstance(variants, dict) or not isinstance(alloc, dict):
            return ["model_variants and traffic_allocation must be tables of variant -> value"]
        if len(variants) < 2:
            out.append(f"an experiment needs at least two variants, got {len(variants)}")
        for v, ref in variants.items():
            if not isinstance(v, str) or not _NAME.match(v):
                out.append(f"variant name {v!r} must be letters, digits, '_', '-' or '.'")
            if not isinstance(ref, str) or ref.count(":") < 1 or not all(ref.rpartition(":")[::2]):
                out.append(f"variant {v!r}: model {ref!r} must be written MODEL_ID:VERSION")
        for v in variants:
            if v not in alloc:
                out.append(f"traffic_allocation has no share for variant {v!r}")
        for v in alloc:
            if v not in variants:
                out.append(f"traffic_allocation names {v!r}, which is not in model_variants")
        bad = [v for v, pct in alloc.items() if not _is_number(pct) or not 0 <= pct <= 100]
        out += [f"traffic_allocation[{v!r}] must be a number in [0, 100]" for v in bad]
        if not bad and alloc and abs(sum(alloc.values()) - 100.0) > ALLOCATION_TOLERANCE:
            out.append(f"traffic_allocation must sum to 100, got {sum(alloc.values()):g}")
        if self.control_variant is not None and self.control_variant not in variants:
            out.append(f"control_variant {self.control_variant!r} is not in model_variants")
        return out

    def _metric_problems(self) -> list[str]:
        out: list[str] = []
        metrics = self.success_metrics
        if not isinstance(metrics, list) or not metrics:
            return ["success_metrics must list at least one metric"]
        for m in metrics:
            if not isinstance(m, str) or not _NAME.match(m):
                out.append(f"metric name {m!r} must be letters, digits, '_', '-' or '.'")
        dupes = sorted({m for m in metrics if metrics.count(m) > 1})
        out += [f"success_metrics lists {m!r} more than once" for m in dupes]
        from core.experiments.quality_analysis import is_count_metric

        for role, name in (("primary", self.primary), ("reward", self.reward_metric)):
            if isinstance(name, str) and is_count_metric(name):
                out.append(
                    f"{name} cannot be the {role} metric: it is computed per variant from "
                    "labelled feedback with a fixed-horizon interval, not an always-valid test; "
                    "list another metric first or set primary_metric (recall.CLASS can decide)"
                )
        if self.primary_metric is not None and self.primary_metric not in metrics:
            out.append(f"primary_metric {self.primary_metric!r} is not in success_metrics")
        if self.reward_metric is not None and self.reward_metric not in metrics:
            out.append(f"reward_metric {self.reward_metric!r} is not in success_metrics")
        if not isinstance(self.metrics, dict):
            return [*out, "metrics must be a table of metric -> {kind, higher_is_better}"]
        for name, spec in self.metrics.items():
            if name not in metrics:
                out.append(f"metrics.{name} describes a metric that is not in success_metrics")
            elif isinstance(spec, dict):
                unknown = set(spec) - {"kind", "higher_is_better", "direction"}
                out += [f"metrics.{name}: unknown key {k!r}" for k in sorted(unknown)]
                if spec.get("kind", "binary") not in set(MetricKind):
                    out.append(f"metrics.{name}.kind must be 'binary' or 'continuous'")
                if spec.get("direction", "higher") not in ("higher", "lower"):
                    out.append(f"metrics.{name}.direction must be 'higher' or 'lower'")
                if not isinstance(spec.get("higher_is_better", True), bool):
                    out.append(f"metrics.{name}.higher_is_better must be true or false")
            elif not isinstance(spec, MetricSpec):
                out.append(f"metrics.{name} must be a table with kind and higher_is_better")
        return out

    def _number_problems(self) -> list[str]:
        out: list[str] = []
        k = max(len(self.model_variants or {}), 1)
        checks = [
            ("confidence_level", self.confidence_level, lambda x: 0 < x < 1, "in (0, 1)"),
            ("maximum_duration_days", self.maximum_duration_days, lambda x: x > 0, "> 0"),
            ("exploration_rate", self.exploration_rate, lambda x: 0 <= x <= 1, "in [0, 1]"),
            ("update_frequency", self.update_frequency, lambda x: x > 0, "> 0 seconds"),
            ("minimum_detectable_effect", self.minimum_detectable_effect, lambda x: x > 0, "> 0"),
            (
                "allocation_floor",
                self.allocation_floor,
                lambda x: 0 <= x <= 100 / k,
                f"a percent in [0, {100 / k:g}]",
            ),
        ]
        for name, value, ok, rule in checks:
            if not _is_number(value) or not ok(value):
                out.append(f"{name} must be {rule}, got {value!r}")
        mss = self.minimum_sample_size
        if not isinstance(mss, int) or isinstance(mss, bool) or mss < 1:
            out.append(f"minimum_sample_size must be a whole number >= 1, got {mss!r}")
        if self.allocation_mode not in set(AllocationMode):
            modes = ", ".join(m.value for m in AllocationMode)
            out.append(f"allocation_mode {self.allocation_mode!r} must be one of: {modes}")
        if not isinstance(self.name, str) or not isinstance(self.description, str):
            out.append("name and description must be text")
        return out

    # ---- serialisation -------------------------------------------------------------------------

    def normalized(self) -> ExperimentConfig:
        """A validated copy with every default made explicit (what is stored)."""
        self.validate()
        cfg = dataclasses.replace(
            self,
            model_variants=dict(self.model_variants),
            traffic_allocation={k: float(v) for k, v in self.traffic_allocation.items()},
            success_metrics=list(self.success_metrics),
            metrics=dict(self.metrics),
        )
        cfg.name = cfg.name or cfg.experiment_id
        cfg.primary_metric, cfg.control_variant = cfg.primary, cfg.control
        cfg.reward_metric = cfg.reward
        cfg.metrics = {m: s.to_dict() for m, s in cfg.metric_specs().items()}
        cfg.minimum_detectable_effect = float(cfg.minimum_detectable_effect)
        return cfg

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["metrics"] = {
            k: v.to_dict() if isinstance(v, MetricSpec) else dict(v)
            for k, v in self.metrics.items()
        }
        d.pop("bandit_config", None)  # always folded into the flat fields
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        if not isinstance(data, dict):
            raise ValidationError("an experiment config must be a table (JSON object)")
        known = {f.name for f in dataclasses.fields(cls)}
        # TOML files may group the seed's bandit fields under [bandit].
        data = dict(data)
        if isinstance(data.get("bandit"), dict) and "bandit_config" not in data:
            data["bandit_config"] = data.pop("bandit")
        problems = [f"unknown field {k!r}" for k in data if k not in known]
        if "experiment_id" not in data:
            problems.append("experiment_id is required")
        if problems:
            raise ConfigValidationError(str(data.get("experiment_id", "")), problems)
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> ExperimentConfig:
        """Load a ``.toml`` or ``.json`` file (other suffixes: JSON, then TOML)."""
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise ValidationError(f"cannot read experiment config {p}: {exc.strerror}") from None
        suffix = p.suffix.lower()
        loaders = (
            [_load_toml] if suffix == ".toml" else [_load_json] if suffix == ".json" else []
        ) or [_load_json, _load_toml]
        errors = []
        for loader in loaders:
            try:
                return cls.from_dict(loader(raw))
            except (ValueError, UnicodeDecodeError) as exc:
                errors.append(str(exc).splitlines()[0])
        raise ValidationError(f"cannot parse experiment config {p}: {'; '.join(errors)}")


def _load_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"JSON: {exc}") from None


def _load_toml(raw: bytes) -> Any:
    try:
        return tomllib.loads(raw.decode())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"TOML: {exc}") from None


def registry_problems(config: ExperimentConfig, registry: Any) -> list[str]:
    """Each referenced model version must exist and be neither FAILED nor RETIRED."""
    from core.errors import NotFoundError
    from core.lifecycle import ModelStatus
    from core.model_metadata import parse_model_ref

    out: list[str] = []
    for variant, ref in config.model_variants.items():
        try:
            meta = registry.get_model(*parse_model_ref(ref))
        except NotFoundError:
            out.append(f"variant {variant!r}: model {ref} is not registered")
            continue
        except ValidationError:
            continue  # malformed refs are reported by ExperimentConfig.problems()
        if meta.status in (ModelStatus.FAILED, ModelStatus.RETIRED):
            out.append(f"variant {variant!r}: model {ref} is {meta.status.value.upper()}")
    return out
