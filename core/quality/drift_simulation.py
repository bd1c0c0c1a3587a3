"""Seeded simulations of the drift test: how often it alarms when nothing changed (the false
alarms per day it promises to keep under ``FALSE_ALARMS_PER_DAY``) and when something did.

Each simulated version draws its own reference (its first hours) and then one day of hourly
windows from the same distribution, or from a shifted one; a day alarms when any of its 24
looks does. Vectorised: a look is a row, so thousands of days take well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.quality.drift import ALPHA_PER_TEST, LOOKS_PER_DAY, homogeneity_p_values

CLASS_MIX = (0.1, 0.2, 0.5, 0.2)
CONFIDENCE_MIX = (0.0, 0.0, 0.01, 0.04, 0.08, 0.12, 0.15, 0.2, 0.2, 0.2)


@dataclass(frozen=True)
class SimulationResult:
    days: int
    alarm_days: int
    alarm_looks: int
    looks: int

    @property
    def rate_per_day(self) -> float:
        return self.alarm_days / self.days


def _shift(mix: tuple[float, ...], amount: float) -> np.ndarray:
    """Move ``amount`` of probability from the most common category to the rarest."""
    p = np.array(mix, dtype=float)
    p[int(p.argmax())] -= amount
    p[int(np.where(p > 0, p, np.inf).argmin())] += amount
    return p


def simulate_days(
    days: int,
    *,
    reference_n: int = 1500,
    window_n: int = 500,
    class_shift: float = 0.0,
    seed: int = 0,
    alpha: float = ALPHA_PER_TEST,
) -> SimulationResult:
    """``days`` independent versions, one day each; ``class_shift`` > 0 drifts the class mix."""
    rng = np.random.default_rng(seed)
    classes, confidence = np.array(CLASS_MIX), np.array(CONFIDENCE_MIX)
    drifted = _shift(CLASS_MIX, class_shift) if class_shift else classes
    alarm_days = alarm_looks = 0
    for _ in range(days):
        ref_classes = rng.multinomial(reference_n, classes)
        ref_conf = rng.multinomial(reference_n, confidence)
        win_classes = rng.multinomial(window_n, drifted, size=LOOKS_PER_DAY)
        win_conf = rng.multinomial(window_n, confidence, size=LOOKS_PER_DAY)
        alarms = (homogeneity_p_values(ref_classes, win_classes) < alpha) | (
            homogeneity_p_values(ref_conf, win_conf) < alpha
        )
        alarm_looks += int(alarms.sum())
        alarm_days += bool(alarms.any())
    return SimulationResult(days, alarm_days, alarm_looks, days * LOOKS_PER_DAY)
