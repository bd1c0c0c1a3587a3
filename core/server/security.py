"""Bearer-token dependencies: ``Depends(require("operator"))`` on a route returns the caller."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core.auth import Principal, get_token_store

bearer = HTTPBearer(auto_error=False, description="A token from `nightscan token create`.")


def require(role: str) -> Callable[..., Principal]:
    def dependency(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        return get_token_store().authorize(credentials.credentials if credentials else None, role)

    dependency.__name__ = f"require_{role}"
    return dependency


# Route parameters: ``who: Operator`` both guards the route and names the caller.
Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Admin = Annotated[Principal, Depends(require("admin"))]
