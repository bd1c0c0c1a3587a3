"""Model zoo: waveform [B, T] -> logits [B, num_classes] via a log-mel front-end + backbone."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from inference.features import FeatureConfig, LogMelSpectrogram


class UnknownArchitectureError(ValueError):
    """Architecture name/spec cannot be resolved to a working model factory."""


class AudioClassifier(nn.Module):
    """Log-mel front-end (no parameters) followed by a 2-D CNN backbone."""

    def __init__(self, backbone: nn.Module, features: FeatureConfig | None = None) -> None:
        super().__init__()
        self.feature_config = features or FeatureConfig()
        self.features = LogMelSpectrogram(self.feature_config)
        self.backbone = backbone

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.features(waveforms))


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


class SmallCNN(nn.Module):
    """Four conv blocks + global average/max pooling; ~100k params, quick to train on CPU."""

    def __init__(self, num_classes: int, channels: tuple[int, ...] = (16, 32, 64, 96)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c_out in channels:
            layers += [*_conv_bn_relu(c_in, c_out), nn.MaxPool2d(2)]
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.2)
        # Mean + max pooling: mean captures sustained calls, max catches short chirps.
        self.head = nn.Linear(2 * c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(x)
        pooled = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
        return self.head(self.dropout(pooled))


class BasicBlock(nn.Module):
    """Standard ResNet basic block (two 3x3 convs + identity/projection shortcut)."""

    expansion = 1

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18 (BasicBlock x [2, 2, 2, 2], 64..512 channels) with a 1-channel stem."""

    def __init__(self, num_classes: int, in_channels: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 64, blocks=2, stride=1)
        self.layer2 = self._make_layer(64, 128, blocks=2, stride=2)
        self.layer3 = self._make_layer(128, 256, blocks=2, stride=2)
        self.layer4 = self._make_layer(256, 512, blocks=2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # Zero-init the last BN of each residual branch: blocks start as identity (stabler).
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    @staticmethod
    def _make_layer(c_in: int, c_out: int, blocks: int, stride: int) -> nn.Sequential:
        layers = [BasicBlock(c_in, c_out, stride)]
        layers += [BasicBlock(c_out, c_out, 1) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build_small_cnn(num_classes: int, features: FeatureConfig | None = None) -> AudioClassifier:
    """Factory for "small_cnn"; also usable as a custom spec "inference.architectures:..."."""
    return AudioClassifier(SmallCNN(num_classes), features)


def build_resnet18(num_classes: int, features: FeatureConfig | None = None) -> AudioClassifier:
    """Factory for "resnet18" / "audio_resnet18"."""
    return AudioClassifier(ResNet18(num_classes), features)


_BUILTINS: dict[str, Callable[..., nn.Module]] = {
    "small_cnn": build_small_cnn,
    "resnet18": build_resnet18,
}
_ALIASES = {"audio_resnet18": "resnet18"}
BUILTIN_ARCHITECTURES: tuple[str, ...] = ("small_cnn", "resnet18", "audio_resnet18")


def canonical_architecture(architecture: str) -> str:
    """Lower-cased built-in name with aliases resolved; custom specs are returned unchanged."""
    name = architecture.strip()
    if ":" in name:
        return name
    return _ALIASES.get(name.lower(), name.lower())


def _resolve_factory(spec: str) -> Callable[..., Any]:
    """Import "package.module:factory" (attribute may be dotted, e.g. "mod:Class.create")."""
    module_name, sep, attr_path = spec.partition(":")
    module_name, attr_path = module_name.strip(), attr_path.strip()
    if not sep or not module_name or not attr_path or ":" in attr_path:
        raise UnknownArchitectureError(
            f"bad architecture spec {spec!r}: expected 'package.module:factory'"
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownArchitectureError(
            f"architecture {spec!r}: cannot import module {module_name!r} ({exc})"
        ) from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise UnknownArchitectureError(
                f"architecture {spec!r}: module {module_name!r} has no attribute {attr_path!r}"
            ) from exc
    if not callable(obj):
        raise UnknownArchitectureError(f"architecture {spec!r}: {attr_path!r} is not callable")
    return obj


def build_model(
    architecture: str,
    num_classes: int,
    features: FeatureConfig | dict[str, Any] | None = None,
) -> nn.Module:
    """Build a model taking raw waveforms [B, T] and returning logits [B, num_classes].

    `architecture` is a built-in name (see BUILTIN_ARCHITECTURES) or "package.module:factory";
    a custom factory is called as factory(num_classes=..., features=FeatureConfig) and must
    return a complete nn.Module (front-end included). Custom specs import and run code, so
    they must only come from trusted configuration.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if features is None:
        cfg = FeatureConfig()
    elif isinstance(features, FeatureConfig):
        cfg = features
    else:
        cfg = FeatureConfig.from_dict(dict(features))
    if not isinstance(architecture, str) or not architecture.strip():
        raise UnknownArchitectureError(f"architecture must be a non-empty string: {architecture!r}")
    name = canonical_architecture(architecture)
    if name in _BUILTINS:
        return _BUILTINS[name](num_classes=num_classes, features=cfg)
    if ":" not in name:
        raise UnknownArchitectureError(
            f"unknown architecture {architecture!r}; built-ins are "
            f"{', '.join(BUILTIN_ARCHITECTURES)} or use 'package.module:factory'"
        )
    factory = _resolve_factory(name)
    try:
        model = factory(num_classes=num_classes, features=cfg)
    except Exception as exc:  # surface any factory failure as one clear, catchable error
        raise UnknownArchitectureError(
            f"architecture factory {name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(model, nn.Module):
        raise UnknownArchitectureError(
            f"architecture factory {name!r} returned {type(model).__name__}, not torch.nn.Module"
        )
    return model
