"""Deployments: configuration, the state machine (store), what a process serves (serving), the
canary, the performance tracker, and the manager in front of them.

The names below load on first use (PEP 562), so importing one submodule (the CLI's
``core.deployments.config``) never drags in the manager and everything it wires together.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "DeploymentConfig": "core.deployments.config",
    "DeploymentInfo": "core.deployments.info",
    "Revision": "core.deployments.info",
    "DeploymentManager": "core.deployments.manager",
    "get_deployment_manager": "core.deployments.manager",
    "PerformanceMetrics": "core.deployments.tracker",
    "PerformanceTracker": "core.deployments.tracker",
    "SecondSample": "core.deployments.tracker",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'core.deployments' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
