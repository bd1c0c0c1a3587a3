"""``nightscan serve`` side by side with LitServe and TorchServe (issue 13), driven by ``hey``.

The same weights (one ``torch.manual_seed(0)`` model per architecture, registered in a fresh
NightScan home and saved as a state dict for the peers), the same 1 s WAV sent as the same
multipart body (field ``file``) to every server, and the same decoding and model code: the
peers' handlers (``benchmarks/peer_servers/``) call ``inference.audio`` and
``inference.architectures`` like the runtime does. Every server, and ``hey``, runs in a session
of its own: with the kernel's autogroup scheduling (``/proc/sys/kernel/sched_autogroup_enabled``)
CPU time on a busy host is shared per session, so a server sharing this script's session would
get less of it than one in its own (``nightscan serve --workers N`` starts each worker in its own
session, so N workers get N shares). Every server of a model is started once,
then the rounds alternate between them (c=1, then c=32, server after server), so background
load on this shared machine hits all alike. Ratios are taken within each round.

    .venv/bin/python benchmarks/peer_serving_bench.py [--models small_cnn,resnet18]
        [--servers nightscan,litserve,torchserve] [--workers 1] [--rounds 2]
        [--concurrency 1,32] [--seconds 5] [--peer-venv /tmp/peer-venv] [--setup-peer-venv]
        [--baseline-src DIR] [--no-append]

LitServe and TorchServe are benchmark peers, never project dependencies: they live in their
own virtual environment (``--setup-peer-venv`` creates it with the CPU torch pinned by
constraints.txt; TorchServe needs Java 11+). ``hey`` is the Debian package of the same name.

Goals (issue 13), at concurrency 32: >= 1.2 x LitServe and >= 1.5 x TorchServe req/s with a
p95 no worse than LitServe's, >= 0.8 of the in-process ceiling with ResNet-18; p50 at
concurrency 1 within 2 ms of one forward pass.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from machine import RESULTS, ROOT, cpu_model

LABELS = ["owl", "hawk", "sparrow", "robin", "background"]
PEERS = ROOT / "benchmarks" / "peer_servers"
BOUNDARY = "nightscanpeerbenchboundary7MA4YWxkTrZu0gW"
PEER_PACKAGES = ["torch==2.13.0", "litserve", "torchserve", "torch-model-archiver",
                 "python-multipart", "numpy", "soundfile", "scipy"]  # fmt: skip


# ---- setup ----------------------------------------------------------------------------------


def setup_peer_venv(venv: Path) -> None:
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-c",
         str(ROOT / "constraints.txt"), *PEER_PACKAGES],
        check=True,
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_body(work: Path) -> tuple[Path, bytes]:
    """The 1 s WAV of a synthetic owl call, wrapped in one multipart body (field ``file``)."""
    import numpy as np

    from inference.synthetic import generate_call, write_wav

    wav = work / "clip.wav"
    write_wav(wav, generate_call("owl", np.random.default_rng(0)))
    data = wav.read_bytes()
    body = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="clip.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    path = work / "body.multipart"
    path.write_bytes(body)
    return path, data


def seed(work: Path, arch: str, args: argparse.Namespace) -> tuple[Path, Path, Any]:
    """A NightScan home serving the model, and the same weights as a state dict for the peers."""
    import torch

    from core import ModelMetadata, ModelStatus, context, get_model_registry
    from core.deployments import DeploymentConfig, get_deployment_manager
    from inference.architectures import build_model

    home = work / f"home-{arch}"
    ctx = context.configure(home)
    torch.manual_seed(0)
    model = build_model(arch, len(LABELS)).eval()
    get_model_registry().register_model(
        model,
        ModelMetadata(model_id=f"bench_{arch}", version="v1.0.0", architecture=arch,
                      status=ModelStatus.VALIDATION, training_config={"labels": LABELS}),
    )  # fmt: skip
    batching = {"max_batch_size": args.max_batch_size,
                "max_batch_delay_ms": args.nightscan_delay_ms}  # fmt: skip
    get_deployment_manager().deploy_model(
        DeploymentConfig(model_id=f"bench_{arch}", version="v1.0.0", deployment_id=f"bench_{arch}",
                         resources={"cpu": args.cpu}, batching=batching)
    )  # fmt: skip
    ctx.close()
    weights = work / f"{arch}.pt"
    torch.save(model.state_dict(), weights)
    spec = work / f"spec-{arch}.json"
    spec.write_text(json.dumps({"architecture": arch, "labels": LABELS, "weights": str(weights),
                                "root": str(ROOT), "threads": args.peer_threads}))  # fmt: skip
    return home, spec, model


# ---- the servers ----------------------------------------------------------------------------


@dataclass
class Server:
    name: str  # the row label, e.g. "nightscan (1 worker)"
    url: str  # POST target
    ready_url: str
    procs: list[subprocess.Popen] = field(default_factory=list)
    log: Path | None = None
    own_session: bool = False  # a peer: stopped with its whole process group (Java, workers)

    def wait_ready(self, timeout_s: float = 240) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise SystemExit(f"{self.name} exited with {p.returncode}; see {self.log}")
            try:
                if httpx.get(self.ready_url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"{self.name} was not ready in {timeout_s:.0f} s; see {self.log}")

    def _signal(self, p: subprocess.Popen, sig: int) -> None:
        try:
            if self.own_session:
                os.killpg(p.pid, sig)
            elif p.poll() is None:
                p.send_signal(sig)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        for p in self.procs:
            self._signal(p, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                self._signal(p, signal.SIGKILL)
                p.wait()
            if self.own_session:  # children that outlived the leader (LitServe's workers)
                time.sleep(1)
                self._signal(p, signal.SIGKILL)


def start_nightscan(home: Path, work: Path, workers: int, src: Path | None = None) -> Server:
    """``nightscan serve`` from this checkout, or from another source tree ``src`` (a baseline:
    ``git archive COMMIT | tar -x -C DIR``) run with this virtual environment."""
    port = free_port()
    log = work / f"nightscan-{home.name}-{workers}{'-baseline' if src else ''}.log"
    root = src or ROOT
    proc = subprocess.Popen(
        [sys.executable, "-m", "nightscan_tui.cli", "--home", str(home), "serve", "--port",
         str(port), "--workers", str(workers), "--no-access-log"],
        env={**os.environ, "PYTHONPATH": str(root)}, cwd=root,
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    label = f"nightscan{'@baseline' if src else ''} ({workers} worker{'s' if workers > 1 else ''})"
    return Server(label, url + "/predict", url + "/ready", [proc], log=log)


def start_litserve(venv: Path, spec: Path, work: Path, args: argparse.Namespace) -> Server:
    port = free_port()
    log = work / f"litserve-{spec.stem}.log"
    proc = subprocess.Popen(
        [str(venv / "bin" / "python"), str(PEERS / "litserve_app.py"), str(spec), str(port),
         str(args.max_batch_size), str(args.peer_delay_ms / 1000)],
        cwd=PEERS, env={**os.environ, "NIGHTSCAN_ROOT": str(ROOT)},
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    return Server("litserve", url + "/predict", url + "/health", [proc], log, own_session=True)


def start_torchserve(venv: Path, spec: Path, work: Path, args: argparse.Namespace) -> Server:
    bin_ = venv / "bin"
    arch = spec.stem.removeprefix("spec-")
    store = work / f"ts-store-{arch}"
    store.mkdir(exist_ok=True)
    extra = work / f"ts-extra-{arch}"
    extra.mkdir(exist_ok=True)
    shutil.copy(spec, extra / "spec.json")
    shutil.copy(PEERS / "peer_model.py", extra / "peer_model.py")
    subprocess.run(
        [str(bin_ / "torch-model-archiver"), "--model-name", "peer", "--version", "1.0",
         "--handler", str(PEERS / "torchserve_handler.py"), "--extra-files",
         f"{extra / 'spec.json'},{extra / 'peer_model.py'}", "--export-path", str(store),
         "--force"],
        check=True,
    )  # fmt: skip
    ports = [free_port() for _ in range(3)]
    models = {"peer": {"1.0": {"defaultVersion": True, "marName": "peer.mar", "minWorkers": 1,
                               "maxWorkers": 1, "batchSize": args.max_batch_size,
                               "maxBatchDelay": int(args.peer_delay_ms),
                               "responseTimeout": 120}}}  # fmt: skip
    config = work / f"ts-{arch}.properties"
    config.write_text(
        f"inference_address=http://127.0.0.1:{ports[0]}\n"
        f"management_address=http://127.0.0.1:{ports[1]}\n"
        f"metrics_address=http://127.0.0.1:{ports[2]}\n"
        f"model_store={store}\nload_models=peer.mar\nmodels={json.dumps(models)}\n"
        "disable_token_authorization=true\nenable_envvars_config=true\n"
        "install_py_dep_per_model=false\ndefault_workers_per_model=1\n"
    )
    log = work / f"torchserve-{arch}.log"
    env = {**os.environ, "NIGHTSCAN_ROOT": str(ROOT), "PATH": f"{bin_}:{os.environ['PATH']}",
           "LOG_LOCATION": str(work / f"ts-logs-{arch}"),
           "METRICS_LOCATION": str(work / f"ts-logs-{arch}")}  # fmt: skip
    proc = subprocess.Popen(
        [str(bin_ / "torchserve"), "--start", "--foreground", "--ncs", "--disable-token-auth",
         "--ts-config", str(config), "--model-store", str(store)],
        env=env, cwd=work, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{ports[0]}"
    server = Server("torchserve", url + "/predictions/peer", url + "/ping", [proc], log, True)
    server.ready_url = f"http://127.0.0.1:{ports[1]}/models/peer"  # 200 once registered
    return server


def tree_cpu_seconds(leader: int) -> float:
    """User + system CPU seconds of the live processes of ``leader``'s session and their
    descendants (``nightscan serve --workers`` starts each worker in a session of its own)."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
        # fields[0] is the state: ppid, session, utime and stime are stat fields 4, 6, 14, 15
        stats[int(entry.name)] = (int(fields[1]), int(fields[3]), int(fields[11]) + int(fields[12]))
    members = {pid for pid, (_, sid, _) in stats.items() if sid == leader}
    grew = True
    while grew:
        more = {pid for pid, (ppid, _, _) in stats.items() if ppid in members} - members
        members |= more
        grew = bool(more)
    return sum(stats[pid][2] for pid in members) / os.sysconf("SC_CLK_TCK")


# ---- the load generator -------------------------------------------------------------------


@dataclass
class Cell:
    round: int
    model: str
    server: str
    concurrency: int
    ok: int
    errors: int
    rps: float
    p50_ms: float
    p95_ms: float
    cpu_ms: float  # the server's CPU time per answered request (load-independent-ish)


_LATENCY = re.compile(r"^\s*(\d+)%+ in ([\d.]+) secs", re.M)
_STATUS = re.compile(r"^\s*\[(\d+)\]\s+(\d+) responses", re.M)
_TOTAL = re.compile(r"^\s*Total:\s+([\d.]+) secs", re.M)
_ERRORS = re.compile(r"^\s*\[(\d+)\]\s+", re.M)


def parse_hey(text: str) -> tuple[int, int, float, float, float]:
    """(200 responses, other responses + errors, 200s per second, p50 s, p95 s) of hey's text."""
    total = float(_TOTAL.search(text).group(1))
    pct = {int(p): float(s) for p, s in _LATENCY.findall(text)}
    statuses = {int(code): int(n) for code, n in _STATUS.findall(text)}
    ok = statuses.pop(200, 0)
    errors = sum(statuses.values())
    if "Error distribution:" in text:
        tail = text.split("Error distribution:", 1)[1]
        errors += sum(int(n) for n in _ERRORS.findall(tail))
    return ok, errors, ok / total, pct.get(50, float("nan")), pct.get(95, float("nan"))


def hey(url: str, body: Path, c: int, seconds: float | None, n: int | None = None) -> str:
    cmd = ["hey", "-c", str(c), "-m", "POST", "-D", str(body), "-T",
           f"multipart/form-data; boundary={BOUNDARY}", "-t", "120"]  # fmt: skip
    cmd += ["-z", f"{seconds:g}s"] if seconds else ["-n", str(n)]
    return subprocess.run(
        cmd + [url], capture_output=True, text=True, check=True, start_new_session=True
    ).stdout


# ---- the in-process ceiling --------------------------------------------------------------


def ceiling(model: Any, data: bytes, batch: int, repeats: int = 15) -> tuple[float, float]:
    """(req/s of decode + windows + forward + softmax for ``batch`` clips at once, better of 1
    and all torch threads; ms of one forward pass + softmax of one clip, better of the two)."""
    import numpy as np
    import torch

    from inference.audio import decode_audio, fixed_windows, prepare_waveform
    from inference.features import FeatureConfig

    clip = FeatureConfig().clip_samples

    def full() -> None:
        windows = []
        for _ in range(batch):
            samples, rate = decode_audio(data)
            windows.append(fixed_windows(prepare_waveform(samples, rate), clip))
        with torch.inference_mode():
            torch.softmax(model(torch.from_numpy(np.concatenate(windows))).float(), 1).numpy()

    samples, rate = decode_audio(data)
    x1 = torch.from_numpy(fixed_windows(prepare_waveform(samples, rate), clip))

    def one() -> None:
        with torch.inference_mode():
            torch.softmax(model(x1).float(), 1).numpy()

    def median_s(fn, threads: int) -> float:
        torch.set_num_threads(threads)
        times = []
        for i in range(repeats + 3):
            t0 = time.perf_counter()
            fn()
            if i >= 3:
                times.append(time.perf_counter() - t0)
        return statistics.median(times)

    cores = os.cpu_count() or 1
    rps = max(batch / median_s(full, t) for t in sorted({1, cores}))
    fwd = min(median_s(one, t) for t in sorted({1, cores}))
    torch.set_num_threads(cores)
    return rps, fwd * 1000


def ceiling_apart(spec: Path, work: Path, batch: int) -> tuple[float, float]:
    """``ceiling`` in a process and session of its own, like each server (autogroups)."""
    cmd = [sys.executable, __file__, "_ceiling", str(spec), str(work / "clip.wav"), str(batch)]
    out = subprocess.run(
        cmd, capture_output=True, text=True, check=True, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout  # fmt: skip
    rps, fwd = json.loads(out.strip().splitlines()[-1])
    return rps, fwd


def _ceiling_main(spec_path: str, wav: str, batch: str) -> None:
    import torch

    from inference.architectures import build_model

    spec = json.loads(Path(spec_path).read_text())
    model = build_model(spec["architecture"], len(spec["labels"]))
    model.load_state_dict(torch.load(spec["weights"], map_location="cpu"))
    print(json.dumps(ceiling(model.eval(), Path(wav).read_bytes(), int(batch))))


# ---- main ----------------------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_ceiling":
        _ceiling_main(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="small_cnn,resnet18")
    parser.add_argument("--servers", default="nightscan,litserve,torchserve")
    parser.add_argument("--workers", default="1", help="nightscan serve --workers values: 1,2")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", default="1,32")
    parser.add_argument("--seconds", type=float, default=5, help="hey -z per cell")
    parser.add_argument("--max-batch-size", type=int, default=16, help="every server")
    parser.add_argument("--nightscan-delay-ms", type=float, default=0)
    parser.add_argument("--peer-delay-ms", type=float, default=5, help="LitServe, TorchServe")
    parser.add_argument("--cpu", type=float, default=1, help="resources.cpu: torch threads")
    parser.add_argument("--peer-threads", type=int, default=0,
                        help="peers' torch threads (default: resources.cpu)")  # fmt: skip
    parser.add_argument("--peer-venv", type=Path, default=Path("/tmp/peer-venv"))
    parser.add_argument("--setup-peer-venv", action="store_true", help="create/fill it first")
    parser.add_argument("--baseline-src", type=Path, help="also serve this source tree (1 worker)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()

    if shutil.which("hey") is None:
        raise SystemExit("hey is not installed (apt-get install -y hey)")
    servers = args.servers.split(",")
    if args.setup_peer_venv and {"litserve", "torchserve"} & set(servers):
        setup_peer_venv(args.peer_venv)
    if {"litserve", "torchserve"} & set(servers) and not (args.peer_venv / "bin/python").exists():
        raise SystemExit(f"no peer venv at {args.peer_venv}: pass --setup-peer-venv")
    sizes = [int(c) for c in args.concurrency.split(",")]
    args.peer_threads = args.peer_threads or max(1, int(args.cpu))
    workers = [int(w) for w in args.workers.split(",")]

    from rich.console import Console
    from rich.table import Table

    console = Console()
    work = Path(tempfile.mkdtemp(prefix="nightscan-peer-bench-"))
    body, wav = write_body(work)
    load_before = os.getloadavg()
    cells: list[Cell] = []
    ceilings: dict[tuple[int, str], tuple[float, float]] = {}
    try:
        for arch in args.models.split(","):
            home, spec, _ = seed(work, arch, args)
            group: list[Server] = []
            try:
                for name in servers:
                    if name == "nightscan":
                        group += [start_nightscan(home, work, w) for w in workers]
                        if args.baseline_src:
                            group.append(start_nightscan(home, work, 1, args.baseline_src))
                    elif name == "litserve":
                        group.append(start_litserve(args.peer_venv, spec, work, args))
                    elif name == "torchserve":
                        group.append(start_torchserve(args.peer_venv, spec, work, args))
                for server in group:
                    server.wait_ready()
                    hey(server.url, body, 8, None, 64)  # warm up (first batches, JIT, pools)
                    console.print(f"{arch}: {server.name} ready")
                for r in range(1, args.rounds + 1):
                    ceilings[(r, arch)] = ceiling_apart(spec, work, args.max_batch_size)
                    for c in sizes:
                        order = group if r % 2 else group[::-1]  # who goes first alternates
                        for server in order:
                            cpu0 = tree_cpu_seconds(server.procs[0].pid)
                            text = hey(server.url, body, c, args.seconds)
                            cpu = tree_cpu_seconds(server.procs[0].pid) - cpu0
                            ok, errors, rps, p50, p95 = parse_hey(text)
                            cell = Cell(r, arch, server.name, c, ok, errors, rps, p50 * 1000,
                                        p95 * 1000, cpu * 1000 / max(ok, 1))  # fmt: skip
                            cells.append(cell)
                            console.print(
                                f"round {r} {arch} c={c} {server.name}: {rps:.1f} req/s, "
                                f"p50 {cell.p50_ms:.2f} ms, p95 {cell.p95_ms:.2f} ms, "
                                f"CPU {cell.cpu_ms:.2f} ms/req"
                                + (f", {errors} errors" if errors else "")
                            )
            finally:
                for server in group:
                    server.stop()
    finally:
        if args.keep:
            console.print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    report(args, cells, ceilings, load_before, load_after, console, Table)


def report(args, cells, ceilings, load_before, load_after, console, Table) -> None:
    table = Table(title="/predict side by side (hey, multipart 1 s WAV)")
    cols = ("round", "model", "c", "server", "req/s", "p50 ms", "p95 ms", "errors",
            "CPU ms/req", "x litserve", "x torchserve", "of ceiling")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="right")
    index = {(x.round, x.model, x.server, x.concurrency): x for x in cells}
    lines = []
    for x in cells:
        lit = index.get((x.round, x.model, "litserve", x.concurrency))
        ts = index.get((x.round, x.model, "torchserve", x.concurrency))
        ceil = ceilings[(x.round, x.model)][0]
        row = [str(x.round), x.model, str(x.concurrency), x.server, f"{x.rps:.1f}",
               f"{x.p50_ms:.2f}", f"{x.p95_ms:.2f}", str(x.errors), f"{x.cpu_ms:.2f}",
               f"{x.rps / lit.rps:.2f}" if lit and lit.rps else "-",
               f"{x.rps / ts.rps:.2f}" if ts and ts.rps else "-",
               f"{x.rps / ceil:.2f}"]  # fmt: skip
        table.add_row(*row)
        lines.append("| " + " | ".join(row) + " |")
    console.print(table)

    verdicts = []
    for (r, arch), (ceil, fwd) in sorted(ceilings.items()):
        verdicts.append(f"round {r} {arch}: in-process ceiling {ceil:.1f} req/s (decode + forward"
                        f" + softmax, batch {args.max_batch_size}); one forward pass of one clip "
                        f"{fwd:.2f} ms")  # fmt: skip
        for x in cells:
            if (x.round, x.model) != (r, arch) or not x.server.startswith("nightscan"):
                continue
            lit = index.get((r, arch, "litserve", x.concurrency))
            ts = index.get((r, arch, "torchserve", x.concurrency))
            if x.concurrency == 32:
                parts = []
                if lit and lit.rps:
                    q = x.rps / lit.rps
                    ok = "met" if q >= 1.2 else "NOT met"
                    parts.append(f"{q:.2f} x LitServe (goal >= 1.2: {ok})")
                    parts.append(f"p95 {x.p95_ms:.1f} vs {lit.p95_ms:.1f} ms "
                                 f"({'met' if x.p95_ms <= lit.p95_ms else 'NOT met'})")  # fmt: skip
                if ts and ts.rps:
                    q = x.rps / ts.rps
                    ok = "met" if q >= 1.5 else "NOT met"
                    parts.append(f"{q:.2f} x TorchServe (goal >= 1.5: {ok})")
                share = x.rps / ceil
                goal = " (goal >= 0.8 with resnet18: " + ("met)" if share >= 0.8 else "NOT met)")
                parts.append(f"{share:.2f} of the ceiling" + (goal if arch == "resnet18" else ""))
                verdicts.append(f"round {r} {arch} c=32 {x.server}: " + "; ".join(parts))
            if x.concurrency == 1:
                gap = x.p50_ms - fwd
                lead = f"; {x.rps / lit.rps:.2f} x LitServe" if lit and lit.rps else ""
                verdicts.append(f"round {r} {arch} c=1 {x.server}: p50 {x.p50_ms:.2f} ms = forward"
                                f" + {gap:.2f} ms (goal <= 2: {'met' if gap <= 2 else 'NOT met'})"
                                + lead)  # fmt: skip
    for v in verdicts:
        console.print(v)
    if args.no_append:
        return
    command = "python benchmarks/peer_serving_bench.py " + " ".join(sys.argv[1:])
    header = "| " + " | ".join(cols) + " |\n|" + "---:|" * len(cols)
    text = "\n".join([
        f"\n## Serving side by side: nightscan vs LitServe vs TorchServe "
        f"({datetime.now():%Y-%m-%d %H:%M})\n",
        f"`{command.strip()}` - nproc {os.cpu_count()}, {cpu_model()}, Python "
        f"{platform.python_version()}; hey -z {args.seconds:g}s per cell, one multipart body "
        f"(1 s WAV, field `file`) for all; max batch {args.max_batch_size} everywhere, batch delay "
        f"nightscan {args.nightscan_delay_ms:g} ms, peers {args.peer_delay_ms:g} ms; torch threads "
        f"nightscan resources.cpu={args.cpu:g}, peers {args.peer_threads}; ceiling = best of 1 and "
        f"{os.cpu_count()} threads; LitServe "
        "one CPU worker, TorchServe one worker; CPU ms/req = the server's process tree's user + "
        "system CPU time during the cell / answered requests; load average (1/5/15 min) "
        f"{'/'.join(f'{v:.2f}' for v in load_before)} before, "
        f"{'/'.join(f'{v:.2f}' for v in load_after)} after (the machine is shared).\n",
        header, *lines, "", *[f"- {v}" for v in verdicts], "",
    ])  # fmt: skip
    with RESULTS.open("a") as fh:
        fh.write(text)
    console.print(f"appended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
