"""Services for the routers, through FastAPI dependencies only.

The deployment manager is the one this app serves (set on ``app.state`` by the lifespan); the
registry, the experiment manager and the audit log are the process's context. A route names what
it needs (``mgr: Manager``) and never reaches for ``app.state`` or a global getter itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from core.audit import AuditLog
from core.deployments import DeploymentManager
from core.experiments import ABTestManager
from core.registry import ModelRegistry
from core.server.limits import AudioLimits


# ``async def`` for the two that /predict needs: FastAPI runs a plain ``def`` dependency in its
# thread pool, a hand-off to a thread and back per request for an attribute read.
async def get_manager(request: Request) -> DeploymentManager:
    return request.app.state.manager


def get_registry() -> ModelRegistry:
    from core.registry import get_model_registry

    return get_model_registry()


def get_experiments() -> ABTestManager:
    from core.experiments import get_ab_test_manager

    return get_ab_test_manager()


def get_audit_log() -> AuditLog:
    from core.context import get_context

    return get_context().audit


Manager = Annotated[DeploymentManager, Depends(get_manager)]
Registry = Annotated[ModelRegistry, Depends(get_registry)]
Experiments = Annotated[ABTestManager, Depends(get_experiments)]
Audit = Annotated[AuditLog, Depends(get_audit_log)]


async def get_audio_limits(request: Request) -> AudioLimits:
    return request.app.state.audio_limits


Limits = Annotated[AudioLimits, Depends(get_audio_limits)]
