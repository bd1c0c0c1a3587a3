"""``nightscan quality DEPLOYMENT`` (per version) or ``--experiment ID`` (per variant): model
quality from ground truth. Never imports torch: the numbers come from the quality counts."""

from __future__ import annotations

from typing import Annotated

import typer

from nightscan_tui.console_io import out, print_json


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ci(ci) -> str:
    return "" if ci is None else f" [{ci.low:.1%}, {ci.high:.1%}]"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _render(report) -> None:
    from rich.table import Table

    window = "all-time" if report.since is None else f"since {report.since:%Y-%m-%d %H:%M} UTC"
    scope = report.scope
    where = scope.deployment_id or f"experiment {scope.experiment_id}"
    if not report.groups:
        out.print(f"no predictions for {where} ({window})")
        return
    for g in report.groups:
        q, cov = g.quality, g.coverage
        kind = "variant " if scope.split_by == "variant" else ""
        out.print(f"\n[bold]{kind}{g.group}[/] in {where}, {window}")
        out.print(
            f"predictions {cov.predictions:,}, labelled {cov.labelled:,} "
            f"(coverage {_pct(cov.coverage)}{_ci(cov.coverage_ci)}), label delay mean "
            f"{_duration(cov.mean_delay_s)}, max {_duration(cov.max_delay_s)}",
            highlight=False,
        )
        out.print(
            f"accuracy = micro-F1 {_pct(q.accuracy)}{_ci(q.accuracy_ci)}   macro-F1 "
            f"{_pct(q.macro_f1)}{_ci(q.macro_f1_ci)}   ECE {_pct(g.calibration.ece)}",
            highlight=False,
        )
        if g.drift is not None:
            d = g.drift
            said = "no completed hour to judge yet"
            if d.verdict is not None:
                style = "bold red" if d.verdict.alarm else "green"
                said = f"[{style}]{d.verdict.reason}[/]"
            out.print(
                f"drift (last completed hour): {said}; reference: {d.reference}",
                highlight=False,
            )
        classes = Table(header_style="bold", box=None)
        for name in ("class", "support", "precision (95% CI)", "recall (95% CI)", "F1 (95% CI)"):
            classes.add_column(name, justify="left" if name == "class" else "right")
        for c in q.per_class:
            classes.add_row(
                c.label,
                f"{c.support:,}",
                _pct(c.precision) + _ci(c.precision_ci),
                _pct(c.recall) + _ci(c.recall_ci),
                _pct(c.f1) + _ci(c.f1_ci),
            )
        out.print(classes)
        matrix = Table(title="confusion (rows: true, columns: predicted)", box=None)
        matrix.add_column("")
        for label in q.labels:
            matrix.add_column(label, justify="right")
        for label, row in zip(q.labels, q.confusion, strict=True):
            matrix.add_row(label, *(f"{n:,}" for n in row))
        out.print(matrix)


def quality(
    deployment: Annotated[str | None, typer.Argument(help="A deployment id.")] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Only this version (V or MODEL:V).")
    ] = None,
    window: Annotated[
        str, typer.Option("--window", help="Rolling window: 30m, 1h, 7d ... or all.")
    ] = "all",
    experiment: Annotated[
        str | None,
        typer.Option("--experiment", help="Per variant of this A/B experiment instead."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The full report as JSON.")] = False,
) -> None:
    """Per-class precision, recall and F1 with intervals, the confusion matrix, calibration,
    label coverage and drift, from the feedback the server received."""
    from core.context import get_context
    from core.errors import NotFoundError, ValidationError
    from core.quality import service

    if (deployment is None) == (experiment is None):
        raise ValidationError("name a deployment, or an experiment with --experiment (not both)")
    if experiment is not None and version is not None:
        raise ValidationError("--version applies to a deployment; an experiment shows variants")
    span = service.parse_window(window)
    db = get_context().db
    if experiment is not None:
        report = service.quality_for_experiment(db, experiment, span)
    else:
        report = service.quality_for_deployment(db, deployment, version, span)
    if version is not None and not report.groups:
        raise NotFoundError(f"no predictions of version {version!r} in {deployment!r}")
    if as_json:
        print_json(service.jsonable(report))
    else:
        _render(report)
