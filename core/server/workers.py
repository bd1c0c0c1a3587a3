"""Many serving processes on one port: ``nightscan serve --workers N``.

The parent reserves the port, makes a fresh Prometheus multiprocess folder, and starts N
worker processes (``python -m core.server.workers``) that each run uvicorn over their own core
context: their own serving loop reconciles to the desired state in the database every second,
as a single ``nightscan serve`` does. Where the system has SO_REUSEPORT (Linux), the parent
binds without listening and every worker listens on its own socket on the same port, so the
kernel spreads new connections evenly over the workers; elsewhere the workers inherit the
parent's listening socket and accept from it (measured here: one worker then took 30 of 32
connections, since whichever process wakes first accepts).

The parent loads no model and answers no request. It announces the server in the home, prints
the event lines, restarts a worker that dies (event ``server.worker_restarted``), and on
SIGTERM or SIGINT asks every worker to stop (SIGTERM: uvicorn lets in-flight requests finish,
then the lifespan drains the runtimes and flushes the result writer) and waits for them.

Workers run in their own session, so Ctrl+C in a terminal reaches the parent alone (a second
signal would make uvicorn skip the drain); a worker whose parent is gone stops by itself.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

WORKER_HEADER = "x-nightscan-worker"  # the pid of the worker that answered
STOP_TIMEOUT_S = 90.0  # uvicorn's 30 s graceful shutdown, then the drain and the flush
FAST_DEATH_S = 10.0  # a worker that dies sooner after its start is restarted after a backoff
MAX_BACKOFF_S = 30.0
POLL_S = 0.2


def default_workers() -> int:
    """``nightscan serve``'s default: one process (size up with ``--workers``)."""
    return 1


BACKLOG = 2048
REUSE_PORT = hasattr(socket, "SO_REUSEPORT")


def bind_socket(host: str, port: int, *, listen: bool, reuse_port: bool) -> socket.socket:
    """A TCP socket on ``host:port``: with ``reuse_port``, one of a group the kernel balances
    (the parent's, bound only to hold the port, does not listen and so gets no connections)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP (with 0,
    # every answer waited ~40 ms for a delayed ACK: /health took 44 ms instead of 1.2 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host.strip("[]"), port))
        if listen:
            sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen
    started: float
    backoff_s: float = 0.0


@dataclass
class WorkerPool:
    """The supervising parent of ``nightscan serve --workers N``."""

    host: str
    port: int
    workers: int
    insecure_open_predict: bool = False
    access_log: bool = True
    on_line: Callable[[str], None] = print
    metrics_dir: str = ""
    restarts: int = 0
    _sock: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _slots: list[_Worker | None] = field(default_factory=list)

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        port = self._sock.getsockname()[1] if self._sock else self.port
        return f"http://{host}:{port}"

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._slots if w is not None]

    @property
    def stopping(self) -> threading.Event:
        return self._stop

    def request_stop(self, *_args) -> None:
        self._stop.set()

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> WorkerPool:
        from core.errors import ConflictError

        # Shared: the workers accept from this socket; reuse-port: it only holds the port.
        try:
            self._sock = bind_socket(
                self.host, self.port, listen=not REUSE_PORT, reuse_port=REUSE_PORT
            )
        except OSError as exc:
            raise ConflictError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc} (port in use?)"
            ) from None
        self._sock.set_inheritable(not REUSE_PORT)
        self.metrics_dir = tempfile.mkdtemp(prefix="nightscan-metrics-")
        self._slots = [self._spawn(i) for i in range(self.workers)]
        return self

    def _spawn(self, index: int) -> _Worker:
        assert self._sock is not None
        env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=self.metrics_dir)
        args = [sys.executable, "-m", "core.server.workers"]
        fds: tuple[int, ...] = ()
        if not REUSE_PORT:
            fds = (self._sock.fileno(),)
            args += ["--fd", str(fds[0])]
        args += ["--host", self.host, "--port", str(self._sock.getsockname()[1])]
        args += ["--index", str(index), "--parent", str(os.getpid())]
        if self.insecure_open_predict:
            args.append("--insecure-open-predict")
        if self.access_log:
            args.append("--access-log")
        proc = subprocess.Popen(args, pass_fds=fds, env=env, start_new_session=True)
        return _Worker(index, proc, time.monotonic())

    def watch(self, until: Callable[[], bool] | None = None) -> None:
        """Restart workers that die, until a stop is requested (or ``until()`` is true)."""
        while not self._stop.wait(POLL_S):
            if until is not None and until():
                return
            for slot, worker in enumerate(self._slots):
                if worker is None or worker.proc.poll() is None:
                    continue
                self._slots[slot] = self._restart(worker)

    def _restart(self, dead: _Worker) -> _Worker | None:
        from prometheus_client import multiprocess

        from core import events

        code = dead.proc.returncode
        lived = time.monotonic() - dead.started
        # Its counters stay in the folder (the host's totals include them); its live gauges go.
        multiprocess.mark_process_dead(dead.proc.pid, self.metrics_dir)
        backoff = 0.0
        if lived < FAST_DEATH_S:  # dying at start (a broken home?): do not spin
            backoff = min(MAX_BACKOFF_S, max(1.0, dead.backoff_s * 2))
            if self._stop.wait(backoff):
                return None
        self.restarts += 1
        worker = self._spawn(dead.index)
        worker.backoff_s = backoff
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        message = (
            f"worker {dead.index} (pid {dead.proc.pid}) died ({how}) after {lived:.0f} s; "
            f"restarted as pid {worker.proc.pid}"
        )
        try:
            events.emit(
                "server.worker_restarted",
                message,
                source=socket.gethostname()[:200],
                severity="warning",
                data={"worker": dead.index, "old_pid": dead.proc.pid,
                      "new_pid": worker.proc.pid, "returncode": code,
                      "lived_s": round(lived, 3), "url": self.url},
            )  # fmt: skip
        except Exception:  # the database may be briefly away: the restart matters more
            log.exception("could not record the worker restart")
            self.on_line(f"warning    {message}")
        return worker

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Ask every worker to stop and wait for them (then, past ``timeout_s``, kill)."""
        self._stop.set()
        live = [w for w in self._slots if w is not None and w.proc.poll() is None]
        for worker in live:
            worker.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for worker in live:
            try:
                code = worker.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.on_line(f"warning    worker {worker.index} did not stop in time: killed")
                worker.proc.kill()
                worker.proc.wait()
                continue
            if code != 0:
                self.on_line(f"warning    worker {worker.index} stopped with exit code {code}")
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.metrics_dir:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)


def wait_until_accepting(url: str, stop: threading.Event, timeout_s: float = 600.0) -> bool:
    """Until a worker answers /health (so the server is announced only once it serves)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        stop.wait(0.1)
    return False


# ---- the worker process ----------------------------------------------------------------------


class WorkerHeader:
    """Pure ASGI middleware: every answer names the worker process (its pid)."""

    def __init__(self, app) -> None:
        self.app = app
        self.value = str(os.getpid()).encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_header(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((WORKER_HEADER.encode(), self.value))
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, send_with_header)


def _watch_parent(parent: int, server) -> None:
    """A worker whose parent is gone (killed with -9) stops gracefully by itself."""
    while not server.should_exit:
        if os.getppid() != parent:
            server.should_exit = True
            return
        time.sleep(1.0)


def worker_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.server.workers")
    parser.add_argument("--fd", type=int, help="a listening socket to share (else reuse-port)")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--parent", type=int, default=0)
    parser.add_argument("--insecure-open-predict", action="store_true")
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args(argv)

    from core import get_context
    from core.deployments import get_deployment_manager
    from core.server.app import create_app
    from core.server.runner import is_loopback, make_server, preload_inference_when_started
    from core.server.serve_log import ServeLog, served_here

    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
    else:
        sock = bind_socket(args.host, args.port, listen=True, reuse_port=True)
    exposed = not is_loopback(args.host) and not args.insecure_open_predict
    app = create_app(require_predict_token=True if exposed else None)
    app.add_middleware(WorkerHeader)
    server = make_server(
        args.host,
        args.port,
        app,
        insecure_open_predict=args.insecure_open_predict,
        access_log=args.access_log,
    )
    ctx = get_context()
    manager = get_deployment_manager()
    prefix = f"worker {args.index} (pid {os.getpid()}) "

    def line(text: str) -> None:
        print(prefix + text, flush=True)

    lines = ServeLog(lambda: served_here(manager), line, events=False).start()
    preload_inference_when_started(server)
    if args.parent:
        threading.Thread(
            target=_watch_parent, args=(args.parent, server), name="parent-watch", daemon=True
        ).start()
    # uvicorn re-raises the signal it stopped on once it is done, under the handler it found:
    # with the default one SIGTERM would end the process before the flush below.
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server.run(sockets=[sock])
    finally:
        lines.stop()
        ctx.close()  # flushes the experiment result writer
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
