"""BatchedRuntime: batching, ordering, bounded queue, failures, swap, scaling, shutdown.

No wall-clock assertions: gated/barrier fake models make every interleaving deterministic;
`join`/`wait` timeouts only turn a hang into a failure.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future

import numpy as np
import pytest
import torch
from torch import nn

from inference.architectures import build_model
from inference.runtime import (
    BatchedRuntime,
    BatchingConfig,
    QueueFullError,
    RuntimeClosedError,
    configure_torch_threads,
    threads_per_os_thread,
)

T = 22050  # FeatureConfig().clip_samples: 1 s at 22.05 kHz
C = 5
WAIT = 30.0  # hang guard only; never a performance bound


@pytest.fixture(scope="module")
def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return build_model("small_cnn", C).eval()


def windows(k: int, seed: int, t: int = T) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((k, t)).astype(np.float32)


def reference(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """Unbatched forward pass of one request."""
    with torch.inference_mode():
        return torch.softmax(model(torch.from_numpy(x)), dim=1).numpy()


class Gated(nn.Module):
    """Wraps a model; every forward pass announces itself and waits for the gate."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.batch_rows: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batch_rows.append(x.shape[0])
        self.entered.set()
        assert self.gate.wait(WAIT), "gate never opened"
        return self.inner(x)


class Tagged(nn.Module):
    """Cheap fake: logits are a one-hot of `tag`, so a result tells which model produced it."""

    def __init__(self, tag: int) -> None:
        super().__init__()
        self.tag = tag

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(x.shape[0], C)
        logits[:, self.tag] = 20.0
        return logits + 0.0 * x[:, :1]


class Poisoned(nn.Module):
    """Raises for any batch containing a row whose first sample is POISON."""

    POISON = 123.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x[:, 0] == self.POISON).any()):
            raise ValueError("poisoned batch")
        return x[:, :C]


class Rendezvous(nn.Module):
    """Each forward pass waits at a barrier: passes only if `parties` run concurrently."""

    def __init__(self, parties: int) -> None:
        super().__init__()
        self.barrier = threading.Barrier(parties, timeout=WAIT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.barrier.wait()
        return x[:, :C]


@pytest.fixture
def runtimes() -> Iterator[list[BatchedRuntime]]:
    """Collects runtimes so a failing test never leaves worker threads behind."""
    made: list[BatchedRuntime] = []
    yield made
    for rt in made:
        rt.close(drain=False, timeout=WAIT)


def make(runtimes: list[BatchedRuntime], model: nn.Module, **config: object) -> BatchedRuntime:
    rt = BatchedRuntime(model, BatchingConfig(**config), name="test")  # type: ignore[arg-type]
    runtimes.append(rt)
    return rt


def results(futures: list[Future[np.ndarray]]) -> list[np.ndarray]:
    return [f.result(timeout=WAIT) for f in futures]


# ---------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"max_batch_size": True}, "max_batch_size"),
        ({"max_batch_delay_ms": -1}, "max_batch_delay_ms"),
        ({"max_batch_delay_ms": float("nan")}, "max_batch_delay_ms"),
        ({"max_batch_delay_ms": float("inf")}, "max_batch_delay_ms"),
        ({"queue_capacity": 0}, "queue_capacity"),
        ({"max_batch_size": 16, "queue_capacity": 8}, "queue_capacity"),
        ({"replicas": 0}, "replicas"),
        ({"replicas": 1.5}, "replicas"),
    ],
)
def test_config_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BatchingConfig(**kwargs)  # type: ignore[arg-type]


def test_config_defaults_are_valid() -> None:
    cfg = BatchingConfig()
    assert cfg.max_batch_size >= 1 and cfg.max_batch_delay_ms >= 0
    assert cfg.queue_capacity == 256 and cfg.replicas == 1


# ---------------------------------------------------------------------------- batching


def test_batching_happens_and_never_exceeds_max(
    runtimes: list[BatchedRuntime], small_cnn: nn.Module
) -> None:
    model = Gated(small_cnn)
    rt = make(runtimes, model, max_batch_size=8, max_batch_delay_ms=0)
    inputs = [windows(1, seed) for seed in range(20)]
    futures = [rt.submit(inputs[0])]
    assert model.entered.wait(WAIT)  # the worker is inside batch #1 (1 row) ...
    futures += [rt.submit(x) for x in inputs[1:]]  # ... so these 19 queue up behind it
    assert rt.queue_depth == 19 and rt.in_flight == 1
    model.gate.set()
    out = results(futures)

    assert rt.batch_size_counts() == {1: 1, 8: 2, 3: 1}
    assert model.batch_rows == [1, 8, 8, 3]
    assert rt.completed == 20 and rt.failed == 0
    assert rt.queue_depth == 0 and rt.in_flight == 0
    for x, y in zip(inputs, out, strict=True):
        np.testing.assert_allclose(y, reference(small_cnn, x), rtol=1e-4, atol=1e-6)


def test_results_match_unbatched_forward_rows_in_order(
    runtimes: list[BatchedRuntime], small_cnn: nn.Module
) -> None:
    model = Gated(small_cnn)
    rt = make(runtimes, model, max_batch_size=8, max_batch_delay_ms=5)
    sizes = [1, 3, 2, 4, 1, 2, 5, 1, 3]  # mixed k: batches close early instead of splitting
    inputs = [windows(k, seed) for seed, k in enumerate(sizes)]
    futures = [rt.submit(inputs[0])]
    assert model.entered.wait(WAIT)
    futures += [rt.submit(x) for x in inputs[1:]]
    model.gate.set()
    for x, y in zip(inputs, results(futures), strict=True):
        assert y.shape == (x.shape[0], C) and y.dtype == np.float32
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
        np.testing.assert_allclose(y, reference(small_cnn, x), rtol=1e-4, atol=1e-6)
    # FIFO packing without splitting: [1] | 3+2 (next 4 would overflow) | 4+1+2 | 5+1 | 3
    assert model.batch_rows == [1, 5, 7, 6, 3]
    assert max(rt.batch_size_counts()) <= 8


def test_max_batch_size_is_a_hard_cap_under_concurrent_load(
    runtimes: list[BatchedRuntime],
) -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def on_batch(rows: int, seconds: float) -> None:
        assert seconds >= 0
        with lock:
            seen.append(rows)

    rt = BatchedRuntime(
        Tagged(1),
        BatchingConfig(max_batch_size=4, max_batch_delay_ms=1, queue_capacity=1024),
        on_batch=on_batch,
    )
    runtimes.append(rt)
    futures: list[Future[np.ndarray]] = []

    def client(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(40):
            futures.append(rt.submit(windows(int(rng.integers(1, 5)), seed, t=64)))

    threads = [threading.Thread(target=client, args=(s,)) for s in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(WAIT)
    oversized = rt.submit(windows(11, 99, t=64))  # > max_batch_size: runs as 4 + 4 + 3
    out = results([*futures, oversized])
    assert out[-1].shape == (11, C)
    counts = rt.batch_size_counts()
    assert max(counts) <= 4 and max(seen) <= 4
    assert sum(k * v for k, v in counts.items()) == sum(len(y) for y in out)
    assert rt.completed == len(out)


def test_oversized_request_matches_reference(
    runtimes: list[BatchedRuntime], small_cnn: nn.Module
) -> None:
    rt = make(runtimes, small_cnn, max_batch_size=4, max_batch_delay_ms=0, queue_capacity=16)
    x = windows(10, 7)
    y = rt.submit(x).result(WAIT)
    np.testing.assert_allclose(y, reference(small_cnn, x), rtol=1e-4, atol=1e-6)
    assert rt.batch_size_counts() == {4: 2, 2: 1}


def test_different_window_lengths_are_never_mixed(runtimes: list[BatchedRuntime]) -> None:
    model = Gated(Tagged(0))
    rt = make(runtimes, model, max_batch_size=8, max_batch_delay_ms=0)
    futures = [rt.submit(windows(1, 0, t=64))]
    assert model.entered.wait(WAIT)
    futures += [rt.submit(windows(1, i, t=64 if i < 3 else 32)) for i in range(1, 6)]
    model.gate.set()
    results(futures)
    assert model.batch_rows == [1, 2, 3]


# ---------------------------------------------------------------------------- bounded queue


def test_full_queue_raises_immediately_and_never_grows(runtimes: list[BatchedRuntime]) -> None:
    model = Gated(Tagged(0))
    rt = make(runtimes, model, max_batch_size=4, max_batch_delay_ms=0, queue_capacity=8)
    futures = [rt.submit(windows(1, 0, t=64))]
    assert model.entered.wait(WAIT)  # worker blocked: nothing leaves the queue
    futures += [rt.submit(windows(2, i, t=64)) for i in range(4)]
    assert rt.queue_depth == 8

    errors: list[BaseException] = []

    def overflow() -> None:
        for k in (1, 3):
            try:
                rt.submit(windows(k, 9, t=64))
            except QueueFullError as exc:
                errors.append(exc)

    caller = threading.Thread(target=overflow)
    caller.start()
    caller.join(WAIT)
    assert not caller.is_alive(), "submit blocked on a full queue"
    assert len(errors) == 2
    assert all(isinstance(e, QueueFullError) and e.retry_after_s >= 1.0 for e in errors)
    assert rt.queue_depth == 8  # rejected requests were never queued
    with pytest.raises(ValueError, match="queue_capacity"):
        rt.submit(windows(9, 0, t=64))  # can never fit: a client error, not a retry

    model.gate.set()
    assert len(results(futures)) == 5
    assert rt.submit(windows(1, 1, t=64)).result(WAIT).shape == (1, C)  # room again


def test_retry_after_grows_with_queue_depth(runtimes: list[BatchedRuntime]) -> None:
    model = Gated(Tagged(0))
    rt = make(runtimes, model, max_batch_size=2, max_batch_delay_ms=0, queue_capacity=256)
    futures = [rt.submit(windows(1, 0, t=64))]
    assert model.entered.wait(WAIT)
    shallow = rt.retry_after_s()
    futures += [rt.submit(windows(2, i, t=64)) for i in range(127)]
    assert rt.retry_after_s() >= shallow >= 1.0
    model.gate.set()
    results(futures)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((0, 64), np.float32),
        np.zeros(64, np.float32),
        np.zeros((1, 2, 64), np.float32),
        np.full((1, 64), np.nan, np.float32),
    ],
)
def test_malformed_input_is_rejected(runtimes: list[BatchedRuntime], bad: np.ndarray) -> None:
    rt = make(runtimes, Tagged(0))
    with pytest.raises(ValueError):
        rt.submit(bad)
    assert rt.queue_depth == 0


def test_input_is_copied_at_submit(runtimes: list[BatchedRuntime]) -> None:
    model = Gated(nn.Identity())
    rt = make(runtimes, model, max_batch_size=2, max_batch_delay_ms=0)
    first = rt.submit(np.zeros((1, C), np.float32))
    assert model.entered.wait(WAIT)
    x = np.arange(C, dtype=np.float32)[None, :]
    expected = reference(nn.Identity(), x)
    fut = rt.submit(x)
    x[:] = 0.0  # the caller reuses its buffer before the batch runs
    model.gate.set()
    first.result(WAIT)
    np.testing.assert_allclose(fut.result(WAIT), expected, rtol=1e-6)


# ---------------------------------------------------------------------------- failures


def test_model_exception_fails_only_its_batch(runtimes: list[BatchedRuntime]) -> None:
    model = Gated(Poisoned())
    rt = make(runtimes, model, max_batch_size=2, max_batch_delay_ms=0)
    ok = np.zeros((1, 64), np.float32)
    bad = ok.copy()
    bad[0, 0] = Poisoned.POISON
    a = rt.submit(ok)
    assert model.entered.wait(WAIT)
    b, c = rt.submit(bad), rt.submit(ok)  # batch 2: poisoned
    d, e = rt.submit(ok), rt.submit(ok)  # batch 3: fine
    model.gate.set()
    for fut in (b, c):
        with pytest.raises(ValueError, match="poisoned"):
            fut.result(WAIT)
    assert all(f.result(WAIT).shape == (1, C) for f in (a, d, e))
    assert rt.failed == 2 and rt.completed == 3
    assert model.batch_rows == [1, 2, 2]
    assert rt.submit(ok).result(WAIT).shape == (1, C)  # the worker survived


def test_model_with_wrong_output_shape_fails_the_batch(runtimes: list[BatchedRuntime]) -> None:
    class Collapses(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:1, :C]  # one row for the whole batch: results cannot be matched

    rt = make(runtimes, Collapses(), max_batch_delay_ms=0)
    assert rt.submit(windows(1, 0, t=64)).result(WAIT).shape == (1, C)
    with pytest.raises(ValueError, match="shape"):
        rt.submit(windows(3, 0, t=64)).result(WAIT)
    assert rt.failed == 1 and rt.completed == 1


def test_cancelled_request_is_skipped(runtimes: list[BatchedRuntime]) -> None:
    model = Gated(Tagged(0))
    rt = make(runtimes, model, max_batch_size=4, max_batch_delay_ms=0)
    first = rt.submit(windows(1, 0, t=64))
    assert model.entered.wait(WAIT)
    dropped, kept = rt.submit(windows(3, 1, t=64)), rt.submit(windows(1, 2, t=64))
    assert dropped.cancel()
    model.gate.set()
    results([first, kept])
    assert model.batch_rows == [1, 1]
    assert rt.queue_depth == 0 and rt.in_flight == 0


def test_hook_errors_do_not_kill_the_worker(runtimes: list[BatchedRuntime]) -> None:
    def broken(rows: int, seconds: float) -> None:
        raise RuntimeError("metrics backend down")

    rt = BatchedRuntime(Tagged(0), BatchingConfig(max_batch_delay_ms=0), on_batch=broken)
    runtimes.append(rt)
    for i in range(3):
        assert rt.submit(windows(1, i, t=64)).result(WAIT).shape == (1, C)


# ---------------------------------------------------------------------------- swap / scale


def test_swap_model_under_load_loses_nothing(runtimes: list[BatchedRuntime]) -> None:
    rt = make(runtimes, Tagged(0), max_batch_size=8, max_batch_delay_ms=1, replicas=2)
    before: list[Future[np.ndarray]] = []
    after: list[Future[np.ndarray]] = []
    swapped, stop = threading.Event(), threading.Event()
    warmed, finished = threading.Event(), threading.Event()

    def client(seed: int) -> None:
        x = windows(1, seed, t=64)
        while not stop.is_set():
            # Bucket by what was known *before* submitting: once swap_model has returned,
            # every new request must be served by the new model.
            bucket = after if swapped.is_set() else before
            fut = rt.submit(x)
            bucket.append(fut)
            fut.result(WAIT)  # closed loop: never overflows the queue
            if len(bucket) >= 100:
                (finished if bucket is after else warmed).set()

    threads = [threading.Thread(target=client, args=(s,)) for s in range(6)]
    for th in threads:
        th.start()
    assert warmed.wait(WAIT)
    old = rt.swap_model(Tagged(3))
    swapped.set()
    assert finished.wait(WAIT)
    stop.set()
    for th in threads:
        th.join(WAIT)

    tags_before = {int(y.argmax()) for y in results(before)}  # raises if any request failed
    tags_after = {int(y.argmax()) for y in results(after)}
    assert isinstance(old, Tagged) and old.tag == 0
    assert 0 in tags_before and tags_before <= {0, 3}
    assert tags_after == {3}
    assert rt.failed == 0 and rt.completed == len(before) + len(after)


def test_swap_model_keeps_started_batch_on_old_model(runtimes: list[BatchedRuntime]) -> None:
    old = Gated(Tagged(0))
    rt = make(runtimes, old, max_batch_size=4, max_batch_delay_ms=0)
    running = rt.submit(windows(1, 0, t=64))
    assert old.entered.wait(WAIT)
    queued = rt.submit(windows(1, 1, t=64))
    rt.swap_model(Tagged(2))
    old.gate.set()
    assert int(running.result(WAIT).argmax()) == 0  # started before the swap
    assert int(queued.result(WAIT).argmax()) == 2  # batch started after the swap


def test_set_replicas_grows_and_shrinks_live(runtimes: list[BatchedRuntime]) -> None:
    rt = BatchedRuntime(
        Rendezvous(3), BatchingConfig(max_batch_size=1, max_batch_delay_ms=0), name="scale"
    )
    runtimes.append(rt)

    def live_workers() -> int:
        return sum(t.name.startswith("batched-runtime-scale-") for t in threading.enumerate())

    futures = [rt.submit(windows(1, i, t=64)) for i in range(6)]
    assert rt.replicas == 1
    # The lone worker's forward pass waits at a 3-party barrier: it can only pass once the
    # pool has grown to 3, so completion proves 3 concurrent forward passes.
    rt.set_replicas(3)
    assert rt.replicas == 3
    results(futures)
    assert live_workers() == 3

    rt.swap_model(Tagged(1))
    more: list[Future[np.ndarray]] = []

    def client() -> None:
        while len(more) < 300:
            try:
                more.append(rt.submit(windows(1, len(more), t=64)))
            except QueueFullError:
                more[-1].result(WAIT)

    th = threading.Thread(target=client)
    th.start()
    for n in (1, 4, 2, 1):  # resize while requests flow
        rt.set_replicas(n)
        assert rt.replicas == n
    th.join(WAIT)
    assert all(y.shape == (1, C) for y in results(more))
    assert rt.failed == 0 and rt.completed == 306
    for _ in range(int(WAIT / 0.01)):  # retired workers exit once they look for work
        if live_workers() == 1:
            break
        time.sleep(0.01)
    assert live_workers() == 1
    assert rt.close(drain=True, timeout=WAIT)
    assert live_workers() == 0


def test_set_replicas_validation(runtimes: list[BatchedRuntime]) -> None:
    rt = make(runtimes, Tagged(0))
    with pytest.raises(ValueError):
        rt.set_replicas(0)
    rt.close()
    with pytest.raises(RuntimeClosedError):
        rt.set_replicas(2)


# ---------------------------------------------------------------------------- shutdown


def test_close_drain_completes_every_queued_request(runtimes: list[BatchedRuntime]) -> None:
    model = Gated(Tagged(4))
    rt = make(runtimes, model, max_batch_size=4, max_batch_delay_ms=50)
    futures = [rt.submit(windows(1, 0, t=64))]
    assert model.entered.wait(WAIT)
    futures += [rt.submit(windows(1, i, t=64)) for i in range(1, 30)]
    done: list[bool] = []
    closer = threading.Thread(target=lambda: done.append(rt.close(drain=True, timeout=WAIT)))
    closer.start()
    while not rt.closed:
        time.sleep(0.001)
    with pytest.raises(RuntimeClosedError):
        rt.submit(windows(1, 0, t=64))
    model.gate.set()
    closer.join(WAIT)
    assert done == [True]
    assert all(int(y.argmax()) == 4 for y in results(futures))
    assert rt.completed == 30 and rt.failed == 0


def test_close_without_drain_fails_pending(runtimes: list[BatchedRuntime]) -> None:
    model = Gated(Tagged(4))
    rt = make(runtimes, model, max_batch_size=4, max_batch_delay_ms=0)
    running = rt.submit(windows(1, 0, t=64))
    assert model.entered.wait(WAIT)
    pending = [rt.submit(windows(1, i, t=64)) for i in range(1, 10)]
    closer = threading.Thread(target=rt.close, kwargs={"drain": False, "timeout": WAIT})
    closer.start()
    for fut in pending:  # failed at once, while the running batch is still gated
        with pytest.raises(RuntimeClosedError):
            fut.result(WAIT)
    model.gate.set()
    closer.join(WAIT)
    assert int(running.result(WAIT).argmax()) == 4  # the started batch finished
    assert rt.failed == 9 and rt.completed == 1
    with pytest.raises(RuntimeClosedError):
        rt.submit(windows(1, 0, t=64))
    with pytest.raises(RuntimeClosedError):
        rt.infer_now(windows(1, 0, t=64))


def test_close_timeout_fails_leftovers(runtimes: list[BatchedRuntime]) -> None:
    model = Gated(Tagged(0))
    rt = make(runtimes, model, max_batch_size=1, max_batch_delay_ms=0)
    running = rt.submit(windows(1, 0, t=64))
    assert model.entered.wait(WAIT)
    queued = rt.submit(windows(1, 1, t=64))
    assert rt.close(drain=True, timeout=0) is False  # worker still stuck in the forward pass
    with pytest.raises(RuntimeClosedError):
        queued.result(WAIT)
    model.gate.set()
    assert running.result(WAIT).shape == (1, C)


# ---------------------------------------------------------------------------- entry points


def test_async_infer(runtimes: list[BatchedRuntime], small_cnn: nn.Module) -> None:
    rt = make(runtimes, small_cnn, max_batch_size=8, max_batch_delay_ms=2)
    inputs = [windows(1 + i % 3, i) for i in range(10)]

    async def main() -> list[np.ndarray]:
        return await asyncio.gather(*(rt.infer(x) for x in inputs))

    for x, y in zip(inputs, asyncio.run(main()), strict=True):
        np.testing.assert_allclose(y, reference(small_cnn, x), rtol=1e-4, atol=1e-6)


def test_infer_now_bypasses_the_queue(runtimes: list[BatchedRuntime], small_cnn: nn.Module) -> None:
    gated = Gated(small_cnn)
    rt = make(runtimes, gated, max_batch_size=4, max_batch_delay_ms=0, queue_capacity=4)
    blocked = rt.submit(windows(1, 0))
    assert gated.entered.wait(WAIT)
    full = [rt.submit(windows(1, i)) for i in range(1, 5)]
    with pytest.raises(QueueFullError):
        rt.submit(windows(1, 5))
    x = windows(6, 6)  # more rows than max_batch_size: chunked, same result
    got: list[np.ndarray] = []
    probe = threading.Thread(target=lambda: got.append(rt.infer_now(x, timeout=WAIT)))
    probe.start()  # the queue is full, yet infer_now is accepted ...
    while not rt._urgent:  # white-box: wait until the probe is in the priority lane
        time.sleep(0.001)
    gated.gate.set()
    probe.join(WAIT)
    results([blocked, *full])
    np.testing.assert_allclose(got[0], reference(small_cnn, x), rtol=1e-4, atol=1e-6)
    assert gated.batch_rows == [1, 4, 2, 4]  # ... and served before the queued requests
    assert rt.batch_size_counts() == {1: 1, 4: 1}  # and kept out of the serving statistics
    assert rt.completed == 5


def test_infer_now_times_out_when_workers_are_wedged(runtimes: list[BatchedRuntime]) -> None:
    gated = Gated(Tagged(0))
    rt = make(runtimes, gated, max_batch_size=1, max_batch_delay_ms=0)
    stuck = rt.submit(windows(1, 0, t=64))
    assert gated.entered.wait(WAIT)
    with pytest.raises(TimeoutError):
        rt.infer_now(windows(1, 1, t=64), timeout=0.01)
    gated.gate.set()
    assert stuck.result(WAIT).shape == (1, C)
    assert rt.infer_now(windows(1, 1, t=64), timeout=WAIT).shape == (1, C)
    assert gated.batch_rows == [1, 1]  # the timed-out probe was dropped, never run


def test_configure_torch_threads_reaches_live_workers(runtimes: list[BatchedRuntime]) -> None:
    seen: list[int] = []

    class Probe(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(torch.get_num_threads())
            return x[:, :C]

    original = torch.get_num_threads()
    rt = make(runtimes, Probe(), max_batch_delay_ms=0)
    try:
        rt.submit(windows(1, 0, t=64)).result(WAIT)  # the worker thread has run torch ops
        configure_torch_threads(1)
        rt.submit(windows(1, 0, t=64)).result(WAIT)
        assert seen[-1] == 1
    finally:
        configure_torch_threads(original)


def test_configure_torch_threads_clamps_process_wide() -> None:
    original = torch.get_num_threads()
    try:
        assert configure_torch_threads(0) == 1 and torch.get_num_threads() == 1
        assert configure_torch_threads(10_000) == (os.cpu_count() or 1)
    finally:
        torch.set_num_threads(original)


class ThreadProbe(nn.Module):
    """Records the torch intra-op thread count each forward pass runs with."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(torch.get_num_threads())
        return x[:, :C]


@pytest.mark.skipif(
    (os.cpu_count() or 1) < 2 or not threads_per_os_thread(),
    reason="needs 2 cores and torch's OpenMP backend",
)
def test_threads_are_per_runtime_not_process_wide(runtimes: list[BatchedRuntime]) -> None:
    original = torch.get_num_threads()
    one, two = ThreadProbe(), ThreadProbe()
    rt_one = make(runtimes, one, threads=1, replicas=2)
    rt_two = make(runtimes, two, threads=2)
    try:
        for i in range(4):  # interleaved; the process-wide knob does not reach them
            if i == 2:
                configure_torch_threads(1 if original > 1 else 2)
            results([rt_one.submit(windows(1, i, t=64)), rt_two.submit(windows(1, i, t=64))])
    finally:
        configure_torch_threads(original)
    assert (rt_one.threads, rt_two.threads) == (1, 2)
    assert set(one.seen) == {1} and set(two.seen) == {2}
    assert len(one.seen) == len(two.seen) == 4
    assert torch.get_num_threads() == original  # the caller's thread keeps its own count


def test_runtime_threads_are_clamped_and_checked(
    runtimes: list[BatchedRuntime], monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    with pytest.raises(ValueError, match="threads must be None or >= 1"):
        BatchingConfig(threads=0)
    if threads_per_os_thread():
        assert make(runtimes, ThreadProbe(), threads=10_000).threads == (os.cpu_count() or 1)
    assert make(runtimes, ThreadProbe()).threads is None  # the process-wide setting
    monkeypatch.setattr("inference.runtime.threads_per_os_thread", lambda: False)
    assert make(runtimes, ThreadProbe(), threads=1).threads is None
    assert "threads=1 is ignored" in caplog.text
