"""What one request may cost, decided before the work: body bytes, audio duration, channels and
decoded samples, identifier shape. Each limit has an environment variable and a default; the
README's "Limits" section lists them.

The body limit is enforced while the body streams (``BodyLimit``), so neither a Content-Length
nor a chunked body past it is ever buffered; the others are checked from an audio file's header or
a JSON array's separators before anything the size of the samples is allocated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from core.errors import PayloadTooLargeError

MIB = 1024**2


def _env_number(name: str, default: float, cast: type = int) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = cast(raw)
    except ValueError:
        raise ValueError(f"${name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"${name} must be positive, got {raw!r}")
    return value


@dataclass(frozen=True)
class AudioLimits:
    """Refused from the header (413) before decoding: a longer clip, more channels, or more
    decoded values (frames x channels) than this. A deployment's own ``max_audio_seconds`` is
    checked after these, by the predictor."""

    max_seconds: float = 600.0
    max_channels: int = 8
    max_samples: int = 24 * MIB  # ~96 MiB as float32; 60 s of mono at 384 kHz fits

    @classmethod
    def from_env(cls) -> AudioLimits:
        return cls(
            max_seconds=_env_number("NIGHTSCAN_MAX_AUDIO_SECONDS", cls.max_seconds, float),
            max_channels=int(_env_number("NIGHTSCAN_MAX_AUDIO_CHANNELS", cls.max_channels)),
            max_samples=int(_env_number("NIGHTSCAN_MAX_AUDIO_SAMPLES", cls.max_samples)),
        )

    def check(self, frames: int, channels: int, sample_rate: int) -> None:
        if channels > self.max_channels:
            raise PayloadTooLargeError(
                f"audio has {channels} channels; the limit is {self.max_channels}"
            )
        if sample_rate > 0 and frames / sample_rate > self.max_seconds:
            raise PayloadTooLargeError(
                f"audio is {frames / sample_rate:.2f} s long; the server's limit is "
                f"{self.max_seconds:g} s"
            )
        if frames * channels > self.max_samples:
            raise PayloadTooLargeError(
                f"audio has {frames * channels} samples; the limit is {self.max_samples}"
            )


def max_body_bytes_from_env(default: int = 64 * MIB) -> int:
    return int(_env_number("NIGHTSCAN_MAX_BODY_BYTES", default))
