"""Plain-text formatting for the screens: ``core.formatting`` (shared with the CLI) plus the
clock and the bars, which only the screens need.

Every screen reads the clock through ``now()`` and ``now_ts()`` and formats datetimes through
``when()``, so snapshot tests can freeze all three in one place.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

# The CLI formats through the same functions (one way to write a number, a size, an age).
from core.formatting import (  # noqa: F401  (re-exported for the screens)
    age,
    count,
    duration,
    figures_age,
    is_stale,
    local_time,
    num,
    percent,
    pvalue,
    signed,
    size,
)


def now() -> datetime:
    """Timezone-aware now (UTC)."""
    return datetime.now(UTC)


def now_ts() -> float:
    """Unix time, for aligning per-second series."""
    return time.time()


def when(dt: datetime | None, seconds: bool = False) -> str:
    """Local time on screen (storage is UTC)."""
    return local_time(dt, seconds)


def bar(fraction: float, width: int) -> str:
    """A solid progress bar of ``width`` cells (eighths for the last cell)."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part] if part else ""
    return ("█" * full + partial).ljust(width, "·")[:width]


def short_checksum(checksum: str, n: int = 10) -> str:
    return checksum[:n] if checksum else "—"
