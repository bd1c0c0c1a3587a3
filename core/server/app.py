"""The HTTP endpoint: FastAPI over the same core services as the CLI and the console.

``create_app()`` is the factory that ``nightscan serve``, the console's background server and the
tests share; it only wires: the lifespan (serving loop, experiment monitor), the error handlers
(``core.server.problems``) and one router per resource (``core.server.routers``). Every client
mistake is a 4xx with a ``detail``; a full queue is 503 + Retry-After.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

from fastapi import FastAPI

from core.deployments import DeploymentManager, get_deployment_manager
from core.server import problems
from core.server.body_limit import BodyLimit
from core.server.limits import AudioLimits, max_body_bytes_from_env
from core.server.request_body import max_upload_bytes
from core.server.routers import (
    canaries,
    deployments,
    events,
    experiments,
    health,
    models,
    oip,
    quality,
    serving,
    tokens,
)

# Read at each request (tests and operators may lower it live); $NIGHTSCAN_MAX_BODY_BYTES.
MAX_UPLOAD_BYTES = max_body_bytes_from_env()
TRUE = ("1", "true", "yes", "on")
EXPERIMENT_CHECK_S = 30.0


def create_app(
    manager: DeploymentManager | None = None,
    *,
    background: bool = True,
    interval_s: float = 1.0,
    require_predict_token: bool | None = None,
    audio_limits: AudioLimits | None = None,
) -> FastAPI:
    """The app; with ``background`` the serving loop (reconcile, health checks, autoscaling,
    snapshots, alerts) and the experiment monitor run while the app does. Shutdown drains
    queued requests. ``/predict`` and ``/feedback`` take a token only when
    ``require_predict_token`` (default: ``$NIGHTSCAN_REQUIRE_PREDICT_TOKEN``; a server bound
    beyond loopback always asks for one, see ``core.server.runner``)."""
    if require_predict_token is None:
        require_predict_token = os.environ.get("NIGHTSCAN_REQUIRE_PREDICT_TOKEN", "") in TRUE

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        mgr = manager or get_deployment_manager()
        app.state.manager = mgr  # what core.server.deps.get_manager hands to the routes
        import anyio

        await anyio.to_thread.run_sync(mgr.reconcile)  # restore deployments after a restart
        monitor = None
        if background:
            from core.experiments import ExperimentMonitor

            mgr.start_background(interval_s)
            monitor = ExperimentMonitor(interval=EXPERIMENT_CHECK_S).start()  # auto-stop, bandits
        try:
            yield
        finally:
            if monitor is not None:
                monitor.stop()
            # uvicorn has let in-flight requests finish; each acknowledged experiment result was
            # committed before its response, so draining the runtimes is all that is left.
            await anyio.to_thread.run_sync(mgr.close)

    app = FastAPI(
        title="NightScan Ops",
        version="0.1.0",
        description="Wildlife-sound inference with model versioning and A/B experiments.",
        lifespan=lifespan,
    )
    app.state.audio_limits = audio_limits or AudioLimits.from_env()
    app.state.require_predict_token = require_predict_token  # core.server.runner checks it
    app.add_middleware(BodyLimit, limit=max_upload_bytes)
    problems.install(app)
    app.include_router(serving.serving_router(require_predict_token), responses=problems.APP_ERRORS)
    for resource in (
        health,
        models,
        deployments,
        canaries,
        experiments,
        events,
        tokens,
        quality,
        oip,
    ):
        app.include_router(resource.router, responses=problems.APP_ERRORS)
    return app
