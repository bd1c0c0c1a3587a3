"""Decoding, validation, resampling and windowing of uploaded audio."""

from __future__ import annotations

import io
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from inference.audio import (
    TARGET_SAMPLE_RATE,
    AudioDecodeError,
    AudioTooLongError,
    decode_audio,
    fixed_windows,
    load_audio_file,
    prepare_waveform,
    read_audio_header,
    read_pcm_wav,
    resample,
    to_mono,
)


def _sine(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[spectrum.argmax()])


def _encode(x: np.ndarray, sr: int, fmt: str, subtype: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "subtype", "suffix", "atol"),
    [
        ("WAV", "PCM_16", ".wav", 1e-4),
        ("FLAC", "PCM_16", ".flac", 1e-4),
        ("OGG", "VORBIS", ".ogg", None),
    ],
)
def test_decode_round_trip(
    tmp_path: Path, fmt: str, subtype: str, suffix: str, atol: float | None
) -> None:
    x = _sine(440.0, 22050, 0.5)
    path = tmp_path / f"tone{suffix}"
    sf.write(path, x, 22050, format=fmt, subtype=subtype)

    from_path, sr_path = decode_audio(path)
    from_str, _ = decode_audio(str(path))
    from_bytes, sr_bytes = decode_audio(path.read_bytes())

    assert sr_path == sr_bytes == 22050
    assert from_path.dtype == np.float32 and from_path.ndim == 1
    np.testing.assert_array_equal(from_path, from_bytes)
    np.testing.assert_array_equal(from_path, from_str)
    if atol is not None:  # lossless: sample-exact up to 16-bit quantisation
        np.testing.assert_allclose(from_path, x, atol=atol)
    else:  # lossy vorbis: same length and the tone survives
        assert abs(len(from_path) - len(x)) <= 2048
        assert abs(_peak_hz(from_path, 22050) - 440.0) < 5.0


def test_stereo_is_decoded_then_downmixed() -> None:
    left, right = _sine(440.0, 16000, 0.25), _sine(880.0, 16000, 0.25, amp=0.25)
    data = _encode(np.stack([left, right], axis=1), 16000, "WAV", "FLOAT")

    samples, sr = decode_audio(data)
    assert samples.shape == (len(left), 2) and sr == 16000
    np.testing.assert_allclose(to_mono(samples), (left + right) / 2, atol=1e-6)

    mono = load_audio_file(data)
    assert mono.ndim == 1 and mono.dtype == np.float32
    assert len(mono) == math.ceil(len(left) * TARGET_SAMPLE_RATE / 16000)  # resample_poly rounds up


@pytest.mark.parametrize("orig_sr", [44100, 16000])
def test_resample_length_and_frequency(orig_sr: int) -> None:
    x = _sine(1000.0, orig_sr, 1.0)
    y = resample(x, orig_sr, TARGET_SAMPLE_RATE)
    assert y.dtype == np.float32
    assert len(y) == TARGET_SAMPLE_RATE  # exactly one second at the target rate
    assert abs(_peak_hz(y, TARGET_SAMPLE_RATE) - 1000.0) <= 1.0
    # Amplitude preserved away from the edges (no gain error in the polyphase filter).
    assert np.abs(y[1000:-1000]).max() == pytest.approx(0.5, abs=0.02)


def test_resample_same_rate_is_a_copy() -> None:
    x = _sine(100.0, 22050, 0.1)
    y = resample(x, 22050, 22050)
    np.testing.assert_array_equal(x, y)
    assert y is not x


def test_prepare_waveform_outputs_mono_float32_target_rate() -> None:
    stereo = np.stack([_sine(300.0, 44100, 0.5), _sine(300.0, 44100, 0.5)], axis=1).astype(
        np.float64
    )
    out = prepare_waveform(stereo, 44100)
    assert out.dtype == np.float32 and out.shape == (TARGET_SAMPLE_RATE // 2,)


def _one_line_error(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message
    return message


@pytest.mark.parametrize("data", [b"", bytearray()])
def test_empty_bytes_rejected(data: bytes) -> None:
    with pytest.raises(AudioDecodeError) as excinfo:
        decode_audio(data)
    assert "empty" in _one_line_error(excinfo)


def test_empty_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioDecodeError, match="empty"):
        decode_audio(path)


def test_missing_file_rejected(tmp_path: Path) -> None:
    with pytest.raises(AudioDecodeError, match="not found"):
        load_audio_file(tmp_path / "nope.wav")


@pytest.mark.parametrize("data", [b"definitely not audio" * 20, bytes(range(256)) * 4, b"RIFF"])
def test_garbage_bytes_rejected(data: bytes) -> None:
    with pytest.raises(AudioDecodeError) as excinfo:
        decode_audio(data)
    assert "could not decode" in _one_line_error(excinfo)


def test_truncated_wav_rejected() -> None:
    data = _encode(_sine(440.0, 22050, 0.5), 22050, "WAV", "PCM_16")
    with pytest.raises(AudioDecodeError) as excinfo:
        decode_audio(data[: len(data) // 2])  # header intact, half the samples missing
    assert "truncated" in _one_line_error(excinfo)
    with pytest.raises(AudioDecodeError):
        decode_audio(data[:30])  # cut inside the header


@pytest.mark.parametrize(("fmt", "subtype"), [("FLAC", "PCM_16"), ("OGG", "VORBIS")])
def test_truncated_compressed_rejected(fmt: str, subtype: str) -> None:
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, 22050).astype(np.float32)
    data = _encode(noise, 22050, fmt, subtype)
    with pytest.raises(AudioDecodeError):
        decode_audio(data[: len(data) // 2])


def _hand_made_wav(pcm: np.ndarray, sr: int, extra_chunk: bytes) -> bytes:
    """16-bit mono WAV with an extra odd-sized chunk before "data" (needs a pad byte)."""
    fmt = struct.pack("<HHIIHH", 1, 1, sr, sr * 2, 2, 16)
    body = pcm.astype("<i2").tobytes()
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += (
        b"junk" + struct.pack("<I", len(extra_chunk)) + extra_chunk + b"\0" * (len(extra_chunk) & 1)
    )
    chunks += b"data" + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def test_complete_wav_with_odd_chunk_is_not_flagged_as_truncated() -> None:
    pcm = (np.sin(np.arange(800) / 5) * 10000).astype(np.int16)
    data = _hand_made_wav(pcm, 8000, b"abc")
    samples, sr = decode_audio(data)
    assert sr == 8000
    np.testing.assert_allclose(samples, pcm / 32768.0, atol=1e-7)
    with pytest.raises(AudioDecodeError, match="truncated"):
        decode_audio(data[:-100])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_rejected(bad: float) -> None:
    x = _sine(440.0, 22050, 0.1)
    x[10] = bad
    with pytest.raises(AudioDecodeError, match="NaN or infinite"):
        prepare_waveform(x, 22050)


def test_non_finite_float_wav_rejected_end_to_end() -> None:
    x = _sine(440.0, 22050, 0.1)
    x[5] = np.nan
    with pytest.raises(AudioDecodeError):
        load_audio_file(_encode(x, 22050, "WAV", "FLOAT"))


@pytest.mark.parametrize("sr", [0, -5, 384001, 10**7])
def test_bad_sample_rate_rejected(sr: int) -> None:
    with pytest.raises(AudioDecodeError, match="sample rate"):
        prepare_waveform(np.zeros(100, dtype=np.float32), sr)


def test_empty_samples_rejected() -> None:
    with pytest.raises(AudioDecodeError, match="no samples"):
        prepare_waveform(np.zeros(0, dtype=np.float32), 22050)


def test_too_long_rejected() -> None:
    x = np.zeros(22050 * 3, dtype=np.float32)
    with pytest.raises(AudioTooLongError) as excinfo:
        prepare_waveform(x, 22050, max_seconds=2.0)
    assert isinstance(excinfo.value, AudioDecodeError)  # callers may catch the base class
    assert "3.00 s" in _one_line_error(excinfo)
    assert prepare_waveform(x, 22050, max_seconds=3.0).shape == (22050 * 3,)
    with pytest.raises(AudioTooLongError):
        load_audio_file(_encode(x, 22050, "WAV", "PCM_16"), max_seconds=1.0)


def test_fixed_windows_exact_multiple() -> None:
    x = np.arange(300, dtype=np.float32)
    w = fixed_windows(x, 100)
    assert w.shape == (3, 100)
    np.testing.assert_array_equal(w.reshape(-1), x)


def test_fixed_windows_pads_last_window_with_zeros() -> None:
    x = np.arange(1, 251, dtype=np.float32)
    w = fixed_windows(x, 100)
    assert w.shape == (3, 100)
    np.testing.assert_array_equal(w[2, :50], x[200:])
    assert not w[2, 50:].any()


def test_fixed_windows_short_input_gives_one_window() -> None:
    w = fixed_windows(np.ones(10, dtype=np.float32), 100)
    assert w.shape == (1, 100)
    assert w[0, :10].sum() == 10 and not w[0, 10:].any()


def test_fixed_windows_overlapping_hop() -> None:
    x = np.arange(250, dtype=np.float32)
    w = fixed_windows(x, 100, hop_samples=50)
    assert w.shape == (4, 100)  # starts at 0, 50, 100, 150 -> last one covers the tail
    np.testing.assert_array_equal(w[1], x[50:150])
    np.testing.assert_array_equal(w[3], x[150:250])


@pytest.mark.parametrize(("window", "hop"), [(0, None), (10, 0), (-1, 5)])
def test_fixed_windows_rejects_bad_sizes(window: int, hop: int | None) -> None:
    with pytest.raises(ValueError):
        fixed_windows(np.ones(10, dtype=np.float32), window, hop)


# ---- the numpy fast path for plain WAV (read_pcm_wav) ---------------------------------------


def _libsndfile(data: bytes) -> np.ndarray:
    with sf.SoundFile(io.BytesIO(data)) as fh:
        return fh.read(dtype="float32", always_2d=False)


@pytest.mark.parametrize(
    ("subtype", "channels"), [("PCM_16", 1), ("PCM_16", 2), ("FLOAT", 1), ("FLOAT", 3)]
)
def test_fast_wav_path_gives_libsndfile_values_exactly(subtype: str, channels: int) -> None:
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, (3001, channels)).astype(np.float32)
    x[:7] = [[-1.0] * channels, [1.0] * channels, [0.0] * channels, *([[0.5] * channels] * 4)]
    data = _encode(x if channels > 1 else x[:, 0], 16_000, "WAV", subtype)
    wav = read_pcm_wav(data)
    assert wav is not None and (wav.frames, wav.channels, wav.sample_rate) == (
        3001,
        channels,
        16_000,
    )
    samples, rate = decode_audio(data)
    expected = _libsndfile(data)
    assert rate == 16_000 and samples.dtype == np.float32 and samples.shape == expected.shape
    np.testing.assert_array_equal(samples, expected)
    assert samples.flags.writeable and samples.flags.c_contiguous
    header = read_audio_header(data)
    assert (header.frames, header.channels, header.sample_rate) == (3001, channels, 16_000)


def test_fast_wav_path_reads_extensible_headers_and_skips_extra_chunks() -> None:
    x = np.linspace(-1, 1, 500, dtype=np.float32)
    data = _encode(np.stack([x, -x], 1), 22_050, "WAV", "PCM_16")
    extensible = _encode(np.stack([x, -x, x], 1), 22_050, "WAVEX", "PCM_16")
    # A LIST chunk before the data, as many recorders write (odd size: one pad byte).
    fmt_end = 12 + 8 + struct.unpack_from("<I", data, 16)[0]
    junk = b"LIST" + struct.pack("<I", 3) + b"abc\x00"
    with_list = data[:fmt_end] + junk + data[fmt_end:]
    with_list = b"RIFF" + struct.pack("<I", len(with_list) - 8) + with_list[8:]
    for blob in (extensible, with_list):
        assert read_pcm_wav(blob) is not None
        np.testing.assert_array_equal(decode_audio(blob)[0], _libsndfile(blob))


@pytest.mark.parametrize("subtype", ["PCM_24", "PCM_U8", "PCM_32", "DOUBLE"])
def test_other_wav_formats_are_left_to_libsndfile(subtype: str) -> None:
    x = np.linspace(-0.9, 0.9, 800, dtype=np.float32)
    data = _encode(x, 8_000, "WAV", subtype)
    assert read_pcm_wav(data) is None
    np.testing.assert_array_equal(decode_audio(data)[0], _libsndfile(data))


def test_fast_wav_path_keeps_the_limits_and_the_truncation_check() -> None:
    data = _encode(np.zeros(1000, np.float32), 8_000, "WAV", "PCM_16")
    with pytest.raises(AudioTooLongError, match="more than 999 frames"):
        decode_audio(data, max_frames=999)
    assert decode_audio(data, max_frames=1000)[0].shape == (1000,)
    assert read_pcm_wav(data[:-10]) is None  # truncated: libsndfile's path refuses it
    with pytest.raises(AudioDecodeError, match="truncated"):
        decode_audio(data[:-10])
    assert read_pcm_wav(b"RIFF" + b"\0" * 60) is None
