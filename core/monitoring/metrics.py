"""Prometheus exposition for ``GET /metrics``.

Counters and histograms are updated on every request and batch; the series the seed's alert
rules use are gauges computed at scrape time from the performance tracker and the experiments:

- ``model_inference_latency_p95`` (milliseconds, per deployment and version)
- ``model_error_rate`` (percent of requests in the rolling window)
- ``ab_test_confidence`` (1 - Holm-adjusted always-valid p of the primary metric, per comparison;
  always-valid so that a scrape every 15 s does not inflate false positives)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from core.monitoring.serving_view import ServingView

log = logging.getLogger(__name__)
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's multiprocess mode


class ServingMetrics:
    """One registry per manager, so tests and several apps in one process never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._collectors: list[Collector] = []  # scrape-time gauges (see render)
        self.requests = Counter(
            "nightscan_requests",
            "Inference requests by deployment, version, experiment variant and outcome.",
            ["deployment", "model_version", "variant", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "nightscan_request_latency_seconds",
            "End-to-end inference latency, queueing included.",
            ["deployment", "model_version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "nightscan_batch_size",
            "Rows per forward pass of the dynamic batcher.",
            ["model_version"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        from core.monitoring.set_aside import ROWS_SET_ASIDE

        self.registry.register(ROWS_SET_ASIDE)  # process-wide; see core.monitoring.set_aside
        self.feedback = Counter(
            "nightscan_feedback",
            "Ground-truth labels received, by version and correctness.",
            ["model_version", "correct"],
            registry=self.registry,
        )

    def observe_request(
        self, deployment: str, model_version: str, variant: str | None, status: str, seconds: float
    ) -> None:
        self.requests.labels(deployment, model_version, variant or "", status).inc()
        if status == "ok":
            self.latency.labels(deployment, model_version).observe(seconds)

    def batch_hook(self, model_version: str) -> Callable[[int, float], None]:
        child = self.batch_size.labels(model_version)
        return lambda rows, _seconds: child.observe(rows)

    def add_collector(self, collector: Collector) -> None:
        self.registry.register(collector)
        self._collectors.append(collector)

    def render(self) -> tuple[bytes, str]:
        """The exposition. Under ``nightscan serve --workers N`` ($PROMETHEUS_MULTIPROC_DIR set
        by the parent), counters and histograms are the host's: every worker's, a dead one's
        included; the scrape-time gauges are those of the process that answers."""
        if not os.environ.get(MULTIPROC_ENV):
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client import multiprocess

        registry = CollectorRegistry(auto_describe=True)
        multiprocess.MultiProcessCollector(registry)
        for collector in self._collectors:
            registry.register(collector)
        return generate_latest(registry), CONTENT_TYPE_LATEST


class LiveGauges(Collector):
    """Gauges read at scrape time: nothing to keep in sync, never stale."""

    def __init__(
        self, manager: ServingView, experiments: Callable[[], Iterable[dict[str, Any]]]
    ) -> None:
        self.manager = manager
        self.experiments = experiments

    def describe(self):  # the families are dynamic; nothing to pre-register
        return []

    def collect(self):
        p95 = GaugeMetricFamily(
            "model_inference_latency_p95",
            "95th percentile inference latency over the rolling window, in milliseconds.",
            labels=["deployment", "model_version"],
        )
        errors = GaugeMetricFamily(
            "model_error_rate",
            "Failed requests over the rolling window, in percent.",
            labels=["deployment", "model_version"],
        )
        rps = GaugeMetricFamily(
            "model_requests_per_second", "Requests per second over the rolling window.",
            labels=["deployment", "model_version"],
        )  # fmt: skip
        queue = GaugeMetricFamily(
            "nightscan_queue_depth", "Windows waiting in the batcher's bounded queue.",
            labels=["deployment"],
        )  # fmt: skip
        healthy = GaugeMetricFamily(
            "nightscan_deployment_healthy", "1 when the last health checks passed.",
            labels=["deployment", "model_version"],
        )  # fmt: skip
        weight = GaugeMetricFamily(
            "nightscan_traffic_weight",
            "Share of traffic (percent) each deployment version receives; canaries included.",
            labels=["deployment", "model_version"],
        )
        mgr = self.manager
        served = [
            (d.config.deployment_id, d.model_ref, d) for d in mgr.served_deployments().values()
        ]
        for deployment_id, model_ref, dep in served:
            m = mgr.current_metrics(deployment_id)
            if m is not None:
                p95.add_metric([deployment_id, model_ref], m.p95_latency_ms)
                errors.add_metric([deployment_id, model_ref], m.error_rate)
                rps.add_metric([deployment_id, model_ref], m.requests_per_second)
                queue.add_metric([deployment_id], m.queue_depth)
            healthy.add_metric([deployment_id, model_ref], 1.0 if dep.healthy else 0.0)
            for version_ref, percent in traffic_weights(dep).items():
                weight.add_metric([deployment_id, version_ref], percent)
        yield from (p95, errors, rps, queue, healthy, weight)

        confidence = GaugeMetricFamily(
            "ab_test_confidence",
            "1 - Holm-adjusted always-valid p-value of the primary metric (0..1).",
            labels=["experiment", "comparison", "metric"],
        )
        try:
            for row in self.experiments():
                confidence.add_metric(
                    [row["experiment"], row["comparison"], row["metric"]], row["confidence"]
                )
        except Exception:  # a broken experiment must not take the whole scrape down
            log.exception("ab_test_confidence collection failed")
        yield confidence


def traffic_weights(dep: Any) -> dict[str, float]:
    """Version -> percent of this deployment's traffic (a canary hook may split it)."""
    split = getattr(dep, "traffic_split", None)
    if callable(split):
        return split()
    return {dep.model_ref: 100.0}


def experiment_confidences() -> list[dict[str, Any]]:
    """One row per running experiment and comparison, from its primary metric."""
    from core.experiments import ExperimentStatus, get_ab_test_manager

    ab = get_ab_test_manager()
    rows = []
    for info in ab.list_experiments(ExperimentStatus.RUNNING):
        analysis = ab.analyze_experiment(info.experiment_id)
        primary = analysis["experiment_metadata"]["primary_metric"]
        for key, comparison in analysis["comparisons"].items():
            c = comparison["metric_comparisons"][primary]
            p = c["sequential"].get("always_valid_p_adjusted", c["sequential"]["always_valid_p"])
            rows.append(
                {
                    "experiment": info.experiment_id,
                    "comparison": key,
                    "metric": primary,
                    "confidence": max(0.0, 1.0 - float(p)),
                }
            )
    return rows
