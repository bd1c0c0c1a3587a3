"""Per-class held-out metrics recorded at registration, as flat registry metrics
(``recall/owl``, ``precision/owl``, ``f1/owl``, ``macro_f1``), so ``registry compare`` shows a
version that trades owls for sparrows before it is deployed. The confusion counts themselves go
into the version's training config (``held_out_confusion``) for intervals later, and the
held-out predictions' class counts and confidence histogram (``held_out_reference``) are the
version's drift reference from registration on (core/quality/service.py). Both live in the
version's ``training_config`` JSON, so no schema change was needed."""

from __future__ import annotations

from collections.abc import Sequence

PER_CLASS = ("precision", "recall", "f1")


def per_class_metrics(
    labels: Sequence[str], confusion: Sequence[Sequence[int]]
) -> dict[str, float]:
    """Undefined rates (a class never predicted, or absent from the held-out set) are left out
    rather than recorded as 0."""
    if not confusion:
        return {}
    from core.quality.metrics import quality_from_confusion  # numpy: not for `registry list`

    q = quality_from_confusion(labels, confusion, draws=0)
    out: dict[str, float] = {}
    for c in q.per_class:
        for name in PER_CLASS:
            value = getattr(c, name)
            if value is not None:
                out[f"{name}/{c.label}"] = value
    if q.macro_f1 is not None:
        out["macro_f1"] = q.macro_f1
    return out


def per_class_differences(metric_differences: dict[str, dict]) -> dict[str, dict[str, dict]]:
    """``compare_models()['metric_differences']`` regrouped as class -> metric -> entry."""
    grouped: dict[str, dict[str, dict]] = {}
    for key, entry in metric_differences.items():
        name, _, label = key.partition("/")
        if label and name in PER_CLASS:
            grouped.setdefault(label, {})[name] = entry
    return grouped


def held_out_reference(
    labels: Sequence[str], confusion: Sequence[Sequence[int]], confidence_bins: Sequence[int]
) -> dict | None:
    """The drift reference stored with a version: its held-out predictions' class counts (the
    confusion's column sums) and confidence histogram. None without both."""
    if not confusion or not confidence_bins or len(confusion) != len(labels):
        return None
    predicted = {label: sum(int(row[j]) for row in confusion) for j, label in enumerate(labels)}
    if sum(predicted.values()) != sum(int(n) for n in confidence_bins):
        return None  # not the same predictions
    return {"predicted": predicted, "confidence_bins": [int(n) for n in confidence_bins]}
