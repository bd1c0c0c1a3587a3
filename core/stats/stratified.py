"""A difference of means estimated within strata (allocation epochs) and combined.

When the allocation changes during an experiment (by hand or by a bandit) while the metric
drifts, pooling every unit compares a control sampled mostly in one period with a treatment
sampled mostly in another (Simpson's paradox). Within one allocation epoch both arms sample the
same period, so the within-epoch difference ``d_e`` is unbiased for the effect. Epochs are
combined with inverse-variance weights::

    theta = sum_e w_e d_e / sum_e w_e,     w_e = 1 / (s2_e * (1/n_ce + 1/n_te))
    Var(theta) = sum_e w_e^2 V_e / (sum_e w_e)^2,    V_e = var_ce/n_ce + var_te/n_te

``s2_e`` is the variance of all units of the epoch, both arms together, so a weight cannot lean
towards the arm that happened to vary less; ``V_e`` is the unpooled (Welch / Wald) variance.
With ``w_e ~ 1/V_e``, ``theta / Var(theta)`` is the sum of the per-epoch scores ``d_e / V_e``,
a martingale in information time ``1 / Var(theta)`` under a common effect: what the
normal-mixture mSPRT in :mod:`core.stats.sequential` needs, so it runs on the combined
statistic unchanged. The weights only use counts and the arm-symmetric spread, never which arm
did better. With one stratum every quantity is exactly the unstratified one.

The same weights give the control and treatment means (``control_mean``, ``treatment_mean``)
that the relative lift is measured against, with the variances of those weighted means.
Degrees of freedom are Welch-Satterthwaite over every (epoch, arm) term.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from core.stats.summary import BinaryStats, ContinuousStats

__all__ = ["TwoArmEstimate", "combine_strata"]

Arm = ContinuousStats | BinaryStats


@dataclass(frozen=True)
class TwoArmEstimate:
    """Means of control and treatment and the variances of those mean estimates.

    ``df`` is the Welch-Satterthwaite degrees of freedom (``None`` when it is undefined: a
    zero total variance). ``strata_used`` / ``strata_skipped`` and ``units_skipped`` count the
    epochs that could not contribute (an arm with fewer than 2 units, or no variation at all).
    """

    control_mean: float
    treatment_mean: float
    control_variance: float
    treatment_variance: float
    control_n: int
    treatment_n: int
    df: float | None
    strata_used: int = 1
    strata_skipped: int = 0
    units_skipped: int = 0

    @property
    def difference(self) -> float:
        return self.treatment_mean - self.control_mean

    @property
    def variance(self) -> float:
        return self.control_variance + self.treatment_variance

    @property
    def n_total(self) -> int:
        return self.control_n + self.treatment_n

    @classmethod
    def from_arms(cls, control: Arm, treatment: Arm) -> TwoArmEstimate:
        """One stratum: the plain means, ``var/n`` and Welch's degrees of freedom."""
        a = control.variance / control.n if control.n else 0.0
        b = treatment.variance / treatment.n if treatment.n else 0.0
        return cls(
            control_mean=control.mean,
            treatment_mean=treatment.mean,
            control_variance=a,
            treatment_variance=b,
            control_n=control.n,
            treatment_n=treatment.n,
            df=_satterthwaite([(a, control.n), (b, treatment.n)]),
        )


def _satterthwaite(terms: Sequence[tuple[float, int]]) -> float | None:
    total = sum(t for t, _ in terms)
    if not total > 0.0 or any(n < 2 for t, n in terms if t > 0):
        return None
    # Scaled by the total so tiny variances cannot underflow.
    return 1.0 / sum((t / total) ** 2 / (n - 1) for t, n in terms if t > 0)


def _pooled_variance(control: Arm, treatment: Arm) -> float:
    if isinstance(control, BinaryStats) and isinstance(treatment, BinaryStats):
        return control.merge(treatment).variance
    if isinstance(control, ContinuousStats) and isinstance(treatment, ContinuousStats):
        return control.merge(treatment).variance
    raise TypeError("control and treatment must both be ContinuousStats or BinaryStats")


def combine_strata(strata: Sequence[tuple[Arm, Arm]]) -> TwoArmEstimate | None:
    """Combine ``(control, treatment)`` summaries of each stratum (see the module docstring).

    A stratum contributes when both arms hold at least 2 units and its units vary; ``None``
    when no stratum does.
    """
    weights: list[float] = []
    used: list[tuple[Arm, Arm]] = []
    skipped = units_skipped = 0
    for control, treatment in strata:
        if control.n == 0 and treatment.n == 0:
            continue
        spread = _pooled_variance(control, treatment) if min(control.n, treatment.n) >= 2 else 0.0
        if not spread > 0.0:
            skipped += 1
            units_skipped += control.n + treatment.n
            continue
        weights.append(1.0 / (spread * (1.0 / control.n + 1.0 / treatment.n)))
        used.append((control, treatment))
    if not used:
        return None
    total = math.fsum(weights)
    m_c = m_t = v_c = v_t = 0.0
    terms: list[tuple[float, int]] = []
    for w, (control, treatment) in zip(weights, used, strict=True):
        share = w / total
        m_c += share * control.mean
        m_t += share * treatment.mean
        a = share * share * control.variance / control.n
        b = share * share * treatment.variance / treatment.n
        v_c += a
        v_t += b
        terms += [(a, control.n), (b, treatment.n)]
    return TwoArmEstimate(
        control_mean=m_c,
        treatment_mean=m_t,
        control_variance=v_c,
        treatment_variance=v_t,
        control_n=sum(c.n for c, _ in used),
        treatment_n=sum(t.n for _, t in used),
        df=_satterthwaite(terms),
        strata_used=len(used),
        strata_skipped=skipped,
        units_skipped=units_skipped,
    )
