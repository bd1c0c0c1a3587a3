"""``nightscan demo``: seed a demo home if it is empty, then open the console with live traffic."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from nightscan_tui.console_io import out


def demo(
    console: Annotated[
        bool,
        typer.Option(
            "--console/--no-console",
            help="Open the console with a live server and traffic (default: when on a terminal).",
        ),
    ] = sys.stdout.isatty(),
    port: Annotated[int, typer.Option("--port", help="Demo server port (0: any free one).")] = 0,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            help="Start over: remove the demo home's database and weights, then seed it again.",
        ),
    ] = False,
) -> None:
    """Seed a demo home and open the console with live traffic.

    The demo home holds two trained versions, a production deployment and a running 70/30
    experiment; the inference server, a traffic simulator and the experiment monitor run in the
    background while the console is open."""
    from core import get_context, get_model_registry
    from core.demo import DEMO_MODEL, DemoServices, reset_demo_home, seed_demo
    from nightscan_tui.render import comparison_table, models_table

    if reset:
        out.print(f"demo home {reset_demo_home()} cleared; seeding it afresh")
    out.print(f"home: {get_context().settings.home}")
    with out.status("preparing the demo home") as status:
        seeded = seed_demo(on_step=lambda msg: status.update(msg))
    out.print("demo home seeded" if seeded else "demo home already seeded")
    if console:
        from nightscan_tui.app import run_console

        run_console(services=DemoServices(port=port))
        out.print("console closed; demo services stopped")
        return
    registry = get_model_registry()
    models = registry.list_models(model_id=DEMO_MODEL)
    out.print(models_table(models, title="Registry", width=out.width))
    for m in models:
        out.print(f"{m.ref}  {m.file_size_bytes:,} bytes", highlight=False)
        out.print(f"  sha256:{m.checksum}", highlight=False, style="dim")
    out.print(
        comparison_table(registry.compare_models((DEMO_MODEL, "v2.0.0"), (DEMO_MODEL, "v2.1.0")))
    )
