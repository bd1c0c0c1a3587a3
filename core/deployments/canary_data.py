"""What the canary policy sees: per-arm requests, errors, latencies and feedback.

Each serving process counts its own traffic in memory (``observe`` is O(1) on the request path)
and ``flush`` writes one ``canary_sample`` batch per arm on every supervisor tick, so an analysis
in any process judges the traffic of all of them. Latencies are a uniform reservoir sample
beyond ``LATENCIES_PER_FLUSH`` per arm and tick, and ``windows_from_batches`` caps an analysis at
``LATENCIES_PER_ANALYSIS`` per arm: plenty for an exceedance share, bounded memory and rows.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.deployments.canary_policy import ArmWindow
from data.canary_tables import CanarySampleRow
from data.database import Database

LATENCIES_PER_FLUSH = 5_000
LATENCIES_PER_ANALYSIS = 20_000
Arm = tuple[int, str]  # (canary id, "stable" | "canary")


@dataclass
class _Tally:
    requests: int = 0
    errors: int = 0
    labelled: int = 0
    correct: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    seen: int = 0

    def add(self, latency_s: float, ok: bool, rng: random.Random) -> None:
        self.requests += 1
        if not ok:  # failed requests count as errors; their latency says nothing
            self.errors += 1
            return
        self.seen += 1
        if len(self.latencies_ms) < LATENCIES_PER_FLUSH:
            self.latencies_ms.append(latency_s * 1000.0)
        else:
            slot = rng.randrange(self.seen)
            if slot < LATENCIES_PER_FLUSH:
                self.latencies_ms[slot] = latency_s * 1000.0


class CanaryObservations:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._tallies: dict[Arm, _Tally] = {}
        self._rng = random.Random(0)

    def observe(self, arm: Arm | None, latency_s: float, ok: bool) -> None:
        if arm is None:
            return
        with self._lock:
            self._tallies.setdefault(arm, _Tally()).add(latency_s, ok, self._rng)

    def observe_feedback(self, arm: Arm | None, correct: bool) -> None:
        if arm is None:
            return
        with self._lock:
            tally = self._tallies.setdefault(arm, _Tally())
            tally.labelled += 1
            tally.correct += int(correct)

    def flush(self) -> int:
        """Write what was counted since the last flush; returns the number of batches."""
        with self._lock:
            tallies, self._tallies = self._tallies, {}
        rows = [
            CanarySampleRow(
                canary_id=canary_id,
                arm=arm,
                requests=t.requests,
                errors=t.errors,
                labelled=t.labelled,
                correct=t.correct,
                latencies_ms=[round(x, 3) for x in t.latencies_ms],
            )  # fmt: skip
            for (canary_id, arm), t in tallies.items()
            if t.requests or t.labelled
        ]
        if rows:
            with self.db.write() as session:
                session.add_all(rows)
        return len(rows)


def windows_from_batches(batches: list[CanarySampleRow], seed: int) -> tuple[ArmWindow, ArmWindow]:
    """(stable, canary): the new traffic of one analysis window, over every process's batches."""
    totals: dict[str, dict[str, Any]] = {}
    for b in batches:
        t = totals.setdefault(b.arm, {"requests": 0, "errors": 0, "labelled": 0, "correct": 0,
                                      "latencies_ms": []})  # fmt: skip
        for key in ("requests", "errors", "labelled", "correct"):
            t[key] += getattr(b, key)
        t["latencies_ms"].extend(b.latencies_ms or [])
    rng = np.random.default_rng(seed)
    for t in totals.values():  # a uniform subsample keeps the exceedance share unbiased
        if len(t["latencies_ms"]) > LATENCIES_PER_ANALYSIS:
            t["latencies_ms"] = list(rng.choice(t["latencies_ms"], LATENCIES_PER_ANALYSIS, False))
    empty = {"requests": 0, "errors": 0}
    return ArmWindow(**totals.get("stable", empty)), ArmWindow(**totals.get("canary", empty))
