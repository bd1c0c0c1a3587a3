"""``nightscan canary ...``: watch and steer canary rollouts (start one with
``nightscan deploy MODEL VERSION --deployment-id ID --canary --traffic 5``)."""

from __future__ import annotations

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
            f"weight; next analysis in {_duration(s['next_analysis_in_s'])}",
        )
    rate = "-" if s["success_rate"] is None else f"{s['success_rate']:.0%}"
    grid.add_row(
        "checks",
        f"{s['passes']} pass, {s['fails']} fail, {s['inconclusive']} inconclusive at this "
        f"weight (success {rate}, needs {s['success_threshold']:.0%}); "
        f"{s['consecutive_failures']}/{s['failure_threshold']} consecutive failures abort",
    )
    last = s.get("last_verdict")
    if last:
        grid.add_row("last verdict", f"{_verdict(last['verdict'])} {last['reason']}")
        for check in last.get("checks", []):
            p = check.get("adjusted_p")
            numbers = (
                f"stable {check['stable']:.4g}, canary {check['canary']:.4g}, p={p:.3g}"
                if check.get("stable") is not None and p is not None
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
