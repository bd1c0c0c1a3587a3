"""Log-mel front-end computed inside the model so raw waveforms are the only model input."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

LOG_EPS = 1e-6
# Floor for the per-example std: near-silent clips would otherwise have their noise blown up.
_NORM_STD_FLOOR = 1e-2


@dataclass(frozen=True)
class FeatureConfig:
    """Everything needed to reproduce the front-end; stored alongside model weights."""

    sample_rate: int = 22050
    clip_seconds: float = 1.0
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 64
    f_min: float = 50.0
    f_max: float = 11025.0

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "hop_length", "n_mels"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value <= 0:
                raise ValueError(f"FeatureConfig.{name} must be a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("clip_seconds", "f_min", "f_max"):
            object.__setattr__(self, name, float(getattr(self, name)))
        if self.clip_seconds <= 0:
            raise ValueError(f"FeatureConfig.clip_seconds must be > 0, got {self.clip_seconds}")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError(
                f"FeatureConfig needs 0 <= f_min < f_max <= sample_rate/2, got "
                f"f_min={self.f_min}, f_max={self.f_max}, sample_rate={self.sample_rate}"
            )

    @property
    def clip_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    @property
    def n_freqs(self) -> int:
        return self.n_fft // 2 + 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        # Strict on purpose: a typo in a stored config must not silently fall back to a default.
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown FeatureConfig keys: {', '.join(unknown)}")
        return cls(**data)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    mel = hz / f_sp
    log_region = hz >= min_log_hz
    mel[log_region] = min_log_mel + np.log(hz[log_region] / min_log_hz) / logstep
    return mel


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    hz = mel * f_sp
    log_region = mel >= min_log_mel
    hz[log_region] = min_log_hz * np.exp(logstep * (mel[log_region] - min_log_mel))
    return hz


def mel_filterbank(cfg: FeatureConfig) -> torch.Tensor:
    """Slaney-normalised triangular filters, shape [n_freqs, n_mels] (same maths as librosa)."""
    fft_freqs = np.linspace(0.0, cfg.sample_rate / 2, cfg.n_freqs)
    mel_pts = np.linspace(
        _hz_to_mel(np.array([cfg.f_min]))[0], _hz_to_mel(np.array([cfg.f_max]))[0], cfg.n_mels + 2
    )
    hz_pts = _mel_to_hz(mel_pts)
    lower, centre, upper = hz_pts[:-2], hz_pts[1:-1], hz_pts[2:]
    rising = (fft_freqs[:, None] - lower[None, :]) / (centre - lower)[None, :]
    falling = (upper[None, :] - fft_freqs[:, None]) / (upper - centre)[None, :]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    # Area normalisation keeps wide high-frequency filters from dominating the energy.
    weights *= (2.0 / (upper - lower))[None, :]
    return torch.from_numpy(weights.astype(np.float32))


class LogMelSpectrogram(nn.Module):
    """Waveforms [B, T] -> normalised log-mel [B, 1, n_mels, frames]."""

    def __init__(self, cfg: FeatureConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or FeatureConfig()
        # Non-persistent: derived from cfg, so they stay out of state_dict / saved weights.
        self.register_buffer("window", torch.hann_window(self.cfg.n_fft), persistent=False)
        self.register_buffer("mel_fb", mel_filterbank(self.cfg), persistent=False)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        if waveforms.dim() == 1:
            waveforms = waveforms.unsqueeze(0)
        if waveforms.dim() != 2:
            raise ValueError(f"expected waveforms shaped [B, T], got {tuple(waveforms.shape)}")
        spec = torch.stft(
            waveforms.to(self.window.dtype),
            n_fft=self.cfg.n_fft,
            hop_length=self.cfg.hop_length,
            window=self.window,
            center=True,
            pad_mode="constant",  # reflect padding fails on clips shorter than n_fft / 2
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()  # [B, n_freqs, frames]
        mel = torch.matmul(power.transpose(1, 2), self.mel_fb).transpose(1, 2)
        logmel = torch.log(mel + LOG_EPS)
        # Per-example standardisation: gain only shifts log energy, so subtracting the mean
        # makes the features (almost) loudness invariant.
        mean = logmel.mean(dim=(1, 2), keepdim=True)
        std = logmel.std(dim=(1, 2), keepdim=True, correction=0).clamp_min(_NORM_STD_FLOOR)
        return ((logmel - mean) / std).unsqueeze(1)
