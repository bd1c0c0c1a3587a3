"""Holm-Bonferroni against statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from core.stats import holm_adjust, holm_reject


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("m", [1, 3, 40])
def test_holm_matches_statsmodels(seed: int, m: int) -> None:
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(0, 1, m - m // 2), rng.uniform(0, 0.01, m // 2)])
    rng.shuffle(p)
    # (statsmodels' multipletests runs gc.collect() on every call, so keep the calls few)
    for alpha in (0.01, 0.05):
        reject, adjusted, _, _ = multipletests(p, alpha=alpha, method="holm")
        np.testing.assert_allclose(holm_adjust(list(p)), adjusted, rtol=1e-9, atol=0)
        assert holm_reject(list(p), alpha) == [bool(r) for r in reject]


def test_holm_ties_boundaries_and_order() -> None:
    p = [0.01, 0.04, 0.01, 0.03, 1.0, 0.0]
    reject, adjusted, _, _ = multipletests(p, alpha=0.05, method="holm")
    assert holm_adjust(p) == pytest.approx(list(adjusted), rel=1e-12)
    assert holm_reject(p, 0.05) == list(reject)
    assert holm_adjust(p)[5] == 0.0 and holm_adjust(p)[4] == 1.0
    # a single test is not adjusted; nothing in, nothing out
    assert holm_adjust([0.2]) == [0.2]
    assert holm_adjust([]) == [] and holm_reject([], 0.05) == []


def test_holm_step_down_stops_at_first_failure() -> None:
    # 0.03 > 0.05/2 stops the procedure, so 0.04 <= 0.05/1 is NOT rejected.
    assert holm_reject([0.001, 0.03, 0.04], 0.05) == [True, False, False]
    assert holm_reject([0.001, 0.02, 0.04], 0.05) == [True, True, True]


@pytest.mark.parametrize("bad", [[0.1, float("nan")], [1.2], [-0.1]])
def test_invalid_p_values_raise(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        holm_adjust(bad)
