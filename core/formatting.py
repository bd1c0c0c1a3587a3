"""Numbers, sizes, times and ages as people read them, for every face (the CLI and the
console): one way to write "3,575", "12 s ago" or "2h 05m". Plain strings, no Rich or Textual."""

from __future__ import annotations

import math
from datetime import UTC, datetime

DASH = "—"


def count(n: int | float | None, unit: str = "") -> str:
    """``3,575`` or, with a unit, ``1 request`` / ``3,575 requests`` (naive English plural)."""
    if n is None or (isinstance(n, float) and not math.isfinite(n)):
        return DASH
    text = f"{n:,.0f}" if isinstance(n, float) else f"{n:,}"
    if not unit:
        return text
    return f"{text} {unit if n == 1 else unit + 's'}"


def age(seconds: float | None) -> str:
    """How long ago: ``just now``, ``12 s ago``, ``4 min ago``, ``3 h ago``, ``2 d ago``."""
    if seconds is None or not math.isfinite(seconds):
        return DASH
    s = max(0, int(seconds))
    if s < 1:
        return "just now"
    if s < 60:
        return f"{s} s ago"
    if s < 3600:
        return f"{s // 60} min ago"
    if s < 86400:
        return f"{s // 3600} h ago"
    return f"{s // 86400} d ago"


def seconds_since(dt: datetime, now: datetime | None = None) -> float:
    if dt.tzinfo is None:  # storage is UTC; a naive value from an old row means UTC too
        dt = dt.replace(tzinfo=UTC)
    return ((now or datetime.now(UTC)) - dt).total_seconds()


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


def size(n: int | None, empty: str = DASH) -> str:
    """``812 B``, ``1.4 MB``; ``empty`` for None (and 0, which no stored artifact has)."""
    if not n:
        return empty
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # unreachable


def local_time(dt: datetime | None, seconds: bool = False) -> str:
    """Local time on screen (storage is UTC)."""
    if dt is None:
        return DASH
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone().strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
