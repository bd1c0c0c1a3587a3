"""The audio of a /predict request, from any accepted body: multipart, raw audio or JSON."""

from __future__ import annotations

import sys
from typing import Any

from fastapi import Request
from pydantic import ValidationError as PydanticValidationError

from core.errors import PayloadTooLargeError, ValidationError
from core.server.schemas import WaveformRequest

AUDIO_CONTENT_TYPES = ("audio/", "application/octet-stream")


class UnsupportedMediaType(ValidationError):
    http_status = 415


def max_upload_bytes() -> int:
    # Read at each request from core.server.app, where the setting lives (tests lower it live).
    return sys.modules["core.server.app"].MAX_UPLOAD_BYTES


async def read_audio(request: Request) -> tuple[Any, int]:
    """(bytes of an audio file or a list of samples, sample rate) from any accepted body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_upload_bytes():
        raise _too_large()
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=5)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ValidationError("multipart body needs a file field named 'file'")
        data = await upload.read()
        _require_bytes(data)
        return data, 0
    if content_type == "application/json":
        raw = await _read_body(request)
        try:
            body = WaveformRequest.model_validate_json(raw)
        except PydanticValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise ValidationError(f"invalid JSON body: {where}: {first.get('msg')}") from None
        return body.audio, body.sample_rate
    if content_type.startswith(AUDIO_CONTENT_TYPES):
        data = await _read_body(request)
        _require_bytes(data)
        return data, 0
    raise UnsupportedMediaType(
        f"unsupported content type {content_type or '(none)'!r}; send multipart/form-data with "
        "a 'file' field, an audio/* body, or application/json samples"
    )


def _too_large() -> PayloadTooLargeError:
    return PayloadTooLargeError(f"request body is larger than {max_upload_bytes() // 1024**2} MiB")


async def _read_body(request: Request) -> bytes:
    """The body, refusing to buffer more than the limit even without a Content-Length."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_upload_bytes():
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _require_bytes(data: bytes) -> None:
    if not data:
        raise ValidationError("the audio file is empty")
