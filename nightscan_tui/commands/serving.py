"""``nightscan serve`` and ``nightscan predict``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nightscan_tui.console_io import out, print_json
from nightscan_tui.options import token_option


def serve(
    host: Annotated[str, typer.Option("--host", help="Bind address (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
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
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log", help="Print one line per HTTP request (uvicorn's)."
        ),
    ] = True,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=256,
            help="Serving processes sharing the port (default 1; keep workers x the "
            "deployments' resources.cpu within the cores).",
        ),
    ] = 1,
) -> None:
    """Run the HTTP inference endpoint (FastAPI on uvicorn) over this home's deployments.

    Prints a line per request (unless --no-access-log), per reconcile (this process starts or
    stops serving a version) and per event (canary steps, rollbacks, alerts, auto-stops).
    With --workers N, N processes serve the same port (see the README's "Scaling out")."""
    from core import configure, get_context

    if home is not None:
        configure(home)
    if workers > 1:
        _serve_workers(host, port, workers, insecure_open_predict, access_log)
        return
    from core.deployments import get_deployment_manager
    from core.server.runner import (
        announce_when_started,
        is_loopback,
        make_server,
        preload_inference_when_started,
    )
    from core.server.serve_log import ServeLog, served_here

    ctx = get_context()
    server = make_server(
        host, port, insecure_open_predict=insecure_open_predict, access_log=access_log
    )
    out.print(f"serving {ctx.settings.home} on http://{host}:{port}  (Ctrl+C stops)")
    if not is_loopback(host):
        out.print(f"[yellow]warning:[/] listening on {host}, reachable beyond this machine")
        if insecure_open_predict:
            out.print("[bold red]INSECURE:[/] /predict and /feedback take no token")
        else:
            out.print("/predict and /feedback need a token (nightscan token create viewer NAME)")
    manager = get_deployment_manager()
    lines = ServeLog(lambda: served_here(manager), _log_line).start()
    presence = announce_when_started(server, ctx.db)  # so CLIs on this home ask this server
    preload_inference_when_started(server)
    import signal

    # uvicorn re-raises SIGTERM once drained, under the handler it found: with the default one
    # the process would end before the flush below (SIGINT raises KeyboardInterrupt instead).
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server.run()
    finally:
        presence.stop()
        lines.stop()
        ctx.close()  # flushes the experiment result writer


def _serve_workers(
    host: str, port: int, workers: int, insecure_open_predict: bool, access_log: bool
) -> None:
    """The supervising parent: binds once, starts the workers, restarts the dead, and on
    SIGTERM/SIGINT stops them gracefully and waits."""
    import os
    import signal
    import threading

    from core import get_context
    from core.server.presence import ServerPresence
    from core.server.runner import is_loopback
    from core.server.serve_log import ServeLog
    from core.server.workers import WorkerPool, wait_until_accepting

    ctx = get_context()
    # The workers read the same home and database as this process, whatever chose them.
    os.environ["NIGHTSCAN_HOME"] = str(ctx.settings.home)
    os.environ["NIGHTSCAN_DATABASE_URL"] = ctx.settings.database_url
    pool = WorkerPool(host, port, workers, insecure_open_predict, access_log, on_line=_log_line)
    signal.signal(signal.SIGTERM, pool.request_stop)
    signal.signal(signal.SIGINT, pool.request_stop)
    pool.start()
    out.print(
        f"serving {ctx.settings.home} on {pool.url} with {workers} worker processes "
        f"(pids {', '.join(map(str, pool.pids()))}; Ctrl+C stops)"
    )
    if not is_loopback(host):
        out.print(f"[yellow]warning:[/] listening on {host}, reachable beyond this machine")
        if insecure_open_predict:
            out.print("[bold red]INSECURE:[/] /predict and /feedback take no token")
        else:
            out.print("/predict and /feedback need a token (nightscan token create viewer NAME)")
    lines = ServeLog(lambda: {}, _log_line).start()  # events once here, not once per worker
    presence = ServerPresence(ctx.db, pool.url)
    announced = threading.Event()

    def announce() -> None:
        if wait_until_accepting(pool.url, pool.stopping):
            presence.start()
            announced.set()

    announcer = threading.Thread(target=announce, name="server-announce", daemon=True)
    announcer.start()
    try:
        pool.watch()
    finally:
        pool.request_stop()
        announcer.join(10)
        if announced.is_set():
            presence.stop()  # first: no CLI should pick a server that is draining
        pool.stop()
        lines.stop()
        ctx.close()


def _log_line(line: str) -> None:
    # print, not Rich: a log line is never wrapped, and flushed at once for `| tee` and tests.
    print(line, flush=True)


def predict(
    file: Annotated[Path, typer.Argument(help="WAV, FLAC or OGG file.", metavar="FILE")],
    url: Annotated[
        str | None,
        typer.Option("--url", help="Send to a running server (e.g. http://127.0.0.1:8000)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="The running deployment that serves this version.", metavar="ID:VERSION"
        ),
    ] = None,
    experiment_id: Annotated[
        str | None,
        typer.Option("--experiment-id", help="Let this running A/B experiment pick the version."),
    ] = None,
    deployment_id: Annotated[
        str | None, typer.Option("--deployment-id", help="Send to this deployment.")
    ] = None,
    token: Annotated[
        str | None, token_option("API token, for a server that requires one on /predict.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="The /predict answer's JSON, in both modes.")
    ] = False,
) -> None:
    """Classify an audio file, through a server (--url) or in this process.

    Both modes print the same fields and exit with the same codes (see the README's table)."""
    from core.errors import NotFoundError, ValidationError

    chosen = [name for name, v in (("--model", model), ("--experiment-id", experiment_id),
                                   ("--deployment-id", deployment_id)) if v]  # fmt: skip
    if len(chosen) > 1:
        raise ValidationError(f"{' and '.join(chosen)} exclude each other: pick one target")
    if not file.is_file():
        raise NotFoundError(f"audio file not found: {file}")
    data = file.read_bytes()
    if url:
        result = _predict_remote(url, token, file.name, data, model, experiment_id, deployment_id)
    else:
        result = _predict_here(data, model, experiment_id, deployment_id)
    if as_json:
        print_json(result)
        return
    p = result["predictions"]
    variant = result["experiment_info"]["variant"] if result["experiment_info"] else None
    out.print(
        f"[bold]{p['predicted_class']}[/] ({p['confidence']:.1%})  model {result['model_version']}"
        + (f" (variant {variant})" if variant else "")
        + f"  {result['inference_time'] * 1000:.1f} ms  request {result['request_id']}",
        soft_wrap=True,
    )
    top = sorted(p["probabilities"].items(), key=lambda kv: -kv[1])
    out.print("  ".join(f"{k} {v:.3f}" for k, v in top))


def _predict_remote(url, token, name, data, model, experiment_id, deployment_id) -> dict:
    from core.prediction_client import deployment_serving
    from core.remote.client import ApiClient
    from core.remote.services import RemoteRegistry

    client = ApiClient(url, token, timeout_s=60.0)
    try:
        if model:
            deployment_id = deployment_serving(
                model, client.get("/deployments"), RemoteRegistry(client).exists
            )
        params = {"experiment_id": experiment_id, "deployment_id": deployment_id}
        # Error answers come back as the core exception the server raised: same exit codes.
        return client.post_file("/predict", name, data, params)
    finally:
        client.close()


def _predict_here(data: bytes, model, experiment_id, deployment_id) -> dict:
    import asyncio

    from core import get_model_registry
    from core.deployments import get_deployment_manager
    from core.prediction_client import deployment_serving, prediction_response

    mgr = get_deployment_manager()
    try:
        if model:
            infos = [i.to_dict() for i in mgr.list_deployments()]
            deployment_id = deployment_serving(model, infos, get_model_registry().exists)
        result = asyncio.run(
            mgr.run_inference(data, experiment_id=experiment_id, deployment_id=deployment_id)
        )
    finally:
        mgr.close()
    return prediction_response(result, experiment_id)
