"""Who the calling token is (what an attached console may do)."""

from __future__ import annotations

from fastapi import APIRouter

from core.server.problems import AUTH_ERRORS
from core.server.resources import Caller
from core.server.security import Viewer

router = APIRouter(tags=["tokens"], responses=AUTH_ERRORS)


@router.get("/whoami", response_model=Caller)
def whoami(who: Viewer) -> dict[str, str]:
    """The calling token's name and role (what an attached console may do)."""
    return {"name": who.name, "role": who.role}
