"""Helpers for the hostile-request tests: a chunked sender on a raw socket (httpx would insist on
sending the whole body before reading the answer), a peak-RSS sampler, and a /health prober."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import psutil


def send_chunked(
    url: str, path: str, content_type: str, chunk: bytes, total: int, head: bytes = b""
) -> tuple[int, int]:
    """POST ``head`` then ``chunk`` repeated up to ``total`` bytes, chunked, no Content-Length;
    stop sending as soon as the server answers. Returns (status, bytes sent)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sent = 0
    try:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        pieces = [head] if head else []
        while sent < total:
            piece = pieces.pop() if pieces else chunk
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
            if select.select([sock], [], [], 0)[0]:
                break
        else:
            try:
                sock.sendall(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
        answer = b""
        while b"\r\n" not in answer:
            part = sock.recv(4096)
            if not part:
                break
            answer += part
        return int(answer.split(b" ", 2)[1]), sent
    finally:
        sock.close()


@dataclass
class Watch:
    baseline_rss: int
    peak_rss: int = 0
    health: list[int] = field(default_factory=list)

    @property
    def growth_mb(self) -> float:
        return (self.peak_rss - self.baseline_rss) / 1024**2


@contextmanager
def watching(url: str) -> Iterator[Watch]:
    """Peak RSS of this process (the server runs in it) and /health answers while the block
    runs; a /health that fails or times out (5 s) is recorded as status 0."""
    proc = psutil.Process()
    watch = Watch(baseline_rss=proc.memory_info().rss)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            watch.peak_rss = max(watch.peak_rss, proc.memory_info().rss)
            time.sleep(0.002)

    def probe() -> None:
        with httpx.Client(base_url=url, timeout=5) as client:
            while not stop.is_set():
                try:
                    watch.health.append(client.get("/health").status_code)
                except httpx.HTTPError:
                    watch.health.append(0)
                time.sleep(0.01)

    threads = [threading.Thread(target=f, daemon=True) for f in (sample, probe)]
    for t in threads:
        t.start()
    _wait_for_probe(watch, 0)
    try:
        yield watch
    finally:
        _wait_for_probe(watch, len(watch.health))  # one answer after the hostile request
        stop.set()
        for t in threads:
            t.join(10)


def _wait_for_probe(watch: Watch, seen: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(watch.health) <= seen and time.monotonic() < deadline:
        time.sleep(0.005)
