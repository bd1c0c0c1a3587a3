"""Built-in and custom architectures behind build_model."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from inference.architectures import (
    BUILTIN_ARCHITECTURES,
    AudioClassifier,
    BasicBlock,
    ResNet18,
    UnknownArchitectureError,
    build_model,
)
from inference.features import FeatureConfig


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", BUILTIN_ARCHITECTURES)
def test_builtin_models_map_waveforms_to_logits(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, num_classes=5).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 22050))
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()
    # Front-end buffers are derived from the config, never saved with the weights.
    assert not any(k.startswith("features.") for k in model.state_dict())


def test_builtin_names_are_case_insensitive_and_alias_resolves() -> None:
    assert set(BUILTIN_ARCHITECTURES) >= {"small_cnn", "resnet18", "audio_resnet18"}
    assert isinstance(build_model(" Small_CNN ", 3), AudioClassifier)
    alias = build_model("audio_resnet18", 5)
    assert isinstance(alias, AudioClassifier) and isinstance(alias.backbone, ResNet18)


def test_resnet18_is_a_real_resnet18() -> None:
    net = ResNet18(num_classes=5)
    blocks = [m for m in net.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 8  # [2, 2, 2, 2]
    assert [
        layer[0].conv1.out_channels for layer in (net.layer1, net.layer2, net.layer3, net.layer4)
    ] == [64, 128, 256, 512]
    assert net.conv1.in_channels == 1
    # torchvision's resnet18 has 11.69M params with 3 input channels and 1000 classes;
    # 1 input channel (-6,272) and 5 classes (-510,435) gives 11,172,805.
    assert _n_params(net) == 11_172_805


def test_small_cnn_is_small() -> None:
    assert _n_params(build_model("small_cnn", 5)) < 200_000


def test_features_accepted_as_dict_and_config() -> None:
    cfg = FeatureConfig(n_mels=32)
    model = build_model("small_cnn", 4, cfg.to_dict())
    assert isinstance(model, AudioClassifier) and model.feature_config == cfg
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 22050)).shape == (1, 4)


def test_custom_factory_from_installed_module() -> None:
    model = build_model("inference.architectures:build_small_cnn", 3)
    assert isinstance(model, AudioClassifier)


def test_custom_factory_from_user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "nightscan_custom_arch.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn

            class Tiny(nn.Module):
                def __init__(self, num_classes, features):
                    super().__init__()
                    self.features = features
                    self.fc = nn.Linear(1, num_classes)

                def forward(self, x):
                    return self.fc(x.abs().mean(dim=1, keepdim=True))

            def factory(num_classes, features):
                return Tiny(num_classes, features)

            def not_a_model(num_classes, features):
                return 42

            def broken(num_classes, features):
                raise RuntimeError("boom")

            NOT_CALLABLE = 3
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "nightscan_custom_arch", raising=False)

    model = build_model("nightscan_custom_arch:factory", 7, {"n_mels": 40})
    assert model.features == FeatureConfig(n_mels=40)  # factory got a FeatureConfig
    assert model(torch.randn(2, 100)).shape == (2, 7)

    with pytest.raises(UnknownArchitectureError, match="not torch.nn.Module"):
        build_model("nightscan_custom_arch:not_a_model", 2)
    with pytest.raises(UnknownArchitectureError, match="boom"):
        build_model("nightscan_custom_arch:broken", 2)
    with pytest.raises(UnknownArchitectureError, match="not callable"):
        build_model("nightscan_custom_arch:NOT_CALLABLE", 2)
    with pytest.raises(UnknownArchitectureError, match="no attribute"):
        build_model("nightscan_custom_arch:missing", 2)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("vgg_unknown", "unknown architecture"),
        ("", "non-empty"),
        ("module_only:", "expected 'package.module:factory'"),
        (":factory", "expected 'package.module:factory'"),
        ("a:b:c", "expected 'package.module:factory'"),
        ("no_such_module_for_nightscan:factory", "cannot import"),
        ("inference.architectures:does_not_exist", "no attribute"),
    ],
)
def test_bad_specs_raise_unknown_architecture(spec: str, match: str) -> None:
    with pytest.raises(UnknownArchitectureError, match=match):
        build_model(spec, 5)


def test_unknown_architecture_is_a_value_error() -> None:
    assert issubclass(UnknownArchitectureError, ValueError)


@pytest.mark.parametrize("num_classes", [0, -1, True, 2.0])
def test_bad_num_classes(num_classes: object) -> None:
    with pytest.raises(ValueError, match="num_classes"):
        build_model("small_cnn", num_classes)  # type: ignore[arg-type]
