"""Serving a traced graph only where it answers exactly like the eager module."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from inference.architectures import build_model
from inference.features import FeatureConfig
from inference.tracing import trace_for_serving, traced_by_default

T = FeatureConfig().clip_samples


def test_small_cnn_is_traced_and_answers_bitwise_alike_at_every_batch_size() -> None:
    torch.manual_seed(0)
    model = build_model("small_cnn", 4).eval()
    traced = trace_for_serving(model, T)
    assert isinstance(traced, torch.jit.ScriptModule)
    with torch.inference_mode():
        for rows in (1, 2, 5, 16):
            x = torch.randn(rows, T)
            assert torch.equal(traced(x), model(x))


class _Branching(nn.Module):
    """Answers differently for silence: a trace records only the branch it saw."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head = x[:, :3]
        if bool(x.abs().sum() > 0):
            return head * 2
        return head


class _DictOut(nn.Module):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": x[:, :3]}


@pytest.mark.parametrize("model", [_Branching(), _DictOut()])
def test_models_a_trace_cannot_reproduce_are_served_eagerly(model: nn.Module) -> None:
    assert trace_for_serving(model, 64) is model


def test_the_switch_and_the_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    model = build_model("small_cnn", 3).eval()
    monkeypatch.setenv("NIGHTSCAN_TRACE", "0")
    assert trace_for_serving(model, T) is model
    monkeypatch.delenv("NIGHTSCAN_TRACE")
    before = torch.get_num_threads()
    assert trace_for_serving(model, T) is not model
    assert torch.get_num_threads() == before


def test_serving_traces_the_built_in_architectures_only() -> None:
    assert traced_by_default("small_cnn") and traced_by_default("audio_resnet18")
    assert not traced_by_default("my_models.nets:factory")
