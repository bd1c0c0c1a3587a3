"""Full garbage collections while nobody is typing.

The console shares its process with torch, the models and (in the demo) the inference server.
CPython's automatic full collection walks every tracked object and holds the GIL meanwhile, so
each one froze key handling for 0.5-2 s (benchmarks/console_bench.py). Two measures:

* ``freeze()`` after start-up moves what exists then (torch, models, Textual) into the permanent
  generation: later collections no longer walk it;
* automatic full collections are switched off; ``IdleCollector.tick()`` runs one at most every
  ``min_interval_s`` seconds when no key or click came for ``quiet_s`` seconds, and at the
  latest every ``max_interval_s`` seconds, so cyclic garbage is still reclaimed. Young
  collections (cheap) stay automatic.
"""

from __future__ import annotations

import gc
import time

NEVER = 1 << 30  # a gen-2 threshold that is never reached


class IdleCollector:
    def __init__(
        self, quiet_s: float = 1.0, min_interval_s: float = 5.0, max_interval_s: float = 60.0
    ) -> None:
        self.quiet_s = quiet_s
        self.min_interval_s = min_interval_s
        self.max_interval_s = max_interval_s
        self.last_input = time.monotonic()
        self.last_collect = time.monotonic()
        self.collections = 0
        self._saved: tuple[int, int, int] | None = None

    def start(self) -> None:
        if self._saved is None:
            self._saved = gc.get_threshold()
            young, middle, _full = self._saved
            gc.set_threshold(young, middle, NEVER)

    def freeze(self) -> None:
        """Collect once, then take every surviving object out of later collections."""
        gc.collect()
        gc.freeze()
        self.last_collect = time.monotonic()

    def touched(self) -> None:
        self.last_input = time.monotonic()

    def tick(self) -> bool:
        """Collect now if the user is idle (or it is overdue); returns whether it did."""
        now = time.monotonic()
        since = now - self.last_collect
        idle = now - self.last_input >= self.quiet_s
        if since < self.min_interval_s or (not idle and since < self.max_interval_s):
            return False
        gc.collect()
        self.last_collect = time.monotonic()
        self.collections += 1
        return True

    def stop(self) -> None:
        """Back to CPython's defaults (tests run many consoles in one process)."""
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None
        gc.unfreeze()
