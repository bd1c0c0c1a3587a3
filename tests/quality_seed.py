"""Seeded labelled traffic for quality tests, written through the real PredictionLog (flush and
first-label-wins claims), with the same rows returned so tests can compute the truth."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

LABELS = ("owl", "hawk", "sparrow", "robin")
MIX = (0.15, 0.2, 0.45, 0.2)


@dataclass(frozen=True)
class Logged:
    request_id: str
    model_ref: str
    true: str
    predicted: str
    confidence: float
    labelled: bool


def add_deployment(db, deployment_id: str, model_id: str, version: str) -> None:
    from data.deployment_tables import DeploymentRow

    with db.write() as session:
        session.add(
            DeploymentRow(
                deployment_id=deployment_id, model_id=model_id, version=version,
                environment="test", status="running",
            )
        )  # fmt: skip


def add_experiment(db, experiment_id: str) -> None:
    from data.experiment_tables import ExperimentRow

    with db.write() as session:
        session.add(ExperimentRow(experiment_id=experiment_id, status="running"))


def log_traffic(
    db,
    deployment_id: str,
    model_refs: tuple[str, ...],
    n: int,
    *,
    seed: int = 0,
    weak_class: tuple[str, str] | None = None,  # (model_ref, class) with half the recall
    label_share: float = 0.6,
    experiment_id: str | None = None,  # then variant i is model_refs[i], named "v0", "v1", ...
) -> list[Logged]:
    from core.deployments.prediction_log import Prediction, PredictionLog

    rng = np.random.default_rng(seed)
    log = PredictionLog(db)
    logged = []
    for i in range(n):
        ref = model_refs[i % len(model_refs)]
        true = LABELS[rng.choice(4, p=MIX)]
        skill = 0.85
        if weak_class is not None and (ref, true) == weak_class:
            skill = 0.4
        predicted = true if rng.random() < skill else LABELS[rng.integers(4)]
        conf = float(rng.beta(6, 2))
        rid = f"{deployment_id}-{i}"
        variant = f"v{model_refs.index(ref)}" if experiment_id else None
        log.remember(
            Prediction(rid, deployment_id, ref, LABELS, predicted, experiment_id, variant,
                       confidence=conf)
        )  # fmt: skip
        logged.append(Logged(rid, ref, true, predicted, conf, bool(rng.random() < label_share)))
    log.flush()
    for row in logged:
        if row.labelled:
            log.claim(row.request_id, row.true == row.predicted, row.true)
    log.close()
    return logged


def per_class_recall(logged: list[Logged], model_ref: str) -> dict[str, float]:
    from sklearn.metrics import recall_score

    rows = [r for r in logged if r.labelled and r.model_ref == model_ref]
    recall = recall_score(
        [r.true for r in rows], [r.predicted for r in rows], labels=list(LABELS), average=None
    )
    return dict(zip(LABELS, recall.tolist(), strict=True))


def now() -> datetime:
    from data.types import utcnow

    return utcnow()
