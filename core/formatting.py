"""Numbers, sizes, times, ages and status tones as people read them, for every face (the CLI and
the console): one way to write "3,575", "12 s ago", "2h 05m" or "DEPLOYED in green". Plain
strings and names, no Rich or Textual: the console maps a tone to its theme's colour, the CLI
to a Rich style (``CLI_TONE_STYLE``)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

DASH = "—"

# What a status means at a glance; each face decides what colour a tone is.
STATUS_TONE = {
    # model lifecycle
    "training": "muted",
    "validation": "accent",
    "testing": "warn",
    "deployed": "good",
    "retired": "muted",
    "failed": "bad",
    # experiments
    "draft": "accent",
    "running": "good",
    "stopped": "warn",
    "completed": "primary",
    # deployments
    "healthy": "good",
    "unhealthy": "bad",
    "unknown": "muted",
    # canaries
    "progressing": "accent",
    "paused": "warn",
    "promoted": "good",
    "aborted": "bad",
    # events
    "info": "primary",
    "warning": "warn",
    "critical": "bad",
}
CLI_TONE_STYLE = {
    "good": "bold green",
    "bad": "bold red",
    "warn": "yellow",
    "accent": "cyan",
    "primary": "blue",
    "muted": "dim",
}


def cli_style(status: str) -> str:
    """The Rich style the CLI gives a status ("" when it has no tone)."""
    return CLI_TONE_STYLE.get(STATUS_TONE.get(status.lower(), ""), "")


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


# A serving process writes a metrics snapshot every 5 s; three missed ones mean nobody is counting.
STALE_AFTER_S = 15.0


def is_stale(taken: datetime, now: datetime | None = None) -> bool:
    """Whether figures taken at ``taken`` are too old to describe what is served now."""
    return seconds_since(taken, now) > STALE_AFTER_S


def figures_age(taken: datetime, now: datetime | None = None) -> str:
    """The age of a metrics snapshot as both faces print it: ``12 s ago``, ``stale, 15 s ago``."""
    text = age(seconds_since(taken, now))
    return f"stale, {text}" if is_stale(taken, now) else text


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


def num(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return DASH
    return f"{x:.{digits}f}"


def signed(x: float | None, digits: int = 3, suffix: str = "") -> str:
    if x is None or not math.isfinite(x):
        return DASH
    return f"{x:+.{digits}f}{suffix}"


def pvalue(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return DASH
    if p < 0.001:
        return "<0.001"
    return f"{p:.3f}"


def percent(x: float | None, digits: int = 1) -> str:
    """``x`` already in percent."""
    if x is None or not math.isfinite(x):
        return DASH
    return f"{x:.{digits}f}%"


# A value inside an audit change longer than this is cut: a nested config stays one glance wide.
CHANGE_VALUE_WIDTH = 48
# A created record shows at most this many fields.
CHANGE_FIELDS = 6


def compact_value(value: object, width: int = CHANGE_VALUE_WIDTH) -> str:
    """One value as ``key=value`` text shows it: scalars plain, lists and mappings as compact
    JSON, anything past ``width`` characters cut with an ellipsis."""
    if value is None:
        text = "-"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, int):
        text = str(value)
    else:
        text = json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def change_summary(before: dict | None, after: dict | None, detail: str = "") -> str:
    """An audit entry's change as compact text, never a Python dict repr: the keys that changed
    (``status: testing -> deployed``), the fields of what was created (``name=x, role=admin``) or
    removed (``removed name=x``), then the detail in parentheses. A record created with many
    fields (a registered model, a deployment's full row) shows its first few plain ones, without
    timestamps or nested config (``--json`` has them all)."""
    before, after = before or {}, after or {}
    if before and after:
        keys = [*before, *(k for k in after if k not in before)]
        parts = [
            f"{k}: {compact_value(before.get(k))} -> {compact_value(after.get(k))}"
            for k in keys
            if before.get(k) != after.get(k)
        ]
        text = ", ".join(parts) or "no change"
    elif after or before:
        text = _fields(after or before)
        text = text if after else f"removed {text}"
    else:
        return detail
    return f"{text} ({detail})" if detail else text


def _fields(record: dict, most: int = CHANGE_FIELDS) -> str:
    if len(record) > most:  # a whole row: its plain, non-empty fields only
        record = {
            k: v
            for k, v in record.items()
            if v not in (None, "") and not isinstance(v, dict | list) and not k.endswith("_at")
        }
    parts = [f"{k}={compact_value(v)}" for k, v in record.items()]
    more = f", +{len(parts) - most} more" if len(parts) > most else ""
    return ", ".join(parts[:most]) + more
