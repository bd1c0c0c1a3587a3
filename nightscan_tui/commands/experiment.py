"""``nightscan experiment ...``: create, list, status, start, stop, analyze, export, allocate,
record, assign, check. Core is imported inside each command so ``--help`` stays fast."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from nightscan_tui.console_io import local_time, out, print_json

app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
IdArg = Annotated[str, typer.Argument(help="Experiment id.", show_default=False)]

ACTION_STYLE = {
    "keep_running": "cyan",
    "stop_winner": "bold green",
    "stop_no_difference": "yellow",
    "stop_inconclusive": "yellow",
    "invalid": "bold red",
}


def _status(status: str):
    from rich.text import Text

    from core.formatting import cli_style  # the console's tones, as Rich styles

    return Text(status.upper(), style=cli_style(status))


def _pairs(items: list[str], what: str) -> dict[str, str]:
    from core import ValidationError

    parsed: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValidationError(f"expected {what} as NAME=VALUE, got {item!r}")
        parsed[key.strip()] = value.strip()
    return parsed


def _number(text: str, what: str) -> float:
    from core import ValidationError

    try:
        return float(text)
    except ValueError:
        raise ValidationError(f"{what} must be a number, got {text!r}") from None


def _manager():
    from core import get_ab_test_manager

    return get_ab_test_manager()


@app.command("create")
def create(
    file: Annotated[Path, typer.Option("--file", "-f", help="Config as TOML or JSON.")],
    start: Annotated[bool, typer.Option("--start", help="Start it right away.")] = False,
) -> None:
    """Create an experiment (DRAFT) from a TOML or JSON config file."""
    from core import ExperimentConfig, get_ab_test_manager

    manager = get_ab_test_manager()
    info = manager.create_experiment(ExperimentConfig.from_file(file))
    if start:
        info = manager.start_experiment(info.experiment_id)
    out.print(f"created experiment [bold]{info.experiment_id}[/] ({info.status.value.upper()})")


@app.command("list")
def list_experiments(
    status: Annotated[str | None, typer.Option("--status", help="e.g. running.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List experiments, newest first."""
    from core.direct_reads import direct_reader

    with direct_reader() as reader:  # no SQLAlchemy or scipy when the database allows
        infos = (reader or _manager()).list_experiments(status)
    if as_json:
        print_json([i.to_dict() for i in infos])
        return
    if not infos:
        out.print("no experiments")
        return
    from rich.table import Table

    table = Table(header_style="bold")
    for column in ("experiment", "status", "variants", "allocation", "primary", "started"):
        table.add_column(column)
    for i in infos:
        table.add_row(
            i.experiment_id,
            _status(i.status.value),
            ", ".join(f"{v}={ref}" for v, ref in i.config.model_variants.items()),
            " / ".join(f"{p:g}" for p in i.allocation.values()),
            i.config.primary,
            local_time(i.started_at) if i.started_at else "-",
        )
    out.print(table)


@app.command("status")
def status(experiment_id: IdArg, as_json: JsonOpt = False) -> None:
    """One experiment: lifecycle, allocation, units and results per variant."""
    from core import get_ab_test_manager

    manager = get_ab_test_manager()
    data = manager.get_experiment_status(experiment_id)
    history = manager.allocation_history(experiment_id)
    if as_json:
        print_json({**data, "allocation_history": [h.to_dict() for h in history]})
        return
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("experiment", f"{data['experiment_id']}  ({data['name']})")
    grid.add_row("status", _status(data["status"]))
    if data["stop_reason"]:
        grid.add_row("ended", f"{data['stop_reason']} (by {data['stopped_by']})")
    grid.add_row("duration", f"{data['duration_hours']:.1f} h")
    cfg = data["config"]
    grid.add_row("mode", cfg["allocation_mode"])
    grid.add_row(
        "metrics", ", ".join(cfg["success_metrics"]) + f"  (primary {cfg['primary_metric']})"
    )
    out.print(grid)
    table = Table("variant", "model", "allocation", "units", "results", header_style="bold")
    for v, ref in cfg["model_variants"].items():
        results = ", ".join(f"{m}={n}" for m, n in data["results"][v].items())
        table.add_row(v, ref, f"{data['allocation'][v]:g}%", str(data["units"][v]), results)
    out.print(table)
    if len(history) > 1:
        hist = Table("version", "time", "source", "allocation", "reason", header_style="bold")
        for h in history:
            split = ", ".join(f"{k}={p:g}%" for k, p in h.allocation.items())
            hist.add_row(str(h.version), local_time(h.at), h.source, split, h.reason)
        out.print(hist)


@app.command("start")
def start(experiment_id: IdArg) -> None:
    """DRAFT -> RUNNING."""
    from core import get_ab_test_manager

    info = get_ab_test_manager().start_experiment(experiment_id)
    out.print(f"experiment {info.experiment_id} is now [bold green]RUNNING[/]")


@app.command("stop")
def stop(
    experiment_id: IdArg,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the history).")],
) -> None:
    """RUNNING -> STOPPED, with a reason."""
    from core import get_ab_test_manager

    info = get_ab_test_manager().stop_experiment(experiment_id, reason)
    out.print(f"experiment {info.experiment_id} [yellow]STOPPED[/]: {info.stop_reason}")


def _fmt(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def _pct_interval(ci: tuple[float | None, float | None] | None) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "[-inf, inf]"
    return f"[{ci[0] * 100:+.1f}, {ci[1] * 100:+.1f}]%"


def _analysis_view(found: dict[str, Any]):
    from rich import box
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    from core.experiments.analysis_view import AnalysisView

    a = AnalysisView.from_dict(found)
    rec = a.recommendation
    head = Text()
    head.append(f"{a.experiment_id}  ", style="bold")
    head.append(_status(a.status))
    head.append(f"  {a.duration_hours:.1f} h  primary: {a.primary_metric}\n")
    head.append("SRM: ", style="bold")
    srm_style = "bold red" if a.srm.mismatch else "green" if a.has_data else "dim"
    head.append(a.srm_line + "\n", style=srm_style)
    head.append("recommendation: ", style="bold")
    head.append(rec.action.replace("_", " ").upper(), style=ACTION_STYLE.get(rec.action, "bold"))
    head.append(f"  {rec.reason}")
    parts: list[Any] = [Panel(head, expand=False)]
    power = {p.comparison: p for p in a.power}
    for comp in a.comparisons:
        # Compact (no vertical rules, collapsed padding) so that it reads at 80 columns.
        table = Table(
            title=comp.key, header_style="bold", title_justify="left", box=box.SIMPLE_HEAD,
            padding=(0, 1), collapse_padding=True, pad_edge=False,
        )  # fmt: skip
        table.add_column("metric", overflow="fold")
        for column in (comp.control, comp.treatment, "improvement [CI]", "p", "anytime p"):
            table.add_column(column, justify="right", overflow="fold")
        table.add_column("winner", overflow="fold")
        for r in comp.metrics:
            label = ("* " if r.primary else "") + r.metric
            if not r.higher_is_better:
                label += " ↓"
            if not r.has_data:
                table.add_row(label, "-", "-", "no data yet", "-", "-", "-")
                continue
            winner = r.winner
            style = "" if winner is None else "bold green" if winner != comp.control else "yellow"
            lift = "-" if r.improvement is None else f"{r.improvement * 100:+.1f}%"
            table.add_row(
                label,
                f"{_fmt(r.control_mean, 3)}\nn={r.control_n}",
                f"{_fmt(r.treatment_mean, 3)}\nn={r.treatment_n}",
                f"{lift}\n{_pct_interval(r.improvement_ci)}",
                f"{_fmt(r.p_value, 1)}\nHolm {_fmt(r.p_value_adjusted, 1)}",
                _fmt(r.always_valid_p, 1),
                Text(winner or "-", style=style),
            )
        if comp.key in power:
            table.caption = (
                f"{a.power_line(power[comp.key])}.  * primary metric  ↓ lower is better  "
                "improvement: + means the treatment is better  "
                "anytime p: always-valid (mSPRT), Holm-adjusted"
            )
            if any(r.counted for r in comp.metrics):
                table.caption += (
                    "  f1/macro_f1: from labelled feedback per variant, bootstrap interval "
                    "(fixed-horizon), never decisive"
                )
        parts.append(table)
    return Group(*parts)


@app.command("analyze")
def analyze(experiment_id: IdArg, as_json: JsonOpt = False) -> None:
    """Statistics per metric: lift with its interval, fixed and always-valid p, winner."""
    from core import get_ab_test_manager

    analysis = get_ab_test_manager().analyze_experiment(experiment_id)
    if as_json:
        print_json(analysis)
        return
    out.print(_analysis_view(analysis))


@app.command("export")
def export(
    experiment_id: IdArg,
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
) -> None:
    """Stream the raw results."""
    from core import get_ab_test_manager

    count = get_ab_test_manager().export_results(experiment_id, fmt, output or sys.stdout)
    if output is not None:
        out.print(f"exported {count} results to {output}")


@app.command("allocate")
def allocate(
    experiment_id: IdArg,
    shares: Annotated[list[str], typer.Argument(help="VARIANT=PERCENT for every variant.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why, for the audit log.")
    ] = "manual reallocation",
) -> None:
    """Change the traffic split; recorded, and only the units that must move do."""
    from core import get_ab_test_manager

    allocation = {k: _number(v, f"share of {k}") for k, v in _pairs(shares, "shares").items()}
    change = get_ab_test_manager().set_allocation(experiment_id, allocation, reason)
    split = ", ".join(f"{k}={p:g}%" for k, p in change.allocation.items())
    out.print(f"{experiment_id}: allocation v{change.version}: {split}")


@app.command("record")
def record(
    experiment_id: IdArg,
    values: Annotated[list[str] | None, typer.Argument(help="METRIC=VALUE ...")] = None,
    request_id: Annotated[
        str | None, typer.Option("--request-id", help="Unit id (default: a random one).")
    ] = None,
    variant: Annotated[
        str | None, typer.Option("--variant", help="Variant (default: what routing assigns).")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="JSON Lines of {request_id, variant, metrics}."),
    ] = None,
) -> None:
    """Record one result (METRIC=VALUE ...) or a JSON Lines file of them, durably."""
    from core import ValidationError, get_ab_test_manager

    manager = get_ab_test_manager()
    if file is not None:
        try:
            lines = [json.loads(x) for x in file.read_text().splitlines() if x.strip()]
        except (OSError, ValueError) as exc:
            raise ValidationError(f"cannot read results file {file}: {exc}") from None
        rows = [{**x, "experiment_id": experiment_id} if isinstance(x, dict) else x for x in lines]
        stored = sum(manager.record_results(rows))
        out.print(f"recorded {len(rows)} results ({stored} new metric values)")
        return
    if not request_id or not variant or not values:
        raise ValidationError("give --request-id, --variant and METRIC=VALUE, or --file")
    metrics = {k: _number(v, f"metric {k}") for k, v in _pairs(values, "metrics").items()}
    stored = manager.record_result(experiment_id, request_id, variant, metrics)
    out.print(f"recorded {request_id} ({variant}): {stored} new metric values")


@app.command("assign")
def assign(
    experiment_id: IdArg, unit_id: Annotated[str, typer.Argument(help="Request or user id.")]
) -> None:
    """Which variant and model a request (or user) is routed to."""
    from core import get_ab_test_manager

    variant, ref = get_ab_test_manager().assign(experiment_id, unit_id)
    out.print(f"{unit_id} -> {variant} ({ref})")


@app.command("check")
def check(
    watch: Annotated[bool, typer.Option("--watch", help="Keep checking until Ctrl-C.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between passes.")
    ] = 60.0,
) -> None:
    """Run the auto-stop and bandit check once (or on a loop with --watch)."""
    from core import get_ab_test_manager

    manager = get_ab_test_manager()
    try:
        while True:
            actions = manager.check_experiments()
            for a in actions:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S")
                out.print(f"{stamp}  {a.experiment_id}: {a.action.replace('_', ' ')} - {a.detail}")
            if not watch:
                if not actions:
                    out.print("nothing to do")
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        return
