"""A small JSON client for a NightScan server: bearer token, timeouts, and each error answer
turned back into the core exception that the server raised (its ``detail`` is the message,
its ``error`` the class; the status code decides when the class is not one of ours)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from core import errors
from core.auth import AuthenticationError, PermissionDeniedError
from core.errors import (
    ConflictError,
    NightScanError,
    NotFoundError,
    OverloadedError,
    UnreachableError,
    ValidationError,
)

ERRORS_BY_STATUS: dict[int, type[NightScanError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: ValidationError,
    422: ValidationError,
    503: OverloadedError,
}

# Core's own exception classes by name (only these: a name from the wire reaches nothing else).
ERRORS_BY_NAME: dict[str, type[NightScanError]] = {
    cls.__name__: cls
    for cls in [*vars(errors).values(), AuthenticationError, PermissionDeniedError]
    if isinstance(cls, type) and issubclass(cls, NightScanError)
}


def part(value: str) -> str:
    """One path segment, quoted (ids are validated on the server; this only keeps URLs valid)."""
    return quote(str(value), safe="")


def check_url(url: str) -> str:
    parsed = urlsplit(url or "")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValidationError(f"server must be a URL like http://127.0.0.1:8080, got {url!r}")
    return url.rstrip("/")


class ApiClient:
    def __init__(self, url: str, token: str | None, timeout_s: float = 10.0) -> None:
        import httpx

        self.url = check_url(url)
        self.actor: str | None = None  # "token:NAME" once the server said who the token is
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params=_present(params))

    def post(self, path: str, body: Any = None, timeout_s: float | None = None) -> Any:
        extra = {"timeout": timeout_s} if timeout_s else {}
        return self._call("POST", path, json=body, **extra)

    def post_file(
        self, path: str, name: str, data: bytes, params: dict[str, Any] | None = None
    ) -> Any:
        """A multipart upload (field ``file``), e.g. ``/predict``."""
        files = {"file": (name, data, "application/octet-stream")}
        return self._call("POST", path, params=_present(params or {}), files=files)

    def delete(self, path: str, **params: Any) -> Any:
        return self._call("DELETE", path, params=_present(params))

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise UnreachableError(f"{self.url} did not answer {method} {path} in time") from None
        except httpx.TransportError as exc:
            raise UnreachableError(f"cannot reach {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise _error(response)
        return response.json()


def _present(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _error(response: Any) -> NightScanError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    detail = body.get("detail")
    message = detail if isinstance(detail, str) else f"HTTP {response.status_code}"
    cls = ERRORS_BY_NAME.get(str(body.get("error")))
    return (cls or ERRORS_BY_STATUS.get(response.status_code, NightScanError))(message)
