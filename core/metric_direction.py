"""Whether a bigger value of a metric is good or bad; comparison and experiments both ask."""

from __future__ import annotations

_LOWER_IS_BETTER_EXACT = {"inference_time", "latency", "loss", "error_rate", "train_loss"}
_LOWER_IS_BETTER_SUFFIXES = ("_ms", "_seconds", "_time", "_latency", "_loss", "_error", "_bytes")


def higher_is_better(metric: str) -> bool:
    name = metric.lower()
    if name in _LOWER_IS_BETTER_EXACT or name.endswith(_LOWER_IS_BETTER_SUFFIXES):
        return False
    return not name.startswith(("latency", "error"))
