"""Comparing two model versions metric by metric, in the seed's result shape."""

from __future__ import annotations

from typing import Any

from core.metric_direction import higher_is_better
from core.model_metadata import ModelMetadata
from core.quality.registration import per_class_differences


def percentage_improvement(a: float, b: float, higher_better: bool) -> float | None:
    """How much better b is than a, in percent of a; None when a is 0 (no baseline to scale)."""
    if a == 0:
        return None
    change = (b - a) / abs(a) * 100.0
    return change if higher_better else -change


def compare_metadata(a: ModelMetadata, b: ModelMetadata) -> dict[str, Any]:
    """``metric_differences[metric]`` holds both values, the difference (b - a), its absolute
    value, ``percentage_improvement`` (positive: b is better, direction-aware) and which is better.
    """
    differences: dict[str, dict[str, Any]] = {}
    for metric in sorted(set(a.metrics) | set(b.metrics)):
        va, vb = a.metrics.get(metric), b.metrics.get(metric)
        hib = higher_is_better(metric)
        entry: dict[str, Any] = {
            "model_a": va,
            "model_b": vb,
            "higher_is_better": hib,
            "difference": None,
            "absolute_difference": None,
            "percentage_improvement": None,
            "better": None,
        }
        if va is not None and vb is not None:
            entry["difference"] = vb - va
            entry["absolute_difference"] = abs(vb - va)
            entry["percentage_improvement"] = percentage_improvement(va, vb, hib)
            if va != vb:
                entry["better"] = "model_b" if (vb > va) == hib else "model_a"
        differences[metric] = entry
    return {
        "model_a": a.to_dict(),
        "model_b": b.to_dict(),
        "metric_differences": differences,
        # class -> precision/recall/f1 -> the entry above, when registration recorded them
        "per_class": per_class_differences(differences),
        "size_difference_bytes": b.file_size_bytes - a.file_size_bytes,
        "same_weights": a.checksum == b.checksum,
        "same_architecture": a.architecture == b.architecture,
    }
