"""ModelCache: single-flight loads, LRU order, pinning, memory budget, error handling."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from inference.architectures import build_model
from inference.model_cache import ModelCache, model_bytes

WAIT = 30.0  # hang guard only


def linear(n: int) -> nn.Module:
    """A model of exactly (n + 1) * 4 bytes."""
    return nn.Linear(n, 1)


MB = (255 + 1) * 4  # model_bytes(linear(255)) == 1024


def test_model_bytes_counts_parameters_buffers_and_shared_once() -> None:
    assert model_bytes(linear(255)) == MB
    bn = nn.BatchNorm1d(10)  # weight, bias + running_mean, running_var (f32), num_batches (i64)
    assert model_bytes(bn) == 4 * 10 * 4 + 8
    shared = nn.Linear(4, 4, bias=False)
    assert model_bytes(nn.Sequential(shared, shared)) == 16 * 4
    half = linear(255).to(torch.float16)
    assert model_bytes(half) == MB // 2
    small_cnn = build_model("small_cnn", 5)
    params = sum(p.numel() * p.element_size() for p in small_cnn.parameters())
    assert model_bytes(small_cnn) > params  # BatchNorm statistics and mel filterbank count


def test_same_key_loads_once_under_concurrent_callers() -> None:
    cache = ModelCache(budget_bytes=10 * MB)
    calls = 0
    entered, release = threading.Event(), threading.Event()
    start = threading.Barrier(8, timeout=WAIT)
    got: list[nn.Module] = []

    def loader() -> nn.Module:
        nonlocal calls
        calls += 1
        entered.set()
        assert release.wait(WAIT)
        return linear(255)

    def caller() -> None:
        start.wait()
        got.append(cache.get_or_load(("wildlife_detector", "v2.1.0"), loader))

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for th in threads:
        th.start()
    assert entered.wait(WAIT)
    release.set()
    for th in threads:
        th.join(WAIT)
    assert calls == 1
    assert len(got) == 8 and all(m is got[0] for m in got)
    stats = cache.stats()
    assert stats["loads"] == 1 and stats["entries"] == 1 and stats["bytes"] == MB
    assert stats["hits"] + stats["misses"] == 8


def test_different_keys_load_in_parallel() -> None:
    cache = ModelCache(budget_bytes=10 * MB)
    both = threading.Barrier(2, timeout=WAIT)

    def loader() -> nn.Module:
        both.wait()  # deadlocks (then times out) if loads were serialised by one lock
        return linear(255)

    threads = [threading.Thread(target=cache.get_or_load, args=(key, loader)) for key in ("a", "b")]
    for th in threads:
        th.start()
    for th in threads:
        th.join(WAIT)
    assert "a" in cache and "b" in cache


def test_lru_eviction_order() -> None:
    cache = ModelCache(budget_bytes=3 * MB)
    for key in ("a", "b", "c"):
        cache.get_or_load(key, lambda: linear(255))
    cache.get_or_load("a", lambda: pytest.fail("cached model reloaded"))  # a is now newest
    cache.get_or_load("d", lambda: linear(255))  # evicts b (least recently used)
    assert cache.keys() == ["c", "a", "d"]
    cache.get("c")
    cache.get_or_load("e", lambda: linear(2 * 256 - 1))  # 2 MB: evicts a, then d
    assert cache.keys() == ["c", "e"]
    stats = cache.stats()
    assert stats["evictions"] == 3 and stats["bytes"] == 3 * MB
    assert stats["hits"] == 1 and stats["misses"] == 5 and stats["loads"] == 5


def test_pinned_models_are_never_evicted() -> None:
    cache = ModelCache(budget_bytes=2 * MB)
    cache.get_or_load("serving", lambda: linear(255))
    cache.pin("serving")
    cache.pin("serving")  # pins nest
    for key in ("x", "y", "z"):
        cache.get_or_load(key, lambda: linear(255))
    assert "serving" in cache and cache.keys() == ["serving", "z"]
    cache.unpin("serving")
    assert cache.is_pinned("serving")
    cache.get_or_load("w", lambda: linear(255))
    assert "serving" in cache
    with pytest.raises(ValueError, match="pinned"):
        cache.evict("serving")
    cache.unpin("serving")
    cache.get_or_load("v", lambda: linear(255))
    assert "serving" not in cache  # unpinned: ordinary LRU again


def test_over_budget_when_pinned_models_leave_no_room() -> None:
    cache = ModelCache(budget_bytes=2 * MB)
    cache.get_or_load("a", lambda: linear(255))
    cache.pin("a")
    cache.get_or_load("b", lambda: linear(255))
    big = cache.get_or_load("big", lambda: linear(2 * 256 - 1))  # needs 2 MB; only b can go
    assert isinstance(big, nn.Linear)
    stats = cache.stats()
    assert "a" in cache and "b" not in cache and "big" in cache
    assert stats["over_budget"] and stats["bytes"] == 3 * MB
    cache.get_or_load("c", lambda: linear(255))  # the next load evicts big to get back in
    stats = cache.stats()
    assert cache.keys() == ["a", "c"] and not stats["over_budget"]


def test_budget_respected_over_many_loads() -> None:
    cache = ModelCache(budget_bytes=5 * MB)
    sizes = [1, 3, 2, 1, 4, 2, 2, 5, 1, 1, 3]
    for i, mb in enumerate(sizes):
        cache.get_or_load(i, lambda mb=mb: linear(mb * 256 - 1))
        stats = cache.stats()
        assert stats["bytes"] <= stats["budget_bytes"]
        assert stats["bytes"] == sum(model_bytes(cache.get(k)) for k in cache.keys())
        assert i in cache  # the newest model is always kept


def test_loader_error_is_not_cached() -> None:
    cache = ModelCache(budget_bytes=10 * MB)
    attempts = 0

    def flaky() -> nn.Module:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise OSError("artifact store unavailable")
        return linear(255)

    with pytest.raises(OSError, match="unavailable"):
        cache.get_or_load("m", flaky)
    assert "m" not in cache and cache.stats()["loads"] == 0
    assert isinstance(cache.get_or_load("m", flaky), nn.Linear)
    assert attempts == 2 and cache.stats()["loads"] == 1
    with pytest.raises(TypeError):
        cache.get_or_load("not-a-model", lambda: "weights.pt")  # type: ignore[arg-type,return-value]
    assert "not-a-model" not in cache


def test_concurrent_waiters_see_the_loader_error_then_retry() -> None:
    cache = ModelCache(budget_bytes=10 * MB)
    entered, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def failing() -> nn.Module:
        entered.set()
        assert release.wait(WAIT)
        raise RuntimeError("corrupt weights")

    def owner() -> None:
        try:
            cache.get_or_load("m", failing)
        except RuntimeError as exc:
            errors.append(exc)

    first = threading.Thread(target=owner)
    first.start()
    assert entered.wait(WAIT)
    waiter = threading.Thread(target=owner)  # joins the in-flight load (or retries after)
    waiter.start()
    release.set()
    first.join(WAIT)
    waiter.join(WAIT)
    assert len(errors) == 2 and "m" not in cache
    assert isinstance(cache.get_or_load("m", lambda: linear(255)), nn.Linear)


def test_evict_pin_and_unpin_errors() -> None:
    cache = ModelCache(budget_bytes=MB)
    assert cache.evict("missing") is False
    with pytest.raises(KeyError):
        cache.pin("missing")
    cache.get_or_load("a", lambda: linear(255))
    with pytest.raises(ValueError, match="not pinned"):
        cache.unpin("a")
    assert cache.evict("a") is True and "a" not in cache and len(cache) == 0
    assert cache.stats()["bytes"] == 0
    with pytest.raises(ValueError):
        ModelCache(budget_bytes=-1)
