"""Error answers: every refusal is JSON ``{"detail": ..., "error": ...}`` with a 4xx/5xx status.

``detail`` is for people; ``error`` names the core exception, so that a client of this API (the
attached console) raises the same one (several share a status code).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.auth import AuthenticationError
from core.errors import NightScanError, OverloadedError
from core.server.schemas import Problem

log = logging.getLogger("core.server.app")

DESCRIPTIONS = {
    400: "The body could not be parsed.",
    401: "No token, or an unknown or revoked one (WWW-Authenticate: Bearer).",
    403: "The token's role is not enough for this route.",
    404: "No such resource.",
    405: "Method not allowed here (the Allow header lists the ones that are).",
    409: "The resource's state does not allow this now.",
    413: "The body, or the audio in it, is past a limit (see the README's Limits).",
    415: "Unsupported content type.",
    422: "A parameter or the body does not validate; `detail` says which and why.",
    500: "An unexpected server fault (a bug, or stored data failing its checksum).",
    503: "At capacity (Retry-After says when to retry), or not ready.",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error codes, each with the real body: ``Problem``."""
    return {c: {"model": Problem, "description": DESCRIPTIONS[c]} for c in codes}


# Every route may answer these (body limit, validation, unknown ids, wrong method, a fault).
APP_ERRORS = problems(400, 404, 405, 413, 422, 500)
AUTH_ERRORS = problems(401, 403)
ACTION_ERRORS = problems(401, 403, 404, 409, 422)
ERRORS = problems(400, 404, 413, 415, 422, 503)  # /predict, /feedback


def problem(
    status: int, detail: str, headers: dict[str, str] | None = None, error: str | None = None
) -> JSONResponse:
    body = {"detail": detail} if error is None else {"detail": detail, "error": error}
    return JSONResponse(body, status_code=status, headers=headers)


def error_headers(exc: NightScanError) -> dict[str, str] | None:
    if isinstance(exc, AuthenticationError):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, OverloadedError):
        return {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
    return None


async def nightscan_error(_request: Request, exc: NightScanError) -> JSONResponse:
    return problem(exc.http_status, str(exc), error_headers(exc), error=type(exc).__name__)


async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    parts = [
        f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: {e.get('msg')}"
        for e in exc.errors()
    ]
    return problem(422, "; ".join(parts) or "invalid request")


async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error")
    return problem(500, f"internal error: {type(exc).__name__}")


async def body_too_large(_request: Request, exc: HTTPException) -> JSONResponse:
    return problem(413, str(exc.detail), {"Connection": "close"}, error="PayloadTooLargeError")


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's own refusals (unknown path, wrong method) in the same shape; a 405 names
    every method of the path in Allow (Starlette's names only the first route's)."""
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path))
    return problem(exc.status_code, str(exc.detail), headers or None)


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The documented methods of the path template that ``path`` matches."""
    from starlette.routing import compile_path

    found: set[str] = set()
    for template, operations in app.openapi()["paths"].items():
        if compile_path(template)[0].match(path):
            found |= {m.upper() for m in operations}
    return sorted(found)


def install(app: FastAPI) -> None:
    from core.server.body_limit import BodyTooLarge

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(BodyTooLarge, body_too_large)
    app.add_exception_handler(NightScanError, nightscan_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)
