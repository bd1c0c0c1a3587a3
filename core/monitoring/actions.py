"""Automated actions from the seed: roll back a deployment whose error rate passes a threshold.

The error rate is the current version's own (its arm within the deployment) over the tracker's
rolling window, and needs a minimum number of requests, so one failure in three requests never
rolls anything back. The action, with the numbers that triggered it, goes to the audit log (as
the rollback) and the event stream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core import events
from core.errors import NightScanError

if TYPE_CHECKING:
    from core.monitoring.serving_view import ServingView

log = logging.getLogger(__name__)


@dataclass
class ErrorRateRollback:
    threshold_percent: float = 10.0
    window_seconds: float = 60.0
    min_requests: int = 20
    # (deployment, version) pairs whose rollback was impossible: reported once, not every tick.
    given_up: set[tuple[str, str]] = field(default_factory=set)

    def evaluate(self, manager: ServingView) -> list[str]:
        """Roll back every deployment over the threshold; returns their ids."""
        rolled = []
        served = [(d.config, d.model_ref) for d in manager.served_deployments().values()]
        for config, model_ref in served:
            if not config.rollback_on_error or (config.deployment_id, model_ref) in self.given_up:
                continue
            m = manager.current_metrics(config.deployment_id, model_ref, self.window_seconds)
            if m is None or m.requests_in_window < self.min_requests:
                continue
            if m.error_rate <= self.threshold_percent:
                continue
            evidence = {
                "error_rate_percent": round(m.error_rate, 3),
                "threshold_percent": self.threshold_percent,
                "requests": m.requests_in_window,
                "errors": m.errors_in_window,
                "window_seconds": self.window_seconds,
                "model_version": model_ref,
            }
            reason = (
                f"error rate {m.error_rate:.1f}% over {m.requests_in_window} requests "
                f"> {self.threshold_percent:g}%"
            )
            try:
                manager.rollback_deployment(
                    config.deployment_id,
                    reason,
                    failed=True,
                    actor="auto-rollback",
                    evidence=evidence,
                )
                rolled.append(config.deployment_id)
            except NightScanError as exc:
                events.emit(
                    "deployment.rollback_failed",
                    f"{config.deployment_id}: {reason}, but no rollback is possible: {exc}",
                    source=config.deployment_id,
                    severity="critical",
                    data=evidence,
                )
                self.given_up.add((config.deployment_id, model_ref))
        return rolled
