"""Batched inference helpers: raw waveforms in, class probabilities / label names out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


def predict_proba(
    model: nn.Module, waveforms: np.ndarray | torch.Tensor, batch_size: int = 64
) -> np.ndarray:
    """Softmax probabilities [N, num_classes] for waveforms [N, T] (or a single [T]).

    Runs in eval mode and restores the model's previous train/eval mode afterwards.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if torch.is_tensor(waveforms):
        x = waveforms.detach().to(dtype=torch.float32, device="cpu")
    else:
        x = torch.from_numpy(np.ascontiguousarray(waveforms, dtype=np.float32))
    if x.dim() == 1:
        x = x.unsqueeze(0)
    if x.dim() != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"expected non-empty waveforms shaped [N, T], got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("waveforms contain NaN or infinite values")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            probs = [
                torch.softmax(model(x[i : i + batch_size]).float(), dim=1)
                for i in range(0, x.shape[0], batch_size)
            ]
    finally:
        model.train(was_training)
    return torch.cat(probs).numpy()


def predict_labels(
    model: nn.Module,
    waveforms: np.ndarray | torch.Tensor,
    labels: Sequence[str],
    batch_size: int = 64,
) -> list[str]:
    """Most likely label name per waveform."""
    probs = predict_proba(model, waveforms, batch_size=batch_size)
    if probs.shape[1] != len(labels):
        raise ValueError(f"model outputs {probs.shape[1]} classes but {len(labels)} labels given")
    return [labels[i] for i in probs.argmax(axis=1)]
