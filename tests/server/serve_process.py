"""`nightscan serve` in a child process on a free loopback port, its output collected line by
line (the serve-log and the --workers tests share it)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import psutil

from core import get_context
from core.server.presence import live_servers


class Served:
    def __init__(self, *args: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nightscan_tui.cli", "serve", "--port", str(self.port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, check: Callable[[str], bool], what: str, timeout_s: float = 120) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = next((line for line in list(self.lines) if check(line)), None)
            if found is not None:
                return found
            if self.proc.poll() is not None and not self.lines:
                break
            time.sleep(0.1)
        raise AssertionError(f"no line with {what}:\n" + self.log())

    def wait_until_announced(self, timeout_s: float = 180) -> None:
        """Until the server recorded itself in the home: it accepts connections from then on."""
        deadline = time.monotonic() + timeout_s
        while self.url not in [s.url for s in live_servers(get_context().db)]:
            assert time.monotonic() < deadline, self.log()
            assert self.proc.poll() is None, self.log()
            time.sleep(0.1)

    def workers(self) -> set[int]:
        """The pids of the worker processes (``--workers``)."""
        return {c.pid for c in psutil.Process(self.proc.pid).children()}

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=60)
