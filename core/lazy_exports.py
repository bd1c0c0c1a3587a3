"""A package's public names loaded on first use (PEP 562), so that importing one submodule (the
CLI's ``core.deployments.config``, the canary policy's ``core.stats.sequential``) does not import
everything the package exports (the deployment manager, scipy)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package``: ``exports`` maps a name to its module."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(exports[name]), name)

    return __getattr__
