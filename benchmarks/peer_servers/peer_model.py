"""The model code both peers (LitServe, TorchServe) run: the project's own decoding
(``inference.audio``) and architecture (``inference.architectures``), the weights saved by
``benchmarks/peer_serving_bench.py``, and the same answer shape as ``/predict``.

Runs inside the peer virtual environment (torch, numpy, soundfile, scipy and the peer server;
not the project's dependencies); ``inference`` is found through ``NIGHTSCAN_ROOT``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = os.environ.get("NIGHTSCAN_ROOT") or str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from inference.architectures import build_model  # noqa: E402
from inference.audio import decode_audio, fixed_windows, prepare_waveform  # noqa: E402
from inference.features import FeatureConfig  # noqa: E402


class PeerModel:
    """Decode -> windows -> one batched forward pass -> softmax -> per-request mean."""

    def __init__(self, spec_path: str) -> None:
        spec = json.loads(Path(spec_path).read_text())
        self.labels: list[str] = spec["labels"]
        self.model = build_model(spec["architecture"], len(self.labels))
        self.model.load_state_dict(torch.load(spec["weights"], map_location="cpu"))
        self.model.eval()
        self.clip_samples = FeatureConfig().clip_samples
        if spec.get("threads"):  # as many torch threads as nightscan's replica uses
            torch.set_num_threads(int(spec["threads"]))

    def windows(self, data: bytes) -> np.ndarray:
        samples, rate = decode_audio(bytes(data))
        return fixed_windows(prepare_waveform(samples, rate), self.clip_samples)

    def predict(self, batch: list[np.ndarray]) -> list[dict[str, Any]]:
        x = torch.from_numpy(np.concatenate(batch))
        with torch.inference_mode():
            probs = torch.softmax(self.model(x).float(), dim=1).numpy()
        out, start = [], 0
        for windows in batch:
            mean = probs[start : start + len(windows)].mean(axis=0)
            start += len(windows)
            best = int(mean.argmax())
            out.append(
                {
                    "predicted_class": self.labels[best],
                    "confidence": float(mean[best]),
                    "probabilities": dict(zip(self.labels, map(float, mean), strict=True)),
                }
            )
        return out
