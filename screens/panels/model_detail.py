"""The registry's detail pane (one version) and comparison pane (two versions)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from screens import fmt
from screens.tones import Tones

LINEAGE_KEYS = ("parent", "base_model", "parent_version", "fine_tuned_from", "seed")


def _kv_grid() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    return grid


def _config_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def model_detail(meta: Any, history: list[Any], siblings: list[Any], tones: Tones) -> Group:
    """Metadata, metrics, training config, lineage and status history of one version."""
    head = Text.assemble(
        (meta.ref, "bold"), "  ", tones.status(meta.status.value), "  ", (meta.name or "", "italic")
    )
    parts: list[RenderableType] = [head]
    if meta.description:
        parts.append(Text(meta.description, style=tones.style("muted")))

    info = _kv_grid()
    info.add_row("framework", f"{meta.framework} · {meta.architecture}")
    info.add_row("dataset", meta.dataset_version or "—")
    info.add_row("size", f"{fmt.size(meta.file_size_bytes)} ({meta.file_size_bytes:,} bytes)")
    info.add_row("sha256", meta.checksum or "—")
    info.add_row("created", fmt.when(meta.created_at))
    info.add_row("tags", ", ".join(meta.tags) or "—")

    metrics = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
    metrics.add_column("metric")
    metrics.add_column("value", justify="right")
    for name in sorted(meta.metrics):
        metrics.add_row(name, fmt.num(meta.metrics[name], 4))
    if not meta.metrics:
        metrics.add_row("—", "")

    top = Table.grid(padding=(0, 4))
    top.add_column()
    top.add_column()
    top.add_row(info, metrics)
    parts += [Text(""), top]

    config = _kv_grid()
    for key in sorted(meta.training_config):
        config.add_row(key, _config_value(meta.training_config[key]))
    parts += [Text(""), Text("Training config", style="bold underline"), config]

    lineage = _kv_grid()
    lineage.add_row("dataset", meta.dataset_version or "—")
    for key in LINEAGE_KEYS:
        if key in meta.training_config:
            lineage.add_row(key, _config_value(meta.training_config[key]))
    earlier = [s.version for s in siblings if s.model_id == meta.model_id]
    if meta.version in earlier:
        i = earlier.index(meta.version)
        lineage.add_row("previous", earlier[i - 1] if i > 0 else "— (first version)")
        lineage.add_row("next", earlier[i + 1] if i + 1 < len(earlier) else "— (latest)")
    parts += [Text(""), Text("Lineage", style="bold underline"), lineage]

    table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
    for col in ("when", "from", "to", "actor", "reason"):
        table.add_column(col, overflow="fold", no_wrap=col in ("when", "from", "to"))
    for change in history:
        table.add_row(
            fmt.when(change.at, seconds=True),
            change.from_status.value.upper() if change.from_status else "—",
            tones.status(change.to_status.value),
            change.actor,
            change.reason,
        )
    parts += [Text(""), Text("Status history", style="bold underline"), table]
    return Group(*parts)


def comparison(result: dict[str, Any], tones: Tones) -> Group:
    """Metric differences of B against A; improvement coloured by direction."""
    a, b = result["model_a"], result["model_b"]
    ref = lambda m: f"{m['model_id']}:{m['version']}"  # noqa: E731
    head = Text.assemble(
        ("Compare  ", "bold"),
        ("A ", tones.style("muted")),
        (ref(a), "bold"),
        "  →  ",
        ("B ", tones.style("muted")),
        (ref(b), "bold"),
    )
    table = Table(box=None, padding=(0, 1), header_style="bold", show_edge=False)
    table.add_column("metric")
    table.add_column("A", justify="right")
    table.add_column("B", justify="right")
    table.add_column("B − A", justify="right")
    table.add_column("improvement", justify="right")
    table.add_column("better")
    for metric, d in result["metric_differences"].items():
        pct = d.get("percentage_improvement")
        better = {"model_a": "A", "model_b": "B"}.get(d.get("better") or "", "=")
        direction = "" if d.get("higher_is_better", True) else " (lower is better)"
        table.add_row(
            metric + direction,
            fmt.num(d.get("model_a"), 4),
            fmt.num(d.get("model_b"), 4),
            fmt.signed(d.get("difference"), 4),
            tones.direction(pct, fmt.signed(pct, 2, "%")),
            tones.direction(None if better == "=" else (1 if better == "B" else -1), better),
        )
    size = result.get("size_difference_bytes", 0)
    notes = Text.assemble(
        ("size ", "bold"),
        f"{size:+,} bytes · ",
        ("same weights" if result.get("same_weights") else "different weights"),
        " · ",
        ("same architecture" if result.get("same_architecture") else "different architecture"),
    )
    hint = Text("space marks versions · esc clears the marks", style=tones.style("muted"))
    return Group(head, Text(""), table, Text(""), notes, hint)
