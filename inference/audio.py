"""Audio decoding and waveform preparation (numpy/scipy/soundfile only, no torch)."""

from __future__ import annotations

import io
import math
import os
import struct
from dataclasses import dataclass

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

TARGET_SAMPLE_RATE = 22050
MAX_SAMPLE_RATE = 384000

# WAV writers that stream (unknown final length) leave these placeholder data sizes.
_STREAMING_WAV_SIZES = (0, 0xFFFFFFFF)


class AudioDecodeError(ValueError):
    """Input could not be turned into a usable waveform (one-line, user-facing message)."""


class AudioTooLongError(AudioDecodeError):
    """Input is longer than the caller's limit."""


def _read_source(source: bytes | str | os.PathLike[str]) -> tuple[bytes, str]:
    """Return the raw bytes plus a short name used in error messages."""
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), "audio bytes"
    path = os.fspath(source)
    try:
        with open(path, "rb") as fh:
            return fh.read(), os.path.basename(path) or path
    except FileNotFoundError as exc:
        raise AudioDecodeError(f"audio file not found: {path}") from exc
    except OSError as exc:
        raise AudioDecodeError(f"cannot read audio file {path}: {exc.strerror or exc}") from exc


def _check_wav_complete(data: bytes, name: str) -> None:
    """Reject RIFF/WAVE files whose data chunk is cut short.

    libsndfile silently returns the frames that are present, so a half-uploaded WAV would
    otherwise be accepted as a shorter recording.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        body = pos + 8
        if chunk_id == b"data":
            if size not in _STREAMING_WAV_SIZES and body + size > len(data):
                raise AudioDecodeError(
                    f"truncated WAV in {name}: data chunk declares {size} bytes "
                    f"but only {len(data) - body} are present"
                )
            return
        pos = body + size + (size & 1)  # chunks are word-aligned


@dataclass(frozen=True)
class PcmWav:
    """Where the samples of a plain RIFF/WAVE file lie (16-bit PCM or 32-bit float): decoded
    with ``numpy.frombuffer`` instead of libsndfile. Same values as ``soundfile`` reads
    (int16 / 32768, float32 as is); ~15 us instead of ~0.4 ms for a 1 s clip."""

    frames: int
    channels: int
    sample_rate: int
    offset: int  # of the first sample in the file's bytes
    dtype: str  # "<i2" or "<f4"

    def samples(self, data: bytes, frames: int | None = None) -> np.ndarray:
        n = self.frames if frames is None else min(frames, self.frames)
        x = np.frombuffer(data, dtype=self.dtype, count=n * self.channels, offset=self.offset)
        if self.dtype == "<i2":
            x = x.astype(np.float32) * np.float32(1 / 32768)
        else:
            x = x.astype(np.float32)  # a copy: writable, native order
        return x if self.channels == 1 else x.reshape(n, self.channels)


_PCM_FORMATS = {(1, 16): "<i2", (3, 32): "<f4"}  # (WAVE format tag, bits) -> numpy dtype
_EXTENSIBLE = 0xFFFE


def read_pcm_wav(data: bytes) -> PcmWav | None:
    """The layout of ``data`` if it is a complete, plain 16-bit PCM or 32-bit float WAV file;
    None for anything else (other formats, streamed or truncated files, odd chunks), which
    ``decode_audio`` leaves to libsndfile and its error messages."""
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + size > len(data):
                return None
            tag, channels, rate, _, align, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag == _EXTENSIBLE and size >= 40:
                (tag,) = struct.unpack_from("<H", data, body + 24)  # the sub-format GUID
            fmt = (tag, channels, rate, align, bits)
        elif chunk_id == b"data":
            if fmt is None or size in _STREAMING_WAV_SIZES or body + size > len(data):
                return None
            tag, channels, rate, align, bits = fmt
            dtype = _PCM_FORMATS.get((tag, bits))
            if dtype is None or channels < 1 or rate < 1 or align != channels * bits // 8:
                return None
            if size % align:
                return None
            return PcmWav(size // align, channels, rate, body, dtype)
        pos = body + size + (size & 1)
    return None


def decode_audio(
    source: bytes | str | os.PathLike[str], max_frames: int | None = None
) -> tuple[np.ndarray, int]:
    """Decode WAV/FLAC/OGG (anything libsndfile reads) from bytes or a path.

    Returns float32 samples shaped [frames] (mono) or [frames, channels], and the sample rate.
    With ``max_frames``, at most that many frames are decoded and a longer input raises
    ``AudioTooLongError``, whatever its header claimed (memory stays bounded).
    """
    data, name = _read_source(source)
    if not data:
        raise AudioDecodeError(f"empty audio input ({name} has 0 bytes)")
    wav = read_pcm_wav(data)
    if wav is not None and wav.frames > 0:  # the fast path: plain PCM/float WAV
        if max_frames is not None and wav.frames > max_frames:
            raise AudioTooLongError(
                f"{name} holds more than {max_frames} frames "
                f"({max_frames / max(wav.sample_rate, 1):.2f} s), the limit"
            )
        return wav.samples(data), wav.sample_rate
    _check_wav_complete(data, name)
    try:
        with sf.SoundFile(io.BytesIO(data)) as fh:
            sample_rate = int(fh.samplerate)
            if max_frames is None:
                samples = fh.read(dtype="float32", always_2d=False)
            else:
                samples = fh.read(max_frames + 1, dtype="float32", always_2d=False)
                if samples.shape[0] > max_frames:
                    raise AudioTooLongError(
                        f"{name} holds more than {max_frames} frames "
                        f"({max_frames / max(sample_rate, 1):.2f} s), the limit"
                    )
    except AudioDecodeError:
        raise
    except sf.LibsndfileError as exc:
        reason = str(getattr(exc, "error_string", "") or exc).strip().rstrip(".")
        raise AudioDecodeError(f"could not decode {name}: {reason}") from exc
    except (RuntimeError, TypeError, ValueError) as exc:  # soundfile raises these for odd headers
        raise AudioDecodeError(f"could not decode {name}: {exc}") from exc
    if samples.size == 0:
        raise AudioDecodeError(f"{name} decoded to 0 audio samples")
    return np.ascontiguousarray(samples, dtype=np.float32), sample_rate


@dataclass(frozen=True)
class AudioHeader:
    """What a file's header says, known before any sample is decoded (``frames`` is 0 when the
    header does not say, as in a streamed WAV)."""

    frames: int
    channels: int
    sample_rate: int


def read_audio_header(data: bytes) -> AudioHeader:
    """Frames, channels and sample rate of WAV/FLAC/OGG bytes, without decoding samples."""
    if not data:
        raise AudioDecodeError("empty audio input (audio bytes has 0 bytes)")
    wav = read_pcm_wav(data)
    if wav is not None and wav.frames > 0:
        return AudioHeader(wav.frames, wav.channels, wav.sample_rate)
    try:
        with sf.SoundFile(io.BytesIO(data)) as fh:
            frames = fh.frames if 0 < fh.frames < 2**62 else 0  # libsndfile's "unknown" is huge
            return AudioHeader(frames, int(fh.channels), int(fh.samplerate))
    except sf.LibsndfileError as exc:
        reason = str(getattr(exc, "error_string", "") or exc).strip().rstrip(".")
        raise AudioDecodeError(f"could not decode audio bytes: {reason}") from exc
    except (RuntimeError, TypeError, ValueError) as exc:
        raise AudioDecodeError(f"could not decode audio bytes: {exc}") from exc


def to_mono(x: np.ndarray) -> np.ndarray:
    """Average channels; expects soundfile layout [frames] or [frames, channels]."""
    x = np.asarray(x)
    if x.ndim == 1:
        return x
    if x.ndim == 2:
        return x.mean(axis=1, dtype=np.float64).astype(x.dtype, copy=False)
    raise AudioDecodeError(f"expected audio shaped [frames] or [frames, channels], got {x.shape}")


def resample(x: np.ndarray, orig_sr: int, target_sr: int = TARGET_SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling along axis 0 with the smallest rational up/down factors."""
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    x = np.asarray(x, dtype=np.float32)
    if orig_sr == target_sr:
        return x.copy()
    g = math.gcd(int(orig_sr), int(target_sr))
    up, down = int(target_sr) // g, int(orig_sr) // g
    return resample_poly(x, up, down, axis=0).astype(np.float32, copy=False)


def prepare_waveform(
    samples: np.ndarray, sample_rate: int, max_seconds: float | None = None
) -> np.ndarray:
    """Validate decoded samples and return mono float32 audio at TARGET_SAMPLE_RATE."""
    x = np.asarray(samples)
    if x.size == 0:
        raise AudioDecodeError("audio contains no samples")
    if x.ndim not in (1, 2):
        raise AudioDecodeError(
            f"expected audio shaped [frames] or [frames, channels], got {x.shape}"
        )
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise AudioDecodeError(f"audio samples must be real numbers, got dtype {x.dtype}")
    if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate:
        raise AudioDecodeError(f"sample rate must be an integer, got {sample_rate!r}")
    sample_rate = int(sample_rate)
    if not 1 <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioDecodeError(f"sample rate {sample_rate} Hz is outside 1..{MAX_SAMPLE_RATE} Hz")
    if not np.all(np.isfinite(x)):
        raise AudioDecodeError("audio contains NaN or infinite samples")
    frames = x.shape[0]
    if max_seconds is not None and frames / sample_rate > max_seconds:
        raise AudioTooLongError(
            f"audio is {frames / sample_rate:.2f} s long; the limit is {max_seconds:g} s"
        )
    mono = to_mono(x.astype(np.float32, copy=False))
    return np.ascontiguousarray(resample(mono, sample_rate, TARGET_SAMPLE_RATE), dtype=np.float32)


def fixed_windows(
    waveform: np.ndarray, window_samples: int, hop_samples: int | None = None
) -> np.ndarray:
    """Cut a 1-D waveform into [n, window_samples] frames; the last one is zero-padded.

    Always returns at least one window so short clips still get a prediction.
    """
    x = np.asarray(waveform)
    if x.ndim != 1:
        raise ValueError(f"fixed_windows expects a 1-D waveform, got shape {x.shape}")
    hop = window_samples if hop_samples is None else hop_samples
    if window_samples <= 0 or hop <= 0:
        raise ValueError(f"window ({window_samples}) and hop ({hop}) must be positive")
    n = 1 if x.size <= window_samples else math.ceil((x.size - window_samples) / hop) + 1
    padded = np.zeros((n - 1) * hop + window_samples, dtype=x.dtype)
    padded[: x.size] = x
    idx = np.arange(n)[:, None] * hop + np.arange(window_samples)[None, :]
    return padded[idx]


def load_audio_file(
    path_or_bytes: bytes | str | os.PathLike[str], max_seconds: float | None = None
) -> np.ndarray:
    """Decode and prepare in one go: mono float32 at TARGET_SAMPLE_RATE."""
    samples, sample_rate = decode_audio(path_or_bytes)
    return prepare_waveform(samples, sample_rate, max_seconds=max_seconds)
