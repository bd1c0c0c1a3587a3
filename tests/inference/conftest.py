"""Shared fixtures for inference tests: one reduced training run per session."""

from __future__ import annotations

import numpy as np
import pytest

from inference.synthetic import make_dataset
from inference.training import TrainingConfig, TrainingResult, train_model

# Smaller than the defaults (48 clips/class, 6 epochs) yet reliably >= 0.95 held-out accuracy.
FAST_CONFIG = TrainingConfig(n_per_class=48, epochs=6, seed=0)


@pytest.fixture(scope="session")
def trained() -> TrainingResult:
    return train_model(FAST_CONFIG)


@pytest.fixture(scope="session")
def small_dataset() -> tuple[np.ndarray, np.ndarray]:
    """A data set the trained model never saw (different seed)."""
    return make_dataset(8, seed=999)
