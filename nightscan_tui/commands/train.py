"""``nightscan train``: train on the synthetic calls, evaluate, register."""

from __future__ import annotations

from typing import Annotated

import typer

from nightscan_tui.console_io import out


def train(
    model_id: Annotated[str, typer.Option("--model-id", help="Model to register under.")],
    version: Annotated[str, typer.Option("--version", help="e.g. v2.1.0")],
    architecture: Annotated[
        str, typer.Option("--architecture", help="small_cnn, resnet18 or package.module:factory")
    ] = "small_cnn",
    epochs: Annotated[
        int | None,
        typer.Option("--epochs", min=1, help="Training epochs (default: the trainer's)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for data and weights.")] = 0,
    samples_per_class: Annotated[
        int | None, typer.Option("--samples-per-class", min=10, help="Synthetic clips per class.")
    ] = None,
    status: Annotated[
        str, typer.Option("--status", help="Status to register with.")
    ] = "validation",
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")] = None,
) -> None:
    """Train a classifier on synthetic wildlife calls and register it with held-out metrics."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from core.training import train_and_register

    with Progress(
        TextColumn("[bold]training[/] {task.description}"),
        BarColumn(),
        TextColumn("epoch {task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        console=out,
        transient=False,
    ) as progress:
        task = progress.add_task(f"{model_id}:{version}", total=None, loss="-")

        def on_epoch(epoch: int, total: int, loss: float) -> None:
            progress.update(task, completed=epoch, total=total, loss=f"{loss:.4f}")

        meta = train_and_register(
            model_id,
            version,
            architecture=architecture,
            epochs=epochs,
            seed=seed,
            samples_per_class=samples_per_class,
            status=status,
            tags=tag,
            on_epoch=on_epoch,
        )
    metrics = "  ".join(f"{k} {v:.3f}" for k, v in sorted(meta.metrics.items()))
    out.print(f"registered {meta.ref}  {metrics}")
    out.print(f"sha256:{meta.checksum}  {meta.file_size_bytes} bytes")
