"""A health probe is a real inference: a synthetic call through the same queue as traffic."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from core.deployments.serving import ServedModel


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    latency_s: float
    detail: str


_PROBE_CACHE: dict[int, np.ndarray] = {}


def probe_windows(clip_samples: int) -> np.ndarray:
    """One window of a synthetic owl call (deterministic), cached per window length."""
    if clip_samples not in _PROBE_CACHE:
        from inference.audio import fixed_windows
        from inference.synthetic import generate_call

        call = generate_call("owl", np.random.default_rng(7), seconds=clip_samples / 22_050)
        _PROBE_CACHE[clip_samples] = fixed_windows(call, clip_samples)[:1]
    return _PROBE_CACHE[clip_samples]


def probe_runtime(served: ServedModel, timeout_s: float) -> ProbeResult:
    started = time.perf_counter()
    try:
        future = served.runtime.submit(probe_windows(served.clip_samples))
        probs = future.result(timeout=timeout_s)
    except TimeoutError:
        return ProbeResult(False, time.perf_counter() - started, f"no answer within {timeout_s}s")
    except Exception as exc:  # the model raised, the queue is full, the runtime is closed
        return ProbeResult(False, time.perf_counter() - started, f"{type(exc).__name__}: {exc}")
    latency = time.perf_counter() - started
    probs = np.asarray(probs)
    if probs.shape != (1, len(served.labels)):
        return ProbeResult(
            False, latency, f"output shape {probs.shape}, expected 1x{len(served.labels)}"
        )
    if not np.isfinite(probs).all() or abs(float(probs.sum()) - 1.0) > 1e-3:
        return ProbeResult(False, latency, "output is not a probability distribution")
    return ProbeResult(True, latency, "ok")
