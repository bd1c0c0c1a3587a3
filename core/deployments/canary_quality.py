"""The canary policy's quality checks: a class's recall or precision, a class's F1 and macro-F1,
judged from labelled feedback (per-arm confusion counts, summed in SQL by the quality rollup).

Each configured metric takes one equal share ``alpha / (3 + m)`` of the rollout's alpha beside
errors, latency and accuracy (Bonferroni, fixed before any data), so the policy's guarantee
stays: a canary within every margin is aborted with probability at most ``alpha`` over the
whole rollout, at any analysis frequency.

* ``recall.CLASS`` is the proportion of labelled items of that class the model got right, and
  ``precision.CLASS`` the proportion of labelled items predicted as that class that were right.
  Both are differences of two running Bernoulli means over a sub-population of the labelled
  requests, so the accuracy test applies as is: the normal-mixture confidence sequence of
  ``stable - canary`` (``difference_check``), H0 "the canary is at most ``quality_margin``
  worse". The labelled items of a class arrive in both arms at whatever rate; the running
  difference is still a martingale in information time, as for accuracy.
* ``f1.CLASS`` and ``macro_f1`` are not proportions: F1 = 2PR / (P + R) is a ratio of counts whose
  denominator is random. They get a union-bound construction instead of a test of their own.
  With budget ``a``, every arm's precision and recall of every class involved (K classes for
  macro-F1, one for f1.CLASS) gets its own one-sample normal-mixture confidence sequence at level
  ``a / (4 K)`` (2 arms x 2 rates x K). With probability at least ``1 - a`` all of them cover
  at every look at once (Ville's inequality for each, then the union bound). F1 is increasing in
  both P and R, so on that event each arm's F1 of class c lies in ``[F1(P_lo, R_lo), F1(P_hi,
  R_hi)]``, macro-F1 (the mean over the model's fixed label set) between the means of those
  ends, and the difference ``F1_stable - F1_canary`` between ``lo_s - hi_c`` and ``hi_s - lo_c``.
  The check says *worse* only when that whole interval lies above the margin, so under H0 it
  does so with probability at most ``a``. A rate with no data yet covers [0, 1], which also
  covers whatever value an undefined F1 is given. It is conservative (4K sequences, bounds
  combined at their worst ends): a large macro-F1 loss is caught, a small one is better judged
  by the recall of the class that matters.

The confidence sequences use plug-in (Laplace-smoothed) variances, the same large-sample
approximation as the policy's other checks; the seeded simulation (canary_simulation.py,
benchmarks/canary_sim.py) shows the false-abort rate this gives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from core.deployments.canary_evidence import MetricEvidence, difference_check
from core.quality.names import MACRO_F1, QualityMetricName
from core.stats.sequential import confidence_sequence_halfwidth

Confusion = Mapping[tuple[str, str], int]  # (true label, predicted class) -> labelled items


def class_counts(confusion: Confusion, label: str) -> tuple[int, int, int]:
    """(true positives, support, predicted) of one class."""
    tp = support = predicted = 0
    for (true, pred), n in confusion.items():
        if true == label:
            support += n
            tp += n if pred == label else 0
        if pred == label:
            predicted += n
    return tp, support, predicted


def _smoothed_variance(events: int, n: int) -> float:
    rate = (events + 1.0) / (n + 2.0)
    return rate * (1.0 - rate) / n


def proportion_bounds(k: int, n: int, *, tau: float, alpha: float) -> tuple[float, float]:
    """Always-valid bounds of one proportion (one-sample normal-mixture CS), clipped to [0, 1];
    [0, 1] without data."""
    if n <= 0:
        return 0.0, 1.0
    half = float(confidence_sequence_halfwidth(_smoothed_variance(k, n), tau * tau, alpha))
    p = k / n
    return max(0.0, p - half), min(1.0, p + half)


def f1_of(precision: float, recall: float) -> float:
    return 0.0 if precision + recall <= 0 else 2 * precision * recall / (precision + recall)


def f1_bounds(confusion: Confusion, label: str, *, tau: float, alpha: float):
    """(low, high, estimate) of one class's F1 when its P and R sequences each hold at
    ``alpha``; the estimate is None when the class was neither seen nor predicted."""
    tp, support, predicted = class_counts(confusion, label)
    p_lo, p_hi = proportion_bounds(tp, predicted, tau=tau, alpha=alpha)
    r_lo, r_hi = proportion_bounds(tp, support, tau=tau, alpha=alpha)
    den = support + predicted
    estimate = 2 * tp / den if den else None
    return f1_of(p_lo, r_lo), f1_of(p_hi, r_hi), estimate


def f1_difference_check(
    metric: QualityMetricName, labels: Sequence[str], stable: Confusion, canary: Confusion, *,
    margin: float, tau: float, alpha: float, min_n: int, previous_min_p: float = 1.0,
):  # fmt: skip
    """The union-bound check of ``F1_stable - F1_canary > margin`` (one class or macro)."""
    classes = list(labels) if metric.kind == MACRO_F1 else [metric.label or ""]
    n_s, n_c = sum(stable.values()), sum(canary.values())
    test = f"{metric.kind} bounds from per-class P/R confidence sequences, union bound"
    base = dict(metric=metric.name, test=test, margin=margin, alpha=alpha, n_stable=n_s,
                n_canary=n_c, min_p=previous_min_p)  # fmt: skip
    if not classes:
        return MetricEvidence(**base, outcome="skipped", detail="the label set is unknown")
    if min(n_s, n_c) < min_n:
        detail = f"needs {min_n} labelled per arm, has stable {n_s}, canary {n_c}"
        return MetricEvidence(**base, outcome="skipped", detail=detail)
    each = alpha / (4 * len(classes))
    arms = []
    for confusion in (stable, canary):
        bounds = [f1_bounds(confusion, c, tau=tau, alpha=each) for c in classes]
        present = [b[2] for b in bounds if b[2] is not None]
        arms.append((
            sum(b[0] for b in bounds) / len(classes),
            sum(b[1] for b in bounds) / len(classes),
            sum(present) / len(present) if present else None,
        ))  # fmt: skip
    (lo_s, hi_s, est_s), (lo_c, hi_c, est_c) = arms
    low, high = lo_s - hi_c, hi_s - lo_c
    diff = None if est_s is None or est_c is None else est_s - est_c
    outcome = "worse" if low > margin else "within" if high <= margin else "inconclusive"
    return MetricEvidence(
        **base, outcome=outcome, stable=est_s, canary=est_c, difference=diff, cs_low=low,
        cs_high=high, detail=f"{len(classes)} classes, {4 * len(classes)} sequences at {each:.2g}",
    )  # fmt: skip


def quality_checks(
    metrics: Sequence[QualityMetricName], labels: Sequence[str], stable: Confusion,
    canary: Confusion, *, margin: float, alpha: float, min_n: int,
    previous_min_p: Mapping[str, float],
) -> tuple:  # fmt: skip
    """One ``MetricEvidence`` per configured quality metric, each at level ``alpha``."""
    tau = max(margin, 0.01)
    checks = []
    for q in metrics:
        prev = previous_min_p.get(q.name, 1.0)
        if q.kind in ("recall", "precision"):
            label = q.label or ""
            tp_s, sup_s, pred_s = class_counts(stable, label)
            tp_c, sup_c, pred_c = class_counts(canary, label)
            n_s, n_c = (sup_s, sup_c) if q.kind == "recall" else (pred_s, pred_c)
            over = "labelled" if q.kind == "recall" else "predicted"
            checks.append(difference_check(
                q.name, f"{q.kind} difference over items {over} {label}, normal-mixture CS",
                (n_s, tp_s), (n_c, tp_c), margin=margin, tau=tau, alpha=alpha, min_n=min_n,
                lower_is_worse=True, previous_min_p=prev,
            ))  # fmt: skip
        else:
            checks.append(f1_difference_check(
                q, labels, stable, canary, margin=margin, tau=tau, alpha=alpha, min_n=min_n,
                previous_min_p=prev,
            ))  # fmt: skip
    return tuple(checks)
