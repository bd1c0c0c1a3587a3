"""Sticky, deterministic routing of units (requests or users) to variants.

Bucket
    ``bucket = int.from_bytes(sha256(f"{experiment_id}:{unit_id}".encode("utf-8")).digest()[:8],
    "big") % 10000``. SHA-256 is the same on every machine, in every process and after every
    restart (Python's ``hash()`` is salted per process and is never used). Test vectors, shipped
    in ``tests/core/test_experiments_routing.py``::

        bucket_of("accuracy_improvement_test", "user_123_request_456") == 768
        bucket_of("exp", "0") == 3997
        bucket_of("exp", "unit-42") == 101
        bucket_of("démo", "ünïcode") == 4746  # UTF-8 bytes are hashed
        bucket_of("exp1", "") == 619

    (check by hand: ``printf 'exp:0' | sha256sum``, first 16 hex digits as an integer, mod 10000)

Bucket map
    10,000 entries, each the index of a variant. The shares are turned into whole bucket counts
    by the largest-remainder method (ties: config variant order), so 1 bucket = 0.01 %. The
    initial allocation lays the counts out as contiguous ranges in the config's variant order.

Reallocation (manual or bandit)
    A deterministic minimal move: every over-allocated variant releases its surplus, highest
    bucket numbers first; the released buckets, in ascending order, go to the under-allocated
    variants in variant order. Exactly ``sum(max(0, old - new))`` buckets move, the least any
    scheme can, so a unit changes variant only when its variant had to shrink.

    Every process builds the map by replaying the persisted allocation history (version 1, 2,
    ...) through these rules, so all processes agree without storing the map.

Caching
    :class:`ExperimentRouter` keeps each experiment's map in memory and asks the database at most
    once per ``refresh_interval`` (1 s) whether the status or allocation version changed; new
    versions are applied to the cached map incrementally. A decision is one SHA-256 and two
    indexings. An experiment that is not RUNNING is refused with a ``ConflictError`` (no
    exposure is recorded); callers that want a fallback serve the control themselves.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from hashlib import sha256

from core.errors import ConflictError

BUCKETS = 10_000


def bucket_of(experiment_id: str, unit_id: str) -> int:
    digest = sha256(f"{experiment_id}:{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def bucket_counts(variants: Sequence[str], allocation: dict[str, float]) -> list[int]:
    """Whole bucket counts per variant (largest remainder; ties go to the earlier variant)."""
    shares = [max(float(allocation.get(v, 0.0)), 0.0) for v in variants]
    total = sum(shares)
    if total <= 0:
        raise ValueError("an allocation needs at least one positive share")
    exact = [s / total * BUCKETS for s in shares]
    counts = [math.floor(x + 1e-9) for x in exact]
    left = BUCKETS - sum(counts)
    order = sorted(range(len(variants)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[:left]:
        counts[i] += 1
    return counts


def counts_to_percent(variants: Sequence[str], counts: Sequence[int]) -> dict[str, float]:
    return {v: round(c * 100.0 / BUCKETS, 2) for v, c in zip(variants, counts, strict=True)}


def snap_to_buckets(variants: Sequence[str], allocation: dict[str, float]) -> dict[str, float]:
    """The allocation rounded to the bucket grid (0.01 %), still summing to exactly 100."""
    return counts_to_percent(variants, bucket_counts(variants, allocation))


def initial_map(variants: Sequence[str], allocation: dict[str, float]) -> bytearray:
    counts = bucket_counts(variants, allocation)
    out = bytearray()
    for index, count in enumerate(counts):
        out += bytes([index]) * count
    return out


def rebalance(
    bucket_map: bytes | bytearray, variants: Sequence[str], allocation: dict[str, float]
) -> bytearray:
    """The map after a minimal move to ``allocation`` (see the module docstring)."""
    new = bucket_counts(variants, allocation)
    current = [bucket_map.count(i) for i in range(len(variants))]
    surplus = {i: current[i] - new[i] for i in range(len(variants)) if current[i] > new[i]}
    out = bytearray(bucket_map)
    released: list[int] = []
    to_release = sum(surplus.values())
    for b in range(BUCKETS - 1, -1, -1):
        if len(released) == to_release:
            break
        v = out[b]
        if surplus.get(v, 0) > 0:
            surplus[v] -= 1
            released.append(b)
    released.reverse()  # ascending bucket numbers
    it = iter(released)
    for i in range(len(variants)):
        for _ in range(max(new[i] - current[i], 0)):
            out[next(it)] = i
    return out


def build_map(variants: Sequence[str], history: Sequence[dict[str, float]]) -> bytearray:
    """Replay an allocation history (oldest first) into the current bucket map."""
    bucket_map = initial_map(variants, history[0])
    for allocation in history[1:]:
        bucket_map = rebalance(bucket_map, variants, allocation)
    return bucket_map


@dataclass
class _Route:
    status: str
    version: int
    variants: tuple[str, ...]
    refs: tuple[str, ...]
    prefix: bytes
    bucket_map: bytearray
    checked_at: float


# (experiment_id) -> (status, allocation_version); cheap, called at most once per interval.
StateLoader = Callable[[str], tuple[str, int]]
# (experiment_id, after_version) -> [(version, allocation)] in version order.
HistoryLoader = Callable[[str, int], list[tuple[int, dict[str, float]]]]
# (experiment_id) -> [(variant, model_ref)] in config order.
VariantLoader = Callable[[str], list[tuple[str, str]]]


class ExperimentRouter:
    """Process-local cache of bucket maps; ``assign`` is the hot path."""

    def __init__(
        self,
        load_state: StateLoader,
        load_history: HistoryLoader,
        load_variants: VariantLoader,
        refresh_interval: float = 1.0,
    ) -> None:
        self._load_state = load_state
        self._load_history = load_history
        self._load_variants = load_variants
        self.refresh_interval = refresh_interval
        self._routes: dict[str, _Route] = {}
        self._lock = threading.Lock()

    def assign(self, experiment_id: str, unit_id: str) -> tuple[str, str]:
        """(variant, "model_id:version") for the unit; ConflictError if not RUNNING."""
        route = self._routes.get(experiment_id)
        if route is None or time.monotonic() - route.checked_at >= self.refresh_interval:
            route = self._refresh(experiment_id)
        if route.status != "running":
            raise ConflictError(
                f"experiment {experiment_id} is {route.status.upper()}, not RUNNING; "
                "requests are not routed (serve the control and record no result)"
            )
        if type(unit_id) is not str:
            unit_id = str(unit_id)
        digest = sha256(route.prefix + unit_id.encode()).digest()
        index = route.bucket_map[int.from_bytes(digest[:8], "big") % BUCKETS]
        return route.variants[index], route.refs[index]

    def bucket_map(self, experiment_id: str) -> tuple[int, bytes]:
        """(allocation version, map) as this process currently routes."""
        route = self._refresh(experiment_id)
        return route.version, bytes(route.bucket_map)

    def invalidate(self, experiment_id: str | None = None) -> None:
        """Force a refresh on the next decision (after a change made by this process)."""
        with self._lock:
            if experiment_id is None:
                for route in self._routes.values():
                    route.checked_at = -math.inf
            elif experiment_id in self._routes:
                self._routes[experiment_id].checked_at = -math.inf

    def _refresh(self, experiment_id: str) -> _Route:
        with self._lock:
            route = self._routes.get(experiment_id)
            now = time.monotonic()
            if route is not None and now - route.checked_at < self.refresh_interval:
                return route  # another thread refreshed it meanwhile
            status, version = self._load_state(experiment_id)
            if route is None:
                pairs = self._load_variants(experiment_id)
                variants = tuple(v for v, _ in pairs)
                history = self._load_history(experiment_id, 0)
                bucket_map = build_map(variants, [a for _, a in history])
                route = _Route(
                    status=status,
                    version=history[-1][0],
                    variants=variants,
                    refs=tuple(r for _, r in pairs),
                    prefix=f"{experiment_id}:".encode(),
                    bucket_map=bucket_map,
                    checked_at=now,
                )
            elif version != route.version:
                bucket_map = route.bucket_map
                for v, allocation in self._load_history(experiment_id, route.version):
                    bucket_map = rebalance(bucket_map, route.variants, allocation)
                    route.version = v
                # Swap in the finished map in one assignment; readers never see a partial one.
                route.bucket_map = bucket_map
            route.status, route.checked_at = status, now
            self._routes[experiment_id] = route
            return route
