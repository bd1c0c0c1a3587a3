"""Helpers shared by the experiment tests (no tests here): tiny registered models, configs, a
fake clock, and child-process plumbing."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

MODEL = "wildlife_detector"
VERSIONS = ("v2.0.0", "v2.1.0", "v2.2.0")
ROOT = Path(__file__).resolve().parents[2]

_weights: bytes | None = None


def register_models(versions: tuple[str, ...] = VERSIONS, status: str = "validation") -> None:
    """Register tiny small_cnn versions of ``wildlife_detector`` (weights built once)."""
    global _weights
    from core import ModelMetadata, get_model_registry
    from inference.architectures import build_model
    from inference.weights import state_dict_to_bytes

    if _weights is None:
        _weights = state_dict_to_bytes(build_model("small_cnn", 2))
    registry = get_model_registry()
    for v in versions:
        if not registry.exists(MODEL, v):
            meta = ModelMetadata(
                model_id=MODEL,
                version=v,
                status=status,
                training_config={"labels": ["owl", "hawk"]},
            )
            registry.register_weights(_weights, meta)


def config_dict(experiment_id: str = "exp1", **overrides: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "experiment_id": experiment_id,
        "name": "test experiment",
        "model_variants": {"control": f"{MODEL}:v2.0.0", "treatment": f"{MODEL}:v2.1.0"},
        "traffic_allocation": {"control": 50.0, "treatment": 50.0},
        "success_metrics": ["accuracy", "confidence", "inference_time"],
        "minimum_sample_size": 100,
        "maximum_duration_days": 14,
        "confidence_level": 0.95,
    }
    cfg.update(overrides)
    return cfg


class FakeClock:
    """A settable UTC clock for the manager (auto-stop, bandit intervals)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def child_env() -> dict[str, str]:
    """The test's home and database for a child process (the fixtures set them in os.environ)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_child(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    return proc
