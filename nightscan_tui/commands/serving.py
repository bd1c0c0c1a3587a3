"""``nightscan serve`` and ``nightscan predict``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nightscan_tui.console_io import out, print_json


def serve(
    host: Annotated[str, typer.Option("--host", help="Bind address (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    home: Annotated[
        Path | None, typer.Option("--home", help="State folder (overrides the global --home).")
    ] = None,
    insecure_open_predict: Annotated[
        bool,
        typer.Option(
            "--insecure-open-predict",
            help="Beyond loopback, serve /predict and /feedback WITHOUT tokens (anyone who can "
            "reach the port may send work).",
        ),
    ] = False,
) -> None:
    """Run the HTTP inference endpoint (FastAPI on uvicorn) over this home's deployments."""
    from core import configure, get_context

    if home is not None:
        configure(home)
    from core.server.runner import is_loopback, make_server

    server = make_server(host, port, insecure_open_predict=insecure_open_predict)
    server.config.log_level = "info"
    out.print(f"serving {get_context().settings.home} on http://{host}:{port}  (Ctrl+C stops)")
    if not is_loopback(host):
        out.print(f"[yellow]warning:[/] listening on {host}, reachable beyond this machine")
        if insecure_open_predict:
            out.print("[bold red]INSECURE:[/] /predict and /feedback take no token")
        else:
            out.print("/predict and /feedback need a token (nightscan token create viewer NAME)")
    server.run()
    get_context().close()  # flushes the experiment result writer


def predict(
    file: Annotated[Path, typer.Argument(help="WAV, FLAC or OGG file.", exists=False)],
    url: Annotated[
        str | None,
        typer.Option("--url", help="Send to a running server (e.g. http://127.0.0.1:8000)."),
    ] = None,
    experiment_id: Annotated[str | None, typer.Option("--experiment-id")] = None,
    deployment_id: Annotated[str | None, typer.Option("--deployment-id")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Classify an audio file, through a server (--url) or in this process."""
    from core.errors import NotFoundError, ValidationError

    if not file.is_file():
        raise NotFoundError(f"audio file not found: {file}")
    data = file.read_bytes()
    if url:
        import httpx

        params = {k: v for k, v in (("experiment_id", experiment_id),
                                    ("deployment_id", deployment_id)) if v}  # fmt: skip
        try:
            response = httpx.post(
                url.rstrip("/") + "/predict",
                params=params,
                files={"file": (file.name, data, "application/octet-stream")},
                timeout=60,
            )
        except httpx.HTTPError as exc:
            raise ValidationError(f"cannot reach {url}: {exc}") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text[:200]
            raise ValidationError(f"server answered {response.status_code}: {detail}")
        result = response.json()
    else:
        import asyncio

        from core.deployments import get_deployment_manager

        mgr = get_deployment_manager()
        result = asyncio.run(
            mgr.run_inference(data, experiment_id=experiment_id, deployment_id=deployment_id)
        )
        mgr.close()
    if as_json:
        print_json(result)
        return
    p = result["predictions"]
    out.print(
        f"[bold]{p['predicted_class']}[/] ({p['confidence']:.1%})  model {result['model_version']}"
        f"  {result['inference_time'] * 1000:.1f} ms  request {result['request_id']}"
    )
    top = sorted(p["probabilities"].items(), key=lambda kv: -kv[1])
    out.print("  ".join(f"{k} {v:.3f}" for k, v in top))
