"""Seed a demo home: two trained versions of ``wildlife_detector`` with real metrics."""

from __future__ import annotations

from collections.abc import Callable

from core.lifecycle import ModelStatus
from core.registry import get_model_registry
from core.training import train_and_register

DEMO_MODEL = "wildlife_detector"
# v2.0.0: the production model, trained briefly; v2.1.0: the candidate, trained longer.
DEMO_VERSIONS = (
    ("v2.0.0", {"epochs": 2, "seed": 1, "samples_per_class": 60}, ["production"]),
    ("v2.1.0", {"epochs": 8, "seed": 2}, ["candidate", "high-accuracy"]),
)


def seed_demo(on_step: Callable[[str], None] = lambda _msg: None, **train_hooks) -> bool:
    """Train and register the demo versions that are missing. Returns False if none were."""
    registry = get_model_registry()
    seeded = False
    for version, params, tags in DEMO_VERSIONS:
        if registry.exists(DEMO_MODEL, version):
            continue
        on_step(f"training {DEMO_MODEL}:{version}")
        train_and_register(
            DEMO_MODEL,
            version,
            tags=tags,
            status=ModelStatus.VALIDATION,
            description="demo model trained on synthetic night-time calls",
            **params,
            **train_hooks,
        )
        seeded = True
    if seeded:
        registry.update_status(DEMO_MODEL, "v2.0.0", ModelStatus.TESTING, "demo: staging checks")
        registry.update_status(DEMO_MODEL, "v2.0.0", ModelStatus.DEPLOYED, "demo: production")
        registry.update_status(DEMO_MODEL, "v2.1.0", ModelStatus.TESTING, "demo: candidate")
    return seeded
