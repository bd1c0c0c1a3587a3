"""`nightscan serve --workers 2`: two real worker processes behind one port, under a parent that
binds it. Both answer; /metrics of either shows the host's totals; feedback answered by the
other worker joins its prediction; a worker killed with -9 is restarted and reported; SIGTERM
to the parent drains both, so every acknowledged prediction is in the log."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import psutil
import soundfile as sf
from model_helpers import register_version
from serve_process import Served
from sqlmodel import col, select

from core import get_context
from core.auth import get_token_store
from core.deployments import DeploymentConfig, get_deployment_manager
from core.deployments.sections import CanaryConfig
from core.events import recent_events
from core.server.presence import live_servers
from core.server.workers import WORKER_HEADER
from data.canary_tables import CanarySampleRow
from data.deployment_tables import PredictionRow
from inference.synthetic import generate_call

DEP = "wd_prod"

MAX_REQUESTS = 400  # bounds every "until both answered" loop


def call_wav() -> bytes:
    samples = generate_call("owl", np.random.default_rng(0), sample_rate=22_050, seconds=1.0)
    buffer = io.BytesIO()
    sf.write(buffer, samples, 22_050, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def fresh(method: str, url: str, **kwargs) -> httpx.Response:
    """One request on a new connection, so the kernel may hand it to either worker."""
    with httpx.Client(timeout=120) as client:
        return client.request(method, url, **kwargs)


def predict_body(url: str, wav: bytes) -> tuple[dict, int]:
    r = fresh("POST", f"{url}/predict", files={"file": ("call.wav", wav, "audio/wav")})
    assert r.status_code == 200, r.text
    return r.json(), int(r.headers[WORKER_HEADER])


def predict(url: str, wav: bytes) -> tuple[str, int]:
    body, pid = predict_body(url, wav)
    return body["request_id"], pid


def predict_until(url: str, wav: bytes, wanted: set[int], acked: dict[str, int]) -> None:
    """Predictions, 4 at a time, until every pid in ``wanted`` answered one."""
    seen: set[int] = set()
    with ThreadPoolExecutor(4) as pool:
        while not wanted <= seen:
            assert len(acked) < MAX_REQUESTS, f"only {seen} answered, wanted {wanted}"
            for request_id, pid in pool.map(lambda _: predict(url, wav), range(8)):
                acked[request_id] = pid
                seen.add(pid)


def ok_requests(metrics_text: str) -> float:
    pattern = re.compile(r'^nightscan_requests_total\{[^}]*status="ok"[^}]*\} (\S+)$', re.M)
    return sum(float(v) for v in pattern.findall(metrics_text))


def metrics_from_every_worker(url: str, pids: set[int]) -> dict[int, float]:
    totals: dict[int, float] = {}
    for _ in range(MAX_REQUESTS):
        r = fresh("GET", f"{url}/metrics")
        assert r.status_code == 200
        totals[int(r.headers[WORKER_HEADER])] = ok_requests(r.text)
        if pids <= set(totals):
            return totals
    raise AssertionError(f"/metrics answered only by {set(totals)}, wanted {pids}")


def logged(request_ids) -> dict[str, PredictionRow]:
    with get_context().db.session() as session:
        rows = session.exec(
            select(PredictionRow).where(col(PredictionRow.request_id).in_(list(request_ids)))
        ).all()
    return {r.request_id: r for r in rows}


def cross_worker_feedback(url: str, acked: dict[str, int]) -> tuple[str, int, int]:
    """Feedback for predictions until one is answered by another worker than its prediction."""
    for request_id, predicted_by in acked.items():
        deadline = time.monotonic() + 30
        while True:  # the other worker finds it in the table once the answerer flushed
            r = fresh("POST", f"{url}/feedback", json={"request_id": request_id,
                                                        "true_label": "owl"})  # fmt: skip
            if r.status_code != 404 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.status_code == 200, r.text
        assert r.json()["request_id"] == request_id
        answered_by = int(r.headers[WORKER_HEADER])
        if answered_by != predicted_by:
            return request_id, predicted_by, answered_by
    raise AssertionError("every feedback went to the worker that made the prediction")


def test_two_workers_share_the_port_and_the_totals(ctx) -> None:
    register_version("wd", "v1.0.0")
    register_version("wd", "v2.0.0", seed=1)
    _info, token = get_token_store().create("operator", "ops")
    auth = {"Authorization": f"Bearer {token}"}
    get_deployment_manager().deploy_model(
        DeploymentConfig(model_id="wd", version="v1.0.0", deployment_id=DEP)
    )
    wav = call_wav()
    server = Served("--workers", "2", "--no-access-log")
    acked: dict[str, int] = {}
    try:
        server.wait_until_announced()
        first = server.workers()
        assert len(first) == 2, server.log()

        # Both workers answer /predict, and /ready (their own health checks passed).
        predict_until(server.url, wav, first, acked)
        ready = {}
        for _ in range(MAX_REQUESTS):
            r = fresh("GET", f"{server.url}/ready")
            ready[int(r.headers[WORKER_HEADER])] = r.json()
            if first <= set(ready):
                break
        for body in ready.values():
            assert body["status"] == "ready"
            assert body["deployments"][0]["deployment_id"] == DEP

        # An operator's health check is answered by a real probe in either worker.
        checked: set[int] = set()
        for _ in range(MAX_REQUESTS):
            r = fresh("POST", f"{server.url}/deployments/{DEP}/health", headers=auth)
            assert r.status_code == 200 and r.json()["healthy"] is True, r.text
            checked.add(int(r.headers[WORKER_HEADER]))
            if first <= checked:
                break
        assert first <= checked

        # Either worker's /metrics counts the host's requests.
        assert metrics_from_every_worker(server.url, first) == dict.fromkeys(first, len(acked))

        # A console on this home sees each worker apart and their sum (their snapshots).
        tracker = get_deployment_manager().performance_tracker
        deadline = time.monotonic() + 60
        while True:
            apart = tracker.by_process(DEP)
            counted = sum(m.requests_in_window for m in apart.values())
            if {int(key.rsplit(":", 1)[1]) for key in apart} >= first and counted == len(acked):
                break
            assert time.monotonic() < deadline, (apart, len(acked))
            time.sleep(0.5)
        assert tracker.get_current_metrics(DEP).requests_in_window == len(acked)

        # Feedback reaching the other worker joins the prediction through the database.
        request_id, predicted_by, answered_by = cross_worker_feedback(server.url, acked)
        assert predicted_by != answered_by
        assert logged([request_id])[request_id].true_label == "owl"

        # kill -9: the parent restarts the worker and says so; the dead one's counts remain.
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not (found := recent_events(kind="server.worker_restarted")):
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.2)
        event = found[0]
        assert event.data["old_pid"] == victim and event.severity == "warning"
        replacement = event.data["new_pid"]
        second = (first - {victim}) | {replacement}
        assert server.workers() == second
        predict_until(server.url, wav, second, acked)
        assert metrics_from_every_worker(server.url, second) == dict.fromkeys(second, len(acked))

        # A canary at 50 %: both workers serve it and count its arms in canary_sample.
        get_deployment_manager().deploy_model(
            DeploymentConfig(model_id="wd", version="v2.0.0", deployment_id=DEP,
                             canary_deployment=True,
                             canary=CanaryConfig(steps=(50, 100), step_seconds=3600))
        )  # fmt: skip
        canary_by: set[int] = set()
        with ThreadPoolExecutor(4) as pool:
            while not second <= canary_by:
                assert len(acked) < 2 * MAX_REQUESTS, f"canary answered only by {canary_by}"
                for body, pid in pool.map(lambda _: predict_body(server.url, wav), range(8)):
                    acked[body["request_id"]] = pid
                    if body["model_version"].endswith("v2.0.0"):
                        canary_by.add(pid)

        # SIGTERM while requests are in flight: whatever was acknowledged is logged.
        def burst() -> None:
            try:
                request_id, pid = predict(server.url, wav)
                acked[request_id] = pid
            except (httpx.HTTPError, AssertionError):
                pass  # refused once shutting down: not acknowledged, so not counted

        threads = [threading.Thread(target=burst) for _ in range(12)]
        for t in threads:
            t.start()
        time.sleep(0.05)
        server.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(120)
        assert server.proc.wait(timeout=150) == 0, server.log()
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()
    for pid in second:  # the workers stopped with their parent
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    rows = logged(acked)
    assert set(rows) == set(acked), f"{len(acked) - len(rows)} acknowledged predictions lost"
    assert live_servers(get_context().db) == []

    # Every request either worker answered during the canary is in its tallies, per arm.
    canary_id = next(r.canary_id for r in rows.values() if r.canary_id is not None)
    logged_arms = Counter(r.canary_arm for r in rows.values() if r.canary_id == canary_id)
    with get_context().db.session() as session:
        samples = session.exec(
            select(CanarySampleRow).where(CanarySampleRow.canary_id == canary_id)
        ).all()
    tallied = Counter()
    for sample in samples:
        tallied[sample.arm] += sample.requests
    assert tallied == logged_arms and set(tallied) == {"stable", "canary"}
    canary_pids = {acked[r.request_id] for r in rows.values() if r.canary_id == canary_id}
    assert second <= canary_pids
    assert "Traceback" not in server.log(), server.log()
    assert "warning    worker" not in server.log(), server.log()  # each stopped cleanly, flushed


def test_one_process_stops_cleanly_on_sigterm(sqlite_ctx) -> None:
    """Without --workers too: SIGTERM (systemd, docker stop) drains and withdraws the server
    instead of ending the process before its flush."""
    register_version("wd", "v1.0.0")
    get_deployment_manager().deploy_model(
        DeploymentConfig(model_id="wd", version="v1.0.0", deployment_id=DEP)
    )
    server = Served("--no-access-log")
    try:
        server.wait_until_announced()
        wav = call_wav()
        r = fresh("POST", f"{server.url}/predict", files={"file": ("call.wav", wav, "audio/wav")})
        assert r.status_code == 200 and WORKER_HEADER not in r.headers  # one process: no header
        request_id = r.json()["request_id"]
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=120) == 0, server.log()
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()
    assert live_servers(get_context().db) == []
    assert request_id in logged([request_id])


def test_a_busy_port_is_one_line_and_an_exit_code(sqlite_ctx) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "nightscan_tui.cli", "serve", "--port", str(port),
             "--workers", "2"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert proc.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
