"""``nightscan canary ...``: watch and steer canary rollouts (start one with
``nightscan deploy MODEL VERSION --deployment-id ID --canary --traffic 5``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nightscan_tui.console_io import out, print_json

app = typer.Typer(no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
DeploymentArg = Annotated[str, typer.Argument(help="The deployment the canary runs on.")]
VERDICT_STYLE = {"PASS": "green", "FAIL": "bold red", "INCONCLUSIVE": "yellow"}


def _controller():
    from core.deployments import get_deployment_manager

    return get_deployment_manager().canaries


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds / 3600:.1f}h"


def _verdict(v: str) -> str:
    style = VERDICT_STYLE.get(v, "")
    return f"[{style}]{v}[/]" if style else v


def _render_status(s: dict[str, Any]) -> None:
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("deployment", s["deployment_id"])
    grid.add_row("state", s["state"] + (f" ({s['reason']})" if s["reason"] else ""))
    grid.add_row("stable", s["stable"])
    grid.add_row("canary", s["canary"])
    steps = " -> ".join(f"[bold]{w:g}[/]" if w == s["weight"] else f"{w:g}" for w in s["steps"])
    grid.add_row("weight", f"{s['weight']:g}%   steps {steps}")
    if s["state"] in ("progressing", "paused"):
        grid.add_row(
            "step",
            f"{_duration(s['seconds_at_weight'])} of {_duration(s['step_seconds'])} at this "
            f"weight; "
            + (
                f"next analysis in {_duration(s['next_analysis_in_s'])}"
                if s["next_analysis_in_s"] is not None
                else "paused, nothing is judged"
            ),
        )
    requests = s.get("requests") or {}
    grid.add_row(
        "analyses",
        f"{s['checks']}: {s['passes']} within every margin, {s['fails']} worse, "
        f"{s['inconclusive']} inconclusive; requests stable {requests.get('stable', 0):,}, "
        f"canary {requests.get('canary', 0):,}; aborts only when a confidence sequence excludes "
        f"a margin (alpha {s['alpha']:g} over the rollout)",
    )
    if s.get("quality_metrics"):
        grid.add_row(
            "quality",
            f"{', '.join(s['quality_metrics'])} from labelled feedback, margin "
            f"{s['quality_margin']:g} each",
        )
    last = s.get("last_verdict")
    if last:
        grid.add_row("last verdict", f"{_verdict(last['verdict'])} {last['reason']}")
        for check in last.get("checks", []):
            p = check.get("always_valid_p")
            numbers = (
                f"worse by {check['difference']:.4g} (CS {check['cs_low']:.4g} .. "
                f"{check['cs_high']:.4g}, margin {check['margin']:g}"
                + (f", always-valid p={p:.3g})" if p is not None else f"; {check['detail']})")
                if check.get("difference") is not None and check.get("cs_low") is not None
                else check.get("detail", "")
            )
            grid.add_row(f"  {check['metric']}", f"{check['outcome']}: {numbers}")
    out.print(grid)
    if s["recent_checks"]:
        table = Table(header_style="bold", title="recent analyses")
        for name in ("at", "weight", "verdict", "action", "reason"):
            table.add_column(name, overflow="fold", no_wrap=name != "reason")
        for c in s["recent_checks"]:
            table.add_row(c["at"][11:19], f"{c['weight']:g}%", _verdict(c["verdict"]),
                          c["action"] or "-", c["reason"])  # fmt: skip
        out.print(table)


@app.command("status")
def status(deployment_id: DeploymentArg, as_json: JsonOpt = False) -> None:
    """Weight, step, counters, the last verdict with its evidence, recent analyses."""
    data = _controller().status(deployment_id)
    if as_json:
        print_json(data)
    else:
        _render_status(data)


@app.command("list")
def list_canaries(
    include_ended: Annotated[bool, typer.Option("--all", help="Include ended ones.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Running canaries (or all with --all)."""
    rows = _controller().list_canaries(include_ended)
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("no canary is running")
        return
    for r in rows:
        out.print(f"{r['deployment_id']}: {r['canary']} at {r['weight']:g}% ({r['state']}), "
                  f"stable {r['stable']}")  # fmt: skip


@app.command("promote")
def promote(
    deployment_id: DeploymentArg,
    reason: Annotated[
        str, typer.Option("--reason", help="Why, for the audit log.")
    ] = "manual promotion",
) -> None:
    """Skip the remaining steps: the canary becomes the deployment's version."""
    result = _controller().promote(deployment_id, reason)
    out.print(f"[green]promoted[/] {result['canary']} on {deployment_id}")


@app.command("abort")
def abort(
    deployment_id: DeploymentArg,
    reason: Annotated[
        str, typer.Option("--reason", help="Why, for the audit log.")
    ] = "manual abort",
    mark_failed: Annotated[
        bool, typer.Option("--mark-failed", help="Also mark the canary version FAILED.")
    ] = False,
) -> None:
    """All traffic back to the stable version."""
    result = _controller().abort(deployment_id, reason, failed=mark_failed)
    out.print(f"aborted {result['canary']} on {deployment_id}; {result['stable']} serves all")


@app.command("pause")
def pause(deployment_id: DeploymentArg) -> None:
    """Hold the current weight; no analyses until resumed."""
    result = _controller().pause(deployment_id)
    out.print(f"paused {result['canary']} at {result['weight']:g}% on {deployment_id}")


@app.command("resume")
def resume(deployment_id: DeploymentArg) -> None:
    """Judge again, on a fresh step clock."""
    result = _controller().resume(deployment_id)
    out.print(f"resumed {result['canary']} at {result['weight']:g}% on {deployment_id}")


@app.command("simulate")
def simulate(
    rps: Annotated[float, typer.Option("--rps", help="Requests per second to the deployment.")],
    config_file: Annotated[
        Path | None, typer.Option("--config", help="TOML/JSON with DeploymentConfig fields.")
    ] = None,
    error_rate: Annotated[
        float | None,
        typer.Option("--error-rate", help="The canary's error rate (default: stable's)."),
    ] = None,
    latency_ms: Annotated[
        float | None,
        typer.Option("--latency-ms", help="The canary's median latency (default: stable's)."),
    ] = None,
    stable_error_rate: Annotated[
        float, typer.Option("--stable-error-rate", help="The stable version's error rate.")
    ] = 0.02,
    stable_latency_ms: Annotated[
        float, typer.Option("--stable-latency-ms", help="The stable version's median latency.")
    ] = 100.0,
    sigma: Annotated[float, typer.Option("--sigma", help="Lognormal sigma of latencies.")] = 0.5,
    interval: Annotated[
        float | None, typer.Option("--interval", help="Seconds between analyses (default: config).")
    ] = None,
    rollouts: Annotated[int, typer.Option("--rollouts", help="Simulated rollouts.")] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulated traffic.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """How often the canary policy aborts or promotes a canary like this, before you start one."""
    from core.deployments.canary_simulation import Scenario
    from core.deployments.canary_simulation import simulate as run
    from core.deployments.config import DeploymentConfig

    placeholder = {"model_id": "simulated", "version": "v0", "canary_deployment": True}
    if config_file is not None:  # the model is irrelevant here: only the canary keys matter
        config = DeploymentConfig.from_file(config_file, **placeholder)
    else:
        config = DeploymentConfig(**placeholder)
    config.validate()
    scenario = Scenario(
        rps=rps, stable_error_rate=stable_error_rate, stable_median_ms=stable_latency_ms,
        canary_error_rate=error_rate, canary_median_ms=latency_ms, latency_sigma=sigma,
        interval_s=interval,
    )  # fmt: skip
    with out.status(f"simulating {rollouts} rollouts"):
        result = run(config, scenario, rollouts, seed=seed)
    if as_json:
        print_json(result.to_dict())
    else:
        _render_simulation(result)


def _rate(k: int, n: int, interval: tuple[float, float]) -> str:
    return f"{k}/{n} = {k / n:.1%} (95% CI {interval[0]:.1%} to {interval[1]:.1%})"


def _render_simulation(r) -> None:
    sc = r.scenario
    out.print(
        f"{sc.rps:g} req/s, analysis every {_duration(r.interval_s)}, schedule "
        f"{_duration(r.planned_seconds)} to 100%; stable {sc.stable_error_rate:.2%} errors, "
        f"median {sc.stable_median_ms:g} ms; canary {sc.canary_errors:.2%} errors, "
        f"median {sc.canary_median:g} ms"
    )
    label = "false abort (canary = stable)" if sc.identical else "abort"
    out.print(f"{label}: {_rate(r.aborted, r.rollouts, r.abort_interval)}")
    if r.aborted:
        out.print(
            f"  before 50% of traffic: {_rate(r.aborted_below_50, r.rollouts, r.below_50_interval)}"
            f"; median time to abort {_duration(r.median_abort_s)}; by metric "
            + ", ".join(f"{k} {v}" for k, v in sorted(r.abort_metrics.items()))
        )
    if r.promoted:
        out.print(
            f"promoted: {r.promoted}/{r.rollouts}, median {_duration(r.median_promote_s)} "
            f"(max {_duration(r.max_promote_s)})"
        )
    if r.unfinished:
        out.print(f"[yellow]still running at twice the schedule: {r.unfinished}[/]")
