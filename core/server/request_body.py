"""The audio of a /predict request, from any accepted body: multipart, raw audio or JSON.

The body limit itself is enforced while the body streams (``core.server.body_limit``); what is
read here is at most that. The event loop only collects the chunks as they arrive: joining them
(a 64 MiB join is 50-120 ms of page faults and copying on a loaded 2-core machine, and
``bytes.join`` releases the GIL past 1 MiB), decoding and parsing run in a worker thread, so
``/health`` stays responsive while a large body is handled. The exception is a small plain WAV
at the model's rate (``INLINE_WAV_BYTES``) while no other /predict is under way: its numpy
decode (~50 us for 1 s) costs less than the hand-off to a thread and back, which a lone request
would wait for. Under concurrent load the thread stays: decoding then overlaps with the event
loop's HTTP work (measured side by side, 2026-12-02: decoding every small WAV on the event loop
lowered /predict at concurrency 32 by a quarter on the shared 2-core host, though each request
cost less CPU).
"""

from __future__ import annotations

import sys

import anyio
from fastapi import Request

from core.errors import ValidationError
from core.server.audio_input import Waveform, from_file_bytes, from_json_body
from core.server.limits import AudioLimits

AUDIO_CONTENT_TYPES = ("audio/", "application/octet-stream")
INLINE_WAV_BYTES = 256 * 1024  # ~6 s of 16-bit mono at 22.05 kHz: well under 1 ms to decode


class UnsupportedMediaType(ValidationError):
    http_status = 415


def max_upload_bytes() -> int:
    # Read at each request from core.server.app, where the setting lives (tests lower it live).
    return sys.modules["core.server.app"].MAX_UPLOAD_BYTES


class PredictsInFlight:
    """/predict requests under way in this process, body to answer (on the event loop)."""

    count = 0

    def __enter__(self) -> None:
        PredictsInFlight.count += 1

    def __exit__(self, *_exc: object) -> None:
        PredictsInFlight.count -= 1


async def read_audio(request: Request, limits: AudioLimits) -> Waveform:
    """A prepared waveform from any accepted body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=5)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ValidationError("multipart body needs a file field named 'file'")
        data = await upload.read()
        _require_bytes(data)
        return await _decode(data, limits)
    if content_type == "application/json":
        chunks = await body_chunks(request)
        return await anyio.to_thread.run_sync(_from_json_chunks, chunks, limits)
    if content_type.startswith(AUDIO_CONTENT_TYPES):
        chunks = await body_chunks(request)
        if sum(map(len, chunks)) <= INLINE_WAV_BYTES:  # small: joining costs microseconds
            data = joined(chunks)
            _require_bytes(data)
            return await _decode(data, limits)
        return await anyio.to_thread.run_sync(_from_file_chunks, chunks, limits)
    raise UnsupportedMediaType(
        f"unsupported content type {content_type or '(none)'!r}; send multipart/form-data with "
        "a 'file' field, an audio/* body, or application/json samples"
    )


async def body_chunks(request: Request) -> list[bytes]:
    """The body as the chunks it arrived in, not joined: hand them to ``joined`` in a worker
    thread. (Starlette's ``request.body()`` joins on the event loop.)"""
    chunks: list[bytes] = []
    async for chunk in request.stream():
        if chunk:
            chunks.append(chunk)
    return chunks


def joined(chunks: list[bytes]) -> bytes:
    """The chunks joined, and the list emptied so that only one copy of the body stays alive.
    Call it off the event loop."""
    raw = b"".join(chunks)
    chunks.clear()
    return raw


def _from_json_chunks(chunks: list[bytes], limits: AudioLimits) -> Waveform:
    return from_json_body(joined(chunks), limits)


def _from_file_chunks(chunks: list[bytes], limits: AudioLimits) -> Waveform:
    data = joined(chunks)
    _require_bytes(data)
    return from_file_bytes(data, limits)


async def _decode(data: bytes, limits: AudioLimits) -> Waveform:
    alone = PredictsInFlight.count <= 1
    if alone and len(data) <= INLINE_WAV_BYTES and _plain_wav_at_model_rate(data):
        return from_file_bytes(data, limits)  # no resampling: microseconds, no thread hop
    return await anyio.to_thread.run_sync(from_file_bytes, data, limits)


def _plain_wav_at_model_rate(data: bytes) -> bool:
    from inference.audio import TARGET_SAMPLE_RATE, read_pcm_wav

    wav = read_pcm_wav(data)
    return wav is not None and wav.sample_rate == TARGET_SAMPLE_RATE and wav.channels <= 2


def _require_bytes(data: bytes) -> None:
    if not data:
        raise ValidationError("the audio file is empty")
