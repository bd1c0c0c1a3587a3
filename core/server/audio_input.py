"""Client audio -> a mono float32 waveform at the model rate, within ``AudioLimits``.

Runs in a worker thread (the callers use ``anyio.to_thread``), so decoding, resampling and
parsing never hold the event loop: /health answers while a large clip is prepared. A file's
duration and channel count are checked from its header, and decoding stops one frame past the
limit whatever the header claimed, so memory is bounded by the limits, not by the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import PayloadTooLargeError, ValidationError
from core.server.json_samples import split_numeric_array
from core.server.limits import AudioLimits

# Larger magnitudes overflow float32 in the mel power spectrum (NaN probabilities). PCM decodes
# to [-1, 1]; integer-scaled samples (int16, int24, int32 scale) stay far below this.
MAX_ABS_SAMPLE = 1e6
SMALL_JSON_BYTES = 1024**2  # up to this, JSON bodies go through pydantic (clearer messages)


@dataclass(frozen=True)
class Waveform:
    samples: np.ndarray  # mono float32 at ``sample_rate``
    sample_rate: int


def from_file_bytes(data: bytes, limits: AudioLimits) -> Waveform:
    from inference.audio import AudioDecodeError, AudioTooLongError, decode_audio, read_audio_header

    try:
        header = read_audio_header(data)
        limits.check(header.frames, header.channels, header.sample_rate)
        rate = max(header.sample_rate, 1)
        max_frames = min(limits.max_samples // header.channels, int(limits.max_seconds * rate))
        samples, sample_rate = decode_audio(data, max_frames=max_frames)
    except AudioTooLongError as exc:
        raise PayloadTooLargeError(str(exc)) from None
    except AudioDecodeError as exc:
        raise ValidationError(str(exc)) from None
    return from_samples(samples, sample_rate, limits)


def from_samples(samples: Any, sample_rate: int, limits: AudioLimits) -> Waveform:
    """Check and prepare decoded or client-sent samples ([frames] or [frames, channels])."""
    from inference.audio import TARGET_SAMPLE_RATE, AudioDecodeError, prepare_waveform

    try:
        with np.errstate(over="ignore"):  # past float32: inf, refused just below
            x = np.asarray(samples, dtype=np.float32)
    except (ValueError, TypeError, OverflowError):
        raise ValidationError("audio samples must be numbers, [n] or [n][channels]") from None
    if x.ndim not in (1, 2):
        raise ValidationError(
            f"expected audio shaped [frames] or [frames, channels], got {x.shape}"
        )
    channels = x.shape[1] if x.ndim == 2 else 1
    if isinstance(sample_rate, int) and not isinstance(sample_rate, bool):
        limits.check(x.shape[0], channels, sample_rate)
    if x.size and max(float(x.max()), -float(x.min())) > MAX_ABS_SAMPLE:
        raise ValidationError(
            f"audio samples must lie within ±{MAX_ABS_SAMPLE:g} (PCM float in [-1, 1] or "
            "integer-scaled); larger values overflow the features"
        )
    try:
        waveform = prepare_waveform(x, sample_rate)
    except AudioDecodeError as exc:
        raise ValidationError(str(exc)) from None
    return Waveform(waveform, TARGET_SAMPLE_RATE)


def from_json_body(raw: bytes, limits: AudioLimits) -> Waveform:
    """``{"audio": [...], "sample_rate": n}``; large bodies must hold mono samples."""
    from pydantic import ValidationError as PydanticValidationError

    from core.server.schemas import WaveformRequest, first_problem

    if len(raw) <= SMALL_JSON_BYTES:
        try:
            body = WaveformRequest.model_validate_json(raw)
        except PydanticValidationError as exc:
            raise ValidationError(f"invalid JSON body: {first_problem(exc)}") from None
        return from_samples(body.audio, body.sample_rate, limits)
    split = split_numeric_array(raw, "audio", limits.max_samples)
    if split is None or not isinstance(split.rest, dict) or split.rest.get("audio", 0) is not None:
        raise ValidationError(
            f'a JSON body over {SMALL_JSON_BYTES // 1024**2} MiB must be {{"audio": [mono '
            'samples], "sample_rate": n}; send frames of channels as an audio file'
        )
    rate = split.rest.get("sample_rate", 22_050)
    if not isinstance(rate, int) or isinstance(rate, bool):
        raise ValidationError("invalid JSON body: sample_rate: must be an integer")
    return from_samples(split.values, rate, limits)


def require_finite(predictions: dict[str, Any]) -> None:
    """No answer carries NaN: the input checks above should make this unreachable."""
    values = [predictions["confidence"], *predictions["probabilities"].values()]
    if not all(np.isfinite(values)):
        raise ValidationError("the model produced no finite probabilities for this input")
