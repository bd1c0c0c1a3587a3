"""A request body limit that holds while the body streams (ASGI middleware).

A Content-Length past the limit is answered 413 before the app runs. A body without one
(chunked) is counted as it arrives, and the read that crosses the limit raises ``BodyTooLarge``,
an HTTPException, so that every reader answers 413 without reading further: the routes'
own readers, Starlette's multipart parser and FastAPI's JSON body parsing (which turns other
exceptions into 400) alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.server.problems import problem


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=too_large_detail(limit))


def too_large_detail(limit: int) -> str:
    if limit >= 1024**2:
        return f"request body is larger than {limit // 1024**2} MiB"
    return f"request body is larger than {limit} bytes"


class BodyLimit:
    """``limit()`` is read per request, so the setting can change while the server runs."""

    def __init__(self, app: ASGIApp, limit: Callable[[], int]) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            response = problem(413, too_large_detail(limit), error="PayloadTooLargeError")
            response.headers["Connection"] = "close"  # the unread body makes the socket unusable
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
