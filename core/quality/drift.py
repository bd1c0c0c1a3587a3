"""Drift without labels: is this hour's predicted-class mix, or its confidence histogram,
different from the version's reference (its first hours in production)?

Each test is a chi-square test of homogeneity between the reference counts and the window's.
Looks are fixed, not continuous: one per completed clock hour, so however often /metrics is
scraped there are 24 looks a day, each with two tests. Bonferroni over the 48 (with a margin
of two for the approximation) gives a stated false-alarm rate: with no drift, the probability
of one or more alarms in a day is at most ``FALSE_ALARMS_PER_DAY`` whatever the dependence
between the looks (benchmarks/drift_sim.py measures it). Categories are pooled before
looking, from the reference alone, until every expected count is at least 5.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2

FALSE_ALARMS_PER_DAY = 0.01
LOOKS_PER_DAY = 24
TESTS_PER_LOOK = 2
# Half the Bonferroni share: at an alpha this small the chi-square approximation is slightly
# liberal (the full share measured 0.9-1.1 % a day in benchmarks/drift_sim.py), so the margin
# keeps the stated 1 % a bound rather than an average.
ALPHA_PER_TEST = FALSE_ALARMS_PER_DAY / (2 * LOOKS_PER_DAY * TESTS_PER_LOOK)
MIN_WINDOW = 50  # fewer predictions in an hour: no verdict
MIN_EXPECTED = 5.0


@dataclass(frozen=True)
class HomogeneityTest:
    statistic: float
    dof: int
    p_value: float


@dataclass(frozen=True)
class DriftVerdict:
    class_mix: HomogeneityTest | None
    confidence: HomogeneityTest | None
    alpha: float
    reference_n: int
    window_n: int
    alarm: bool
    reason: str  # why there is no verdict, or which test alarmed

    @property
    def p_value(self) -> float | None:
        """The smaller of the two tests' p-values (the drift score)."""
        ps = [t.p_value for t in (self.class_mix, self.confidence) if t is not None]
        return min(ps) if ps else None


def pooled_groups(
    reference: Sequence[int], window_n: int, min_expected: float = MIN_EXPECTED
) -> list[list[int]]:
    """Categories grouped so that each group's expected count is at least ``min_expected`` in
    both samples, judged from the reference's shares (decided before the window is seen)."""
    ref = np.asarray(reference, dtype=float)
    total = ref.sum()
    if total <= 0:
        return []
    smaller = min(total, float(window_n))
    need = min_expected / smaller  # the share a group needs
    order = [int(i) for i in np.argsort(ref / total, kind="stable")]
    groups: list[list[int]] = []
    pending: list[int] = []
    for i in order:  # ascending share: sparse categories accumulate into one group
        pending.append(i)
        if ref[pending].sum() / total >= need:
            groups.append(pending)
            pending = []
    if pending:
        if groups:
            groups[0].extend(pending)  # the smallest group absorbs the remainder
        else:
            groups.append(pending)
    return groups


def _chi_square(reference: Sequence[int], windows: np.ndarray) -> tuple[np.ndarray, int]:
    """(statistic per row of ``windows``, degrees of freedom); dof 0 when untestable."""
    groups = pooled_groups(reference, int(windows.sum(axis=1).min()))
    if len(groups) < 2:
        return np.zeros(windows.shape[0]), 0
    ref = np.array([np.asarray(reference, dtype=float)[g].sum() for g in groups])
    win = np.stack([windows[:, g].sum(axis=1) for g in groups], axis=1)
    r_ref, r_win = ref.sum(), win.sum(axis=1, keepdims=True)
    pooled = (ref + win) / (r_ref + r_win)
    e_ref, e_win = pooled * r_ref, pooled * r_win
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.nansum((ref - e_ref) ** 2 / e_ref + (win - e_win) ** 2 / e_win, axis=1)
    return stat, len(groups) - 1


def homogeneity_p_values(reference: Sequence[int], windows: np.ndarray) -> np.ndarray:
    """The chi-square homogeneity p-value of each row of ``windows`` against ``reference``;
    1.0 where fewer than two groups can be tested. Vectorised for simulations."""
    windows = np.atleast_2d(np.asarray(windows, dtype=float))
    stat, dof = _chi_square(reference, windows)
    return chi2.sf(stat, dof) if dof else np.ones(windows.shape[0])


def homogeneity_test(reference: Sequence[int], window: Sequence[int]) -> HomogeneityTest | None:
    stat, dof = _chi_square(reference, np.atleast_2d(np.asarray(window, dtype=float)))
    if not dof:
        return None
    return HomogeneityTest(float(stat[0]), dof, float(chi2.sf(stat[0], dof)))


def drift_verdict(
    reference_classes: Sequence[int],
    window_classes: Sequence[int],
    reference_confidence: Sequence[int],
    window_confidence: Sequence[int],
    *,
    alpha: float = ALPHA_PER_TEST,
    min_window: int = MIN_WINDOW,
) -> DriftVerdict:
    """Both tests for one look; ``alpha`` is per test (the Bonferroni share of the day's)."""
    ref_n, win_n = int(sum(reference_classes)), int(sum(window_classes))
    if ref_n == 0:
        return DriftVerdict(None, None, alpha, ref_n, win_n, False, "no reference yet")
    if win_n < min_window:
        return DriftVerdict(
            None, None, alpha, ref_n, win_n, False, f"fewer than {min_window} predictions"
        )
    mix = homogeneity_test(reference_classes, window_classes)
    conf = homogeneity_test(reference_confidence, window_confidence)
    alarmed = [
        name
        for name, test in (("class mix", mix), ("confidence", conf))
        if test is not None and test.p_value < alpha
    ]
    reason = f"{' and '.join(alarmed)} drifted" if alarmed else "no drift"
    return DriftVerdict(mix, conf, alpha, ref_n, win_n, bool(alarmed), reason)
