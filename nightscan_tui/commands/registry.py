"""``nightscan registry ...``: list, show, compare, promote, register, tag, delete, verify."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from nightscan_tui.console_io import out, print_json

app = typer.Typer(no_args_is_help=True)

TABLE_PAGE = 50
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _registry():
    from core import get_model_registry

    return get_model_registry()


@app.command("list")
def list_models(
    model_id: Annotated[str | None, typer.Option("--model-id", help="Only this model.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="e.g. deployed.")] = None,
    tag: Annotated[str | None, typer.Option("--tag", help="Only versions with this tag.")] = None,
    framework: Annotated[str | None, typer.Option("--framework", help="e.g. pytorch.")] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=0, max=2**63 - 1, help="Rows to show (table default: 50)."),
    ] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Every matching row.")] = False,
    offset: Annotated[
        int, typer.Option("--offset", min=0, max=2**63 - 1, help="Rows to skip.")
    ] = 0,
    wide: Annotated[bool, typer.Option("--wide", help="Full checksums.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List registered model versions (by model, then semantic version).

    The table shows one page (50 rows) unless --limit or --all; --json returns every match."""
    from core.direct_reads import direct_reader

    filters = dict(model_id=model_id, status=status, tag=tag, framework=framework)
    if limit is None and not (as_json or show_all):
        limit = TABLE_PAGE
    with direct_reader() as reader:  # no SQLAlchemy when the database allows (cold start)
        registry = reader or _registry()
        models = registry.list_models(**filters, limit=limit, offset=offset)
        if as_json:
            print_json([m.to_dict() for m in models])
            return
        from nightscan_tui.render import models_table

        if not models:
            out.print("no model versions match")
            return
        out.print(models_table(models, wide=wide, width=out.width))
        total = registry.count_models(**filters)
    if total > offset + len(models):
        out.print(
            f"[dim]rows {offset + 1}-{offset + len(models)} of {total}; "
            f"--offset {offset + len(models)} for the next page, --all for every row[/]"
        )


@app.command("show")
def show(ref: Annotated[str, typer.Argument(help="MODEL_ID:VERSION")], as_json: JsonOpt = False):
    """One version: metadata, metrics, training config and status history."""
    from core import get_model_registry, parse_model_ref

    registry = get_model_registry()
    model_id, version = parse_model_ref(ref)
    meta = registry.get_model(model_id, version)
    history = registry.status_history(model_id, version)
    if as_json:
        data = meta.to_dict()
        data["status_history"] = [
            {
                "from_status": h.from_status.value if h.from_status else None,
                "to_status": h.to_status.value,
                "at": h.at.isoformat(),
                "actor": h.actor,
                "reason": h.reason,
            }
            for h in history
        ]
        print_json(data)
        return
    from nightscan_tui.render import model_detail

    out.print(model_detail(meta, history))


@app.command("compare")
def compare(
    a: Annotated[str, typer.Argument(help="MODEL_ID:VERSION (baseline)")],
    b: Annotated[str, typer.Argument(help="MODEL_ID:VERSION (candidate)")],
    as_json: JsonOpt = False,
) -> None:
    """Metric differences of B against A; positive improvement means B is better."""
    from core import get_model_registry, parse_model_ref

    result = get_model_registry().compare_models(parse_model_ref(a), parse_model_ref(b))
    if as_json:
        print_json(result)
        return
    from nightscan_tui.render import comparison_table

    out.print(comparison_table(result))


@app.command("promote")
def promote(
    ref: Annotated[str, typer.Argument(help="MODEL_ID:VERSION")],
    status: Annotated[str, typer.Argument(help="Target status, e.g. testing, deployed, retired.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit log.")] = "",
) -> None:
    """Move a version along its lifecycle."""
    from core import get_model_registry, parse_model_ref

    meta = get_model_registry().update_status(*parse_model_ref(ref), status, reason=reason)
    out.print(f"{meta.ref} is now [bold]{meta.status.value.upper()}[/]")


@app.command("register")
def register(
    weights: Annotated[Path, typer.Option("--weights", help=".safetensors or state-dict .pt")],
    ref: Annotated[str, typer.Argument(help="MODEL_ID:VERSION")],
    architecture: Annotated[
        str, typer.Option("--architecture", help="small_cnn, resnet18 or package.module:factory")
    ] = "small_cnn",
    labels: Annotated[
        str | None, typer.Option("--labels", help="Comma-separated class labels, in output order.")
    ] = None,
    metadata_file: Annotated[
        Path | None,
        typer.Option("--metadata", help="JSON with any ModelMetadata fields (name, metrics...)."),
    ] = None,
    status: Annotated[
        str, typer.Option("--status", help="Status to register with.")
    ] = "validation",
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")] = None,
) -> None:
    """Register a weights file under MODEL_ID:VERSION."""
    from core import ModelMetadata, ValidationError, get_model_registry, parse_model_ref

    model_id, version = parse_model_ref(ref)
    extra: dict = {}
    if metadata_file is not None:
        try:
            extra = json.loads(metadata_file.read_text())
        except (OSError, ValueError) as exc:
            raise ValidationError(f"cannot read metadata file {metadata_file}: {exc}") from None
        if not isinstance(extra, dict):
            raise ValidationError(f"{metadata_file} must hold a JSON object")
    known = set(ModelMetadata.__dataclass_fields__) - {"model_id", "version", "checksum"}
    unknown = set(extra) - known
    if unknown:
        raise ValidationError(f"unknown metadata fields: {', '.join(sorted(unknown))}")
    if "created_at" in extra:
        extra["created_at"] = datetime.fromisoformat(extra["created_at"])
    training_config = dict(extra.pop("training_config", {}) or {})
    if labels:
        training_config["labels"] = [x.strip() for x in labels.split(",") if x.strip()]
    meta = ModelMetadata(
        model_id=model_id,
        version=version,
        architecture=extra.pop("architecture", architecture),
        status=extra.pop("status", status),
        training_config=training_config,
        tags=list(tag or []) + list(extra.pop("tags", [])),
        **extra,
    )
    get_model_registry().register_weights_file(weights, meta)
    out.print(f"registered {meta.ref}  sha256:{meta.checksum}  {meta.file_size_bytes} bytes")


@app.command("tag")
def tag(
    ref: Annotated[str, typer.Argument(help="MODEL_ID:VERSION")],
    add: Annotated[list[str] | None, typer.Option("--add", help="Tag to add (repeatable).")] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="Tag to remove (repeatable).")
    ] = None,
) -> None:
    """Add or remove tags."""
    from core import get_model_registry, parse_model_ref

    meta = get_model_registry().set_tags(*parse_model_ref(ref), add=add or [], remove=remove or [])
    out.print(f"{meta.ref} tags: {', '.join(meta.tags) or '-'}")


@app.command("delete")
def delete(
    ref: Annotated[str, typer.Argument(help="MODEL_ID:VERSION")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Delete a version that is not deployed."""
    from core import get_model_registry, parse_model_ref

    model_id, version = parse_model_ref(ref)
    if not yes:
        typer.confirm(f"delete {model_id}:{version}?", abort=True)
    get_model_registry().delete_model(model_id, version)
    out.print(f"deleted {model_id}:{version}")


@app.command("verify")
def verify(ref: Annotated[str, typer.Argument(help="MODEL_ID:VERSION")]) -> None:
    """Re-hash the stored weights and compare with the registered checksum (with blobs in the
    database: the database blob, then this host's cache, fetched again if wrong)."""
    from core import get_model_registry, parse_model_ref

    model_id, version = parse_model_ref(ref)
    checked = get_model_registry().verify_weights(model_id, version)
    where = ""
    if checked.get("store") == "database":
        where = f"  database blob ok, cache {checked['cache']}"
    out.print(f"{model_id}:{version} ok  sha256:{checked['checksum']}{where}")


@app.command("history")
def history(
    model_id: Annotated[str, typer.Argument(help="Model id.")],
    at: Annotated[
        str | None, typer.Option("--at", help="ISO time: which versions were DEPLOYED then.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Status changes of every version of a model, or what was deployed at a time."""
    from core import ValidationError, get_model_registry

    registry = get_model_registry()
    if at is not None:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            raise ValidationError(
                f"--at wants an ISO time like 2026-11-26T12:00, got {at!r}"
            ) from None
        versions = registry.deployed_at(model_id, when)
        if as_json:
            print_json({"model_id": model_id, "at": when.isoformat(), "deployed": versions})
        else:
            out.print(f"deployed at {when.isoformat()}: {', '.join(versions) or 'none'}")
        return
    changes = registry.status_history(model_id)
    if as_json:
        print_json(
            [
                {
                    "version": c.version,
                    "from_status": c.from_status.value if c.from_status else None,
                    "to_status": c.to_status.value,
                    "at": c.at.isoformat(),
                    "actor": c.actor,
                    "reason": c.reason,
                }
                for c in changes
            ]
        )
        return
    from rich.table import Table

    from nightscan_tui.console_io import local_time

    table = Table("time", "version", "from", "to", "actor", "reason", header_style="bold")
    for c in changes:
        table.add_row(
            local_time(c.at),
            c.version,
            c.from_status.value.upper() if c.from_status else "-",
            c.to_status.value.upper(),
            c.actor,
            c.reason,
        )
    out.print(table)
