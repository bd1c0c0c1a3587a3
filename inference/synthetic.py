"""Seeded synthetic night-time wildlife calls (numpy + soundfile only, no torch).

Every clip = one foreground call (or none for "background") + a random noise bed
(pink/brown noise, wind, insects) + sometimes a quiet distractor, at a random overall level.
Randomness comes only from numpy Generator(PCG64(...)), so a seed reproduces the same data set
everywhere; samples are snapped to the 16-bit PCM grid so tiny libm differences between
machines cannot leak into the float32 output (and write_wav round-trips exactly).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import soundfile as sf

LABELS: tuple[str, ...] = ("owl", "hawk", "sparrow", "robin", "background")
DATASET_VERSION = "synthetic-v1"
DEFAULT_SAMPLE_RATE = 22050

_PCM16_SCALE = 32768.0  # libsndfile's int16 <-> float scale, so WAV round-trips exactly
_DISTRACTOR_SHARE = 0.35


def _n_samples(sample_rate: int, seconds: float) -> int:
    n = int(round(sample_rate * seconds))
    if sample_rate <= 0 or n <= 0:
        raise ValueError(f"need a positive sample rate and duration, got {sample_rate}, {seconds}")
    return n


def _smooth_noise(rng: np.random.Generator, n: int, sample_rate: int, rate_hz: float) -> np.ndarray:
    """Unit-ish random signal varying at roughly `rate_hz` (noise knots + linear interpolation)."""
    n_knots = max(2, int(n / sample_rate * rate_hz) + 2)
    knots = rng.standard_normal(n_knots)
    return np.interp(np.linspace(0.0, n_knots - 1, n), np.arange(n_knots), knots)


def _coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power ~ 1/f**exponent (1 = pink, 2 = brown), unit std."""
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    freqs = np.arange(n // 2 + 1, dtype=np.float64)
    freqs[0] = 1.0
    spectrum /= freqs ** (exponent / 2)
    spectrum[0] = 0.0
    x = np.fft.irfft(spectrum, n)
    return x / (x.std() + 1e-12)


def _envelope(length: int, attack: float, release: float) -> np.ndarray:
    """Raised-cosine attack/release (fractions of `length`) around a flat sustain."""
    env = np.ones(length)
    a, r = max(1, int(length * attack)), max(1, int(length * release))
    env[:a] = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, a))
    env[length - r :] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, r))
    return env


def _add_tone(
    out: np.ndarray,
    start: int,
    freq: np.ndarray,
    env: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    harmonics: Sequence[float] = (),
) -> None:
    """Add an FM tone (instantaneous frequency track `freq`, Hz) plus harmonics at `start`."""
    length = min(len(freq), len(out) - start)
    if length <= 0:
        return
    phase = 2 * np.pi * np.cumsum(freq[:length]) / sample_rate + rng.uniform(0, 2 * np.pi)
    nyquist = sample_rate / 2
    sig = np.sin(phase)
    for k, amp in enumerate(harmonics, start=2):
        if k * freq[:length].max() < nyquist:  # skip harmonics that would alias
            sig += amp * np.sin(k * phase)
    out[start : start + length] += env[:length] * sig


def _fit(total: float, seconds: float) -> float:
    """Scale factor that squeezes a call of `total` seconds into 90% of the clip."""
    return min(1.0, 0.9 * seconds / total)


def _owl(rng: np.random.Generator, n: int, sr: int, seconds: float) -> np.ndarray:
    """2-4 low (300-600 Hz) hoots with harmonics and a slight downward glide."""
    out = np.zeros(n)
    f0 = rng.uniform(300, 600)
    pulses = int(rng.integers(2, 5))
    hoot, gap = rng.uniform(0.07, 0.16), rng.uniform(0.04, 0.12)
    total = pulses * hoot + (pulses - 1) * gap
    scale = _fit(total, seconds)
    hoot, gap, total = hoot * scale, gap * scale, total * scale
    t0 = rng.uniform(0, seconds - total)
    harmonics = (rng.uniform(0.2, 0.5), rng.uniform(0.05, 0.25))
    for p in range(pulses):
        length = int(hoot * sr * (1.3 if p == pulses - 1 else 1.0))  # last hoot drawn out
        f = f0 * (1 + rng.normal(0, 0.02))
        glide = rng.uniform(0.0, 0.08)
        track = f * (1 + glide * np.linspace(1.0, 0.0, length))
        start = int((t0 + p * (hoot + gap)) * sr)
        _add_tone(out, start, track, _envelope(length, 0.3, 0.4), sr, rng, harmonics)
    return out


def _hawk(rng: np.random.Generator, n: int, sr: int, seconds: float) -> np.ndarray:
    """One raspy screech sweeping down from 3-4 kHz, noisy AM + FM jitter."""
    out = np.zeros(n)
    dur = rng.uniform(0.3, 0.7) * _fit(0.7, seconds)
    length = int(dur * sr)
    start = int(rng.uniform(0, seconds - dur) * sr)
    f_start = rng.uniform(3000, 4000)
    f_end = max(1900.0, f_start - rng.uniform(800, 1500))
    u = np.linspace(0.0, 1.0, length) ** rng.uniform(0.7, 1.5)
    jitter = _smooth_noise(rng, length, sr, rate_hz=rng.uniform(30, 80)) * rng.uniform(40, 150)
    track = f_start + (f_end - f_start) * u + jitter
    tone = np.zeros(n)
    _add_tone(tone, start, track, np.ones(length), sr, rng, harmonics=(rng.uniform(0.2, 0.5),))
    # Rasp: fast periodic gating plus amplitude noise smears the tone into a harsh band.
    t = np.arange(n) / sr
    gate_hz, depth = rng.uniform(60, 140), rng.uniform(0.3, 0.8)
    rasp = 1 + depth * np.sign(np.sin(2 * np.pi * gate_hz * t)) * 0.5
    rasp += rng.uniform(0.3, 0.8) * _smooth_noise(rng, n, sr, rate_hz=rng.uniform(200, 600))
    env = np.zeros(n)
    env[start : start + length] = _envelope(length, rng.uniform(0.05, 0.15), rng.uniform(0.2, 0.4))
    out += tone * rasp * env
    return out


def _sparrow(rng: np.random.Generator, n: int, sr: int, seconds: float) -> np.ndarray:
    """4-10 fast, short (15-40 ms) chirps swept within 4-8 kHz."""
    out = np.zeros(n)
    chirps = int(rng.integers(4, 11))
    dur = rng.uniform(0.015, 0.04)
    interval = dur + rng.uniform(0.03, 0.07)
    total = (chirps - 1) * interval + dur
    scale = _fit(total, seconds)
    dur, interval, total = dur * scale, interval * scale, total * scale
    t0 = rng.uniform(0, seconds - total)
    fc, sweep = rng.uniform(4800, 7200), rng.uniform(-1500, 1500)
    length = max(8, int(dur * sr))
    for c in range(chirps):
        f = fc * (1 + rng.normal(0, 0.03))
        track = np.clip(np.linspace(f - sweep / 2, f + sweep / 2, length), 4000, 8000)
        start = int((t0 + c * interval + rng.normal(0, 0.003)) * sr)
        amp = rng.uniform(0.6, 1.0)
        _add_tone(out, max(0, start), track, amp * np.hanning(length), sr, rng, (0.1,))
    return out


def _robin(rng: np.random.Generator, n: int, sr: int, seconds: float) -> np.ndarray:
    """3-6 melodic warble notes at varying 2-4 kHz pitches with vibrato."""
    out = np.zeros(n)
    notes = int(rng.integers(3, 7))
    durs = rng.uniform(0.06, 0.15, notes)
    gaps = rng.uniform(0.01, 0.05, notes)
    total = float(durs.sum() + gaps[:-1].sum())
    scale = _fit(total, seconds)
    durs, gaps, total = durs * scale, gaps * scale, total * scale
    t = rng.uniform(0, seconds - total)
    vib_rate, vib_depth = rng.uniform(15, 40), rng.uniform(50, 200)
    for k in range(notes):
        length = int(durs[k] * sr)
        pitch = rng.uniform(2200, 3800)
        tt = np.arange(length) / sr
        track = (
            pitch
            + rng.uniform(-200, 200) * np.linspace(0, 1, length)
            + vib_depth * np.sin(2 * np.pi * vib_rate * tt)
        )
        env = rng.uniform(0.6, 1.0) * _envelope(length, 0.2, 0.3)
        _add_tone(out, int(t * sr), track, env, sr, rng, (rng.uniform(0.05, 0.2),))
        t += durs[k] + gaps[k]
    return out


_CALLS: dict[str, Callable[[np.random.Generator, int, int, float], np.ndarray]] = {
    "owl": _owl,
    "hawk": _hawk,
    "sparrow": _sparrow,
    "robin": _robin,
}


def _noise_bed(rng: np.random.Generator, n: int, sr: int, insects_p: float) -> np.ndarray:
    """Unit-scale ambience: pink..brown noise, maybe wind gusts, maybe insects."""
    bed = _coloured_noise(rng, n, rng.uniform(1.0, 2.0))
    t = np.arange(n) / sr
    if rng.random() < 0.4:  # wind: brown noise swelling in slow gusts
        gust = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.3, 2.0) * t + rng.uniform(0, 6.3))
        bed += rng.uniform(0.5, 2.0) * _coloured_noise(rng, n, 2.0) * gust
    if rng.random() < insects_p:
        if rng.random() < 0.5:  # cricket-like trill: steady tone gated at 25-50 Hz
            f = rng.uniform(4000, 5500)
            gate = np.sin(2 * np.pi * rng.uniform(25, 50) * t) > 0
            bed += rng.uniform(0.1, 0.5) * gate * np.sin(2 * np.pi * f * t)
        else:  # low drone of an insect swarm / distant machinery
            f = rng.uniform(150, 300)
            bed += rng.uniform(0.1, 0.5) * (
                np.sin(2 * np.pi * f * t) + 0.4 * np.sin(4 * np.pi * f * t)
            )
    return bed


def _distractor(
    rng: np.random.Generator, n: int, sr: int, seconds: float, label: str
) -> np.ndarray:
    """A quiet extra event: twig clicks, a rumble, or a faint distant call of another bird."""
    kinds = ["click", "rumble"] + (["call"] if label != "background" else [])
    kind = kinds[int(rng.integers(len(kinds)))]
    out = np.zeros(n)
    if kind == "click":
        for _ in range(int(rng.integers(1, 4))):
            length = min(n, max(1, int(rng.uniform(0.002, 0.006) * sr)))
            start = int(rng.integers(0, n - length + 1))
            decay = np.exp(-np.linspace(0, 6, length))
            out[start : start + length] += rng.standard_normal(length) * decay
    elif kind == "rumble":
        length = min(n, max(2, int(rng.uniform(0.2, 0.6) * min(seconds, 1.0) * sr)))
        start = int(rng.integers(0, n - length + 1))
        out[start : start + length] = _coloured_noise(rng, length, 2.0) * np.hanning(length)
    else:
        others = [name for name in _CALLS if name != label]
        out = _CALLS[others[int(rng.integers(len(others)))]](rng, n, sr, seconds)
    return out / (np.abs(out).max() + 1e-12)


def generate_call(
    label: str,
    rng: np.random.Generator,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    seconds: float = 1.0,
) -> np.ndarray:
    """One float32 clip in [-1, 1] of `label` (one of LABELS)."""
    if label not in LABELS:
        raise ValueError(f"unknown synthetic label {label!r}; expected one of {LABELS}")
    n = _n_samples(sample_rate, seconds)
    if label == "background":
        mix = _noise_bed(rng, n, sample_rate, insects_p=0.6)
        ref = float(np.abs(mix).max())
    else:
        call = _CALLS[label](rng, n, sample_rate, seconds)
        call /= np.abs(call).max() + 1e-12
        snr_db = rng.uniform(12.0, 35.0)  # call peak vs noise-bed std
        mix = call + 10 ** (-snr_db / 20) * _noise_bed(rng, n, sample_rate, insects_p=0.3)
        ref = 1.0
    if rng.random() < _DISTRACTOR_SHARE:
        level = rng.uniform(0.05, 0.2)  # well below the main call / ambience peak
        mix += level * ref * _distractor(rng, n, sample_rate, seconds, label)
    peak = rng.uniform(0.05, 0.9)  # overall recording level
    mix *= peak / (np.abs(mix).max() + 1e-12)
    codes = np.clip(np.round(mix * _PCM16_SCALE), -32767, 32767)
    return (codes / _PCM16_SCALE).astype(np.float32)


def make_dataset(
    n_per_class: int,
    seed: int,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    seconds: float = 1.0,
    labels: Sequence[str] = LABELS,
) -> tuple[np.ndarray, np.ndarray]:
    """Class-major data set: X [N, T] float32, y [N] int64 (indices into `labels`).

    Clip i of a class has its own generator PCG64([seed, LABELS.index(label), i]), so the same
    clip comes out whatever n_per_class or label subset is asked for.
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    unknown = [lab for lab in labels if lab not in LABELS]
    if unknown or len(set(labels)) != len(labels) or not labels:
        raise ValueError(f"labels must be distinct names from {LABELS}, got {tuple(labels)}")
    n = _n_samples(sample_rate, seconds)
    x = np.empty((len(labels) * n_per_class, n), dtype=np.float32)
    y = np.repeat(np.arange(len(labels), dtype=np.int64), n_per_class)
    for c, label in enumerate(labels):
        for i in range(n_per_class):
            rng = np.random.Generator(np.random.PCG64([seed, LABELS.index(label), i]))
            x[c * n_per_class + i] = generate_call(label, rng, sample_rate, seconds)
    return x, y


def write_wav(
    path: str | os.PathLike[str], waveform: np.ndarray, sample_rate: int = DEFAULT_SAMPLE_RATE
) -> None:
    """Write a mono 16-bit PCM WAV (values clipped to [-1, 1])."""
    data = np.clip(np.asarray(waveform, dtype=np.float32), -1.0, 1.0)
    sf.write(os.fspath(path), data, int(sample_rate), subtype="PCM_16", format="WAV")
