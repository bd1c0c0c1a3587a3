"""``nightscan deploy`` and ``nightscan deployment ...``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from nightscan_tui.console_io import local_time, out, print_json
from nightscan_tui.options import token_option

app = typer.Typer(no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _stale(taken: datetime) -> bool:
    from core.formatting import is_stale

    return is_stale(taken)


def _metrics_age(m) -> str:
    from core.formatting import figures_age

    if m is None:
        return "none"
    text = figures_age(m.timestamp)
    return f"[dim]{text}[/]" if _stale(m.timestamp) else text


def deploy(
    model_id: Annotated[str, typer.Argument(help="Registered model id.")],
    version: Annotated[str, typer.Argument(help="Version to deploy, e.g. v2.1.0.")],
    deployment_id: Annotated[
        str | None, typer.Option("--deployment-id", help="Default: MODEL_VERSION_ENVIRONMENT.")
    ] = None,
    environment: Annotated[
        str, typer.Option("--environment", help="e.g. production, staging.")
    ] = "production",
    config_file: Annotated[
        Path | None, typer.Option("--config", help="TOML/JSON with DeploymentConfig fields.")
    ] = None,
    traffic: Annotated[float | None, typer.Option("--traffic", help="Traffic percentage.")] = None,
    canary: Annotated[
        bool, typer.Option("--canary", help="Canary: --traffic percent beside the stable.")
    ] = False,
    canary_metrics: Annotated[
        list[str] | None,
        typer.Option(
            "--canary-metric",
            help="A quality metric the canary is also judged on, from labelled feedback: "
            "recall.CLASS, precision.CLASS, f1.CLASS or macro_f1 (repeatable; "
            "canary.quality_metrics, margin canary.quality_margin).",
        ),
    ] = None,
) -> None:
    """Verify, load, warm up and health-check a version, then serve it."""
    from core.deployments import DeploymentConfig, get_deployment_manager

    overrides = dict(
        model_id=model_id,
        version=version,
        deployment_id=deployment_id,
        environment=environment,
        traffic_percentage=traffic,
        canary_deployment=True if canary else None,
    )
    if config_file is not None:
        config = DeploymentConfig.from_file(config_file, **overrides)
    else:
        config = DeploymentConfig.from_dict({k: v for k, v in overrides.items() if v is not None})
    if canary_metrics:
        canary_section = {**config.canary.to_dict(), "quality_metrics": list(canary_metrics)}
        config = DeploymentConfig.from_dict({**config.to_dict(), "canary": canary_section})
    with out.status(f"deploying {model_id}:{version}"):
        get_deployment_manager().deploy_model(config)
    out.print(f"[green]deployed[/] {model_id}:{version} as [bold]{config.deployment_id}[/]")


@app.command("list")
def list_deployments(
    include_stopped: Annotated[bool, typer.Option("--all", help="Include stopped ones.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Deployments with their version, health and traffic share."""
    from core.direct_reads import direct_reader

    with direct_reader() as reader:  # no SQLAlchemy or numpy when the database allows
        if reader is not None:
            infos = reader.list_deployments(include_stopped)
            current_metrics = reader.current_metrics
        else:
            from core.deployments import get_deployment_manager

            mgr = get_deployment_manager()
            infos = mgr.list_deployments(include_stopped=include_stopped)
            current_metrics = mgr.performance_tracker.get_current_metrics
        if as_json:
            print_json([i.to_dict() for i in infos])
            return
        if not infos:
            out.print("no deployments; deploy one with: nightscan deploy MODEL_ID VERSION")
            return
        _print_deployments(infos, current_metrics)


def _print_deployments(infos: list, current_metrics) -> None:
    """The table, with each deployment's snapshot numbers and their age."""
    from rich.table import Table

    from core.formatting import cli_style

    roomy = out.width >= 110
    table = Table(header_style="bold")
    table.add_column("deployment", overflow="fold", min_width=12)
    table.add_column("model", overflow="fold", min_width=10)
    if roomy:
        table.add_column("env")
    for col in ("status", "health", "traffic", "rps", "p95 ms", "metrics"):
        table.add_column(col, no_wrap=True, justify="right" if col[0] in "trp" else "left")
    if roomy:
        table.add_column("updated", no_wrap=True)
    for info in infos:
        m = current_metrics(info.deployment_id)
        fresh = m is not None and not _stale(m.timestamp)
        health_style = cli_style(info.health)
        cells = [info.deployment_id, info.model_ref]
        if roomy:
            cells.append(info.environment)
        cells += [
            info.status,
            f"[{health_style}]{info.health}[/]" if health_style else info.health,
            f"{info.config.traffic_percentage:g}%",
            # Numbers older than a few snapshots describe a server that stopped: not current.
            f"{m.requests_per_second:.1f}" if fresh else "-",
            f"{m.p95_latency_ms:.1f}" if fresh else "-",
            _metrics_age(m),
        ]
        if roomy:
            cells.append(local_time(info.updated_at))
        table.add_row(*cells)
    out.print(table)


@app.command("status")
def status(
    deployment_id: Annotated[str, typer.Argument(help="Deployment id.")],
    as_json: JsonOpt = False,
) -> None:
    """Configuration, revision history and live metrics."""
    from core.deployments import get_deployment_manager

    data = get_deployment_manager().get_status(deployment_id)
    if as_json:
        print_json(data)
        return
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key in ("deployment_id", "model_version", "environment", "status", "health", "reason"):
        grid.add_row(key, str(data[key]))
    cfg = data["config"]
    grid.add_row("traffic", f"{cfg['traffic_percentage']:g}%")
    grid.add_row("resources", str(cfg["resources"]))
    grid.add_row("scaling", str(cfg["scaling"]))
    grid.add_row("batching", str(cfg["batching"]))
    grid.add_row("health_check", str(cfg["health_check"]))
    m = data.get("metrics")
    if m:
        from core.formatting import age, seconds_since

        taken = datetime.fromisoformat(m["timestamp"])
        stale = " (stale: no server is counting now)" if _stale(taken) else ""
        grid.add_row("metrics as of", f"{local_time(taken)}, {age(seconds_since(taken))}{stale}")
        grid.add_row(
            "metrics",
            f"{m['requests_per_second']:.2f} req/s, avg {m['average_latency_ms']:.1f} ms, "
            f"p95 {m['p95_latency_ms']:.1f} ms, errors {m['error_rate']:.2f}%, "
            f"cpu {m['cpu_usage_percent']:.0f}%, mem {m['memory_usage_mb']:.0f} MB",
        )
    else:
        grid.add_row("metrics", "no traffic seen (is `nightscan serve` running?)")
    for rev in data["revisions"]:
        grid.add_row("revision", f"{rev['at'][:19]}  {rev['version']}  {rev['status']}  "
                                 f"{rev['reason']}")  # fmt: skip
    out.print(grid)


@app.command("health")
def health(
    deployment_id: Annotated[str, typer.Argument(help="Deployment id.")],
    url: Annotated[
        str | None,
        typer.Option("--url", help="Ask this server (default: the one serving this home, if any)."),
    ] = None,
    token: Annotated[
        str | None,
        token_option("Operator token: the server probes now (without: its last health check)."),
    ] = None,
    in_process: Annotated[
        bool,
        typer.Option("--in-process", help="Load the model here and probe it, even if served."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Is the deployment healthy? Exits 1 when it is not.

    When a server serves this home (it records itself in the database) or --url names one, the
    server answers: a real inference now with an operator --token, else its last health check.
    Otherwise the model is loaded and probed in this process. The output says which."""
    from core.deployment_health import check_health

    result = check_health(deployment_id, url=url, token=token, in_process=in_process)
    if as_json:
        print_json(result)
    else:
        latency = f" ({result['latency_ms']:.1f} ms)" if result.get("latency_ms") else ""
        verdict = "[green]healthy[/]" if result["healthy"] else "[bold red]unhealthy[/]"
        detail = "" if result["healthy"] else f": {result['detail']}"
        out.print(f"{verdict} {deployment_id}{latency}{detail}", soft_wrap=True)
        out.print(f"[dim]{result['checked_by']}[/]", soft_wrap=True)
    if not result["healthy"]:
        raise typer.Exit(1)


@app.command("undeploy")
def undeploy(
    deployment_id: Annotated[str, typer.Argument(help="Deployment id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit log.")] = "",
) -> None:
    """Stop serving a deployment."""
    from core.deployments import get_deployment_manager

    get_deployment_manager().undeploy(deployment_id, reason=reason)
    out.print(f"undeployed {deployment_id}")


@app.command("rollback")
def rollback(
    deployment_id: Annotated[str, typer.Argument(help="Deployment id.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why, for the audit log.")
    ] = "manual rollback",
) -> None:
    """Switch back to the previous healthy version (no request in flight fails)."""
    from core.deployments import get_deployment_manager

    info = get_deployment_manager().rollback_deployment(deployment_id, reason=reason)
    out.print(f"{deployment_id} rolled back to [bold]{info.model_ref}[/]")
