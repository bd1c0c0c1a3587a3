"""The hostile requests of issue 11 at full size against ``nightscan serve`` (default limits) in
a subprocess: for each, the status, the server's peak RSS growth (psutil, sampled every 2 ms),
the request's wall time and /health latency (p50, p99, max) measured meanwhile by a second
client in its own process (a probe thread in the sending process would share its GIL, and the
client's own copies of a 100 MiB body would count as server stalls). Appends the table to
RESULTS.md.

    .venv/bin/python benchmarks/hostile_bench.py [--no-append]

Goals (issue 11): peak RSS growth <= 256 MB above the 64 MiB body limit for any single request;
/health p99 <= 50 ms while hostile requests run.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import psutil
import soundfile as sf
from machine import RESULTS, ROOT, cpu_model

sys.path.insert(0, str(ROOT / "tests" / "server"))
from hostile import send_chunked  # noqa: E402  (the raw-socket chunked sender the tests use)

MIB = 1024**2
SETUP = """
import sys, torch
from core import ModelMetadata, ModelStatus, configure, get_model_registry
from core.deployments import DeploymentConfig, get_deployment_manager
from inference.architectures import build_model
configure(sys.argv[1])
labels = ["owl", "hawk", "sparrow", "robin", "background"]
meta = ModelMetadata(model_id="wildlife_detector", version="v1.0.0", status=ModelStatus.VALIDATION,
                     architecture="small_cnn", training_config={"labels": labels})
get_model_registry().register_model(build_model("small_cnn", len(labels)), meta)
get_deployment_manager().deploy_model(DeploymentConfig(
    model_id="wildlife_detector", version="v1.0.0", deployment_id="wd_prod",
    max_audio_seconds=600.0))
"""


def flac(seconds: float, channels: int, sr: int) -> bytes:
    buffer = io.BytesIO()
    frames = int(seconds * sr)
    with sf.SoundFile(buffer, "w", sr, channels, format="FLAC") as fh:
        block = np.zeros((sr, channels), np.float32)
        for _ in range(frames // sr):
            fh.write(block)
    return buffer.getvalue()


def cases() -> list[tuple[str, callable]]:
    zeros = b'{"audio":[' + b"0," * (32 * MIB - 512) + b'0],"sample_rate":384000}'
    v2_big = (
        b'{"inputs":[{"name":"waveform","datatype":"FP32","shape":[1,100],"data":['
        + (b"0," * (50 * MIB))
        + b"0]}]}"
    )
    v2_id = b'{"id":"' + b"x" * (100 * MIB) + b'","inputs":[]}'
    mono_60s = b'{"audio":[' + b"0," * (23_040_000 - 1) + b'0],"sample_rate":384000}'
    flac8 = flac(59, 8, 384_000)
    flac120 = flac(120, 1, 384_000)
    multipart_head = (
        b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\n"
    )
    json_h = {"content-type": "application/json"}

    def post(path, body, headers):
        return lambda c, url: c.post(path, content=body, headers=headers).status_code

    def chunked(total):
        return lambda c, url: send_chunked(
            url, "/predict", "multipart/form-data; boundary=xx", b"\0" * 65536, total,
            multipart_head,
        )[0]  # fmt: skip

    def upload(name, data):
        return lambda c, url: (
            c.post("/predict", files={"file": (name, data, "audio/flac")}).status_code
        )

    v2 = "/v2/models/wildlife_detector/infer"
    return [
        ("no hostile request (1 s idle)", lambda c, url: time.sleep(1.0) or 0),
        (f"/predict JSON zeros, {len(zeros) / MIB:.1f} MiB", post("/predict", zeros, json_h)),
        (f"/predict JSON mono 60 s at 384 kHz ({len(mono_60s) / MIB:.0f} MiB)",
         post("/predict", mono_60s, json_h)),
        ("/predict multipart chunked 151 MiB", chunked(151 * MIB)),
        ("/predict multipart chunked 400 MiB", chunked(400 * MIB)),
        (f"/v2 infer JSON {len(v2_big) / MIB:.0f} MiB", post(v2, v2_big, json_h)),
        (f"/v2 infer id of {len(v2_id) / MIB:.0f} MiB", post(v2, v2_id, json_h)),
        (f"FLAC 8 ch 384 kHz 59 s ({len(flac8) // 1024} KB)", upload("a.flac", flac8)),
        (f"FLAC 1 ch 384 kHz 120 s ({len(flac120) // 1024} KB)", upload("b.flac", flac120)),
    ]  # fmt: skip


def probe_health(url: str, stop, out) -> None:
    """/health latencies (ms), polled every 5 ms until ``stop`` is set; runs in its own process."""
    health = []
    with httpx.Client(base_url=url, timeout=30) as c:
        while not stop.is_set():
            t = time.perf_counter()
            c.get("/health")
            health.append((time.perf_counter() - t) * 1000)
            time.sleep(0.005)
    out.send(health)


def measure(url: str, pid: int, send) -> dict:
    proc = psutil.Process(pid)
    base = proc.memory_info().rss
    peak, stop = base, threading.Event()
    ctx = multiprocessing.get_context("fork")
    probe_stop, (receiver, sender) = ctx.Event(), ctx.Pipe(duplex=False)
    prober = ctx.Process(target=probe_health, args=(url, probe_stop, sender), daemon=True)
    prober.start()  # forked before any thread of this process starts

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    time.sleep(0.5)
    started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=300) as client:
        status = send(client, url)
    wall = time.perf_counter() - started
    time.sleep(0.2)
    stop.set()
    probe_stop.set()
    health = receiver.recv()
    prober.join()
    sampler.join()
    ordered = sorted(health)
    return {
        "status": status,
        "growth_mb": (peak - base) / 1e6,
        "wall_s": wall,
        "health_p50": statistics.median(ordered),
        "health_p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "health_max": ordered[-1],
        "probes": len(ordered),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hostile-bench-") as tmp:
        home = Path(tmp) / "home"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "NIGHTSCAN_HOME": str(home)}
        env.pop("NIGHTSCAN_DATABASE_URL", None)
        subprocess.run([sys.executable, "-c", SETUP, str(home)], env=env, check=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(
            [sys.executable, "-m", "nightscan_tui.cli", "--home", str(home), "serve", "--port",
             str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(url + "/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not become ready")
                time.sleep(0.2)
            rows = []
            for name, send in cases():
                r = measure(url, server.pid, send)
                rows.append((name, r))
                print(f"{name:55s} {r['status']:4d} +{r['growth_mb']:7.1f} MB {r['wall_s']:6.2f} s"
                      f"  /health p50 {r['health_p50']:.1f} p99 {r['health_p99']:.1f} "
                      f"max {r['health_max']:.1f} ms ({r['probes']} probes)")  # fmt: skip
        finally:
            server.terminate()
            server.wait(30)
    if args.no_append:
        return
    command = "python benchmarks/hostile_bench.py " + " ".join(sys.argv[1:])
    lines = [
        f"| {n} | {r['status']} | {r['growth_mb']:.1f} | {r['wall_s']:.2f} | "
        f"{r['health_p50']:.1f} | {r['health_p99']:.1f} | {r['health_max']:.1f} |"
        for n, r in rows
    ]
    text = "\n".join([
        f"\n## Hostile requests, default limits ({datetime.now():%Y-%m-%d %H:%M})\n",
        f"`{command.strip()}` - nproc {os.cpu_count()}, {cpu_model()}, Python "
        f"{platform.python_version()}; `nightscan serve` in a subprocess (SQLite, small_cnn, body "
        "limit 64 MiB, 600 s / 8 channels / 24 Mi samples), one request at a time; RSS of the "
        "server process sampled every 2 ms; /health polled every 5 ms meanwhile from a separate "
        f"process; 1-minute load average {os.getloadavg()[0]:.2f} after (the machine is shared).\n",
        "| request | status | peak RSS growth MB | wall s | /health p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *lines, "",
    ])  # fmt: skip
    with RESULTS.open("a") as fh:
        fh.write(text)
    print(f"appended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
