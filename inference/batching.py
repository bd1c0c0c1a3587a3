"""``BatchingConfig``: the batched runtime's knobs, importable without torch.

The defaults were measured on a 2-core CPU (see ``inference/runtime.py``'s docstring) and are
the only definition of them: a deployment's ``batching`` section (core/deployments/sections.py)
takes its defaults from this class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class BatchingConfig:
    """Batching knobs. Defaults were measured on a 2-core CPU (see inference/runtime.py)."""

    max_batch_size: int = 16
    max_batch_delay_ms: float = 0.0
    queue_capacity: int = 256
    replicas: int = 1
    # torch intra-op threads of each worker's forward pass, set on the worker's own OS thread
    # (per runtime, not process-wide; see inference/runtime.py). None: the process setting.
    threads: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "queue_capacity", "replicas"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"BatchingConfig.{name} must be an integer >= 1, got {value!r}")
        threads = self.threads
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise ValueError(f"BatchingConfig.threads must be None or >= 1, got {threads!r}")
        delay = self.max_batch_delay_ms
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not delay >= 0:
            raise ValueError(f"BatchingConfig.max_batch_delay_ms must be >= 0, got {delay!r}")
        if not math.isfinite(delay):
            raise ValueError(f"BatchingConfig.max_batch_delay_ms must be finite, got {delay!r}")
        if self.queue_capacity < self.max_batch_size:
            raise ValueError(
                f"BatchingConfig.queue_capacity ({self.queue_capacity}) must be >= "
                f"max_batch_size ({self.max_batch_size}), or batches could never fill"
            )
