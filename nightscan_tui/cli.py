"""The ``nightscan`` command. Command modules import ``core`` inside their functions, so
``nightscan --help`` never pays for SQLAlchemy or torch."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from nightscan_tui.commands import (
    audit,
    canary,
    demo,
    deployment,
    events,
    experiment,
    quality,
    registry,
    serving,
    synth,
    token,
    train,
)
from nightscan_tui.commands.tui import tui as tui_command
from nightscan_tui.console_io import err
from nightscan_tui.help_style import conventional_metavars


def _nightscan_error(exc: BaseException):
    """The NightScanError class if ``exc`` is one (without importing core when it is not)."""
    errors = sys.modules.get("core.errors")
    return errors is not None and isinstance(exc, errors.NightScanError)


class NightScanGroup(TyperGroup):
    """Turns a NightScanError anywhere below into one red line and its exit code."""

    def parse_args(self, ctx, args):
        # Here, not in __init__: Typer appends the completion options after building the group.
        conventional_metavars(self)
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if _nightscan_error(exc):
                err(str(exc))
                raise typer.Exit(exc.exit_code) from None
            raise


app = typer.Typer(
    cls=NightScanGroup,
    help="NightScan Ops: model registry, A/B experiments and serving for wildlife-sound models.",
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"nightscan {version('nightscan-ops')}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    _version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            envvar="NIGHTSCAN_HOME",
            help="State folder (database, artifacts). Default: $XDG_DATA_HOME/nightscan.",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="NIGHTSCAN_DATABASE_URL",
            help="SQLAlchemy URL; default: SQLite file in the home.",
        ),
    ] = None,
) -> None:
    # Through the environment, so core's lazy context and any child process agree.
    if home is not None:
        os.environ["NIGHTSCAN_HOME"] = str(home.expanduser().resolve())
    if database_url:
        os.environ["NIGHTSCAN_DATABASE_URL"] = database_url
    if ctx.invoked_subcommand is None:  # plain `nightscan` opens the console
        tui_command()


app.add_typer(registry.app, name="registry", help="Model versions: list, show, compare, promote.")
app.add_typer(experiment.app, name="experiment", help="A/B experiments: create, start, analyze.")
app.add_typer(
    deployment.app, name="deployment", help="Deployments: list, status, health, rollback."
)
app.command("deploy")(deployment.deploy)
app.add_typer(canary.app, name="canary", help="Canary rollouts: status, steer, simulate.")
app.command("serve")(serving.serve)
app.command("predict")(serving.predict)
app.command("train")(train.train)
app.command("synth")(synth.synth)
app.command("audit")(audit.audit)
app.command("events")(events.events)
app.command("quality")(quality.quality)
app.add_typer(token.app, name="token", help="API tokens: create, list, revoke.")
app.command("demo")(demo.demo)
app.command("tui")(tui_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
