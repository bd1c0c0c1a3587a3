"""Trainer: accuracy, metrics, determinism and config serialisation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from inference.architectures import UnknownArchitectureError
from inference.features import FeatureConfig
from inference.predict import predict_proba
from inference.synthetic import DATASET_VERSION, LABELS
from inference.training import (
    TrainingConfig,
    TrainingResult,
    classification_metrics,
    evaluate,
    stratified_split,
    train_model,
)

pytestmark = pytest.mark.slow


def test_trained_model_reaches_accuracy(trained: TrainingResult) -> None:
    assert trained.metrics["accuracy"] >= 0.8
    for key in ("accuracy", "precision", "recall", "f1_score"):
        assert 0.0 <= trained.metrics[key] <= 1.0
    assert trained.metrics["train_loss"] >= 0 and np.isfinite(trained.metrics["val_loss"])
    assert not trained.model.training  # returned ready for inference
    assert trained.labels == list(LABELS) and trained.dataset_version == DATASET_VERSION


def test_trained_model_generalises_to_unseen_seed(
    trained: TrainingResult, small_dataset: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = small_dataset
    metrics = evaluate(trained.model, x, y, trained.labels)
    assert metrics["accuracy"] >= 0.8


def test_training_config_is_recorded_as_json(trained: TrainingResult) -> None:
    cfg = trained.training_config
    json.dumps(cfg)  # must be JSON-serialisable for the registry
    assert cfg["labels"] == list(LABELS)
    assert cfg["features"] == FeatureConfig().to_dict()
    assert cfg["dataset_version"] == DATASET_VERSION
    assert cfg["n_per_class"] == 48 and cfg["epochs"] == 6 and cfg["architecture"] == "small_cnn"
    assert TrainingConfig.from_dict(cfg) == TrainingConfig(n_per_class=48, epochs=6)


def test_default_training_config_matches_contract() -> None:
    cfg = TrainingConfig()
    assert (cfg.architecture, cfg.epochs, cfg.learning_rate, cfg.batch_size) == (
        "small_cnn",
        8,
        0.003,
        32,
    )
    assert (cfg.n_per_class, cfg.seed, cfg.validation_fraction) == (120, 0, 0.25)
    assert cfg.labels == LABELS and cfg.features == FeatureConfig()


def test_training_is_deterministic_and_leaves_global_state_alone() -> None:
    cfg = TrainingConfig(n_per_class=6, epochs=2, batch_size=8)
    threads = torch.get_num_threads()
    torch.manual_seed(1234)
    rng_before = torch.get_rng_state()
    losses: list[tuple[int, int, float]] = []
    first = train_model(cfg, on_epoch=lambda e, n, loss: losses.append((e, n, loss)))
    second = train_model(cfg)
    assert torch.equal(torch.get_rng_state(), rng_before)  # caller's RNG stream untouched
    assert torch.get_num_threads() == threads
    assert [(e, n) for e, n, _ in losses] == [(1, 2), (2, 2)]
    assert all(np.isfinite(loss) for _, _, loss in losses)
    assert first.metrics == second.metrics
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), key


def test_label_subset_trains_matching_head() -> None:
    result = train_model(TrainingConfig(n_per_class=6, epochs=1, labels=("owl", "sparrow")))
    assert result.labels == ["owl", "sparrow"]
    probs = predict_proba(result.model, np.zeros((3, 22050), dtype=np.float32))
    assert probs.shape == (3, 2)


@pytest.mark.parametrize(
    "bad",
    [
        {"epochs": 0},
        {"validation_fraction": 1.0},
        {"learning_rate": 0.0},
        {"n_per_class": 1},
        {"labels": ("owl",)},
        {"labels": ("owl", "owl")},
        {"labels": ("owl", "eagle")},
    ],
)
def test_invalid_config_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError) as excinfo:
        train_model(TrainingConfig(**bad))  # type: ignore[arg-type]
    assert not isinstance(excinfo.value, UnknownArchitectureError)


def test_stratified_split_keeps_class_balance() -> None:
    y = np.repeat(np.arange(5), 20)
    train, val = stratified_split(y, 0.25, seed=0)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 100
    assert np.bincount(y[val]).tolist() == [5] * 5
    again_train, again_val = stratified_split(y, 0.25, seed=0)
    np.testing.assert_array_equal(val, again_val)
    assert not np.array_equal(val, stratified_split(y, 0.25, seed=1)[1])


def test_classification_metrics_by_hand() -> None:
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 0, 2])
    m = classification_metrics(y_true, y_pred, 3)
    # precision: c0 1/2, c1 2/3, c2 1/1; recall: c0 1/2, c1 2/2, c2 1/2
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert m["recall"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    f1 = [0.5, 2 * (2 / 3) / (2 / 3 + 1), 2 * 0.5 / 1.5]
    assert m["f1_score"] == pytest.approx(sum(f1) / 3)


def test_classification_metrics_never_predicted_class_scores_zero() -> None:
    m = classification_metrics(np.array([0, 1]), np.array([0, 0]), 2)
    assert m["precision"] == pytest.approx(0.25) and m["recall"] == pytest.approx(0.5)


def test_custom_waveform_model_trains_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "nightscan_train_arch.py").write_text(
        "from torch import nn\n"
        "from inference.features import LogMelSpectrogram\n\n"
        "def factory(num_classes, features):\n"
        "    return nn.Sequential(LogMelSpectrogram(features), nn.Flatten(),\n"
        "                         nn.LazyLinear(num_classes))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "nightscan_train_arch", raising=False)
    cfg = TrainingConfig(architecture="nightscan_train_arch:factory", n_per_class=4, epochs=2)
    result = train_model(cfg)
    assert result.training_config["architecture"] == "nightscan_train_arch:factory"
    assert predict_proba(result.model, np.zeros((2, 22050), np.float32)).shape == (2, 5)
    assert 0.0 <= result.metrics["accuracy"] <= 1.0


def test_unknown_architecture_fails_before_generating_data() -> None:
    with pytest.raises(UnknownArchitectureError):
        train_model(TrainingConfig(architecture="nope", n_per_class=10_000))
