"""Live performance numbers per deployment and per model version.

Requests land in one-second buckets kept for 15 minutes (a ring buffer per key); the current
metrics are computed over a rolling window from those buckets, so they are per-interval values,
never cumulative counters. The serving process persists a snapshot every few seconds so that a
console in another process, or on another machine with PostgreSQL, sees the same numbers.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil

from core.deployments.performance import WINDOW_SECONDS, PerformanceMetrics, SecondSample

HISTORY_SECONDS = 900
LATENCY_SAMPLES_PER_SECOND = 2000  # enough for p99 at serving rates here; bounded memory


class _Bucket:
    __slots__ = ("second", "count", "errors", "latency_sum", "latencies", "labelled", "correct")

    def __init__(self, second: int) -> None:
        self.second = second
        self.count = 0
        self.errors = 0
        self.latency_sum = 0.0
        self.latencies: list[float] = []
        self.labelled = 0  # requests whose ground truth arrived in this second
        self.correct = 0

    def add(self, latency_s: float, ok: bool) -> None:
        self.count += 1
        if not ok:
            self.errors += 1
        self.latency_sum += latency_s
        if len(self.latencies) < LATENCY_SAMPLES_PER_SECOND:
            self.latencies.append(latency_s)

    def sample(self) -> SecondSample:
        lat = sorted(self.latencies)
        p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))] * 1000 if lat else 0.0
        avg = self.latency_sum / self.count * 1000 if self.count else 0.0
        return SecondSample(float(self.second), self.count, self.errors, avg, p95)


def arm_key(deployment_id: str, model_version: str) -> str:
    """The tracker key of one version's traffic within one deployment."""
    return f"{deployment_id}@{model_version}"


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), without numpy."""
    if not sorted_values:
        return 0.0
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


class _Series:
    def __init__(self, model_version: str, now: float) -> None:
        self.model_version = model_version
        self.buckets: deque[_Bucket] = deque(maxlen=HISTORY_SECONDS)
        self.first_seen = now  # the tracker's clock, which tests and replays inject

    def bucket(self, now: float) -> _Bucket:
        second = int(now)
        # A clock that steps back keeps filling the newest bucket rather than reordering.
        if not self.buckets or second > self.buckets[-1].second:
            self.buckets.append(_Bucket(second))
        return self.buckets[-1]

    def add(self, now: float, latency_s: float, ok: bool) -> None:
        self.bucket(now).add(latency_s, ok)

    def window(self, now: float, seconds: float) -> list[_Bucket]:
        # Only whole seconds that have ended, plus the current one.
        start = now - seconds
        return [b for b in self.buckets if b.second >= start]


class PerformanceTracker:
    """Thread-safe; ``record`` is O(1) and called on every request."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._series: dict[str, _Series] = {}
        self._gauges: dict[str, Callable[[], dict[str, Any]]] = {}
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # prime: the first reading is always 0
        self._usage = (0.0, 0.0)
        self._usage_at = float("-inf")
        self._usage_lock = threading.Lock()
        self._snapshot_source: Callable[[str], PerformanceMetrics | None] | None = None
        self._history_source: Callable[[str, float], list[SecondSample]] | None = None
        self._process_source: Callable[[str], dict[str, PerformanceMetrics]] | None = None

    # ---- recording ---------------------------------------------------------------------

    def record(self, deployment_id: str, model_version: str, latency_s: float, ok: bool) -> None:
        """One request, counted for the deployment, for the version, and for the version within
        the deployment (``arm_key``: what a canary judge or an error-rate rollback compares)."""
        now = self._clock()
        with self._lock:
            for key in (deployment_id, model_version, arm_key(deployment_id, model_version)):
                series = self._series.get(key)
                if series is None:
                    series = self._series[key] = _Series(model_version, now)
                series.model_version = model_version  # the version served most recently
                series.add(now, latency_s, ok)

    def record_feedback(self, deployment_id: str, model_version: str, correct: bool) -> None:
        now = self._clock()
        with self._lock:
            for key in (deployment_id, model_version, arm_key(deployment_id, model_version)):
                series = self._series.get(key)
                if series is not None:
                    bucket = series.bucket(now)
                    bucket.labelled += 1
                    bucket.correct += int(correct)

    def process_usage(self) -> tuple[float, float]:
        """(CPU percent, resident MB) of this process, sampled at most once a second: psutil's
        CPU reading covers the time since the previous call, so callers polling at their own
        pace (supervisor, snapshots, console) would otherwise shorten each other's interval."""
        with self._usage_lock:
            now = time.monotonic()
            if now - self._usage_at >= 1.0:
                self._usage = (
                    self._process.cpu_percent(None),
                    self._process.memory_info().rss / 1024**2,
                )
                self._usage_at = now
            return self._usage

    def set_gauges(self, deployment_id: str, gauges: Callable[[], dict[str, Any]]) -> None:
        """``gauges()`` returns ``queue_depth`` and ``batch_size_distribution`` right now."""
        self._gauges[deployment_id] = gauges

    def forget(self, deployment_id: str) -> None:
        with self._lock:
            self._series.pop(deployment_id, None)
        self._gauges.pop(deployment_id, None)

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._series)

    def set_remote_sources(
        self,
        snapshot: Callable[[str], PerformanceMetrics | None],
        history: Callable[[str, float], list[SecondSample]],
        processes: Callable[[str], dict[str, PerformanceMetrics]] | None = None,
    ) -> None:
        """Where to look when this process serves nothing for a key (persisted snapshots),
        and where each serving process's own numbers are (``by_process``)."""
        self._snapshot_source, self._history_source = snapshot, history
        self._process_source = processes

    def by_process(self, deployment_id: str) -> dict[str, PerformanceMetrics]:
        """``{"host:pid": numbers}`` of every process serving the deployment (their last
        snapshots, up to a few seconds old); empty without a source."""
        return self._process_source(deployment_id) if self._process_source else {}

    # ---- reading -----------------------------------------------------------------------

    def get_current_metrics(
        self, deployment_id: str, window_seconds: float = WINDOW_SECONDS
    ) -> PerformanceMetrics | None:
        """The rolling-window numbers for a deployment (or a ``model_id:version``); None if
        nothing has been served under that key here or, via snapshots, anywhere."""
        now = self._clock()
        with self._lock:
            series = self._series.get(deployment_id)
            buckets = list(series.window(now, window_seconds)) if series else None
            version = series.model_version if series else ""
            first_seen = series.first_seen if series else now
        if series is None:
            return self._snapshot_source(deployment_id) if self._snapshot_source else None
        count = sum(b.count for b in buckets)
        errors = sum(b.errors for b in buckets)
        labelled = sum(b.labelled for b in buckets)
        latencies = sorted(x for b in buckets for x in b.latencies)
        elapsed = max(1.0, min(window_seconds, now - first_seen))
        gauges = self._gauges.get(deployment_id, lambda: {})()
        usage = self.process_usage()
        return PerformanceMetrics(
            deployment_id=deployment_id,
            model_version=version,
            timestamp=datetime.fromtimestamp(now, UTC),
            requests_per_second=count / elapsed,
            average_latency_ms=(sum(b.latency_sum for b in buckets) / count * 1000)
            if count
            else 0.0,
            p50_latency_ms=_percentile(latencies, 0.50) * 1000,
            p95_latency_ms=_percentile(latencies, 0.95) * 1000,
            p99_latency_ms=_percentile(latencies, 0.99) * 1000,
            error_rate=(errors / count * 100) if count else 0.0,
            memory_usage_mb=usage[1],
            cpu_usage_percent=usage[0],
            queue_depth=int(gauges.get("queue_depth", 0)),
            accuracy=(sum(b.correct for b in buckets) / labelled) if labelled else None,
            feedback_in_window=labelled,
            batch_size_distribution=dict(gauges.get("batch_size_distribution", {})),
            requests_in_window=count,
            errors_in_window=errors,
            window_seconds=window_seconds,
        )

    def history(self, deployment_id: str, seconds: float = HISTORY_SECONDS) -> list[SecondSample]:
        """One sample per second that saw traffic, oldest first, for the last ``seconds``."""
        now = self._clock()
        with self._lock:
            series = self._series.get(deployment_id)
            buckets = list(series.window(now, seconds)) if series else None
        if buckets is None:
            return self._history_source(deployment_id, seconds) if self._history_source else []
        return [b.sample() for b in buckets]

    def samples_since(self, deployment_id: str, since: float) -> list[SecondSample]:
        with self._lock:
            series = self._series.get(deployment_id)
            buckets = [b for b in series.buckets if b.second >= since] if series else []
        return [b.sample() for b in buckets]


def snapshot_cutoff(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)
