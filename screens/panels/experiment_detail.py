"""The experiment detail: progress, traffic split and SRM, the metric table, recommendation,
power, and the allocation over time. Rendered from ``core.experiments.analysis_view.AnalysisView``
(the typed view of ``analyze_experiment``'s dict), as the CLI's ``experiment analyze`` is."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from core.experiments.analysis_view import AnalysisView, Comparison
from screens import fmt
from screens.tones import Tones

SPARK = "▁▂▃▄▅▆▇█"
ACTIONS = {
    "keep_running": ("KEEP RUNNING", "primary"),
    "stop_winner": ("STOP · WINNER", "good"),
    "stop_no_difference": ("STOP · NO DIFFERENCE", "warn"),
    "invalid": ("INVALID · DO NOT TRUST", "bad"),
}


def spark(values: list[float], low: float = 0.0, high: float = 100.0) -> str:
    span = (high - low) or 1.0
    return "".join(SPARK[min(int((v - low) / span * 7.999), 7)] for v in values)


def _mean(value: float | None, binary: bool) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.2f}%" if binary else f"{value:.4g}"


def _interval(ci: tuple[float | None, float | None] | None, scale: float = 100.0) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "[−∞, ∞]" if ci else ""
    return f"[{ci[0] * scale:+.1f}, {ci[1] * scale:+.1f}]"


def _section(title: str) -> Text:
    return Text(title, style="bold underline")


def header(info: Any, analysis: AnalysisView | None, tones: Tones, now: datetime) -> Text:
    cfg = info.config
    text = Text.assemble(
        (info.experiment_id, "bold"),
        "  ",
        tones.status(info.status.value),
        "  ",
        (info.name if info.name != info.experiment_id else "", "italic"),
    )
    hours = analysis.duration_hours if analysis else info.duration_hours(now)
    started = fmt.when(info.started_at) if info.started_at else "not started"
    text.append(
        f"\nstarted {started} · ran {fmt.duration(hours)} of max "
        f"{cfg.maximum_duration_days:g} d · {cfg.allocation_mode} · confidence "
        f"{cfg.confidence_level:.0%} · primary {cfg.primary}",
        style=tones.style("muted"),
    )
    if info.description:
        text.append(f"\n{info.description}", style=tones.style("muted"))
    if info.status.ended:
        text.append(f"\nended {fmt.when(info.ended_at)} by {info.stopped_by}: {info.stop_reason}")
    return text


def progress(info: Any, analysis: AnalysisView, tones: Tones, width: int = 30) -> Table:
    cfg = info.config
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True, justify="right")
    for variant in analysis.variants:
        n = variant.n.get(cfg.primary, 0)
        frac = n / cfg.minimum_sample_size if cfg.minimum_sample_size else 1.0
        style = tones.style("good" if frac >= 1 else "primary")
        table.add_row(
            variant.name,
            Text(fmt.bar(frac, width), style=style),
            f"{n:,} / {cfg.minimum_sample_size:,} ({min(frac, 9.99):.0%})",
        )
    return table


def traffic(analysis: AnalysisView, tones: Tones) -> Group:
    srm = analysis.srm
    total = analysis.total_units
    table = Table(box=None, padding=(0, 1), header_style="bold", show_edge=False)
    for col, justify in (
        ("variant", "left"),
        ("model", "left"),
        ("target", "right"),
        ("actual", "right"),
        ("units", "right"),
        ("expected", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for v in analysis.variants:
        actual = v.units / total * 100 if total else None
        table.add_row(
            v.name,
            v.model,
            fmt.percent(v.allocation_percent),
            fmt.percent(actual),
            f"{v.units:,}",
            f"{srm.expected.get(v.name, 0):,.0f}",
        )
    if not analysis.has_data:
        verdict = Text("· " + analysis.srm_line, style=tones.style("muted"))
    else:
        verdict = Text(
            ("✗ " if srm.mismatch else "✓ ") + srm.verdict,
            style=tones.style("bad" if srm.mismatch else "good", bold=srm.mismatch),
        )
    return Group(table, verdict)


def metric_table(comparison: Comparison, tones: Tones) -> Table:
    control, treatment = comparison.control, comparison.treatment
    table = Table(box=None, padding=(0, 1), header_style="bold", show_edge=False)
    table.add_column("metric", no_wrap=True)
    table.add_column(control, justify="right")
    table.add_column(treatment, justify="right")
    table.add_column("improvement [CI]", justify="right", no_wrap=True)
    table.add_column("p (Holm)", justify="right")
    table.add_column("p always-valid", justify="right")
    table.add_column("sig", justify="center")
    table.add_column("winner")
    for c in comparison.metrics:
        # Signed by direction, as the registry's comparison: + is better, lower-is-better too.
        lift = c.improvement
        ci = _interval(c.improvement_ci)
        lift_text = "—" if lift is None else f"{lift * 100:+.1f}% {ci}"
        improvement = c.improvement_percent if c.significant else None
        winner = c.winner
        name = Text(c.metric + (" ★" if c.primary else ""))
        if not c.higher_is_better:
            name.append(" ↓", style=tones.style("muted"))
        if not c.has_data:
            muted = Text("no data yet", style=tones.style("muted"))
            table.add_row(name, "—", "—", muted, "—", "—", Text("·"), Text("—"))
            continue
        table.add_row(
            name,
            _mean(c.control_mean, c.binary),
            _mean(c.treatment_mean, c.binary),
            tones.direction(improvement, lift_text) if improvement else Text(lift_text),
            fmt.pvalue(c.p_value_adjusted),
            Text("bootstrap CI", style=tones.style("muted"))
            if c.counted
            else fmt.pvalue(c.always_valid_p),
            Text("✓", style=tones.style("good", bold=True)) if c.significant else Text("·"),
            Text(winner, style=tones.style("good" if winner == treatment else "warn", bold=True))
            if winner
            else Text("—", style=tones.style("muted")),
        )
    return table


def recommendation(analysis: AnalysisView, tones: Tones) -> Text:
    rec = analysis.recommendation
    label, tone = ACTIONS.get(rec.action, (rec.action.replace("_", " ").upper(), "primary"))
    text = Text.assemble(("Recommendation  ", "bold"), (f" {label} ", tones.style(tone, True)))
    if rec.winner:
        text.append(f" {rec.winner}", style=tones.style("good", bold=True))
    text.append(f"\n{rec.reason}")
    return text


def power(analysis: AnalysisView, tones: Tones) -> Text:
    text = Text("\n".join(analysis.power_line(p) for p in analysis.power))
    return text


def allocation(history: list[Any], variants: list[str], tones: Tones) -> Group:
    """Shares over time as one sparkline per variant, then the change log."""
    chart = Table.grid(padding=(0, 1))
    chart.add_column(no_wrap=True)
    chart.add_column(no_wrap=True)
    chart.add_column(no_wrap=True)
    for variant in variants:
        shares = [h.allocation.get(variant, 0.0) for h in history]
        chart.add_row(
            variant,
            Text(spark(shares), style=tones.style("accent")),
            f"{shares[0]:.1f}% → {shares[-1]:.1f}%" if shares else "",
        )
    log = Table(box=None, padding=(0, 1), header_style="bold", show_edge=False)
    for col in ("v", "when", "source", "split", "reason"):
        log.add_column(col, overflow="fold", no_wrap=col != "reason")
    for h in history[-12:]:
        split = " / ".join(f"{h.allocation.get(v, 0):.1f}" for v in variants)
        log.add_row(str(h.version), fmt.when(h.at, seconds=True), h.source, split, h.reason)
    return Group(chart, Text(""), log)


def experiment_detail(
    info: Any,
    analysis: AnalysisView | None,
    history: list[Any],
    tones: Tones,
    now: datetime,
    width: int = 100,
) -> Group:
    parts: list[RenderableType] = [header(info, analysis, tones, now)]
    if analysis is None:
        parts += [
            Text(""),
            Text(
                "No analysis yet: the experiment is a draft. Press s to start it.",
                style=tones.style("muted"),
            ),
        ]
        split = " / ".join(f"{v} {p:g}%" for v, p in info.allocation.items())
        parts.append(Text(f"target split {split}"))
        return Group(*parts)
    bar_width = max(10, min(40, width - 45))
    parts += [Text(""), _section("Progress to the minimum sample size (per variant)")]
    parts.append(progress(info, analysis, tones, bar_width))
    parts += [Text(""), _section("Traffic split"), traffic(analysis, tones)]
    for comparison in analysis.comparisons:
        title = comparison.title
        parts += [Text(""), _section(f"Metrics · {title}"), metric_table(comparison, tones)]
    parts += [
        Text(
            "★ primary · ↓ lower is better · improvement: + means the treatment is better · "
            "p (Holm): fixed-horizon, adjusted",
            style="dim",
        ),
        Text(""),
        recommendation(analysis, tones),
        Text(""),
        power(analysis, tones),
    ]
    if info.config.is_bandit or len(history) > 1:
        parts += [
            Text(""),
            _section("Allocation over time"),
            allocation(history, info.config.variants, tones),
        ]
    return Group(*parts)
