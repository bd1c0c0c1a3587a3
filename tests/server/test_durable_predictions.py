"""NIGHTSCAN_DURABLE_PREDICTIONS=1 on a real `nightscan serve --workers 2`: every prediction that
was answered is in the prediction table even when the whole server is killed with -9 right after
the answers (without it, up to the last 0.5 s of them would be lost)."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor

import psutil
from model_helpers import register_version
from serve_process import Served
from test_serve_workers import call_wav, logged, predict

from core.deployments import DeploymentConfig, get_deployment_manager
from core.deployments.prediction_log import DURABLE_ENV


def test_answered_predictions_survive_kill_9(sqlite_ctx, monkeypatch) -> None:
    monkeypatch.setenv(DURABLE_ENV, "1")
    register_version("wd", "v1.0.0")
    get_deployment_manager().deploy_model(
        DeploymentConfig(model_id="wd", version="v1.0.0", deployment_id="wd_prod")
    )
    wav = call_wav()
    server = Served("--workers", "2", "--no-access-log")
    try:
        server.wait_until_announced()
        with ThreadPoolExecutor(4) as pool:
            answered = [
                rid for rid, _pid in pool.map(lambda _: predict(server.url, wav), range(24))
            ]
        everyone = [server.proc.pid, *server.workers()]
        for pid in everyone:  # the whole host at once: nothing gets to flush
            os.kill(pid, signal.SIGKILL)
        for pid in everyone:
            try:
                psutil.Process(pid).wait(timeout=30)
            except psutil.NoSuchProcess:
                pass
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
        server.proc.wait()
    assert len(set(answered)) == 24
    assert set(logged(answered)) == set(answered)
