"""Statistics engine for A/B experiments: pure functions over sufficient statistics."""

from core.stats.bandit import apply_floor, epsilon_greedy_allocation, thompson_sampling_allocation
from core.stats.frequentist import (
    ComparisonResult,
    relative_lift_ci,
    relative_lift_se,
    stratified_comparison,
    two_proportion_z_test,
    welch_t_test,
)
from core.stats.multiple import holm_adjust, holm_reject
from core.stats.power import (
    RemainingSampleSize,
    achieved_power,
    achieved_power_binary,
    achieved_power_continuous,
    cohens_h,
    remaining_sample_size,
    required_sample_size_binary,
    required_sample_size_continuous,
)
from core.stats.relative import fieller_interval
from core.stats.sequential import (
    DEFAULT_TARGET_SAMPLE_SIZE,
    SequentialResult,
    always_valid_p_value,
    confidence_sequence_halfwidth,
    default_tau_squared,
    mixture_log_likelihood_ratio,
    optimal_tau_ratio,
    running_p_value,
    sequential_from_estimate,
    sequential_test,
)
from core.stats.srm import SrmResult, sample_ratio_mismatch
from core.stats.stratified import TwoArmEstimate, combine_strata
from core.stats.summary import BinaryStats, ContinuousStats, MetricStats

__all__ = [
    "DEFAULT_TARGET_SAMPLE_SIZE",
    "BinaryStats",
    "ComparisonResult",
    "ContinuousStats",
    "MetricStats",
    "RemainingSampleSize",
    "SequentialResult",
    "SrmResult",
    "TwoArmEstimate",
    "achieved_power",
    "achieved_power_binary",
    "achieved_power_continuous",
    "always_valid_p_value",
    "apply_floor",
    "cohens_h",
    "combine_strata",
    "confidence_sequence_halfwidth",
    "default_tau_squared",
    "epsilon_greedy_allocation",
    "fieller_interval",
    "holm_adjust",
    "holm_reject",
    "mixture_log_likelihood_ratio",
    "optimal_tau_ratio",
    "relative_lift_ci",
    "relative_lift_se",
    "remaining_sample_size",
    "required_sample_size_binary",
    "required_sample_size_continuous",
    "running_p_value",
    "sample_ratio_mismatch",
    "sequential_from_estimate",
    "sequential_test",
    "stratified_comparison",
    "thompson_sampling_allocation",
    "two_proportion_z_test",
    "welch_t_test",
]
