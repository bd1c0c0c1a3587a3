"""Ordering of version strings: semantic versions sort numerically, anything else after them."""

from __future__ import annotations

import re

_SEMVER = re.compile(
    r"^v?(?P<major>\d+)(?:\.(?P<minor>\d+))?(?:\.(?P<patch>\d+))?"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
_VERSION_CHARS = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,99}$")


def is_valid_version(version: str) -> bool:
    return bool(_VERSION_CHARS.match(version))


def version_key(version: str) -> str:
    """A string whose lexical order is semantic-version order.

    ``v2.10.0`` -> ``1.000000002.000000010.000000000.~``; a pre-release sorts before its release
    (``-`` < ``~``) and its numeric identifiers are padded so ``rc.10`` follows ``rc.9``.
    Strings that are not semantic versions sort after every semantic one, alphabetically.
    """
    m = _SEMVER.match(version)
    if not m:
        return "2." + version
    nums = [int(m.group(k) or 0) for k in ("major", "minor", "patch")]
    pre = m.group("pre")
    tail = (
        "~"
        if pre is None
        else "-" + ".".join(p.zfill(9) if p.isdigit() else p for p in pre.split("."))
    )
    return "1." + ".".join(f"{n:09d}" for n in nums) + "." + tail
