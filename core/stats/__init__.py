"""Statistics engine for A/B experiments: pure functions over sufficient statistics.

The names load on first use (PEP 562): the canary policy needs only the sequential tests,
and a command that lists deployments must not pay for importing scipy (about 1 s)."""

from __future__ import annotations

from core.lazy_exports import lazy_exports

_EXPORTS = {
    "BinaryStats": "core.stats.summary",
    "ComparisonResult": "core.stats.frequentist",
    "ContinuousStats": "core.stats.summary",
    "DEFAULT_TARGET_SAMPLE_SIZE": "core.stats.sequential",
    "MetricStats": "core.stats.summary",
    "RemainingSampleSize": "core.stats.power",
    "SequentialResult": "core.stats.sequential",
    "SrmResult": "core.stats.srm",
    "TwoArmEstimate": "core.stats.stratified",
    "achieved_power": "core.stats.power",
    "achieved_power_binary": "core.stats.power",
    "achieved_power_continuous": "core.stats.power",
    "always_valid_p_value": "core.stats.sequential",
    "apply_floor": "core.stats.bandit",
    "cohens_h": "core.stats.power",
    "combine_strata": "core.stats.stratified",
    "confidence_sequence_halfwidth": "core.stats.sequential",
    "default_tau_squared": "core.stats.sequential",
    "epsilon_greedy_allocation": "core.stats.bandit",
    "fieller_interval": "core.stats.relative",
    "holm_adjust": "core.stats.multiple",
    "holm_reject": "core.stats.multiple",
    "mixture_log_likelihood_ratio": "core.stats.sequential",
    "optimal_tau_ratio": "core.stats.sequential",
    "relative_lift_ci": "core.stats.frequentist",
    "relative_lift_se": "core.stats.frequentist",
    "remaining_sample_size": "core.stats.power",
    "required_sample_size_binary": "core.stats.power",
    "required_sample_size_continuous": "core.stats.power",
    "running_p_value": "core.stats.sequential",
    "sample_ratio_mismatch": "core.stats.srm",
    "sequential_from_estimate": "core.stats.sequential",
    "sequential_test": "core.stats.sequential",
    "stratified_comparison": "core.stats.frequentist",
    "thompson_sampling_allocation": "core.stats.bandit",
    "two_proportion_z_test": "core.stats.frequentist",
    "welch_t_test": "core.stats.frequentist",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
