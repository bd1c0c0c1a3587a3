"""A health probe is a real inference: a synthetic call through the same queue as traffic."""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from core.deployments.served import ServedModel


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
    return probe_runtimes([(served, timeout_s)])[0]


def probe_runtimes(targets: list[tuple[ServedModel, float]]) -> list[ProbeResult]:
    """Probe several runtimes at once: every probe is queued before any is awaited, so a hung
    model delays no other probe, and the call lasts at most the longest timeout."""
    started = []
    for served, _timeout in targets:
        t0 = time.perf_counter()
        try:
            future: Future | BaseException = served.runtime.submit(
                probe_windows(served.clip_samples)
            )
            future.add_done_callback(_stamp)
        except Exception as exc:  # the queue is full, the runtime is closed
            future = exc
        started.append((t0, future))
    return [
        _verdict(served, timeout_s, t0, future)
        for (served, timeout_s), (t0, future) in zip(targets, started, strict=True)
    ]


def _stamp(future: Future) -> None:
    future.done_at = time.perf_counter()  # type: ignore[attr-defined]


def _verdict(
    served: ServedModel, timeout_s: float, t0: float, future: Future | BaseException
) -> ProbeResult:
    if isinstance(future, BaseException):
        return ProbeResult(False, 0.0, f"{type(future).__name__}: {future}")
    try:
        probs = future.result(timeout=max(0.0, t0 + timeout_s - time.perf_counter()))
    except TimeoutError:
        return ProbeResult(False, time.perf_counter() - t0, f"no answer within {timeout_s}s")
    except Exception as exc:  # the model raised, the runtime closed under the request
        return ProbeResult(False, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}")
    latency = getattr(future, "done_at", time.perf_counter()) - t0
    probs = np.asarray(probs)
    if probs.shape != (1, len(served.labels)):
        return ProbeResult(
            False, latency, f"output shape {probs.shape}, expected 1x{len(served.labels)}"
        )
    if not np.isfinite(probs).all() or abs(float(probs.sum()) - 1.0) > 1e-3:
        return ProbeResult(False, latency, "output is not a probability distribution")
    return ProbeResult(True, latency, "ok")
