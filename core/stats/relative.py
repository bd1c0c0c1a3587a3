"""The relative lift ``L = m_t / m_c - 1`` by Fieller's method.

An interval for ``L`` is the set of values not rejected by the test of the linear contrast
``m_t - (1 + L) m_c = 0``, whose estimate has variance ``v_t + (1 + L)^2 v_c`` (``v`` being the
variances of the two mean estimates)::

    {L : (m_t - (1 + L) m_c)^2 <= k * (v_t + (1 + L)^2 * v_c)}

``k`` is the squared critical value of the absolute interval (``t^2`` or ``z^2`` for a
fixed-horizon interval, ``halfwidth^2 / V`` for a confidence sequence). Three consequences:

* coverage is that of the test of the contrast at the true ``L``, i.e. nominal, with no delta
  method (which under-covers when the control mean is noisy or the lift is large);
* at ``L = 0`` the condition is exactly "the absolute interval contains 0", so the relative
  and absolute intervals always agree on whether there is a difference, and on its sign;
* when the control mean is not distinguishable from 0 (``m_c^2 <= k v_c``) the set is
  unbounded: two rays or the whole line. It is reported as ``[floor, +inf)`` (its convex
  hull), or, when only one ray meets the parameter space, as that ray ``[low, +inf)``.

For a metric that cannot be negative (``nonnegative=True``: rates, latencies) the parameter
space is ``L >= -1``, and the interval is intersected with it, which keeps its coverage.
"""

from __future__ import annotations

import math

__all__ = ["fieller_interval"]


def fieller_interval(
    control_mean: float,
    control_variance: float,
    treatment_mean: float,
    treatment_variance: float,
    k: float,
    nonnegative: bool = False,
) -> tuple[float, float]:
    """Fieller interval for ``m_t / m_c - 1`` (see the module docstring); the control mean
    must be nonzero. Unbounded ends are +-inf (-1 for a nonnegative metric)."""
    if control_mean == 0.0:
        raise ValueError("the relative lift is undefined when the control mean is 0")
    if not (k >= 0.0 and control_variance >= 0.0 and treatment_variance >= 0.0):
        raise ValueError("k and the variances must be >= 0")
    floor = -1.0 if nonnegative and control_mean > 0.0 else -math.inf
    # (m_t - r m_c)^2 <= k (v_t + r^2 v_c)  <=>  a r^2 - 2 b r + c <= 0, with r = 1 + L.
    a = control_mean * control_mean - k * control_variance
    b = treatment_mean * control_mean
    c = treatment_mean * treatment_mean - k * treatment_variance
    if not math.isfinite(k) or a == 0.0:
        return floor, math.inf
    if a < 0.0:
        disc = b * b - a * c
        if disc < 0.0:
            return floor, math.inf
        # Outside the roots r1 <= r2; with a < 0, r2 = (b - sqrt) / a is the smaller.
        r1, r2 = (b + math.sqrt(disc)) / a, (b - math.sqrt(disc)) / a
        if floor > -math.inf and r1 < 0.0 <= r2:
            return max(r2 - 1.0, floor), math.inf  # the ray below 0 lies outside L >= -1
        return floor, math.inf
    disc = max(b * b - a * c, 0.0)  # >= 0 whenever a > 0; max() absorbs rounding
    root = math.sqrt(disc)
    # Citardauq form for the root that would otherwise cancel.
    if b >= 0.0:
        high = (b + root) / a
        low = c / (b + root) if b + root > 0.0 else (b - root) / a
    else:
        low = (b - root) / a
        high = c / (b - root) if b - root < 0.0 else (b + root) / a
    return max(low - 1.0, floor), high - 1.0
