"""Deployments: configuration, the state machine (store), what a process serves (serving), the
canary, the performance tracker, and the manager in front of them.

The names below load on first use (PEP 562), so importing one submodule (the CLI's
``core.deployments.config``) never drags in the manager and everything it wires together.
"""

from __future__ import annotations

from core.lazy_exports import lazy_exports

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
__getattr__ = lazy_exports(__name__, _EXPORTS)
