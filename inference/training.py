"""Deterministic CPU training on the synthetic data set, with held-out macro metrics."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from inference.architectures import AudioClassifier, build_model
from inference.features import FeatureConfig
from inference.predict import predict_proba
from inference.synthetic import DATASET_VERSION, LABELS, make_dataset

EpochCallback = Callable[[int, int, float], None]


@dataclass
class TrainingConfig:
    architecture: str = "small_cnn"
    epochs: int = 8
    learning_rate: float = 0.003
    batch_size: int = 32
    n_per_class: int = 120
    seed: int = 0
    validation_fraction: float = 0.25
    labels: tuple[str, ...] = LABELS
    features: FeatureConfig = field(default_factory=FeatureConfig)

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("epochs must be >= 1 and batch_size >= 2")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )
        if self.n_per_class < 2:
            raise ValueError("n_per_class must be >= 2 (one train and one held-out clip per class)")
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
            raise ValueError(f"need at least two distinct labels, got {list(self.labels)}")
        unknown = [label for label in self.labels if label not in LABELS]
        if unknown:
            raise ValueError(f"labels {unknown} are not in the synthetic data set {list(LABELS)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly snapshot, stored with the trained model."""
        return {
            "architecture": self.architecture,
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "n_per_class": self.n_per_class,
            "seed": self.seed,
            "validation_fraction": self.validation_fraction,
            "labels": list(self.labels),
            "features": self.features.to_dict(),
            "dataset_version": DATASET_VERSION,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingConfig:
        kwargs = {k: v for k, v in data.items() if k != "dataset_version"}
        if "labels" in kwargs:
            kwargs["labels"] = tuple(kwargs["labels"])
        if isinstance(kwargs.get("features"), dict):
            kwargs["features"] = FeatureConfig.from_dict(kwargs["features"])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ValueError(f"unknown TrainingConfig keys: {', '.join(unknown)}")
        return cls(**kwargs)


@dataclass
class TrainingResult:
    model: nn.Module
    metrics: dict[str, float]
    training_config: dict[str, Any]
    dataset_version: str
    labels: list[str]
    # Held-out confusion counts, [true][predicted] in ``labels`` order: per-class metrics and
    # intervals are computed from it at registration (core/quality).
    confusion: list[list[int]] = field(default_factory=list)
    # Histogram of the held-out predictions' confidence (top softmax probability) over
    # CONFIDENCE_BINS equal bins of [0, 1]: with the predicted-class counts (the confusion's
    # column sums), the version's drift reference from registration on.
    confidence_bins: list[int] = field(default_factory=list)


CONFIDENCE_BINS = 10  # the quality rollup's bins (core/quality/rollup.py)


def confidence_histogram(probabilities: np.ndarray, bins: int = CONFIDENCE_BINS) -> list[int]:
    """Counts of the top probabilities per equal bin of [0, 1]; 1.0 falls in the top bin."""
    top = np.asarray(probabilities, dtype=np.float64).max(axis=1)
    index = np.clip((top * bins).astype(np.int64), 0, bins - 1)
    return np.bincount(index, minlength=bins).astype(int).tolist()


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class shuffled split; every class keeps >= 1 clip on each side."""
    rng = np.random.Generator(np.random.PCG64([seed, 1]))
    train, val = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val = min(len(idx) - 1, max(1, int(round(fraction * len(idx)))))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, num_classes: int
) -> dict[str, float]:
    """Accuracy plus macro precision/recall/F1 (a class never predicted scores precision 0)."""
    cm = confusion_counts(y_true, y_pred, num_classes)
    tp = np.diag(cm).astype(np.float64)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = actual > 0  # macro-average over classes that occur in the held-out set
    return {
        "accuracy": float(tp.sum() / max(1, cm.sum())),
        "precision": float(precision[present].mean()),
        "recall": float(recall[present].mean()),
        "f1_score": float(f1[present].mean()),
    }


@contextmanager
def _torch_threads() -> Iterator[None]:
    """Cap intra-op threads at the CPUs this process may use (containers often report more);
    restored afterwards so training has no lasting global side effect."""
    previous = torch.get_num_threads()
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    torch.set_num_threads(max(1, min(previous, available)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    # ceil(n / batch_size) near-equal batches: BatchNorm never sees a lone trailing example.
    return np.array_split(rng.permutation(n), max(1, -(-n // batch_size)))


def _batched_forward(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def train_model(config: TrainingConfig, on_epoch: EpochCallback | None = None) -> TrainingResult:
    """Generate the seeded data set, train on CPU, evaluate on the stratified held-out split.

    on_epoch(epoch, epochs, mean_train_loss) is called after each epoch (epoch starts at 1);
    an exception raised from it aborts training (usable for cancellation).
    """
    config.validate()
    labels = list(config.labels)
    feats = config.features
    order_rng = np.random.Generator(np.random.PCG64([config.seed, 2]))

    # fork_rng: seed init/dropout without clobbering the caller's global torch RNG state.
    with _torch_threads(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(config.architecture, len(labels), feats)  # fail fast on bad specs
        x_np, y_np = make_dataset(
            config.n_per_class, config.seed, feats.sample_rate, feats.clip_seconds, labels
        )
        train_idx, val_idx = stratified_split(y_np, config.validation_fraction, config.seed)
        x_all = torch.from_numpy(x_np)
        y_train = torch.from_numpy(y_np[train_idx])
        # The built-in front-end has no parameters and no augmentation is used, so compute it
        # once instead of every epoch; other models are trained end to end on waveforms.
        trainable: nn.Module = model
        inputs = x_all
        if isinstance(model, AudioClassifier) and not any(
            p.requires_grad for p in model.features.parameters()
        ):
            model.eval()
            inputs = _batched_forward(model.features, x_all, 256)
            trainable = model.backbone
        x_train, x_val = inputs[train_idx], inputs[val_idx]

        optimiser = torch.optim.AdamW(
            trainable.parameters(), lr=config.learning_rate, weight_decay=1e-4
        )
        steps_per_epoch = -(-len(train_idx) // config.batch_size)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimiser,
            max_lr=config.learning_rate,
            total_steps=config.epochs * steps_per_epoch,
            pct_start=0.25,
        )
        loss_fn = nn.CrossEntropyLoss()
        train_loss = float("nan")
        for epoch in range(1, config.epochs + 1):
            trainable.train()
            total, count = 0.0, 0
            for batch in _batches(len(train_idx), config.batch_size, order_rng):
                idx = torch.from_numpy(batch)
                optimiser.zero_grad(set_to_none=True)
                loss = loss_fn(trainable(x_train[idx]), y_train[idx])
                loss.backward()
                optimiser.step()
                schedule.step()
                total += float(loss.detach()) * len(batch)
                count += len(batch)
            train_loss = total / count
            if on_epoch is not None:
                on_epoch(epoch, config.epochs, train_loss)

        model.eval()
        val_logits = _batched_forward(trainable, x_val, 256)
        y_val = y_np[val_idx]
        val_loss = float(loss_fn(val_logits, torch.from_numpy(y_val)))
        val_pred = val_logits.argmax(dim=1).numpy()
        metrics = classification_metrics(y_val, val_pred, len(labels))
    metrics["train_loss"] = float(train_loss)
    metrics["val_loss"] = val_loss
    return TrainingResult(
        model=model,
        metrics=metrics,
        training_config=config.to_dict(),
        dataset_version=DATASET_VERSION,
        labels=labels,
        confusion=confusion_counts(y_val, val_pred, len(labels)).tolist(),
        confidence_bins=confidence_histogram(torch.softmax(val_logits, dim=1).numpy()),
    )


def evaluate(
    model: nn.Module, x: np.ndarray, y: np.ndarray, labels: Sequence[str]
) -> dict[str, float]:
    """Metrics of an already trained model on waveforms `x` with integer targets `y`."""
    pred = predict_proba(model, x).argmax(axis=1)
    return classification_metrics(np.asarray(y), pred, len(labels))
