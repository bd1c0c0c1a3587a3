"""Model quality drawn from a report dict (``backend.quality()``): the confusion matrix as a
heat map, per-class precision/recall/F1 bars with their intervals, and the calibration curve.
Pure functions from data to Rich renderables, so they are tested without an app."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

BAR = 24
DARK, HOT_RIGHT, HOT_WRONG = (30, 30, 38), (46, 160, 67), (200, 60, 50)


def _pct(value: float | None) -> str:
    return "  -  " if value is None else f"{value:6.1%}"


def _blend(share: float, hot: tuple[int, int, int]) -> str:
    r, g, b = (int(d + (h - d) * share) for d, h in zip(DARK, hot, strict=True))
    return f"rgb({r},{g},{b})"


def confusion_heatmap(quality: dict[str, Any]) -> Table:
    """Rows are true labels; a cell's colour is its share of the row (so the diagonal is the
    class's recall): green on the diagonal, red off it, dark when empty."""
    labels, matrix = quality["labels"], quality["confusion"]
    table = Table(title="confusion: rows true, columns predicted", title_justify="left",
                  caption="shade = share of the row", caption_justify="left", box=None,
                  padding=(0, 1))  # fmt: skip
    table.add_column("true \\ predicted", style="bold", no_wrap=True)
    for label in labels:
        table.add_column(label[:10], justify="right", no_wrap=True)
    for i, (label, row) in enumerate(zip(labels, matrix, strict=True)):
        total = sum(row)
        cells = []
        for j, n in enumerate(row):
            share = n / total if total else 0.0
            colour = _blend(share, HOT_RIGHT if i == j else HOT_WRONG)
            cells.append(Text(f"{n:>6,}", style=f"bold white on {colour}"))
        table.add_row(label, *cells)
    return table


def _bar(value: float | None, ci: dict[str, float] | None, style: str) -> Text:
    """A bar of ``value`` with its interval: ``█`` up to the lower bound, ``▓`` from there to
    the estimate, ``━`` from the estimate to the upper bound."""
    if value is None:
        return Text("no data".ljust(BAR), style="dim")
    filled = round(value * BAR)
    lo = round(ci["low"] * BAR) if ci else filled
    hi = round(ci["high"] * BAR) if ci else filled
    text = Text()
    for k in range(BAR):
        if k < filled:
            text.append("█" if k < lo else "▓", style)
        else:
            text.append("━" if k < hi else "·", "dim")
    return text


def class_bars(quality: dict[str, Any]) -> Table:
    table = Table(title="per class", title_justify="left", box=None, padding=(0, 1),
                  caption="95 % interval: from the end of █ to the end of ━ (▓ up to the estimate)",
                  caption_justify="left")  # fmt: skip
    table.add_column("class", style="bold", no_wrap=True)
    table.add_column("n", justify="right")
    for name in ("precision", "recall", "F1"):
        table.add_column(name, no_wrap=True)
    for c in quality["per_class"]:
        table.add_row(
            c["label"],
            f"{c['support']:,}",
            *(
                Text.assemble(_bar(c[k], c[f"{k}_ci"], style), f" {_pct(c[k])}")
                for k, style in (("precision", "cyan"), ("recall", "magenta"), ("f1", "green"))
            ),
        )
    return table


def calibration_curve(calibration: dict[str, Any]) -> Table:
    """One row per confidence bin: the bar is the observed accuracy, ``▲`` the mean confidence
    (a calibrated model has the bar end at the marker)."""
    ece = calibration.get("ece")
    table = Table(title="calibration: bar = accuracy, ▲ = mean confidence", title_justify="left",
                  caption=f"ECE {ece:.1%}" if ece is not None else None, caption_justify="left",
                  box=None, padding=(0, 1))  # fmt: skip
    table.add_column("confidence", no_wrap=True)
    table.add_column("accuracy", no_wrap=True)
    table.add_column("n", justify="right")
    for b in calibration["bins"]:
        span = f"{b['low']:.1f}-{b['high']:.1f}"
        if not b["n"]:
            table.add_row(span, Text("·" * BAR, style="dim"), "0")
            continue
        filled = round(b["accuracy"] * BAR)
        mark = min(BAR - 1, int(b["mean_confidence"] * BAR))
        bar = Text()
        for k in range(BAR):
            if k == mark:
                bar.append("▲", "bold red")
            else:
                bar.append("█" if k < filled else "·", "yellow" if k < filled else "dim")
        table.add_row(span, Text.assemble(bar, f" {_pct(b['accuracy'])}"), f"{b['n']:,}")
    return table


def summary(group: dict[str, Any]) -> Text:
    q, cov = group["quality"], group["coverage"]
    text = Text.assemble(
        (group["group"], "bold"),
        f"   accuracy {_pct(q['accuracy']).strip()}   macro-F1 {_pct(q['macro_f1']).strip()}",
        f"   labelled {cov['labelled']:,} of {cov['predictions']:,}"
        f" ({_pct(cov['coverage']).strip()})",
    )
    drift = group.get("drift") or {}
    verdict = drift.get("verdict")
    if verdict:
        text.append(f"   drift: {verdict['reason']}", "bold red" if verdict["alarm"] else "green")
        if drift.get("reference"):
            text.append(f" (vs {drift['reference']})", "dim")
    return text


def render_group(group: dict[str, Any]) -> Group:
    return Group(
        summary(group),
        Text(""),
        confusion_heatmap(group["quality"]),
        Text(""),
        class_bars(group["quality"]),
        Text(""),
        calibration_curve(group["calibration"]),
    )
