"""Names of quality metrics computed from labelled feedback, spelled alike everywhere:
``recall.CLASS``, ``precision.CLASS``, ``f1.CLASS`` and ``macro_f1`` (experiments, canaries)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core.errors import ValidationError

PER_CLASS_KINDS = ("recall", "precision", "f1")
MACRO_F1 = "macro_f1"


@dataclass(frozen=True)
class QualityMetricName:
    kind: str  # recall, precision, f1 or macro_f1
    label: str | None = None  # the class, for the per-class kinds

    @property
    def name(self) -> str:
        return self.kind if self.label is None else f"{self.kind}.{self.label}"


def parse_quality_metric(name: str) -> QualityMetricName | None:
    """The parsed name, or None when ``name`` is not a quality metric."""
    if not isinstance(name, str):
        return None
    if name.lower() == MACRO_F1:
        return QualityMetricName(MACRO_F1)
    kind, dot, label = name.partition(".")
    if dot and kind.lower() in PER_CLASS_KINDS and label.strip():
        return QualityMetricName(kind.lower(), label)
    return None


def check_quality_metrics(names: Iterable[str], what: str) -> tuple[QualityMetricName, ...]:
    """Every name parsed, or a ValidationError naming the ones that are not quality metrics."""
    parsed, bad = [], []
    for name in names:
        q = parse_quality_metric(name)
        if q is None:
            bad.append(repr(name))
        else:
            parsed.append(q)
    if bad:
        raise ValidationError(
            f"{what}: unknown quality metric {', '.join(bad)}; expected recall.CLASS, "
            f"precision.CLASS, f1.CLASS or macro_f1"
        )
    if len({q.name for q in parsed}) != len(parsed):
        raise ValidationError(f"{what}: a quality metric is listed twice")
    return tuple(parsed)


def check_classes(metrics: Iterable[QualityMetricName], labels: Iterable[str], what: str) -> None:
    """A ValidationError for a per-class metric whose class the model does not know."""
    known = list(labels)
    unknown = [q.name for q in metrics if q.label is not None and q.label not in known]
    if unknown and known:
        raise ValidationError(
            f"{what}: unknown class in {', '.join(unknown)}; the model's classes are "
            f"{', '.join(known)}"
        )
