"""Mel filterbank and log-mel front-end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference.features import FeatureConfig, LogMelSpectrogram, mel_filterbank


def test_feature_config_defaults_and_round_trip() -> None:
    cfg = FeatureConfig()
    assert cfg.clip_samples == 22050 and cfg.n_freqs == 513
    data = cfg.to_dict()
    assert data == {
        "sample_rate": 22050,
        "clip_seconds": 1.0,
        "n_fft": 1024,
        "hop_length": 256,
        "n_mels": 64,
        "f_min": 50.0,
        "f_max": 11025.0,
    }
    assert FeatureConfig.from_dict(data) == cfg
    other = FeatureConfig.from_dict({**data, "n_mels": 32, "clip_seconds": 2})
    assert other.n_mels == 32 and other.clip_samples == 44100


@pytest.mark.parametrize(
    "bad",
    [
        {"n_mels": 0},
        {"n_fft": 1.5},
        {"f_max": 20000.0},
        {"f_min": 500.0, "f_max": 400.0},
        {"clip_seconds": 0.0},
    ],
)
def test_feature_config_rejects_invalid_values(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        FeatureConfig(**bad)  # type: ignore[arg-type]


def test_feature_config_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="n_melz"):
        FeatureConfig.from_dict({"n_melz": 64})


def test_mel_filterbank_shape_and_triangles() -> None:
    cfg = FeatureConfig()
    fb = mel_filterbank(cfg)
    assert fb.shape == (513, 64) and fb.dtype == torch.float32
    weights = fb.numpy()
    assert (weights >= 0).all()
    assert (weights.max(axis=0) > 0).all()  # no empty filter
    peaks_hz = weights.argmax(axis=0) * cfg.sample_rate / cfg.n_fft
    assert (np.diff(peaks_hz) > 0).all()  # centres strictly increase
    assert peaks_hz[0] >= cfg.f_min - cfg.sample_rate / cfg.n_fft
    assert peaks_hz[-1] <= cfg.f_max
    # Each filter is one contiguous bump (rises then falls).
    for column in weights.T:
        support = np.flatnonzero(column > 0)
        assert (np.diff(support) == 1).all()


def test_mel_filterbank_slaney_normalisation_flattens_response() -> None:
    # Area normalisation: wide high-frequency filters are lower, so a flat spectrum gives a
    # roughly equal response per Hz rather than growing with filter width.
    weights = mel_filterbank(FeatureConfig()).numpy()
    assert weights[:, -1].max() < weights[:, 0].max()
    bin_hz = 22050 / 1024
    areas = weights.sum(axis=0) * bin_hz
    assert np.allclose(areas[8:], 1.0, atol=0.1)  # triangle area = 1 for Slaney norm


def test_log_mel_shape_and_no_state() -> None:
    frontend = LogMelSpectrogram(FeatureConfig())
    x = torch.randn(3, 22050)
    out = frontend(x)
    assert out.shape == (3, 1, 64, 22050 // 256 + 1)
    assert torch.isfinite(out).all()
    # Derived buffers stay out of saved weights but follow the module around.
    assert frontend.state_dict() == {}
    assert {name for name, _ in frontend.named_buffers()} == {"window", "mel_fb"}


def test_log_mel_is_loudness_robust() -> None:
    frontend = LogMelSpectrogram(FeatureConfig())
    t = torch.arange(22050) / 22050
    x = (torch.sin(2 * torch.pi * 1000 * t) + 0.05 * torch.randn(22050)).unsqueeze(0)
    loud = frontend(x)
    assert float((loud - frontend(0.5 * x)).abs().max()) < 0.01
    # 26 dB quieter: only bins near the log floor (1e-6) move noticeably.
    assert float((loud - frontend(0.05 * x)).abs().mean()) < 0.01
    # Normalised per example: zero mean, unit variance.
    assert abs(float(loud.mean())) < 1e-4 and abs(float(loud.std(correction=0)) - 1) < 1e-3


def test_log_mel_tone_lands_in_matching_band() -> None:
    cfg = FeatureConfig()
    frontend = LogMelSpectrogram(cfg)
    t = torch.arange(22050) / 22050
    low = frontend(torch.sin(2 * torch.pi * 400 * t).unsqueeze(0))[0, 0].mean(dim=1)
    high = frontend(torch.sin(2 * torch.pi * 6000 * t).unsqueeze(0))[0, 0].mean(dim=1)
    assert int(low.argmax()) < int(high.argmax())
    peak_band = int(mel_filterbank(cfg)[round(6000 * cfg.n_fft / cfg.sample_rate)].argmax())
    assert abs(int(high.argmax()) - peak_band) <= 1


def test_log_mel_handles_silence_short_and_1d_inputs() -> None:
    frontend = LogMelSpectrogram(FeatureConfig())
    silent = frontend(torch.zeros(2, 22050))
    assert torch.isfinite(silent).all() and float(silent.abs().max()) < 1e-3
    short = frontend(torch.randn(100))  # shorter than n_fft; 1-D treated as a batch of one
    assert short.shape == (1, 1, 64, 1)
    with pytest.raises(ValueError):
        frontend(torch.zeros(1, 1, 100))
