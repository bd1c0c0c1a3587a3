"""The pure quality statistics against scikit-learn and statsmodels on random labelled data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)
from statsmodels.stats.proportion import proportion_confint

from core.quality.calibration import BinCounts, calibration_from_bins
from core.quality.metrics import quality_from_confusion, wilson

LABELS = ["owl", "hawk", "sparrow", "robin", "nightjar"]


def _random_labels(rng: np.random.Generator, n: int, skill: float):
    """True labels with a skewed mix; predictions right with probability ``skill``. The last
    class is never predicted, so its precision is undefined."""
    y_true = rng.choice(len(LABELS), size=n, p=[0.1, 0.15, 0.5, 0.2, 0.05])
    wrong = rng.choice(len(LABELS) - 1, size=n)
    y_pred = np.where(rng.random(n) < skill, y_true, wrong)
    y_pred = np.where(y_pred == len(LABELS) - 1, 0, y_pred)
    return y_true, y_pred


@pytest.mark.parametrize("seed", range(5))
def test_per_class_and_averaged_metrics_match_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true, y_pred = _random_labels(rng, int(rng.integers(50, 3000)), rng.uniform(0.3, 0.95))
    ids = list(range(len(LABELS)))
    matrix = confusion_matrix(y_true, y_pred, labels=ids)
    q = quality_from_confusion(LABELS, matrix.tolist(), draws=200)

    assert np.array_equal(np.array(q.confusion), matrix)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=ids, zero_division=np.nan
    )
    for i, c in enumerate(q.per_class):
        assert c.support == support[i]
        for ours, theirs in ((c.precision, precision[i]), (c.recall, recall[i])):
            if np.isnan(theirs):
                assert ours is None
            else:
                assert ours == pytest.approx(theirs)
        assert c.f1 == pytest.approx(f1[i])  # sklearn: 0 when TP = 0 and the class occurs
    assert q.per_class[-1].precision is None  # the never-predicted class
    assert q.accuracy == pytest.approx(accuracy_score(y_true, y_pred))
    assert q.micro_f1 == pytest.approx(f1_score(y_true, y_pred, labels=ids, average="micro"))
    present = sorted(set(y_true) | set(y_pred))
    assert q.macro_f1 == pytest.approx(f1_score(y_true, y_pred, labels=present, average="macro"))


def test_wilson_matches_statsmodels() -> None:
    for k, n in [(0, 10), (3, 10), (10, 10), (517, 1000), (1, 3)]:
        low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
        ci = wilson(k, n)
        assert (ci.low, ci.high) == pytest.approx((low, high), abs=1e-12)
    assert wilson(0, 0) is None
    with pytest.raises(ValueError):
        wilson(4, 3)


def test_every_interval_contains_its_estimate() -> None:
    rng = np.random.default_rng(7)
    y_true, y_pred = _random_labels(rng, 800, 0.7)
    q = quality_from_confusion(LABELS, confusion_matrix(y_true, y_pred, labels=range(5)))
    for c in q.per_class:
        for value, ci in ((c.recall, c.recall_ci), (c.precision, c.precision_ci), (c.f1, c.f1_ci)):
            if value is not None:
                assert ci.low <= value <= ci.high
    assert q.macro_f1_ci.low <= q.macro_f1 <= q.macro_f1_ci.high
    assert q.accuracy_ci.low <= q.accuracy <= q.accuracy_ci.high


def test_bootstrap_f1_interval_covers_the_true_f1_at_its_level() -> None:
    """Seeded coverage simulation: the population F1 of a class is known exactly from the
    cell probabilities; the 95 % interval must contain it in about 95 % of samples (the
    bound is a 99.9 % binomial interval around 0.95 for this many repetitions)."""
    rng = np.random.default_rng(11)
    cells = rng.dirichlet(np.ones(9) * 0.5) * 0.4 + np.eye(3).ravel() * 0.6 / 3
    cells /= cells.sum()
    p = cells.reshape(3, 3)
    true_f1 = 2 * p[0, 0] / (p[0].sum() + p[:, 0].sum())
    reps, covered = 300, 0
    for r in range(reps):
        sample = rng.multinomial(400, cells).reshape(3, 3)
        ci = quality_from_confusion(["a", "b", "c"], sample, draws=400, seed=r).per_class[0].f1_ci
        covered += ci.low <= true_f1 <= ci.high
    half = 3.29 * np.sqrt(0.95 * 0.05 / reps)
    assert covered / reps >= 0.95 - half


def test_calibration_bins_and_ece_match_scikit_learn() -> None:
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(3)
    conf = rng.beta(5, 2, size=5000)
    correct = rng.random(5000) < conf**1.5  # over-confident
    bins = np.minimum((conf * 10).astype(int), 9)
    counts = [
        BinCounts(
            int((bins == b).sum()), float(conf[bins == b].sum()), int(correct[bins == b].sum())
        )
        for b in range(10)
    ]
    cal = calibration_from_bins(counts)
    prob_true, prob_pred = calibration_curve(correct, conf, n_bins=10, strategy="uniform")
    ours = [b for b in cal.bins if b.n]
    assert [b.accuracy for b in ours] == pytest.approx(prob_true.tolist())
    assert [b.mean_confidence for b in ours] == pytest.approx(prob_pred.tolist())
    expected_ece = sum(
        (bins == b).mean() * abs(correct[bins == b].mean() - conf[bins == b].mean())
        for b in range(10)
        if (bins == b).any()
    )
    assert cal.ece == pytest.approx(expected_ece)
    assert cal.ece > 0.05  # the simulated over-confidence shows
    assert calibration_from_bins([BinCounts(0, 0.0, 0)] * 10).ece is None


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="2x2"):
        quality_from_confusion(["a", "b"], [[1, 2, 3]])
    with pytest.raises(ValueError, match="negative"):
        quality_from_confusion(["a", "b"], [[1, -2], [0, 1]])
    with pytest.raises(ValueError):
        calibration_from_bins([BinCounts(2, 1.0, 3)])


@pytest.mark.parametrize("seed", range(3))
def test_f1_comparison_matches_scikit_learn_and_the_quality_report(seed: int) -> None:
    from core.quality.metrics import f1_comparison

    rng = np.random.default_rng(100 + seed)
    ids = list(range(len(LABELS)))
    arms = [_random_labels(rng, 1500, skill) for skill in (0.8, 0.6)]
    control, treatment = (confusion_matrix(t, p, labels=ids).tolist() for t, p in arms)
    macro = f1_comparison(LABELS, control, treatment, draws=400)
    expected = [f1_score(t, p, average="macro") for t, p in arms]  # over the classes present
    assert (macro.control, macro.treatment) == pytest.approx(expected)
    assert macro.difference == pytest.approx(expected[1] - expected[0])
    assert macro.relative_lift == pytest.approx(expected[1] / expected[0] - 1)
    report = quality_from_confusion(LABELS, control, draws=400)
    assert macro.control_ci == report.macro_f1_ci  # the same numbers as `nightscan quality`
    assert macro.difference_ci.low <= macro.difference <= macro.difference_ci.high
    assert macro.difference_ci.high < 0  # 0.8 vs 0.6 skill on 1500 items: clearly worse
    owl = f1_comparison(LABELS, control, treatment, label="owl", draws=400)
    per_class = [f1_score(t, p, labels=[0], average=None)[0] for t, p in arms]
    assert (owl.control, owl.treatment) == pytest.approx(per_class)
    assert owl.relative_lift_ci.low <= owl.relative_lift <= owl.relative_lift_ci.high


def test_the_f1_difference_interval_covers_at_its_level() -> None:
    """Two arms with the same skill: the 90 % bootstrap interval of the macro-F1 difference
    contains the true difference (0) in about 90 % of seeded repetitions."""
    from core.quality.metrics import f1_comparison

    rng = np.random.default_rng(7)
    ids = list(range(len(LABELS)))
    hits, reps = 0, 150
    for i in range(reps):
        arms = [_random_labels(rng, 800, 0.7) for _ in range(2)]
        c, t = (confusion_matrix(a, b, labels=ids).tolist() for a, b in arms)
        ci = f1_comparison(LABELS, c, t, confidence=0.9, draws=300, seed=i).difference_ci
        hits += ci.low <= 0 <= ci.high
    assert 0.8 <= hits / reps <= 0.97, hits
