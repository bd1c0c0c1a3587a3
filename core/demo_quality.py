"""The demo's quality story: a version that is worse on one class only.

``wildlife_detector:v2.1.1`` is v2.1.0 with the owl output damped (its bias lowered just enough
to halve owl recall on the held-out set), so every other class keeps its recall while owls are
missed: ``registry compare v2.1.0 v2.1.1`` shows it per class, and the staging deployment that
serves it shows it in ``nightscan quality`` and the console's quality screen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

DEMO_MODEL = "wildlife_detector"
BASE, WEAK = "v2.1.0", "v2.1.1"
WEAK_CLASS = "owl"
STAGING_DEPLOYMENT = "wildlife_detector_staging"
# Reviewers' labels are not perfect either: the share of each class's feedback mislabelled.
FEEDBACK_LABEL_NOISE = {"robin": 0.05, "sparrow": 0.03}


def held_out_split(training_config: dict[str, Any]):
    """(waveforms, integer targets, labels) of the held-out split a version was scored on,
    regenerated from its recorded training config (the synthetic data set is seeded)."""
    from inference.synthetic import make_dataset
    from inference.training import TrainingConfig, stratified_split

    known = {f.name for f in dataclasses.fields(TrainingConfig)}
    cfg = TrainingConfig.from_dict({k: v for k, v in training_config.items() if k in known})
    feats = cfg.features
    x, y = make_dataset(
        cfg.n_per_class, cfg.seed, feats.sample_rate, feats.clip_seconds, list(cfg.labels)
    )
    _, val = stratified_split(y, cfg.validation_fraction, cfg.seed)
    return x[val], y[val], list(cfg.labels)


def _damping(log_probs: np.ndarray, y: np.ndarray, k: int) -> float:
    """The smallest bias cut (in steps of 0.5) that halves class k's held-out recall."""
    base = (log_probs.argmax(axis=1)[y == k] == k).mean()
    for cut in np.arange(0.5, 30.0, 0.5):
        shifted = log_probs.copy()
        shifted[:, k] -= cut
        if (shifted.argmax(axis=1)[y == k] == k).mean() <= base / 2:
            return float(cut)
    return 30.0


def seed_owl_regression(on_step: Callable[[str], None] = lambda _msg: None) -> bool:
    """Register v2.1.1 (if missing) and deploy it as the staging deployment (if missing)."""
    import torch

    from core.lifecycle import ModelStatus
    from core.model_metadata import ModelMetadata
    from core.quality.registration import held_out_reference, per_class_metrics
    from core.registry import get_model_registry
    from inference.predict import predict_proba
    from inference.training import classification_metrics, confidence_histogram, confusion_counts

    registry = get_model_registry()
    seeded = False
    if not registry.exists(DEMO_MODEL, WEAK):
        on_step(f"deriving {DEMO_MODEL}:{WEAK} (worse on {WEAK_CLASS}s only)")
        base = registry.get_model(DEMO_MODEL, BASE)
        model = registry.load_model(DEMO_MODEL, BASE)
        x, y, labels = held_out_split(base.training_config)
        k = labels.index(WEAK_CLASS)
        log_probs = np.log(np.clip(predict_proba(model, x), 1e-12, None))
        cut = _damping(log_probs, y, k)
        last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
        with torch.no_grad():
            last.bias[k] -= cut  # lowers that logit for every input: only owls are lost
        proba = predict_proba(model, x)
        pred = proba.argmax(axis=1)
        confusion = confusion_counts(y, pred, len(labels)).tolist()
        # Its own held-out predictions are its drift reference, not the base version's.
        config = {**base.training_config, "held_out_confusion": confusion}
        config.pop("held_out_reference", None)
        reference = held_out_reference(labels, confusion, confidence_histogram(proba))
        if reference is not None:
            config["held_out_reference"] = reference
        registry.register_model(
            model,
            ModelMetadata(
                model_id=DEMO_MODEL,
                version=WEAK,
                architecture=base.architecture,
                status=ModelStatus.VALIDATION,
                tags=["candidate", f"{WEAK_CLASS}-regression"],
                description=f"{BASE} with the {WEAK_CLASS} output damped by {cut:g}: "
                f"worse on {WEAK_CLASS}s only",
                dataset_version=base.dataset_version,
                training_config=config,
                metrics={
                    **classification_metrics(y, pred, len(labels)),
                    **per_class_metrics(labels, confusion),
                },
            ),
        )
        registry.update_status(DEMO_MODEL, WEAK, ModelStatus.TESTING, "demo: staging checks")
        seeded = True
    from core.deployments import DeploymentConfig, get_deployment_manager

    manager = get_deployment_manager()
    if not any(d.deployment_id == STAGING_DEPLOYMENT for d in manager.list_deployments(True)):
        on_step(f"deploying {DEMO_MODEL}:{WEAK} as {STAGING_DEPLOYMENT}")
        manager.deploy_model(
            DeploymentConfig(
                model_id=DEMO_MODEL,
                version=WEAK,
                deployment_id=STAGING_DEPLOYMENT,
                environment="staging",
            )
        )
        seeded = True
    return seeded
