"""LRU cache of loaded models within a memory budget, with pinning for models being served.

* ``get_or_load(key, loader)`` loads each key at most once at a time: concurrent callers of
  the same key wait for the one load (per-key in-flight record) while other keys load in
  parallel; the loader runs outside the cache lock. A loader error is never cached: the
  callers waiting on that load get the error, and the next call tries again.
* Size is ``model_bytes``: parameter + buffer bytes (what the weights occupy; activations
  and allocator overhead are not counted).
* Before inserting, least recently used *unpinned* entries are evicted until the new model
  fits. Pinned entries (models currently serving) are never evicted. If the model still
  does not fit after every unpinned entry is gone, it is cached anyway and the cache
  reports ``over_budget`` (stats + a warning): refusing to load a model that is needed to
  serve would turn a memory-budget misconfiguration into an outage.
* Eviction only drops the cache's reference; a runtime still holding the module keeps it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

logger = logging.getLogger(__name__)


def model_bytes(module: nn.Module) -> int:
    """Bytes held by a module's parameters and buffers (shared tensors counted once)."""
    seen: set[int] = set()
    total = 0
    for tensor in (*module.parameters(), *module.buffers()):
        if id(tensor) not in seen:
            seen.add(id(tensor))
            total += tensor.numel() * tensor.element_size()
    return total


@dataclass
class _Entry:
    model: nn.Module
    size: int
    pins: int = 0


@dataclass
class _Pending:
    """An in-flight load that other callers of the same key wait on."""

    done: threading.Event = field(default_factory=threading.Event)
    model: nn.Module | None = None
    error: BaseException | None = None


class ModelCache:
    """Thread-safe LRU of models keyed by any hashable, e.g. ("wildlife_detector", "v2.1.0")."""

    def __init__(self, budget_bytes: int) -> None:
        if isinstance(budget_bytes, bool) or not isinstance(budget_bytes, int) or budget_bytes < 0:
            raise ValueError(f"budget_bytes must be an integer >= 0, got {budget_bytes!r}")
        self.budget_bytes = budget_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()  # oldest first
        self._pending: dict[Hashable, _Pending] = {}
        self._bytes = 0
        self._hits = self._misses = self._loads = self._evictions = 0

    def get_or_load(self, key: Hashable, loader: Callable[[], nn.Module]) -> nn.Module:
        """The cached model for ``key``, calling ``loader()`` (once across threads) if absent."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self._hits += 1
                return entry.model
            self._misses += 1
            pending = self._pending.get(key)
            owner = pending is None
            if pending is None:
                pending = self._pending[key] = _Pending()
        if not owner:
            pending.done.wait()
            if pending.error is not None:
                raise pending.error
            assert pending.model is not None
            return pending.model
        try:
            model = loader()
            if not isinstance(model, nn.Module):
                raise TypeError(f"loader for {key!r} returned {type(model).__name__}")
            size = model_bytes(model)
        except BaseException as exc:
            with self._lock:
                del self._pending[key]  # not cached: the next call retries
            pending.error = exc
            pending.done.set()
            raise
        with self._lock:
            self._make_room_locked(size)
            self._entries[key] = _Entry(model, size)
            self._bytes += size
            self._loads += 1
            total = self._bytes
            del self._pending[key]
        if total > self.budget_bytes:
            logger.warning(
                "model cache over budget after loading %r: %d > %d bytes (pinned or too large)",
                key,
                total,
                self.budget_bytes,
            )
        pending.model = model
        pending.done.set()
        return model

    def get(self, key: Hashable) -> nn.Module | None:
        """The cached model (marking it recently used) or None; never loads."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry.model

    def pin(self, key: Hashable) -> None:
        """Protect a cached model from eviction; pins nest (pin twice, unpin twice)."""
        with self._lock:
            self._entry_locked(key).pins += 1

    def unpin(self, key: Hashable) -> None:
        with self._lock:
            entry = self._entry_locked(key)
            if entry.pins == 0:
                raise ValueError(f"model {key!r} is not pinned")
            entry.pins -= 1

    def is_pinned(self, key: Hashable) -> bool:
        with self._lock:
            entry = self._entries.get(key)
            return entry is not None and entry.pins > 0

    def evict(self, key: Hashable) -> bool:
        """Drop ``key``; False if absent. Raises ValueError for a pinned model."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False
            if entry.pins:
                raise ValueError(f"model {key!r} is pinned; unpin it before evicting")
            self._remove_locked(key)
            return True

    def keys(self) -> list[Hashable]:
        """Cached keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "hits": self._hits,
                "misses": self._misses,
                "loads": self._loads,
                "evictions": self._evictions,
                "bytes": self._bytes,
                "budget_bytes": self.budget_bytes,
                "entries": len(self._entries),
                "pinned": sum(1 for e in self._entries.values() if e.pins),
                "over_budget": self._bytes > self.budget_bytes,
            }

    def _entry_locked(self, key: Hashable) -> _Entry:
        entry = self._entries.get(key)
        if entry is None:
            raise KeyError(f"model {key!r} is not cached")
        return entry

    def _remove_locked(self, key: Hashable) -> None:
        entry = self._entries.pop(key)
        self._bytes -= entry.size
        self._evictions += 1

    def _make_room_locked(self, size: int) -> None:
        """Evict unpinned entries, least recently used first, until ``size`` more bytes fit."""
        for key in [k for k, e in self._entries.items() if not e.pins]:
            if self._bytes + size <= self.budget_bytes:
                return
            self._remove_locked(key)
