"""Which numbers of an analysis stay valid when the allocation changes during the experiment
(by hand, or adaptively by a bandit), and which do not. Rendered into every analysis as its
``validity`` block, so a reader of the JSON does not need the README to know what to trust."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.experiments.config import ExperimentConfig
from core.experiments.models import AllocationChange
from core.stats import MetricStats

VALID = {
    "comparisons.*.absolute_difference, relative_lift, improvement_percent": (
        "estimated within allocation epochs and combined, so a drifting metric cannot turn a "
        "changed split into an effect"
    ),
    "comparisons.*.sequential (always_valid_p, confidence_sequence, "
    "relative_confidence_sequence)": (
        "the mSPRT runs on the combined estimate; valid at every look, also when a bandit "
        "chose the split from earlier data (within an epoch the split is fixed)"
    ),
    "comparisons.*.significant, winner, within_mde; recommendation": (
        "derived only from the always-valid sequence above"
    ),
    "srm": "expected counts use the allocation in force when each unit arrived",
}

NOT_VALID = {
    "variants.*.metrics.mean": (
        "each arm's raw mean over all epochs; under drift with a changed split the arms "
        "cover different periods, so do not compare them with each other"
    ),
    "comparisons.*.p_value, p_value_adjusted, difference_ci, relative_lift_ci": (
        "fixed-horizon: valid only at one look at a sample size fixed in advance, and not "
        "when a bandit set the split from the data"
    ),
    "power": (
        "a fixed-horizon design quantity (units needed for 80 % power at the MDE), not "
        "inference; it never drives the recommendation"
    ),
}


def validity_block(
    config: ExperimentConfig,
    history: Sequence[AllocationChange],
    primary_epochs: Mapping[str, Sequence[MetricStats]],
) -> dict[str, Any]:
    epochs = max((len(e) for e in primary_epochs.values()), default=1)
    adaptive = config.is_bandit or any(h.source == "bandit" for h in history)
    return {
        "allocation_changes": max(len(history) - 1, 0),
        "allocation_epochs_with_data": epochs,
        "adaptive_allocation": adaptive,
        "estimator": (
            "within allocation epochs, combined with inverse-variance weights"
            if epochs > 1
            else "difference of means (one allocation epoch)"
        ),
        "valid_under_reallocation": dict(VALID),
        "not_valid_under_reallocation": dict(NOT_VALID),
    }
