"""``nightscan token ...``: API tokens for the HTTP endpoint."""

from __future__ import annotations

from typing import Annotated

import typer

from nightscan_tui.console_io import local_time, out, print_json

app = typer.Typer(no_args_is_help=True)


@app.command("create")
def create(
    role: Annotated[str, typer.Option("--role", help="viewer, operator or admin.")],
    name: Annotated[str, typer.Option("--name", help="Who or what uses it (audit log).")] = "cli",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Create a token. It is printed once; only its hash is stored."""
    from core.auth import get_token_store

    info, token = get_token_store().create(role, name)
    if as_json:
        print_json({"id": info.id, "name": info.name, "role": info.role, "token": token})
        return
    out.print(f"token {info.id} ({info.role}, {info.name}); store it now, it is not shown again:")
    print(token)


@app.command("list")
def list_tokens(
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Tokens by id, with role and prefix (never the token)."""
    from core.auth import get_token_store

    tokens = get_token_store().list(include_revoked)
    if as_json:
        print_json([t.__dict__ for t in tokens])
        return
    from rich.table import Table

    table = Table("id", "name", "role", "prefix", "created", "revoked", header_style="bold")
    for t in tokens:
        table.add_row(
            str(t.id), t.name, t.role, t.prefix + "…", local_time(t.created_at),
            local_time(t.revoked_at) if t.revoked_at else "-",
        )  # fmt: skip
    out.print(table)


@app.command("revoke")
def revoke(token_id: Annotated[int, typer.Argument(help="The id from `token list`.")]) -> None:
    """Revoke a token; requests with it get 401 from now on."""
    from core.auth import get_token_store

    info = get_token_store().revoke(token_id)
    out.print(f"revoked token {info.id} ({info.name})")
