"""Plain-text formatting shared by the screens: times, sizes, numbers, bars.

Every screen reads the clock through ``now()`` and ``now_ts()`` and formats datetimes through
``when()``, so snapshot tests can freeze all three in one place.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime


def now() -> datetime:
    """Timezone-aware now (UTC)."""
    return datetime.now(UTC)


def now_ts() -> float:
    """Unix time, for aligning per-second series."""
    return time.time()


def when(dt: datetime | None, seconds: bool = False) -> str:
    """Local time on screen (storage is UTC)."""
    if dt is None:
        return "—"
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone().strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def duration(hours: float) -> str:
    """``3d 4h``, ``2h 05m``, ``12m 30s``."""
    seconds = max(int(hours * 3600), 0)
    d, rem = divmod(seconds, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    if d:
        return f"{d}d {h}h"
    if h:
        return f"{h}h {m:02d}m"
    return f"{m}m {s:02d}s"


def size(n: int | None) -> str:
    if not n:
        return "—"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # unreachable


def num(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.{digits}f}"


def signed(x: float | None, digits: int = 3, suffix: str = "") -> str:
    if x is None or not math.isfinite(x):
        return "—"
    return f"{x:+.{digits}f}{suffix}"


def pvalue(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "—"
    if p < 0.001:
        return "<0.001"
    return f"{p:.3f}"


def percent(x: float | None, digits: int = 1) -> str:
    """``x`` already in percent."""
    if x is None or not math.isfinite(x):
        return "—"
    return f"{x:.{digits}f}%"


def bar(fraction: float, width: int) -> str:
    """A solid progress bar of ``width`` cells (eighths for the last cell)."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part] if part else ""
    return ("█" * full + partial).ljust(width, "·")[:width]


def short_checksum(checksum: str, n: int = 10) -> str:
    return checksum[:n] if checksum else "—"
