"""Sample ratio mismatch against scipy.stats.chisquare, plus conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from core.stats import sample_ratio_mismatch


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("weights", [(1, 1), (0.5, 0.3, 0.2), (10, 20, 30, 40)])
def test_srm_matches_scipy(seed: int, weights: tuple[float, ...]) -> None:
    rng = np.random.default_rng(seed)
    w = np.asarray(weights, dtype=float)
    counts = rng.multinomial(5000, w / w.sum())
    names = [f"v{i}" for i in range(len(w))]
    observed = dict(zip(names, counts.tolist(), strict=True))
    r = sample_ratio_mismatch(observed, dict(zip(names, weights, strict=True)))
    expected = counts.sum() * w / w.sum()
    ref = stats.chisquare(counts, expected)
    assert r.chi2 == pytest.approx(ref.statistic, rel=1e-9)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert r.df == len(w) - 1
    assert list(r.expected_counts.values()) == pytest.approx(list(expected), rel=1e-12)
    assert r.observed_counts == observed
    assert r.mismatch == (ref.pvalue < 0.001)


def test_srm_detects_a_broken_split() -> None:
    r = sample_ratio_mismatch({"control": 5000, "treatment": 5400}, {"control": 1, "treatment": 1})
    assert r.mismatch and r.p_value < 0.001
    ok = sample_ratio_mismatch({"control": 5000, "treatment": 5050}, {"control": 1, "treatment": 1})
    assert not ok.mismatch
    # a looser threshold flags the milder imbalance
    assert sample_ratio_mismatch({"a": 5000, "b": 5150}, {"a": 1, "b": 1}, threshold=0.2).mismatch


def test_srm_weights_are_normalised() -> None:
    a = sample_ratio_mismatch({"a": 300, "b": 700}, {"a": 3, "b": 7})
    b = sample_ratio_mismatch({"a": 300, "b": 700}, {"a": 0.3, "b": 0.7})
    assert a.chi2 == pytest.approx(0.0, abs=1e-12) and a.p_value == pytest.approx(1.0)
    assert (a.chi2, a.p_value) == pytest.approx((b.chi2, b.p_value), abs=1e-12)


def test_srm_zero_total_is_not_a_mismatch() -> None:
    r = sample_ratio_mismatch({"a": 0, "b": 0}, {"a": 1, "b": 1})
    assert (r.chi2, r.p_value, r.mismatch) == (0.0, 1.0, False)


def test_srm_observations_in_zero_weight_variant_is_a_mismatch() -> None:
    r = sample_ratio_mismatch({"a": 500, "b": 500, "off": 3}, {"a": 1, "b": 1, "off": 0})
    assert r.mismatch and r.p_value == 0.0 and r.chi2 == math.inf
    # a variant missing from the weights counts as weight 0
    assert sample_ratio_mismatch({"a": 10, "b": 10, "x": 1}, {"a": 1, "b": 1}).mismatch


def test_srm_zero_weight_without_observations_is_ignored() -> None:
    r = sample_ratio_mismatch({"a": 480, "b": 520, "off": 0}, {"a": 1, "b": 1, "off": 0})
    ref = stats.chisquare([480, 520])
    assert r.df == 1 and r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    single = sample_ratio_mismatch({"a": 480}, {"a": 1})
    assert (single.df, single.p_value, single.mismatch) == (0, 1.0, False)


@pytest.mark.parametrize(
    ("observed", "weights"),
    [({"a": -1, "b": 2}, {"a": 1, "b": 1}), ({"a": 1}, {"a": 0}), ({"a": 1}, {"a": -1})],
)
def test_srm_invalid_inputs_raise(observed: dict[str, int], weights: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        sample_ratio_mismatch(observed, weights)
