"""Bandit reallocation: from the reward metric's sufficient statistics to a new traffic split.

Posteriors come from ``core.stats``: Beta(1 + successes, 1 + failures) for binary rewards, where
fractional rewards count as fractions (never truncated), and Normal(mean, var / n) for continuous
ones, the best arm being the argmin for lower-is-better metrics. Every arm keeps at least
``allocation_floor`` percent so none starves. The split is snapped to the 0.01 % bucket grid, so
what is stored is exactly what is routed. Thompson draws use a generator seeded from the
experiment id and the new version, so a recomputation is reproducible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from core.experiments.config import AllocationMode, ExperimentConfig
from core.experiments.routing import snap_to_buckets
from core.stats import MetricStats, epsilon_greedy_allocation, thompson_sampling_allocation

THOMPSON_DRAWS = 20_000


def bandit_rng(experiment_id: str, version: int) -> np.random.Generator:
    seed = hashlib.sha256(f"{experiment_id}:bandit:{version}".encode()).digest()[:8]
    return np.random.default_rng(int.from_bytes(seed, "big"))


def bandit_allocation(
    config: ExperimentConfig, arms: Mapping[str, MetricStats], version: int
) -> tuple[dict[str, float], dict[str, Any]]:
    """(allocation in percent, detail to record) for the next allocation ``version``."""
    spec = config.metric_spec(config.reward)
    floor = config.allocation_floor / 100.0
    if config.allocation_mode == AllocationMode.THOMPSON_SAMPLING:
        fractions = thompson_sampling_allocation(
            arms,
            higher_is_better=spec.higher_is_better,
            floor=floor,
            draws=THOMPSON_DRAWS,
            rng=bandit_rng(config.experiment_id, version),
        )
    elif config.allocation_mode == AllocationMode.EPSILON_GREEDY:
        fractions = epsilon_greedy_allocation(
            arms, config.exploration_rate, higher_is_better=spec.higher_is_better, floor=floor
        )
    else:
        raise ValueError(f"{config.experiment_id} uses a fixed allocation, not a bandit")
    # Snapping can shave a hundredth of a percent off a floored arm; give it back.
    allocation = snap_to_buckets(config.variants, fractions)
    detail = {
        "algorithm": config.allocation_mode,
        "reward_metric": config.reward,
        "higher_is_better": spec.higher_is_better,
        "floor_percent": config.allocation_floor,
        "exploration_rate": config.exploration_rate,
        "probabilities": {k: round(v, 6) for k, v in fractions.items()},
        "arms": {v: {"n": a.n, "mean": a.mean} for v, a in arms.items()},
    }
    return _respect_floor(allocation, config.allocation_floor), detail


def _respect_floor(allocation: dict[str, float], floor: float) -> dict[str, float]:
    out = dict(allocation)
    for name, pct in allocation.items():
        short = round(floor - pct, 2)
        if short > 0:
            donor = max(out, key=out.get)
            out[name] = round(pct + short, 2)
            out[donor] = round(out[donor] - short, 2)
    return out
