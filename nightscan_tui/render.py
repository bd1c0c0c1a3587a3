"""Rich renderings of core results for the CLI."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from core.formatting import change_summary, cli_style
from nightscan_tui.console_io import human_size, local_time


def status_text(status: str) -> Text:
    return Text(status.upper(), style=cli_style(status))


def _metric(metrics: dict[str, float], name: str) -> str:
    value = metrics.get(name)
    return "-" if value is None else f"{value:.3f}"


def models_table(models: list, wide: bool = False, title: str | None = None, width: int = 120):
    """One row per version. Under 110 columns only the identity and quality columns remain."""
    roomy = width >= 110
    # Narrow terminals lose the vertical rules: 18 characters that the ids need more.
    table = Table(
        title=title,
        header_style="bold",
        box=box.HEAVY_HEAD if roomy else box.SIMPLE_HEAD,
        pad_edge=roomy,
        collapse_padding=not roomy,
    )
    table.add_column("model", overflow="fold", min_width=8)
    table.add_column("version", no_wrap=True)
    table.add_column("status", no_wrap=True)
    if roomy:
        table.add_column("architecture", overflow="fold")
    table.add_column("accuracy", justify="right", no_wrap=True)
    table.add_column("f1", justify="right", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column(
        "checksum" if wide else "sha256", style="dim", overflow="fold", no_wrap=not wide
    )
    if roomy:
        table.add_column("tags", overflow="fold")
        table.add_column("created", no_wrap=True)
    for m in models:
        cells = [m.model_id, m.version, status_text(m.status.value)]
        if roomy:
            cells.append(m.architecture)
        cells += [
            _metric(m.metrics, "accuracy"),
            _metric(m.metrics, "f1_score"),
            human_size(m.file_size_bytes),
            m.checksum if wide else m.checksum[:12],
        ]
        if roomy:
            cells += [", ".join(m.tags), local_time(m.created_at)]
        table.add_row(*cells)
    return table


def model_detail(meta, history: list) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, Any]] = [
        ("model", meta.ref),
        ("name", meta.name),
        ("description", meta.description or "-"),
        ("status", status_text(meta.status.value)),
        ("framework", meta.framework),
        ("architecture", meta.architecture),
        ("dataset", meta.dataset_version or "-"),
        ("created", local_time(meta.created_at)),
        ("size", f"{human_size(meta.file_size_bytes)} ({meta.file_size_bytes} bytes)"),
        ("checksum", f"sha256:{meta.checksum}"),
        ("tags", ", ".join(meta.tags) or "-"),
        ("labels", ", ".join(meta.labels) or "-"),
    ]
    rows += [(f"metric {k}", f"{v:.4f}") for k, v in sorted(meta.metrics.items())]
    train_cfg = {k: v for k, v in meta.training_config.items() if k not in ("labels", "features")}
    rows += [(f"training {k}", str(v)) for k, v in sorted(train_cfg.items())]
    for change in history:
        before = change.from_status.value.upper() if change.from_status else "-"
        rows.append(
            (
                "history",
                f"{local_time(change.at)}  {before} -> {change.to_status.value.upper()}"
                f"  by {change.actor}" + (f" ({change.reason})" if change.reason else ""),
            )
        )
    for label, value in rows:
        table.add_row(label, value)
    return table


def comparison_table(result: dict[str, Any]) -> Table | Group:
    """The metric table; with per-class metrics from registration, a per-class table below it
    (and those metrics out of the first one)."""
    a, b = result["model_a"], result["model_b"]
    per_class = result.get("per_class") or {}
    class_keys = {f"{m}/{label}" for label, ms in per_class.items() for m in ms}
    table = Table(
        title=f"{a['model_id']}:{a['version']}  vs  {b['model_id']}:{b['version']}",
        header_style="bold",
    )
    table.add_column("metric")
    table.add_column(f"A {a['version']}", justify="right")
    table.add_column(f"B {b['version']}", justify="right")
    table.add_column("difference", justify="right")
    table.add_column("improvement", justify="right")
    table.add_column("better")
    for metric, d in result["metric_differences"].items():
        if metric in class_keys:
            continue
        fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        pct = d["percentage_improvement"]
        if pct is None:
            pct_text = Text("-")
        else:
            style = "green" if pct > 0 else "red" if pct < 0 else ""
            pct_text = Text(f"{pct:+.2f}%", style=style)
        direction = "" if d["higher_is_better"] else " (lower is better)"
        better = {"model_a": "A", "model_b": "B", None: "="}[d["better"]]
        table.add_row(
            metric + direction,
            fmt(d["model_a"]),
            fmt(d["model_b"]),
            "-" if d["difference"] is None else f"{d['difference']:+.4f}",
            pct_text,
            better,
        )
    table.caption = f"size difference {result['size_difference_bytes']:+d} bytes; " + (
        "same weights" if result["same_weights"] else "different weights"
    )
    if not per_class:
        return table
    return Group(table, per_class_table(per_class, a["version"], b["version"]))


def per_class_table(per_class: dict[str, dict[str, dict]], va: str, vb: str) -> Table:
    """Held-out recall and F1 per class, A against B; a drop of 5 points or more is red."""
    table = Table(title="per class (held-out set at registration)", header_style="bold")
    table.add_column("class")
    for metric in ("recall", "f1"):
        for head in (f"{metric} A {va}", f"{metric} B {vb}", "change"):
            table.add_column(head, justify="right")
    for label, metrics in per_class.items():
        cells: list[Any] = [label]
        for metric in ("recall", "f1"):
            d = metrics.get(metric) or {}
            cells += ["-" if d.get(k) is None else f"{d[k]:.3f}" for k in ("model_a", "model_b")]
            diff = d.get("difference")
            style = "red" if diff is not None and diff <= -0.05 else ""
            cells.append(Text("-" if diff is None else f"{diff:+.3f}", style=style))
        table.add_row(*cells)
    return table


def audit_table(entries: list) -> Table:
    table = Table(header_style="bold")
    for column in ("#", "time", "actor", "action", "entity", "change"):
        table.add_column(column, no_wrap=column in ("#", "time"))
    for e in entries:
        change = change_summary(e.before, e.after, e.detail)
        table.add_row(str(e.id), local_time(e.at), e.actor, e.action, e.entity_id, change)
    return table
