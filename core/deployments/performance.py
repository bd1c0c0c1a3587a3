"""What a deployment's performance looks like to every reader: ``PerformanceMetrics`` (the
rolling-window numbers), ``SecondSample`` (one second, for charts), and how the snapshots of
several serving processes combine into one deployment's numbers. Pure: no SQL, no psutil, so
the tracker, the snapshot store and the CLI's direct read path share it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

WINDOW_SECONDS = 60.0
FRESH_FOR_S = 60.0  # an older snapshot means nobody is serving it now
PROCESS_KEY = "process"  # in a snapshot's metrics: the host and pid that wrote it


@dataclass
class PerformanceMetrics:
    """The seed's fields, plus queue depth, batch sizes and totals."""

    deployment_id: str
    model_version: str
    timestamp: datetime
    requests_per_second: float
    average_latency_ms: float
    p50_latency_ms: float
    p95_latency_ms: float
    p99_latency_ms: float
    error_rate: float  # percent of requests in the window
    memory_usage_mb: float
    cpu_usage_percent: float
    queue_depth: int = 0
    accuracy: float | None = None  # share of correct predictions among feedback in the window
    feedback_in_window: int = 0
    batch_size_distribution: dict[int, int] = field(default_factory=dict)
    requests_in_window: int = 0
    errors_in_window: int = 0
    window_seconds: float = WINDOW_SECONDS

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["timestamp"] = self.timestamp.isoformat()
        d["batch_size_distribution"] = {str(k): v for k, v in self.batch_size_distribution.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PerformanceMetrics:
        d = dict(d)
        d["timestamp"] = datetime.fromisoformat(d["timestamp"])
        d["batch_size_distribution"] = {
            int(k): int(v) for k, v in d.get("batch_size_distribution", {}).items()
        }
        return cls(**d)


@dataclass(frozen=True)
class SecondSample:
    """One second of traffic, for charts."""

    t: float  # unix time of the second
    requests: int
    errors: int
    average_latency_ms: float
    p95_latency_ms: float


def sum_second(samples: list[SecondSample]) -> SecondSample:
    """One second of several processes: counts add, the mean is weighted, p95 is the largest
    (an upper bound: the processes' latencies are not kept)."""
    if len(samples) == 1:
        return samples[0]
    requests = sum(s.requests for s in samples)
    mean = sum(s.average_latency_ms * s.requests for s in samples) / requests if requests else 0.0
    return SecondSample(
        samples[0].t,
        requests,
        sum(s.errors for s in samples),
        mean,
        max(s.p95_latency_ms for s in samples),
    )


def merge(parts: list[PerformanceMetrics]) -> PerformanceMetrics | None:
    """Several processes' numbers for one deployment as one: requests, errors, labels, rates,
    queues, memory and CPU add up; the mean latency and the accuracy are weighted; the
    percentiles are the largest of the processes' (an upper bound, conservative for alerts)."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    newest = max(parts, key=lambda m: m.timestamp)
    requests = sum(m.requests_in_window for m in parts)
    errors = sum(m.errors_in_window for m in parts)
    labelled = [m for m in parts if m.accuracy is not None and m.feedback_in_window]
    feedback = sum(m.feedback_in_window for m in parts)
    batches: dict[int, int] = {}
    for m in parts:
        for size, count in m.batch_size_distribution.items():
            batches[size] = batches.get(size, 0) + count
    busy = [m for m in parts if m.requests_in_window] or parts
    return PerformanceMetrics(
        deployment_id=newest.deployment_id,
        model_version=newest.model_version,
        timestamp=newest.timestamp,
        requests_per_second=sum(m.requests_per_second for m in parts),
        average_latency_ms=(
            sum(m.average_latency_ms * m.requests_in_window for m in parts) / requests
            if requests
            else 0.0
        ),
        p50_latency_ms=max(m.p50_latency_ms for m in busy),
        p95_latency_ms=max(m.p95_latency_ms for m in busy),
        p99_latency_ms=max(m.p99_latency_ms for m in busy),
        error_rate=errors / requests * 100 if requests else 0.0,
        memory_usage_mb=sum(m.memory_usage_mb for m in parts),
        cpu_usage_percent=sum(m.cpu_usage_percent for m in parts),
        queue_depth=sum(m.queue_depth for m in parts),
        accuracy=(
            sum(m.accuracy * m.feedback_in_window for m in labelled)
            / sum(m.feedback_in_window for m in labelled)
            if labelled
            else None
        ),
        feedback_in_window=feedback,
        batch_size_distribution=batches,
        requests_in_window=requests,
        errors_in_window=errors,
        window_seconds=newest.window_seconds,
    )


def newest_per_process(snapshots: Iterable[dict[str, Any]]) -> dict[str, PerformanceMetrics]:
    """The first (newest) snapshot of every process, from stored metrics dicts newest first."""
    newest: dict[str, PerformanceMetrics] = {}
    for stored in snapshots:
        metrics = dict(stored)
        process = str(metrics.pop(PROCESS_KEY, ""))
        if process not in newest:
            newest[process] = PerformanceMetrics.from_dict(metrics)
    return newest
