"""Model-quality gauges for ``GET /metrics``, computed at scrape time from the quality counts
(core/quality) of every deployment this process serves:

- ``model_precision``, ``model_recall``, ``model_f1`` {deployment, version, class}: over the
  last ``WINDOW`` of labelled feedback (a class with no denominator has no sample)
- ``model_macro_f1``, ``model_label_coverage`` (0..1), ``model_expected_calibration_error``
  {deployment, version}
- ``model_prediction_drift`` {deployment, version}: 1 while the last completed hour's class mix
  or confidence histogram differs from the version's first hours (at most 1 % false alarms a
  day), else 0; ``model_prediction_drift_p_value`` is the smaller of the two tests' p-values.
  A scrape that finds drift records the alarm and its event, once per hour, in any process.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from core.monitoring.serving_view import ServingView
    from data.database import Database

log = logging.getLogger(__name__)
WINDOW = timedelta(hours=24)


class QualityGauges(Collector):
    def __init__(self, manager: ServingView, db: Database) -> None:
        self.manager = manager
        self.db = db

    def describe(self):  # dynamic families; nothing to pre-register
        return []

    def collect(self):
        from core.quality.service import QualityService
        from core.quality.store import Scope

        per_class = {
            name: GaugeMetricFamily(
                f"model_{name}",
                f"Per-class {name} over the last {WINDOW} of labelled feedback (0..1).",
                labels=["deployment", "version", "class"],
            )
            for name in ("precision", "recall", "f1")
        }
        macro = GaugeMetricFamily(
            "model_macro_f1", "Macro-averaged F1 over the classes seen (0..1).",
            labels=["deployment", "version"],
        )  # fmt: skip
        coverage = GaugeMetricFamily(
            "model_label_coverage", "Share of predictions that received a label (0..1).",
            labels=["deployment", "version"],
        )  # fmt: skip
        ece = GaugeMetricFamily(
            "model_expected_calibration_error",
            "Expected calibration error of the top-class confidence (0..1).",
            labels=["deployment", "version"],
        )
        drift = GaugeMetricFamily(
            "model_prediction_drift",
            "1 while the last completed hour drifted from the version's first hours, else 0.",
            labels=["deployment", "version"],
        )
        drift_p = GaugeMetricFamily(
            "model_prediction_drift_p_value",
            "Smaller p-value of the class-mix and confidence tests for the last completed hour.",
            labels=["deployment", "version"],
        )
        mgr = self.manager
        deployments = sorted(mgr.served_deployments())
        service = QualityService(self.db)
        for deployment_id in deployments:
            try:
                report = service.report(Scope(deployment_id=deployment_id), WINDOW)
            except Exception:  # quality must never take the whole scrape down
                log.exception("quality gauges for %s failed", deployment_id)
                continue
            for g in report.groups:
                labels = [deployment_id, g.group]
                for c in g.quality.per_class:
                    for name, value in (("precision", c.precision), ("recall", c.recall),
                                        ("f1", c.f1)):  # fmt: skip
                        if value is not None:
                            per_class[name].add_metric([*labels, c.label], value)
                if g.quality.macro_f1 is not None:
                    macro.add_metric(labels, g.quality.macro_f1)
                if g.coverage.coverage is not None:
                    coverage.add_metric(labels, g.coverage.coverage)
                if g.calibration.ece is not None:
                    ece.add_metric(labels, g.calibration.ece)
                verdict = g.drift.verdict if g.drift else None
                if verdict is not None and verdict.p_value is not None:
                    drift.add_metric(labels, 1.0 if verdict.alarm else 0.0)
                    drift_p.add_metric(labels, verdict.p_value)
        yield from (*per_class.values(), macro, coverage, ece, drift, drift_p)
