"""predict_proba / predict_labels on the session-trained model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference.architectures import build_model
from inference.predict import predict_labels, predict_proba
from inference.training import TrainingResult


@pytest.mark.slow
def test_probabilities_and_labels(
    trained: TrainingResult, small_dataset: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = small_dataset
    probs = predict_proba(trained.model, x, batch_size=7)  # uneven batches
    assert probs.shape == (len(x), len(trained.labels)) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs >= 0).all()
    # Batch size must not change results; tensors and arrays are both accepted.
    np.testing.assert_allclose(predict_proba(trained.model, torch.from_numpy(x)), probs, atol=1e-6)
    labels = predict_labels(trained.model, x, trained.labels)
    assert labels == [trained.labels[i] for i in probs.argmax(axis=1)]
    assert np.mean([lab == trained.labels[t] for lab, t in zip(labels, y, strict=True)]) >= 0.8


def test_single_waveform_and_mode_restored() -> None:
    model = build_model("small_cnn", 5)
    model.train()
    probs = predict_proba(model, np.zeros(22050, dtype=np.float32))
    assert probs.shape == (1, 5)
    assert model.training  # caller's mode is restored


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((0, 100), dtype=np.float32),
        np.full((1, 100), np.nan, dtype=np.float32),
        np.zeros((1, 2, 3), dtype=np.float32),
    ],
)
def test_bad_inputs_rejected(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        predict_proba(build_model("small_cnn", 5), bad)


def test_label_count_must_match() -> None:
    with pytest.raises(ValueError, match="labels"):
        predict_labels(build_model("small_cnn", 5), np.zeros((1, 22050), np.float32), ["a", "b"])
