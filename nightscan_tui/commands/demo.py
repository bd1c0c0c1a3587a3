"""``nightscan demo``: seed a demo home if it is empty, then show what is in it."""

from __future__ import annotations

from nightscan_tui.console_io import out


def demo() -> None:
    """Seed the demo home (two trained versions, a deployment, a 70/30 experiment) and show it."""
    from core import get_context, get_model_registry
    from core.demo import DEMO_MODEL, seed_demo
    from nightscan_tui.render import comparison_table, models_table

    out.print(f"home: {get_context().settings.home}")
    with out.status("preparing the demo home") as status:
        seeded = seed_demo(on_step=lambda msg: status.update(msg))
    out.print("demo home seeded" if seeded else "demo home already seeded")
    registry = get_model_registry()
    models = registry.list_models(model_id=DEMO_MODEL)
    out.print(models_table(models, title="Registry", width=out.width))
    for m in models:
        out.print(f"{m.ref}  {m.file_size_bytes:,} bytes", highlight=False)
        out.print(f"  sha256:{m.checksum}", highlight=False, style="dim")
    out.print(
        comparison_table(registry.compare_models((DEMO_MODEL, "v2.0.0"), (DEMO_MODEL, "v2.1.0")))
    )
