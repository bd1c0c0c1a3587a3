"""Dynamic batching runtime: a bounded request queue served by replica worker threads.

One request is ``k`` fixed-length windows ``float32 [k, T]``; its future resolves to softmax
probabilities ``[k, C]`` (numpy, rows in request order). Workers take the oldest waiting
request, keep collecting until ``max_batch_size`` rows are gathered or ``max_batch_delay_ms``
has passed since that oldest request was *enqueued* (so time already spent queued counts
toward the delay, as Triton's max_queue_delay does), then run one forward pass on the
concatenated batch.

Design decisions
----------------
* Bounded queue, counted in rows: ``submit`` raises ``QueueFullError`` (with a Retry-After
  estimate) instead of blocking or growing; a request larger than ``queue_capacity`` can
  never be accepted and raises ``ValueError`` (a client error, HTTP 413, not a retry).
* Requests are never split across batches when they fit (``k <= max_batch_size``); the
  batch closes early rather than splitting the next request or skipping past it (FIFO).
  A request with ``k > max_batch_size`` runs alone, as consecutive forward passes of at most
  ``max_batch_size`` rows on one model snapshot, so ``max_batch_size`` is a hard cap on
  every forward pass and the request's rows still come back together, in order.
* Only one worker collects at a time (leader/follower); the others are running forward
  passes or waiting their turn. This keeps concurrent arrivals in one batch instead of
  spreading them over idle replicas, while still overlapping the collection of batch n+1
  with the forward pass of batch n when ``replicas > 1``.
* Batches only group requests whose window shape matches the first one's.
* The runtime puts the model in eval mode (BatchNorm running statistics; per-request results
  must not depend on what else shares the batch). Replicas share one module: with
  ``torch.inference_mode`` and eval mode the forward pass does not mutate it.
* Counters are updated *before* futures resolve, so a caller that saw its result also sees
  the batch in ``batch_size_counts()`` / ``completed``.

torch threads (measured, see below)
-----------------------------------
``BatchingConfig.threads`` sets the intra-op thread count of *this runtime's* forward passes:
each worker applies it on its own OS thread before a batch. That is per runtime because, with
the OpenMP backend of the CPU wheels, torch keeps the count per OS thread (``set_num_threads``
sets the calling thread's OpenMP ``nthreads`` and MKL's thread-local count; a thread that
never ran an op starts from the last value set anywhere). Tested in tests/inference/
test_runtime.py: two runtimes with 1 and 2 threads each see their own count. With another ATen
backend (TBB, native) the count is process-wide, so ``threads`` is ignored with one warning.
``configure_torch_threads`` is the process-wide knob (benchmarks); it reaches the workers of
runtimes without ``threads``. The OpenMP *pool*, too, is per OS thread: every thread that runs
a torch op keeps (count - 1) helper threads for life. Once the process holds more OpenMP
threads than cores, libgomp stops spinning between parallel regions and every forward pass
pays futex wake-ups: small_cnn at batch 1 went from 0.8 ms to 1.7-1.9 ms per pass just because
a second, *idle* pool existed. Hence:

* ``infer_now`` runs on a worker thread, never on the caller's (an event loop or an HTTP
  thread pool would otherwise each grow a pool and slow every worker down);
* ``replicas x threads`` should not exceed the cores: with several replicas, use
  ``threads=1``;
* with 2 intra-op threads on a 2-core host, a co-tenant CPU-bound process makes the OpenMP
  barriers collapse (runs of 4-200 windows/s instead of ~1,200), while 1 thread per replica
  degrades gracefully; prefer ``replicas=cores, threads=1`` on shared CPU hosts.

Choosing the defaults (``benchmarks/runtime_bench.py``, small_cnn, 1 s windows)
------------------------------------------------------------------------------
2-core AMD EPYC VM, torch 2.13 CPU, 2026-11-26; closed-loop asyncio clients, one window per
request; every cell a 1 s window, median of 3 interleaved passes (``--repeat 3``); three runs
appended to ``benchmarks/RESULTS.md`` (13:10, 13:20 full grid; 13:23 narrower
``--settings``). Direct forward passes, quiet machine: 2 threads 0.8 ms at batch 1
(~1,280 windows/s), ~1,200/s at batch 8, ~1,700/s at batch 32; 1 thread 1.25 ms (800/s),
980/s, 860-950/s.

========================  ==========  ====================  ====================  ===========
size/delay/replicas/thr.  c=1 p50 ms  c=8 windows/s         c=32 windows/s        c=32 p50 ms
========================  ==========  ====================  ====================  ===========
1/0/1/2 (no batching)     1.0-1.1     (950-1,100*)          (940-1,100*)          34-49
16/0/1/2 **default**      0.9-1.6     1,000 (1,450-1,700*)  1,340 (1,140-1,660*)  18-22
8/2/1/2                   3.2-3.3     1,720 (1,610-1,800*)  1,300 (800-1,790*)    18-29
16/2/1/2                  3.8-4.1     (490-1,120*)          1,380 (1,450*)        21
1/0/2/1                   1.5-1.7     430-1,070             660-1,030             28-48
8/0/2/1                   1.5         1,410                 1,440                 19
16/0/2/1                  1.5         1,600                 1,860                 17
8/2/2/1, 16/2/2/1         3.6-4.1     550-980               660-1,630             18-50
1/0/1/2 + extra pool      1.9-2.0                                                 (every run)
========================  ==========  ====================  ====================  ===========

(* best pass only. Co-tenant test suites ran during every run (load average 1.7-5.5 on
2 cores): 2-thread cells swung 10-100x between passes (8/0/1/2 at c=8: 83-1,854
windows/s) and their medians are mostly noise; 1-thread cells stayed within about +-30%.
Batches of 32 were as fast in one pass and 3-10x slower in the others. The extra-pool row,
the event-loop thread having run one forward pass, is steady: 1.9-2.0 ms in all four
appended runs, counting a first single-pass run at 13:01, vs 0.9-1.1 ms without.)

* ``max_batch_size=16``: gave the best c=32 throughput with one replica and with two;
  past 8-16 rows the per-row cost on CPU is nearly flat, and a 32-row batch doubles how long
  a request can wait behind the batch that is running.
* ``max_batch_delay_ms=0``: under load the running forward pass is the batching window
  (requests arriving meanwhile are batched: mean batch 5-7 at c=8 and 8-16 at c=32 with one
  replica). With one replica the best passes with and without a 2 ms delay were within
  ~10% (c=8 1,800 vs 1,700; c=32 1,790 vs 1,660), with two replicas no delay won clearly
  (16/0/2/1 vs 16/2/2/1: 1,600 vs 600-770 at c=8), and a delay always costs its full length
  at low load (c=1 p50 0.9-1.6 ms -> 3.2-4.1 ms). Re-measure on a GPU, where 16 rows cost
  about as much as 1 and a few ms of delay usually pays.
* ``replicas=1`` (the default) leaves torch's thread count alone. On this shared 2-core host
  the best and steadiest setting was ``replicas=2`` with ``configure_torch_threads(1)``
  (16/0/2/1: c=1 1.5 ms, 1,600 / 1,860 windows/s at c=8 / c=32).
* ``queue_capacity=256`` rows: ~0.15-0.3 s of work at the measured 900-1,900 windows/s.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from inference.batching import BatchingConfig  # torch-free; re-exported here

logger = logging.getLogger(__name__)

BatchHook = Callable[[int, float], None]

# Before any batch has been measured, assume this per-row service time for Retry-After.
_DEFAULT_ROW_SECONDS = 0.005
# Weight of the newest batch in the exponentially weighted per-row service time.
_EWMA_ALPHA = 0.2


class QueueFullError(RuntimeError):
    """The bounded queue cannot take the request now; retry after ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RuntimeClosedError(RuntimeError):
    """The runtime was closed; it accepts no more requests and drops undrained ones."""


_torch_threads: int | None = None  # last configure_torch_threads() value, for live workers


@functools.cache
def threads_per_os_thread() -> bool:
    """Whether torch keeps its intra-op thread count per OS thread (the OpenMP backend)."""
    return "ATen parallel backend: OpenMP" in torch.__config__.parallel_info()


def configure_torch_threads(n: int) -> int:
    """Set torch's intra-op thread count, clamped to 1..os.cpu_count(); returns the value set.

    Process-wide: it affects every model and every runtime without its own
    ``BatchingConfig.threads`` in this process. torch keeps the OpenMP thread count per OS
    thread (a thread that already ran an op keeps its old value), so the workers of such
    runtimes re-apply it before their next batch.
    """
    global _torch_threads
    n = max(1, min(int(n), os.cpu_count() or 1))
    torch.set_num_threads(n)
    _torch_threads = n
    return n


@dataclass(eq=False)
class _Request:
    windows: np.ndarray
    future: Future[np.ndarray]
    enqueued_at: float
    urgent: bool = False  # infer_now(): outside the serving statistics

    @property
    def rows(self) -> int:
        return int(self.windows.shape[0])


class _Worker:
    __slots__ = ("retiring", "thread")

    def __init__(self) -> None:
        self.retiring = False
        self.thread: threading.Thread | None = None


class BatchedRuntime:
    """Dynamic batching over a bounded queue; see the module docstring for the semantics."""

    def __init__(
        self,
        model: nn.Module,
        config: BatchingConfig,
        *,
        device: str = "cpu",
        name: str = "",
        on_batch: BatchHook | None = None,
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available")
        self.name = name
        # Called as on_batch(rows, seconds) after every successful forward pass, from the
        # worker thread: keep it cheap (a metrics histogram, not I/O).
        self.on_batch = on_batch
        self._model = self._prepare(model)
        self._max_rows = config.max_batch_size
        self._threads = self._own_threads(config.threads)
        self._delay_s = config.max_batch_delay_ms / 1000.0

        self._lock = threading.Lock()
        # Followers wait on _idle_cv for the collector role; the collector waits on
        # _collect_cv for more rows. Separate conditions so a submit wakes the right thread.
        self._idle_cv = threading.Condition(self._lock)
        self._collect_cv = threading.Condition(self._lock)
        self._queue: deque[_Request] = deque()
        self._urgent: deque[_Request] = deque()  # infer_now() requests, served first
        self._queued_rows = 0
        self._in_flight_rows = 0
        self._collecting = False
        self._closed = False
        self._workers: list[_Worker] = []
        self._worker_seq = 0
        self._batch_counts: dict[int, int] = {}
        self._completed = 0
        self._failed = 0
        self._row_seconds = _DEFAULT_ROW_SECONDS
        self._measured = False
        with self._lock:
            self._spawn(config.replicas)

    # ------------------------------------------------------------------ public API

    def submit(self, windows: np.ndarray) -> Future[np.ndarray]:
        """Queue one request of ``k`` windows; the future resolves to probabilities [k, C].

        Never blocks: raises QueueFullError when the rows would not fit in the queue,
        RuntimeClosedError after close(), ValueError for malformed input.
        """
        x = self._validate(windows)
        rows = x.shape[0]
        if rows > self.config.queue_capacity:
            raise ValueError(
                f"request has {rows} windows, more than queue_capacity "
                f"({self.config.queue_capacity}); split it into smaller requests"
            )
        future: Future[np.ndarray] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeClosedError(f"runtime {self.name!r} is closed")
            if self._queued_rows + rows > self.config.queue_capacity:
                raise QueueFullError(
                    f"runtime {self.name!r} queue is full ({self._queued_rows}/"
                    f"{self.config.queue_capacity} rows)",
                    retry_after_s=self._retry_after_locked(),
                )
            self._queue.append(_Request(x, future, time.monotonic()))
            self._queued_rows += rows
            if self._collecting:
                self._collect_cv.notify()
            else:
                self._idle_cv.notify()
        return future

    async def infer(self, windows: np.ndarray) -> np.ndarray:
        """Async submit; cancelling the awaiting task drops the request if not yet started."""
        return await asyncio.wrap_future(self.submit(windows))

    def infer_now(self, windows: np.ndarray, timeout: float | None = None) -> np.ndarray:
        """Synchronous forward pass that bypasses the queue (warm-up, health probes).

        Not batched, not counted against ``queue_capacity`` or in the serving statistics, and
        served before every queued request. It runs on a worker thread rather than the
        caller's: torch gives every OS thread that runs ops its own OpenMP pool, and one extra
        pool measurably slows every later forward pass (see the module docstring). So it waits
        for at most the batch a worker is running; ``timeout`` (seconds) turns a wedged runtime
        into ``TimeoutError`` instead of a hung health probe.
        """
        x = self._validate(windows)
        future: Future[np.ndarray] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeClosedError(f"runtime {self.name!r} is closed")
            self._urgent.append(_Request(x, future, time.monotonic(), urgent=True))
            self._idle_cv.notify_all()  # any idle worker may take it, collector role or not
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()  # still waiting: drop it; already running: let it finish unseen
            raise

    def swap_model(self, model: nn.Module) -> nn.Module:
        """Atomically replace the model and return the previous one.

        Batches that already started finish on the old model; every batch started after this
        returns uses the new one. Nothing is dropped, so this is also how rollback works.
        """
        prepared = self._prepare(model)
        with self._lock:
            old, self._model = self._model, prepared
        return old

    def set_replicas(self, n: int) -> None:
        """Grow or shrink the worker pool live; a retiring worker finishes its current batch."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"replicas must be an integer >= 1, got {n!r}")
        with self._lock:
            if self._closed:
                raise RuntimeClosedError(f"runtime {self.name!r} is closed")
            active = [w for w in self._workers if not w.retiring]
            if n > len(active):
                self._spawn(n - len(active))
            else:
                for worker in active[n:]:
                    worker.retiring = True
                self._idle_cv.notify_all()
                self._collect_cv.notify_all()

    def close(self, drain: bool = True, timeout: float = 10.0) -> bool:
        """Stop accepting requests, then finish (drain=True) or fail (drain=False) queued ones.

        Batches already running always finish. Waits up to ``timeout`` seconds for the workers;
        whatever is still queued after that fails with RuntimeClosedError so that no future is
        left pending forever. Returns True when every worker exited in time. Idempotent.
        """
        with self._lock:
            self._closed = True
            dropped = [] if drain else self._take_all_locked()
            self._idle_cv.notify_all()
            self._collect_cv.notify_all()
            threads = [w.thread for w in self._workers if w.thread is not None]
        self._fail(dropped, RuntimeClosedError(f"runtime {self.name!r} closed without draining"))
        deadline = time.monotonic() + max(0.0, timeout)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            leftover = self._take_all_locked()
        self._fail(leftover, RuntimeClosedError(f"runtime {self.name!r} drain timed out"))
        return not any(t.is_alive() for t in threads)

    def __enter__(self) -> BatchedRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ observability

    @property
    def queue_depth(self) -> int:
        """Rows waiting in the queue (not yet taken by a worker)."""
        return self._queued_rows

    @property
    def in_flight(self) -> int:
        """Rows taken by workers (being collected or in a forward pass) and not yet resolved."""
        return self._in_flight_rows

    @property
    def threads(self) -> int | None:
        """This runtime's intra-op threads per worker (None: the process-wide setting)."""
        return self._threads

    @property
    def replicas(self) -> int:
        """Target worker count (retiring workers that are finishing a batch excluded)."""
        with self._lock:
            return sum(1 for w in self._workers if not w.retiring)

    @property
    def completed(self) -> int:
        """Requests resolved with a result."""
        return self._completed

    @property
    def failed(self) -> int:
        """Requests resolved with an exception (model errors, closed without draining)."""
        return self._failed

    @property
    def closed(self) -> bool:
        return self._closed

    def batch_size_counts(self) -> dict[int, int]:
        """Histogram {rows in forward pass: number of forward passes} since start."""
        with self._lock:
            return dict(self._batch_counts)

    def retry_after_s(self) -> float:
        """Current Retry-After estimate: queued rows x recent per-row service time, >= 1 s."""
        with self._lock:
            return self._retry_after_locked()

    # ------------------------------------------------------------------ internals

    def _prepare(self, model: nn.Module) -> nn.Module:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        return model.to(self.device).eval()

    @staticmethod
    def _validate(windows: np.ndarray) -> np.ndarray:
        # Copy: the caller may reuse its buffer before the batch runs.
        x = np.array(windows, dtype=np.float32, copy=True, order="C")
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"expected windows shaped [k, T] with k, T >= 1, got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("windows contain NaN or infinite values")
        return x

    def _own_threads(self, wanted: int | None) -> int | None:
        """``config.threads`` clamped to 1..cores; None where torch cannot set it per thread."""
        if wanted is None:
            return None
        if not threads_per_os_thread():
            logger.warning(
                "runtime %r: torch's parallel backend is not OpenMP, so its thread count is "
                "process-wide; threads=%d is ignored",
                self.name,
                wanted,
            )
            return None
        return max(1, min(wanted, os.cpu_count() or 1))

    def _retry_after_locked(self) -> float:
        active = max(1, sum(1 for w in self._workers if not w.retiring))
        return max(1.0, self._queued_rows * self._row_seconds / active)

    def _spawn(self, count: int) -> None:
        for _ in range(count):
            worker = _Worker()
            self._worker_seq += 1
            label = f"{self.name}-" if self.name else ""
            worker.thread = threading.Thread(
                target=self._worker_loop,
                args=(worker,),
                name=f"batched-runtime-{label}{self._worker_seq}",
                daemon=True,  # a stuck forward pass must not keep the process alive
            )
            self._workers.append(worker)
            worker.thread.start()

    def _take_all_locked(self) -> list[_Request]:
        taken = [*self._urgent, *self._queue]
        self._urgent.clear()
        self._queue.clear()
        self._queued_rows = 0
        return taken

    def _pop_locked(self) -> _Request | None:
        """Pop the queue head into in-flight; None if the caller had cancelled it."""
        request = self._queue.popleft()
        self._queued_rows -= request.rows
        if not request.future.set_running_or_notify_cancel():
            return None
        self._in_flight_rows += request.rows
        return request

    def _worker_loop(self, worker: _Worker) -> None:
        try:
            while True:
                work = self._next_batch(worker)
                if work is None:
                    return
                batch, urgent = work
                if batch:
                    self._execute(batch, record=not urgent)
        finally:
            with self._lock:
                self._workers.remove(worker)

    def _next_batch(self, worker: _Worker) -> tuple[list[_Request], bool] | None:
        """Next (batch, urgent): an infer_now() request, else a batch collected as leader."""
        with self._lock:
            while True:
                if worker.retiring:
                    return None
                if self._urgent:
                    request = self._urgent.popleft()
                    if request.future.set_running_or_notify_cancel():
                        return [request], True
                    continue
                if self._queue and not self._collecting:
                    break
                if self._closed and not self._queue:
                    return None
                self._idle_cv.wait()
            self._collecting = True
            try:
                return self._collect_locked(), False
            finally:
                self._collecting = False
                if self._queue:  # hand the collector role to an idle follower
                    self._idle_cv.notify()

    def _collect_locked(self) -> list[_Request]:
        first = self._pop_locked()
        if first is None:
            return []
        batch, rows = [first], first.rows
        deadline = first.enqueued_at + self._delay_s
        shape = first.windows.shape[1:]
        while rows < self._max_rows:
            if self._queue:
                head = self._queue[0]
                if rows + head.rows > self._max_rows or head.windows.shape[1:] != shape:
                    break  # never split a request or skip ahead of it
                request = self._pop_locked()
                if request is not None:
                    batch.append(request)
                    rows += request.rows
                continue
            remaining = deadline - time.monotonic()
            if self._closed or remaining <= 0:
                break  # closing: flush now instead of waiting for more rows
            self._collect_cv.wait(remaining)
        return batch

    def _forward(self, model: nn.Module, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            inputs = torch.from_numpy(x).to(self.device)
            logits = model(inputs)
            return torch.softmax(logits.float(), dim=1).cpu().numpy()

    def _execute(self, batch: list[_Request], record: bool = True) -> None:
        """One forward pass (several only for an oversized request); resolve every future."""
        wanted = _torch_threads if self._threads is None else self._threads
        if wanted is not None and torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)
        model = self._model  # one snapshot per batch: swap_model only affects later batches
        x = batch[0].windows if len(batch) == 1 else np.concatenate([r.windows for r in batch])
        total = x.shape[0]
        timings: list[tuple[int, float]] = []
        try:
            parts = []
            for start in range(0, total, self._max_rows):
                chunk = x[start : start + self._max_rows]
                t0 = time.perf_counter()
                out = self._forward(model, chunk)
                timings.append((chunk.shape[0], time.perf_counter() - t0))
                if out.ndim != 2 or out.shape[0] != chunk.shape[0]:
                    # Rows are matched to requests by position: a wrong shape must fail loudly.
                    raise ValueError(
                        f"model returned shape {out.shape} for a batch of {chunk.shape[0]} rows"
                    )
                parts.append(out)
            probs = parts[0] if len(parts) == 1 else np.concatenate(parts)
        except BaseException as exc:
            if record:
                with self._lock:
                    self._in_flight_rows -= total
                    self._failed += len(batch)
                logger.warning("runtime %r: batch of %d rows failed: %r", self.name, total, exc)
            for request in batch:
                request.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        if not record:  # infer_now(): kept out of the serving statistics and the hook
            batch[0].future.set_result(probs)
            return
        with self._lock:
            for rows, seconds in timings:
                self._batch_counts[rows] = self._batch_counts.get(rows, 0) + 1
                per_row = seconds / rows
                self._row_seconds = (
                    per_row
                    if not self._measured
                    else (1 - _EWMA_ALPHA) * self._row_seconds + _EWMA_ALPHA * per_row
                )
                self._measured = True
            self._in_flight_rows -= total
            self._completed += len(batch)
        offset = 0
        for request in batch:
            # Copy so one caller's result does not pin (or alias) the whole batch array.
            request.future.set_result(probs[offset : offset + request.rows].copy())
            offset += request.rows
        hook = self.on_batch
        if hook is not None:
            for rows, seconds in timings:
                try:
                    hook(rows, seconds)
                except Exception:  # a metrics bug must not take the worker down
                    logger.exception("runtime %r: on_batch hook failed", self.name)

    def _fail(self, requests: list[_Request], exc: BaseException) -> None:
        """Fail requests that never reached a worker (caller-cancelled ones are skipped)."""
        failed = [r for r in requests if r.future.set_running_or_notify_cancel()]
        with self._lock:
            self._failed += sum(1 for r in failed if not r.urgent)
        for request in failed:
            request.future.set_exception(exc)
