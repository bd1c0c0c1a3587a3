"""DeploymentConfig's typed sections: defaults, validation, the seed's dicts, round-trips."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.deployments import DeploymentConfig
from core.deployments.canary_policy import CanaryPolicy
from core.deployments.config import (
    BatchingSettings,
    CanaryConfig,
    EnsembleSpec,
    HealthCheckConfig,
    ResourcesConfig,
    ScalingConfig,
)
from core.deployments.sections import setting
from core.errors import ValidationError
from inference.batching import BatchingConfig

MODEL = "wildlife_detector"
SECTIONS = {
    "resources": ResourcesConfig,
    "scaling": ScalingConfig,
    "health_check": HealthCheckConfig,
    "batching": BatchingSettings,
    "canary": CanaryConfig,
}


def test_seed_constructor_with_plain_dicts_merges_over_the_defaults() -> None:
    cfg = DeploymentConfig(
        model_id=MODEL,
        version="v2.1.0",
        resources={"cpu": 2, "memory": "4Gi"},
        scaling={"min_replicas": 1, "max_replicas": 3},
        health_check={"interval": 30, "timeout": 10},
        traffic_percentage=100.0,
        rollback_on_error=True,
        canary_deployment=True,
    ).validate()
    assert cfg.resources == ResourcesConfig(cpu=2, memory="4Gi", gpu=0)
    assert cfg.scaling == ScalingConfig(min_replicas=1, max_replicas=3)
    assert cfg.health_check.failure_threshold == 3  # the default, merged in
    assert cfg.batching == BatchingSettings() and cfg.canary == CanaryConfig()
    assert cfg.resources.memory_bytes == cfg.memory_bytes == 4 * 1024**3
    assert cfg.resources.threads == 2
    # Sections are frozen: a config is changed by building another one.
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.health_check.timeout = 1  # type: ignore[misc]
    # A section object works as well as a dict, and is taken as is.
    hc = HealthCheckConfig(interval=1, timeout=0.5)
    assert DeploymentConfig(model_id=MODEL, version="v1", health_check=hc).health_check is hc


def test_defaults_are_defined_once() -> None:
    cfg = DeploymentConfig(model_id=MODEL, version="v1")
    for name, section in SECTIONS.items():
        assert getattr(cfg, name) == section()
    # The deployment's batching defaults are the runtime's measured ones.
    runtime = BatchingConfig()
    assert BatchingSettings().runtime(replicas=1) == runtime
    # The canary policy's settings come from the canary section.
    policy = CanaryPolicy.from_config(DeploymentConfig(model_id=MODEL, version="v1"))
    assert policy.settings.alpha == CanaryConfig().alpha
    custom = DeploymentConfig(model_id=MODEL, version="v1", canary={"alpha": 0.01})
    assert CanaryPolicy.from_config(custom).settings.alpha == 0.01


def test_values_are_normalised() -> None:
    cfg = DeploymentConfig(
        model_id=MODEL,
        version="v1",
        scaling={"min_replicas": 2.0, "max_replicas": 4},
        canary={"steps": [10, 100]},
    )
    assert cfg.scaling.min_replicas == 2 and isinstance(cfg.scaling.min_replicas, int)
    assert cfg.canary.steps == (10, 100)  # a tuple: never shared, never mutated
    assert CanaryConfig().steps == (5, 25, 50, 100)
    assert ResourcesConfig(cpu=0.5).threads == 1 and ResourcesConfig(cpu=3.9).threads == 3


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ResourcesConfig(cpu=0), r"^resources\.cpu must be a number between 0\.1 and 1024"),
        (lambda: ResourcesConfig(memory="1Mi"), r"^resources\.memory '1Mi' is below 64Mi$"),
        (lambda: ScalingConfig(max_replicas=0), r"^scaling\.max_replicas must be an integer"),
        (lambda: HealthCheckConfig(timeout=True), r"^health_check\.timeout must be a number"),
        (lambda: BatchingSettings(max_batch_delay_ms=-1), r"^batching\.max_batch_delay_ms"),
        (lambda: CanaryConfig(alpha=0.9), r"^canary\.alpha must be a number between"),
        (lambda: CanaryConfig(step_seconds=-1), r"^canary\.step_seconds must be a number >= 0"),
        (lambda: CanaryConfig(steps=(5, 50)), r"^canary\.steps must be increasing .* \[5, 50\]$"),
        (lambda: CanaryConfig.from_value([5, 100]), r"^canary must be a table of settings"),
        (
            lambda: ResourcesConfig.from_value({"cpus": 2, "gpu": 1}),
            r"^unknown resources keys: cpus; known: cpu, memory, gpu$",
        ),
    ],
)
def test_sections_validate_themselves(build, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        build()


def test_a_new_canary_setting_is_one_field() -> None:
    """How the sequential policy's keys are added: a field with its default and range."""

    @dataclass(frozen=True)
    class Extended(CanaryConfig):
        tolerance: float = setting(0.005, 0, 1)

    assert Extended.from_value({"tolerance": 0.01, "alpha": 0.01}).tolerance == 0.01
    assert Extended().to_dict()["tolerance"] == 0.005
    with pytest.raises(ValidationError, match=r"canary\.tolerance must be a number between 0"):
        Extended.from_value({"tolerance": 2})
    with pytest.raises(ValidationError, match="known: steps, .*, tolerance$"):
        Extended.from_value({"tolerence": 0.1})


def test_to_dict_is_plain_json_in_the_stored_shape() -> None:
    cfg = DeploymentConfig(model_id=MODEL, version="v1", canary={"step_seconds": 30})
    data = cfg.to_dict()
    assert json.loads(json.dumps(data)) == data  # plain values only, tuples become lists
    assert data["resources"] == {"cpu": 1, "memory": "2Gi", "gpu": 0}
    assert data["canary"]["steps"] == [5, 25, 50, 100] and data["canary"]["step_seconds"] == 30
    assert data["batching"] == {
        "max_batch_size": 16,
        "max_batch_delay_ms": 0.0,
        "queue_capacity": 256,
    }
    assert data["ensemble"] is None
    assert list(data) == [f.name for f in dataclasses.fields(DeploymentConfig)]
    assert DeploymentConfig.from_dict(data) == cfg


def test_ensemble_section() -> None:
    cfg = DeploymentConfig(ensemble={"models": [f"{MODEL}:v1", f"{MODEL}:v2"]})
    assert isinstance(cfg.ensemble, EnsembleSpec)
    assert (cfg.model_id, cfg.version) == (MODEL, "v1")  # the first member
    assert cfg.ensemble.weights == (1.0, 1.0)
    assert cfg.to_dict()["ensemble"] == {
        "models": [f"{MODEL}:v1", f"{MODEL}:v2"],
        "voting_strategy": "weighted_average",
        "weights": [1.0, 1.0],
    }
    assert cfg.serving_ref.startswith(f"ensemble:{cfg.deployment_id}@")
    with pytest.raises(ValidationError, match="ensemble.models needs at least two"):
        DeploymentConfig(ensemble={"models": [f"{MODEL}:v1"]})


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_file_round_trip(tmp_path: Path, suffix: str) -> None:
    configs = [
        DeploymentConfig(model_id=MODEL, version="v1"),
        DeploymentConfig(
            model_id=MODEL,
            version="v2.0.0-rc.1",
            deployment_id="wd_prod",
            environment="staging",
            resources={"cpu": 1.5, "memory": 512 * 1024**2, "gpu": 0},
            scaling={"min_replicas": 2, "max_replicas": 4, "target_cpu_utilization": 55.5},
            health_check={"interval": 0.5, "timeout": 0.25, "failure_threshold": 2},
            traffic_percentage=12.5,
            rollback_on_error=False,
            canary_deployment=True,
            canary_duration_hours=0.5,
            batching={"max_batch_size": 4, "max_batch_delay_ms": 2.5, "queue_capacity": 8},
            max_audio_seconds=12.0,
            canary={"steps": [1, 10.5, 100], "step_seconds": 90, "alpha": 1e-3},
            ensemble={
                "models": [f"{MODEL}:v1", f"{MODEL}:v2.0.0-rc.1"],
                "voting_strategy": "majority",
                "weights": [2, 1],
            },
        ),
    ]
    for i, cfg in enumerate(configs):
        path = cfg.to_file(tmp_path / f"c{i}{suffix}")
        again = DeploymentConfig.from_file(path)
        assert again == cfg, path.read_text()
        assert again.to_dict() == cfg.to_dict()


def test_config_does_not_import_torch() -> None:
    code = (
        "import sys, core.deployments.config, inference.batching; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
